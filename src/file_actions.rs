//! The right-click actions in the member's file manager: "Copier un lien de partage", "Ouvrir en
//! ligne", "Versions précédentes…". Each runs the desktop app with `--share PATH`,
//! `--open-online PATH` or `--recover PATH`; a running app gets the request through its single
//! instance and answers it (clipboard, notification, browser, the recover window).
//!
//! Written for the file managers of Debian's desktops, in the member's own data folder
//! (`$XDG_DATA_HOME`, `~/.local/share`): Nautilus (GNOME) scripts, Nemo (Cinnamon) actions, Caja
//! (MATE) and any FileManager-Actions reader, Dolphin (KDE) service menus. On Windows and macOS
//! only the description is written (an Explorer verb as a `.reg` file, a Finder quick action's
//! `Info.plist`), beside Passerelle's data: they cannot be built and tried here.
//!
//! Every file written carries [`MARK`]; [`remove`] deletes only files that carry it, so a
//! member's own script of the same name is never touched.
use std::path::{Path, PathBuf};

use thiserror::Error;

/// In every file Passerelle writes here: what [`remove`] looks for.
pub const MARK: &str = "Written by Passerelle";

/// The three actions, in menu order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CopyLink,
    OpenOnline,
    Versions,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::CopyLink, Action::OpenOnline, Action::Versions];

    /// The desktop app's flag for it.
    pub fn flag(self) -> &'static str {
        match self {
            Action::CopyLink => "--share",
            Action::OpenOnline => "--open-online",
            Action::Versions => "--recover",
        }
    }

    /// The catalog key of its label.
    pub fn label_key(self) -> &'static str {
        match self {
            Action::CopyLink => "filemanager.copy_link",
            Action::OpenOnline => "filemanager.open_online",
            Action::Versions => "filemanager.versions",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Action::CopyLink => "passerelle-share",
            Action::OpenOnline => "passerelle-open-online",
            Action::Versions => "passerelle-versions",
        }
    }

    fn icon(self) -> &'static str {
        match self {
            Action::CopyLink => "emblem-shared",
            Action::OpenOnline => "web-browser",
            Action::Versions => "document-revert",
        }
    }
}

/// A file-manager action request, as the desktop app's command line carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub action: Action,
    pub path: PathBuf,
}

/// The request in a command line (`passerelle-desktop --share PATH`), if any.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Option<Request> {
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        if let Some(action) = Action::ALL.into_iter().find(|x| x.flag() == a) {
            return args.next().map(|p| Request { action, path: PathBuf::from(p) });
        }
    }
    None
}

#[derive(Debug, Error)]
pub enum FileActionsError {
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
}

impl FileActionsError {
    /// A stable code for scripts and the IPC boundary.
    pub fn code(&self) -> &'static str {
        match self {
            FileActionsError::Io { .. } => "file_actions",
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FileActionsError + '_ {
    move |e| FileActionsError::Io { path: path.display().to_string(), reason: e.to_string() }
}

/// Where the files go, and what they run.
#[derive(Debug, Clone)]
pub struct Install {
    /// `$XDG_DATA_HOME` (`~/.local/share`).
    pub data_home: PathBuf,
    /// Passerelle's own data folder (for the Windows and macOS descriptions).
    pub app_data: PathBuf,
    /// The desktop app's executable.
    pub exe: PathBuf,
}

impl Install {
    /// The member's folders, from the environment as the XDG base directory spec says.
    pub fn for_this_user(app_data: &Path, exe: &Path) -> Option<Install> {
        let data_home = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
        Some(Install { data_home, app_data: app_data.to_path_buf(), exe: exe.to_path_buf() })
    }

    fn nautilus(&self, label: &str) -> PathBuf {
        // Nautilus names the menu entry after the script's file name.
        self.data_home.join("nautilus/scripts").join(label)
    }
    fn nemo(&self, a: Action) -> PathBuf {
        self.data_home.join("nemo/actions").join(format!("{}.nemo_action", a.id()))
    }
    fn caja(&self, a: Action) -> PathBuf {
        self.data_home.join("file-manager/actions").join(format!("{}.desktop", a.id()))
    }
    fn dolphin(&self) -> [PathBuf; 2] {
        // KDE Frameworks 6 reads kio/servicemenus, 5 reads kservices5/ServiceMenus.
        [
            self.data_home.join("kio/servicemenus/passerelle.desktop"),
            self.data_home.join("kservices5/ServiceMenus/passerelle.desktop"),
        ]
    }
    fn windows(&self) -> PathBuf {
        self.app_data.join("file-actions/windows-explorer.reg")
    }
    fn macos(&self) -> PathBuf {
        self.app_data.join("file-actions/macos-quick-action-Info.plist")
    }
}

/// A word for `sh`, in single quotes.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// An `Exec` argument as the Desktop Entry spec quotes it.
fn exec_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Keeps a label to one line without the characters a key file or a file name cannot hold.
fn clean_label(label: &str) -> String {
    label.chars().filter(|c| !c.is_control() && *c != '/').collect::<String>().trim().to_string()
}

fn nautilus_script(exe: &str, a: Action) -> String {
    // Nautilus gives the selected items as arguments, relative to the current folder; the app
    // wants a full path.
    format!(
        "#!/bin/sh\n# {MARK}: a file-manager action; removed when Passerelle is logged out.\n\
         [ $# -ge 1 ] || exit 0\n\
         exec {} {} \"$(realpath -- \"$1\")\"\n",
        sh_quote(exe),
        a.flag()
    )
}

fn nemo_action(exe: &str, a: Action, label: &str) -> String {
    format!(
        "[Nemo Action]\n# {MARK}\nName={label}\nComment={label}\nExec={} {} %F\nIcon-Name={}\nSelection=s\nExtensions=any;\n",
        exec_quote(exe),
        a.flag(),
        a.icon()
    )
}

fn caja_action(exe: &str, a: Action, label: &str) -> String {
    format!(
        "[Desktop Entry]\n# {MARK}\nType=Action\nName={label}\nIcon={}\nProfiles=main;\n\n\
         [X-Action-Profile main]\nName={label}\nExec={} {} %f\nMimeTypes=all/all;\nSelectionCount==1\n",
        a.icon(),
        exec_quote(exe),
        a.flag()
    )
}

fn dolphin_menu(exe: &str, labels: &[(Action, String)]) -> String {
    let ids: Vec<&str> = labels.iter().map(|(a, _)| a.id()).collect();
    let mut out = format!(
        "[Desktop Entry]\n# {MARK}\nType=Service\nMimeType=all/all;\nX-KDE-ServiceTypes=KonqPopupMenu/Plugin\n\
         X-KDE-Submenu=Passerelle\nActions={};\n",
        ids.join(";")
    );
    for (a, label) in labels {
        out.push_str(&format!("\n[Desktop Action {}]\nName={label}\nIcon={}\nExec={} {} %f\n", a.id(), a.icon(), exec_quote(exe), a.flag()));
    }
    out
}

fn windows_reg(exe: &str, labels: &[(Action, String)]) -> String {
    // Explorer verbs for every file type and folders (HKCU, no admin rights needed).
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = format!("Windows Registry Editor Version 5.00\n; {MARK}: Explorer verbs, not tried on Windows.\n");
    for root in ["*", "Directory"] {
        for (a, label) in labels {
            let key = format!("HKEY_CURRENT_USER\\Software\\Classes\\{root}\\shell\\{}", a.id());
            out.push_str(&format!("\n[{key}]\n@=\"{}\"\n\n[{key}\\command]\n@=\"\\\"{}\\\" {} \\\"%1\\\"\"\n", esc(label), esc(exe), a.flag()));
        }
    }
    out
}

fn macos_plist(exe: &str, labels: &[(Action, String)]) -> String {
    let x = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut services = String::new();
    for (a, label) in labels {
        services.push_str(&format!(
            "    <dict>\n      <key>NSMenuItem</key><dict><key>default</key><string>{}</string></dict>\n      \
             <key>NSMessage</key><string>runWorkflowAsService</string>\n      \
             <key>NSRequiredContext</key><dict><key>NSApplicationIdentifier</key><string>com.apple.finder</string></dict>\n      \
             <key>NSSendFileTypes</key><array><string>public.item</string></array>\n      \
             <key>PasserelleCommand</key><string>{} {}</string>\n    </dict>\n",
            x(label),
            x(exe),
            a.flag()
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- {MARK}: Finder quick actions (Info.plist of a .workflow), not built on macOS. -->\n\
         <plist version=\"1.0\">\n<dict>\n  <key>NSServices</key>\n  <array>\n{services}  </array>\n</dict>\n</plist>\n"
    )
}

fn write(path: &Path, text: &str, executable: bool) -> Result<(), FileActionsError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    // Never replace a file of the member's that happens to have the same name.
    if let Ok(old) = std::fs::read_to_string(path) {
        if !old.contains(MARK) {
            tracing::info!(path = %path.display(), "a file of the member's has this name: left alone");
            return Ok(());
        }
    }
    std::fs::write(path, text).map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(())
}

/// Writes the actions with these labels (`label(key)` gives the catalog's words); returns the
/// files written. Labels in another language replace the earlier ones.
pub fn install(at: &Install, label: impl Fn(&str) -> String) -> Result<Vec<PathBuf>, FileActionsError> {
    remove(at)?;
    let exe = at.exe.display().to_string();
    let labels: Vec<(Action, String)> = Action::ALL.iter().map(|a| (*a, clean_label(&label(a.label_key())))).collect();
    let mut written = Vec::new();
    let mut put = |path: PathBuf, text: String, executable: bool| -> Result<(), FileActionsError> {
        write(&path, &text, executable)?;
        written.push(path);
        Ok(())
    };
    if cfg!(any(target_os = "windows", target_os = "macos")) {
        put(at.windows(), windows_reg(&exe, &labels), false)?;
        put(at.macos(), macos_plist(&exe, &labels), false)?;
        return Ok(written);
    }
    for (a, l) in &labels {
        put(at.nautilus(l), nautilus_script(&exe, *a), true)?;
        put(at.nemo(*a), nemo_action(&exe, *a, l), false)?;
        put(at.caja(*a), caja_action(&exe, *a, l), false)?;
    }
    for path in at.dolphin() {
        // Dolphin runs only service menus marked executable (KIO since 5.85).
        put(path, dolphin_menu(&exe, &labels), true)?;
    }
    // The other systems' descriptions, for packagers: they cannot be tried here.
    put(at.windows(), windows_reg(&exe, &labels), false)?;
    put(at.macos(), macos_plist(&exe, &labels), false)?;
    Ok(written)
}

/// Deletes every file written by [`install`] (those carrying [`MARK`]); returns them.
pub fn remove(at: &Install) -> Result<Vec<PathBuf>, FileActionsError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    // Nautilus scripts are named by their label, in any language: look at each.
    if let Ok(entries) = std::fs::read_dir(at.data_home.join("nautilus/scripts")) {
        candidates.extend(entries.flatten().map(|e| e.path()));
    }
    for a in Action::ALL {
        candidates.push(at.nemo(a));
        candidates.push(at.caja(a));
    }
    candidates.extend(at.dolphin());
    candidates.push(at.windows());
    candidates.push(at.macos());
    let mut removed = Vec::new();
    for path in candidates {
        let ours = std::fs::symlink_metadata(&path).map(|m| m.is_file()).unwrap_or(false)
            && std::fs::read_to_string(&path).map(|t| t.contains(MARK)).unwrap_or(false);
        if ours {
            std::fs::remove_file(&path).map_err(io(&path))?;
            removed.push(path);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(key: &str) -> String {
        match key {
            "filemanager.copy_link" => "Copier un lien de partage".into(),
            "filemanager.open_online" => "Ouvrir en ligne".into(),
            _ => "Versions précédentes…".into(),
        }
    }

    #[test]
    fn the_request_is_read_from_the_command_line() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_args(args(&["passerelle-desktop", "--share", "/home/a/Passerelle/devis.pdf"])),
            Some(Request { action: Action::CopyLink, path: "/home/a/Passerelle/devis.pdf".into() })
        );
        assert_eq!(parse_args(args(&["x", "--recover", "/p"])).map(|r| r.action), Some(Action::Versions));
        assert_eq!(parse_args(args(&["x", "--open-online"])), None);
        assert_eq!(parse_args(args(&["x"])), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn actions_are_written_for_each_file_manager_and_removed_without_touching_the_members_files() {
        let dir = tempfile::tempdir().unwrap();
        let at = Install {
            data_home: dir.path().join("share"),
            app_data: dir.path().join("app"),
            exe: PathBuf::from("/opt/Pas serelle/passerelle-desktop"),
        };
        // A script of the member's, named like one of ours.
        let mine = at.data_home.join("nautilus/scripts/Ouvrir en ligne");
        std::fs::create_dir_all(mine.parent().unwrap()).unwrap();
        std::fs::write(&mine, "#!/bin/sh\necho mine\n").unwrap();

        let written = install(&at, labels).unwrap();
        let script = std::fs::read_to_string(at.data_home.join("nautilus/scripts/Copier un lien de partage")).unwrap();
        assert!(script.contains("exec '/opt/Pas serelle/passerelle-desktop' --share \"$(realpath -- \"$1\")\""), "{script}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(at.data_home.join("nautilus/scripts/Copier un lien de partage")).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "Nautilus runs only executable scripts");
        assert_eq!(std::fs::read_to_string(&mine).unwrap(), "#!/bin/sh\necho mine\n", "the member's script is kept");
        let nemo = std::fs::read_to_string(at.data_home.join("nemo/actions/passerelle-share.nemo_action")).unwrap();
        assert!(nemo.contains("Name=Copier un lien de partage") && nemo.contains("Exec=\"/opt/Pas serelle/passerelle-desktop\" --share %F"), "{nemo}");
        let caja = std::fs::read_to_string(at.data_home.join("file-manager/actions/passerelle-versions.desktop")).unwrap();
        assert!(caja.contains("Name=Versions précédentes…") && caja.contains("--recover %f"), "{caja}");
        let dolphin = std::fs::read_to_string(at.data_home.join("kio/servicemenus/passerelle.desktop")).unwrap();
        assert!(dolphin.contains("Actions=passerelle-share;passerelle-open-online;passerelle-versions;"), "{dolphin}");
        assert!(dolphin.contains("[Desktop Action passerelle-open-online]\nName=Ouvrir en ligne"), "{dolphin}");
        let reg = std::fs::read_to_string(at.app_data.join("file-actions/windows-explorer.reg")).unwrap();
        assert!(reg.contains(r#"@="\"/opt/Pas serelle/passerelle-desktop\" --share \"%1\"""#), "{reg}");
        assert!(written.len() >= 11, "{written:?}");

        // English labels replace the French ones.
        install(&at, |k| if k == "filemanager.copy_link" { "Copy a share link".into() } else { labels(k) }).unwrap();
        assert!(!at.data_home.join("nautilus/scripts/Copier un lien de partage").exists());
        assert!(at.data_home.join("nautilus/scripts/Copy a share link").exists());

        let removed = remove(&at).unwrap();
        assert!(!removed.contains(&mine) && mine.exists(), "only ours go");
        assert!(!at.data_home.join("nemo/actions/passerelle-share.nemo_action").exists());
        assert!(!at.data_home.join("kio/servicemenus/passerelle.desktop").exists());
        assert!(!at.app_data.join("file-actions/windows-explorer.reg").exists());
    }

    /// The Nautilus script hands the app the full path of the selected file.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_nautilus_script_runs_the_app_with_the_full_path() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("args.txt");
        let fake = dir.path().join("fake app");
        std::fs::write(&fake, format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n", record.display())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let at = Install { data_home: dir.path().join("share"), app_data: dir.path().join("app"), exe: fake };
        install(&at, labels).unwrap();
        std::fs::create_dir_all(dir.path().join("Passerelle")).unwrap();
        std::fs::write(dir.path().join("Passerelle/devis 1.pdf"), b"x").unwrap();
        let status = std::process::Command::new(at.data_home.join("nautilus/scripts/Copier un lien de partage"))
            .arg("devis 1.pdf")
            .current_dir(dir.path().join("Passerelle"))
            .status()
            .unwrap();
        assert!(status.success());
        let full = std::fs::canonicalize(dir.path().join("Passerelle/devis 1.pdf")).unwrap();
        assert_eq!(std::fs::read_to_string(&record).unwrap(), format!("--share\n{}\n", full.display()));
    }
}
