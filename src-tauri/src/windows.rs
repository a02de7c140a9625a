//! The app's few small windows. Each is created when opened and destroyed when closed, so that
//! while the app only sits in the tray no webview (and no WebKit process) is alive.
use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

/// A question the sync asks the member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialogKind {
    MassDelete,
    Conflicts,
    NoSpace,
    LoginAgain,
}

impl DialogKind {
    pub fn tag(self) -> &'static str {
        match self {
            DialogKind::MassDelete => "mass_delete",
            DialogKind::Conflicts => "conflicts",
            DialogKind::NoSpace => "no_space",
            DialogKind::LoginAgain => "login_again",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Wizard,
    Settings,
    Dialog(DialogKind),
    /// "Récupérer un fichier…": the trash and a file's versions.
    Recover,
}

impl WindowKind {
    fn label(self) -> String {
        match self {
            WindowKind::Wizard => "wizard".into(),
            WindowKind::Settings => "settings".into(),
            WindowKind::Dialog(d) => format!("dialog-{}", d.tag()),
            WindowKind::Recover => "recover".into(),
        }
    }

    fn page(self) -> String {
        match self {
            WindowKind::Wizard => "wizard.html".into(),
            WindowKind::Settings => "settings.html".into(),
            WindowKind::Dialog(d) => format!("dialog.html?kind={}", d.tag()),
            WindowKind::Recover => "recover.html".into(),
        }
    }

    fn size(self) -> (f64, f64) {
        match self {
            // The folder step: local folder, server folder, room taken, without scrolling.
            WindowKind::Wizard => (520.0, 600.0),
            // Tall enough for Langue, À propos and Fermer without scrolling (issue 14, item 18).
            WindowKind::Settings => (560.0, 860.0),
            // Three answers, each explained, without scrolling (issue 14, item 15).
            WindowKind::Dialog(DialogKind::MassDelete) => (520.0, 460.0),
            WindowKind::Dialog(_) => (480.0, 300.0),
            WindowKind::Recover => (760.0, 620.0),
        }
    }
}

/// Shows the window, creating it if needed, and brings it to the front.
pub fn open<R: Runtime>(app: &AppHandle<R>, kind: WindowKind, title: &str) -> tauri::Result<()> {
    let label = kind.label();
    if let Some(window) = app.get_webview_window(&label) {
        window.unminimize().ok();
        window.show()?;
        return window.set_focus();
    }
    let (width, height) = kind.size();
    let window = WebviewWindowBuilder::new(app, &label, WebviewUrl::App(kind.page().into()))
        .title(title)
        .inner_size(width, height)
        .min_inner_size(width * 0.8, height * 0.8)
        .center()
        .focused(true)
        .build()?;
    window.set_focus().ok();
    tracing::debug!(%label, "window opened");
    Ok(())
}

/// Some window is open (for the single-instance focus).
pub fn any_open<R: Runtime>(app: &AppHandle<R>) -> Option<tauri::WebviewWindow<R>> {
    app.webview_windows().into_values().next()
}

/// Called when a window is gone. When it was the last one, WebKit's network process is ended:
/// WebKitGTK keeps it for the life of the app even with no webview (Tauri keeps the context
/// on Linux for that reason, tauri-apps/tauri#14626), which would hold tens of MB for a window
/// the member closed. WebKit starts a new one with the next window.
pub fn on_destroyed<R: Runtime>(app: &AppHandle<R>, label: &str) {
    // A WebDriver automation session lives in that process: keep it when under test.
    if app.webview_windows().keys().any(|l| l != label) || std::env::var_os("TAURI_WEBVIEW_AUTOMATION").is_some() {
        return;
    }
    #[cfg(target_os = "linux")]
    for pid in children() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        // /proc truncates names to 15 bytes.
        if comm.trim_end() == "WebKitNetworkPr" {
            tracing::debug!(pid, "no window left: ending WebKit's network process");
            // SAFETY: kill(2) on a child process of ours, found by its parent link just above.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
}

/// This process's direct children.
#[cfg(target_os = "linux")]
fn children() -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<i32>>())
        .collect()
}

/// The system's folder picker (Tauri's dialog plugin), opened at `start`. `PASSERELLE_PICK_FOLDER`
/// names a program that prints the chosen folder instead (the end-to-end tests' member, as
/// `PASSERELLE_BROWSER` is for the browser).
pub fn pick_folder<R: Runtime>(app: &AppHandle<R>, title: &str, start: Option<std::path::PathBuf>) -> Result<Option<std::path::PathBuf>, crate::error::ShellError> {
    use tauri_plugin_dialog::DialogExt;
    if let Some(program) = std::env::var_os("PASSERELLE_PICK_FOLDER").filter(|p| !p.is_empty()) {
        let out = std::process::Command::new(program).output().map_err(|e| crate::error::ShellError::logged("shell", &e))?;
        let chosen = String::from_utf8_lossy(&out.stdout).trim().to_string();
        return Ok((!chosen.is_empty()).then(|| chosen.into()));
    }
    // The title in the member's language (GTK's own default is English).
    let mut dialog = app.dialog().file().set_title(title);
    if let Some(dir) = start.as_ref().and_then(|s| s.ancestors().find(|a| a.is_dir()).map(|a| a.to_path_buf())) {
        dialog = dialog.set_directory(dir);
    }
    let picked = dialog.blocking_pick_folder();
    Ok(picked.and_then(|p| p.into_path().ok()))
}
