//! Sharing from the desktop: "Partager un fichier…" in the tray (a native file chooser in the
//! folder), and the file manager's "Copier un lien de partage" and "Ouvrir en ligne", which
//! reach the running app as `passerelle-desktop --share PATH` / `--open-online PATH` (single
//! instance). The link goes to the clipboard and a notification says "Lien copié" with the
//! file's name. The core does the work (`passerelle::drive::nextcloud::share`).
use std::{path::PathBuf, time::Duration};

use passerelle::{
    drive::{
        self,
        nextcloud::{
            share::{self, ShareError, ShareOptions, SharedLink},
            Nextcloud,
        },
    },
    file_actions::{self, Action, Request},
};
use tauri::{AppHandle, Manager, Wry};
use tauri_plugin_clipboard_manager::ClipboardExt;

use crate::{
    error::ShellError,
    notify::{self, NoticeKind},
    shell::{opener, Shell},
};

/// How long a request from the file manager waits for the app to be connected to the server
/// (a first launch by the action itself, the login being restored).
const CONNECT_WAIT: Duration = Duration::from_secs(60);
/// How long a share waits for the sync to upload a file that is not on the server yet.
const UPLOAD_WAIT: Duration = Duration::from_secs(120);

/// What sharing needs from the running sync: the connection and where the folder maps.
#[derive(Clone, Debug)]
pub struct FilesAccess {
    pub nc: Nextcloud,
    pub root: PathBuf,
    /// The server folder the sync mirrors ("" for the whole space).
    pub sub: String,
}

impl From<ShareError> for ShellError {
    fn from(e: ShareError) -> ShellError {
        ShellError::logged(e.code(), &e)
    }
}

impl Shell {
    /// The connection, waiting for it a while (the app may be starting).
    async fn files_access(&self) -> Result<FilesAccess, ShellError> {
        let mut rx = self.files.subscribe();
        let ready = tokio::time::timeout(CONNECT_WAIT, rx.wait_for(Option::is_some)).await;
        match ready {
            Ok(Ok(access)) => access.clone().ok_or_else(|| ShellError::new("not_configured")),
            _ if self.session().is_none() => Err(ShellError::new("not_logged_in")),
            _ => Err(ShellError::new("not_configured")),
        }
    }

    /// A file-manager request (`--share`, `--open-online`), answered in the background; a
    /// failure is told in a notification.
    pub fn file_request(&self, app: &AppHandle<Wry>, request: Request) {
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            let shell = app.state::<Shell>();
            let done = match request.action {
                Action::CopyLink => shell.share_file(&app, &request.path).await.map(drop),
                Action::OpenOnline => shell.open_online(&app, &request.path).await,
                // "Versions précédentes…" belongs to the recover window (`--recover PATH`,
                // handled where that window is opened).
                Action::Versions => Ok(()),
            };
            if let Err(e) = done {
                shell.act_failed(&app, &e);
            }
        });
    }

    /// Shares `path`: the link in the clipboard, "Lien copié" with the file's name.
    pub async fn share_file(&self, app: &AppHandle<Wry>, path: &std::path::Path) -> Result<SharedLink, ShellError> {
        let access = self.files_access().await?;
        let server = share::server_path(&access.root, &access.sub, path)?;
        let options = ShareOptions::default();
        let link = match share::share(&access.nc, &server, &options).await {
            Err(ShareError::NotOnServer(_)) => self.share_after_upload(&access.nc, &server, &options).await?,
            other => other?,
        };
        let t = self.catalog();
        let text = match &link.password {
            Some(p) => format!("{}\n{}", link.url, t.f("share.password", &[("password", p)])),
            None => link.url.clone(),
        };
        app.clipboard().write_text(text).map_err(|e| ShellError::logged("clipboard", &e))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let body = if link.password.is_some() { "share.copied_with_password" } else { "share.copied_body" };
        notify::send(app, NoticeKind::LinkCopied, &t.t("share.copied"), &t.f(body, &[("name", &name)]));
        tracing::info!(created = link.created, requests = link.requests, uploaded = link.uploaded, "link copied");
        Ok(link)
    }

    /// The file is not on the server yet: asks the sync to run now and tries again as each run
    /// ends (or every 2 s, as a run that finds nothing new publishes nothing), until it is
    /// there or the deadline passes.
    async fn share_after_upload(&self, nc: &Nextcloud, server: &str, options: &ShareOptions) -> Result<SharedLink, ShellError> {
        let mut status = self.drive_status().ok_or_else(|| ShellError::new("share_not_on_server"))?;
        status.borrow_and_update();
        self.drive_event(drive::Event::SyncNow);
        let deadline = tokio::time::Instant::now() + UPLOAD_WAIT;
        loop {
            let _ = tokio::time::timeout(Duration::from_secs(2), status.changed()).await;
            let syncing = matches!(*status.borrow(), drive::DriveStatus::Syncing { .. });
            if syncing {
                continue;
            }
            match share::share(nc, server, options).await {
                Err(ShareError::NotOnServer(_)) if tokio::time::Instant::now() < deadline => {}
                Ok(mut link) => {
                    link.uploaded = true;
                    return Ok(link);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The file's page on the server, through the opener (only this server's web pages).
    pub async fn open_online(&self, app: &AppHandle<Wry>, path: &std::path::Path) -> Result<(), ShellError> {
        let access = self.files_access().await?;
        let server = share::server_path(&access.root, &access.sub, path)?;
        let url = share::online_url(&access.nc, &server).await?;
        opener(app).open_on(url.as_str(), access.nc.base()).map_err(|e| ShellError::logged(e.code(), &e))
    }

    /// "Partager un fichier…": a native file chooser in the folder, then [`Shell::share_file`].
    pub fn share_from_tray(&self, app: &AppHandle<Wry>) -> Result<(), ShellError> {
        let folder = self.folder().ok_or_else(|| ShellError::new("no_folder"))?;
        let title = self.catalog().t("share.choose_file");
        let chosen = choose_file(app, folder, title);
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            let Ok(Some(path)) = chosen.await else {
                tracing::info!("no file chosen");
                return;
            };
            let shell = app.state::<Shell>();
            if let Err(e) = shell.share_file(&app, &path).await {
                shell.act_failed(&app, &e);
            }
        });
        Ok(())
    }

    /// Writes the file managers' actions in the member's language (at each connection, so a
    /// language change or a moved app is followed).
    pub fn install_file_actions(&self) {
        let Some(at) = self.file_actions_place() else { return };
        let t = self.catalog();
        match file_actions::install(&at, |key| t.t(key)) {
            Ok(written) => tracing::info!(files = written.len(), "file manager actions installed"),
            Err(e) => tracing::warn!(code = e.code(), "the file manager actions could not be installed: {e}"),
        }
    }

    /// Removes them (logout).
    pub fn remove_file_actions(&self) {
        let Some(at) = self.file_actions_place() else { return };
        match file_actions::remove(&at) {
            Ok(removed) => tracing::info!(files = removed.len(), "file manager actions removed"),
            Err(e) => tracing::warn!(code = e.code(), "the file manager actions could not be removed: {e}"),
        }
    }

    fn file_actions_place(&self) -> Option<file_actions::Install> {
        let exe = std::env::current_exe().ok()?;
        file_actions::Install::for_this_user(&self.dirs.data, &exe)
    }
}

/// The chosen file, or `None` when the member cancelled. `PASSERELLE_TEST_CHOOSER` names a file
/// whose content is the answer (the end-to-end tests' stand-in for the dialog, like
/// `PASSERELLE_BROWSER` for the browser); what it names is checked like any choice.
fn choose_file(app: &AppHandle<Wry>, folder: PathBuf, title: String) -> tokio::sync::oneshot::Receiver<Option<PathBuf>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    if let Some(answer) = std::env::var_os("PASSERELLE_TEST_CHOOSER") {
        let chosen = std::fs::read_to_string(answer).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let _ = tx.send(chosen.map(PathBuf::from));
        return rx;
    }
    native_chooser(app, folder, title, tx);
    rx
}

#[cfg(target_os = "linux")]
fn native_chooser(app: &AppHandle<Wry>, folder: PathBuf, title: String, tx: tokio::sync::oneshot::Sender<Option<PathBuf>>) {
    // GTK lives on the main thread. FileChooserNative goes through the desktop portal when
    // there is one (the desktop's own dialog), else GTK's.
    let ran = app.run_on_main_thread(move || {
        use gtk::prelude::*;
        let dialog = gtk::FileChooserNative::new(Some(&title), None::<&gtk::Window>, gtk::FileChooserAction::Open, None, None);
        let _ = dialog.set_current_folder(&folder);
        dialog.set_modal(true);
        let tx = std::cell::RefCell::new(Some(tx));
        // The closure keeps the dialog alive until it answers.
        let keep = dialog.clone();
        dialog.connect_response(move |d, response| {
            let chosen = if response == gtk::ResponseType::Accept { d.filename() } else { None };
            if let Some(tx) = tx.borrow_mut().take() {
                let _ = tx.send(chosen);
            }
            keep.hide();
        });
        dialog.show();
    });
    if let Err(e) = ran {
        tracing::warn!(error = %e, "the file chooser could not open");
    }
}

#[cfg(not(target_os = "linux"))]
fn native_chooser(app: &AppHandle<Wry>, folder: PathBuf, _title: String, tx: tokio::sync::oneshot::Sender<Option<PathBuf>>) {
    // Not built here: the folder opens instead, where the file manager's "Copy a share link"
    // does the rest.
    use tauri_plugin_opener::OpenerExt;
    let _ = app.opener().open_path(folder.display().to_string(), None::<&str>);
    let _ = tx.send(None);
}

/// The file-manager request in a command line (`--share PATH`, `--open-online PATH`),
/// relative paths read from `cwd`.
pub fn request_in(argv: &[String], cwd: &std::path::Path) -> Option<Request> {
    let mut request = file_actions::parse_args(argv.iter().cloned())?;
    if request.action == Action::Versions {
        return None;
    }
    request.path = cwd.join(&request.path);
    Some(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_manager_request_names_a_full_path_and_leaves_recover_to_its_window() {
        let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cwd = std::path::Path::new("/home/m/Passerelle");
        let r = request_in(&argv(&["passerelle-desktop", "--share", "devis 1.pdf"]), cwd).unwrap();
        assert_eq!((r.action, r.path), (Action::CopyLink, PathBuf::from("/home/m/Passerelle/devis 1.pdf")));
        let r = request_in(&argv(&["passerelle-desktop", "--open-online", "/elsewhere/x.txt"]), cwd).unwrap();
        assert_eq!((r.action, r.path), (Action::OpenOnline, PathBuf::from("/elsewhere/x.txt")));
        assert_eq!(request_in(&argv(&["passerelle-desktop", "--recover", "x.txt"]), cwd), None);
        assert_eq!(request_in(&argv(&["passerelle-desktop"]), cwd), None);
    }
}
