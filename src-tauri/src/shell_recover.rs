//! The shell's side of issue 15's "Recover what was lost" and "What changed": the recover
//! window's calls, "Récemment" and the Nextcloud notifications in the tray. Everything here
//! calls the core (`passerelle::drive::nextcloud`); words come from the catalog.
use std::path::{Path, PathBuf};

use passerelle::drive::{
    self,
    nextcloud::{self, feed, place},
};
use serde::Serialize;
use tauri::{AppHandle, Manager, Wry};
use tauri_plugin_opener::OpenerExt;

use super::{lock, opener, Shell};
use crate::{
    error::ShellError,
    notify,
    tray::RecentLine,
    windows::{self, WindowKind},
};

/// What the recover window opens on.
#[derive(Debug, Clone, Serialize)]
pub struct RecoverState {
    /// The file whose versions to show first (a path from the synced folder's root), if any.
    pub target: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrashView {
    pub id: String,
    pub name: String,
    /// The original folder ("" for the folder's root).
    pub folder: String,
    pub deleted: String,
    pub size: String,
    pub by: Option<String>,
    pub is_dir: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionView {
    pub id: String,
    pub date: String,
    pub size: String,
    pub author: Option<String>,
}

/// "28/11/2026 14:32" in the member's time zone.
fn date(unix: i64) -> String {
    let tz = passerelle::calendar::local_timezone();
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.with_timezone(&tz).format("%d/%m/%Y %H:%M").to_string())
        .unwrap_or_default()
}

/// "14:32" today, "28/11 14:32" before.
fn short_time(unix: i64) -> String {
    let tz = passerelle::calendar::local_timezone();
    let Some(at) = chrono::DateTime::from_timestamp(unix, 0).map(|t| t.with_timezone(&tz)) else { return String::new() };
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    if at.date_naive() == today { at.format("%H:%M").to_string() } else { at.format("%d/%m %H:%M").to_string() }
}

fn kind_of(activity: &str) -> &'static str {
    match activity {
        "file_created" => "created",
        "file_changed" => "changed",
        "file_deleted" => "deleted",
        "file_restored" => "restored",
        "shared_with_by" | "shared_user_self" | "shared_group_self" | "shared_link_self" => "shared",
        _ => "other",
    }
}

impl Shell {
    /// The Nextcloud connection: the one the folder's sync made, else a new one (the member may
    /// have no folder yet). `not_configured` when the organisation has no Nextcloud.
    pub async fn nextcloud(&self, app: &AppHandle<Wry>) -> Result<nextcloud::Nextcloud, ShellError> {
        if let Some(nc) = lock(&self.nc).clone() {
            return Ok(nc);
        }
        let session = self.session().ok_or_else(|| ShellError::new("not_logged_in"))?;
        let url = session.profile().nextcloud.clone().ok_or_else(|| ShellError::new("not_configured"))?;
        let options = nextcloud::ConnectOptions { opener: opener(app), ..nextcloud::ConnectOptions::default() };
        let nc = nextcloud::connect(&self.http, &url, Some(&session), &self.store, &options).await?;
        *lock(&self.nc) = Some(nc.clone());
        Ok(nc)
    }

    /// The synced folder and the server folder it mirrors (the desktop syncs the whole space).
    fn place(&self) -> Result<(PathBuf, &'static str), ShellError> {
        Ok((self.folder().ok_or_else(|| ShellError::new("no_folder"))?, ""))
    }

    /// Opens "Récupérer un fichier…", on the versions of `local` when given (the file
    /// manager's "Versions précédentes…", `passerelle-desktop --recover PATH`).
    pub fn open_recover(&self, app: &AppHandle<Wry>, local: Option<&Path>) -> Result<(), ShellError> {
        let target = match local {
            Some(path) => {
                let (folder, root) = self.place()?;
                Some(place::server_path(&folder, root, path)?)
            }
            None => None,
        };
        let t = self.catalog();
        let reload = target.is_some();
        *lock(&self.recover_target) = target;
        if let (true, Some(w)) = (reload, app.get_webview_window("recover")) {
            // The window reads its target when it loads: an open one loads again.
            w.eval("location.reload()")?;
        }
        windows::open(app, WindowKind::Recover, &t.t("recover.title"))?;
        Ok(())
    }

    pub fn recover_state(&self) -> RecoverState {
        RecoverState { target: lock(&self.recover_target).clone() }
    }

    pub async fn recover_trash(&self, app: &AppHandle<Wry>) -> Result<Vec<TrashView>, ShellError> {
        let nc = self.nextcloud(app).await?;
        let t = self.catalog();
        Ok(nextcloud::trash(&nc)
            .await?
            .into_iter()
            .map(|i| TrashView {
                folder: i.original_folder().to_string(),
                deleted: date(i.deleted_at),
                size: t.size(i.size),
                by: i.deleted_by.clone(),
                is_dir: i.is_dir,
                id: i.id,
                name: i.name,
            })
            .collect())
    }

    /// Restores a trash item and syncs at once, so the file is back in the folder.
    pub async fn recover_restore(&self, app: &AppHandle<Wry>, id: &str) -> Result<String, ShellError> {
        let nc = self.nextcloud(app).await?;
        let item = nextcloud::restore(&nc, id).await?;
        tracing::info!(path = %item.original_location, "restored from the trash; syncing now");
        self.after_restore();
        Ok(item.name)
    }

    pub async fn recover_versions(&self, app: &AppHandle<Wry>, path: &str) -> Result<Vec<VersionView>, ShellError> {
        let nc = self.nextcloud(app).await?;
        let t = self.catalog();
        Ok(nextcloud::versions(&nc, path)
            .await?
            .into_iter()
            .map(|v| VersionView {
                date: date(v.mtime),
                size: t.size(v.size),
                // The server names the author by user id; the member's own versions read "you".
                author: v.author.map(|a| if a == nc.user() { t.t("recover.you") } else { a }),
                id: v.id,
            })
            .collect())
    }

    pub async fn recover_restore_version(&self, app: &AppHandle<Wry>, path: &str, id: &str) -> Result<(), ShellError> {
        let nc = self.nextcloud(app).await?;
        nextcloud::restore_version(&nc, path, id).await?;
        tracing::info!(%path, version = %id, "version restored");
        self.after_restore();
        Ok(())
    }

    /// A version written read-only to a folder of our own in the temporary folder, opened with
    /// the system's application for it.
    pub async fn recover_open_version(&self, app: &AppHandle<Wry>, path: &str, id: &str) -> Result<(), ShellError> {
        let nc = self.nextcloud(app).await?;
        let dir = std::env::temp_dir().join("passerelle-versions");
        let file = nextcloud::fetch_version(&nc, path, id, &dir).await?;
        app.opener().open_path(file.display().to_string(), None::<&str>).map_err(|e| ShellError::logged("browser", &e))
    }

    /// Files of the synced folder whose name contains `query` (any case), as server paths:
    /// the versions tab's search. Hidden files and links are skipped; at most 50.
    pub fn recover_find(&self, query: &str) -> Result<Vec<String>, ShellError> {
        let (folder, root) = self.place()?;
        let wanted = query.trim().to_lowercase();
        let mut found = Vec::new();
        if wanted.is_empty() {
            return Ok(found);
        }
        let mut stack = vec![(folder.clone(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().to_string();
                let Ok(kind) = entry.file_type() else { continue };
                if name.starts_with('.') || kind.is_symlink() {
                    continue;
                }
                if kind.is_dir() && depth < 32 {
                    stack.push((entry.path(), depth + 1));
                } else if kind.is_file() && name.to_lowercase().contains(&wanted) {
                    if let Ok(p) = place::server_path(&folder, root, &entry.path()) {
                        found.push(p);
                    }
                }
            }
            if found.len() >= 50 {
                break;
            }
        }
        found.sort();
        found.truncate(50);
        Ok(found)
    }

    fn after_restore(&self) {
        self.drive_event(drive::Event::SyncNow);
        self.feed_event(feed::FeedEvent::RefreshRecent);
    }

    pub fn feed_event(&self, event: feed::FeedEvent) {
        if let Some(feed) = lock(&self.feed).as_ref() {
            feed.send(event);
        }
    }

    /// "Récemment" and the notifications, fed from the core's loop; new notifications become
    /// OS notifications (unless the member turned them off).
    pub(super) fn start_feed(&self, app: &AppHandle<Wry>, nc: nextcloud::Nextcloud) {
        // Notifications newer than what this account was last told are announced at start
        // (a share that came while the computer was off); see `feed::to_announce`.
        let marks = feed::Marks::new(&self.dirs);
        let account = feed::Marks::account(&nc);
        let mut kept = marks.get(&account);
        let handle = feed::Feed::start(nc, feed::FeedConfig { announced: kept, ..Default::default() });
        let mut state = handle.state();
        let mut arrivals = handle.arrivals();
        *lock(&self.feed) = Some(handle);
        self.model.send_modify(|m| m.can_recover = true);
        let app_state = app.clone();
        let state_task = tauri::async_runtime::spawn(async move {
            loop {
                let current = state.borrow_and_update().clone();
                let shell = app_state.state::<Shell>();
                let recent: Vec<RecentLine> = current
                    .recent
                    .iter()
                    .map(|c| RecentLine {
                        name: c.name().to_string(),
                        kind: kind_of(&c.kind),
                        by: (!c.by_me).then(|| c.actor_name.clone()),
                        time: short_time(c.at),
                    })
                    .collect();
                if current.announced != kept {
                    if let Some(mark) = current.announced {
                        if let Err(e) = marks.set(&account, mark) {
                            tracing::warn!(error = %e, "the notifications mark could not be saved");
                        }
                    }
                    kept = current.announced;
                }
                let notices: Vec<String> = current.notifications.iter().map(|n| n.subject.clone()).collect();
                *lock(&shell.feed_shown) = current;
                shell.model.send_if_modified(|m| {
                    let changed = m.recent != recent || m.notices != notices;
                    m.recent = recent;
                    m.notices = notices;
                    changed
                });
                if state.changed().await.is_err() {
                    break;
                }
            }
        });
        let app = app.clone();
        let arrivals_task = tauri::async_runtime::spawn(async move {
            loop {
                match arrivals.recv().await {
                    Ok(n) => {
                        let shell = app.state::<Shell>();
                        if shell.settings().notifications == Some(false) {
                            continue;
                        }
                        let t = shell.catalog();
                        let title = if n.app == "files_sharing" { t.t("notify.nc.share.title") } else { t.t("notify.nc.title") };
                        // The body is the server's own sentence (in the member's Nextcloud language).
                        notify::send_nextcloud(&app, &title, &n.subject, n.id);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => tracing::warn!(missed = n, "notifications dropped"),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        lock(&self.tasks).extend([state_task, arrivals_task]);
    }

    /// Opens a file of the synced folder, or (`or_folder`) its folder when the file is not
    /// there (deleted, not synced yet); `deleted`: the folder only. Only inside the folder:
    /// `place::server_path` refuses `..` and links out. False when nothing was opened.
    fn open_local(&self, app: &AppHandle<Wry>, server: &str, deleted: bool, or_folder: bool) -> Result<bool, ShellError> {
        let (folder, root) = self.place()?;
        let Some(path) = place::local_path(&folder, root, server) else { return Ok(false) };
        let parent = if or_folder || deleted { path.parent().map(Path::to_path_buf) } else { None };
        let candidates = [Some(path.clone()), parent];
        for candidate in candidates.into_iter().flatten().skip(usize::from(deleted)) {
            if candidate.exists() && place::server_path(&folder, root, &candidate).is_ok() {
                app.opener()
                    .open_path(candidate.display().to_string(), None::<&str>)
                    .map_err(|e| ShellError::logged("browser", &e))?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A line of "Récemment": the file, or its folder.
    pub(super) fn open_recent(&self, app: &AppHandle<Wry>, i: usize) -> Result<(), ShellError> {
        let Some(change) = lock(&self.feed_shown).recent.get(i).cloned() else { return Ok(()) };
        if self.open_local(app, &change.path, change.kind == "file_deleted", true)? {
            return Ok(());
        }
        // Not in the folder: its folder on the server's web page, on the server's own origin.
        let nc = lock(&self.nc).clone().ok_or_else(|| ShellError::new("not_logged_in"))?;
        let dir = drive::names::parent(&change.path);
        let mut url = nc.base().join("index.php/apps/files/").map_err(|e| ShellError::logged("url_refused", &e))?;
        url.query_pairs_mut().append_pair("dir", &format!("/{dir}"));
        opener(app).open_on(url.as_str(), nc.base()).map_err(super::open_error)
    }

    /// An unread notification: its file when it names one of the folder, else the page the
    /// server names (on its own origin only); then it is marked read.
    pub(super) fn open_notice(&self, app: &AppHandle<Wry>, i: usize) -> Result<(), ShellError> {
        let Some(notice) = lock(&self.feed_shown).notifications.get(i).cloned() else { return Ok(()) };
        self.open_this_notice(app, notice)
    }

    /// A click on the OS notification of a Nextcloud notification: the same as its tray line.
    /// One already read (from the tray, or on the server) is no longer listed: nothing to do.
    pub fn open_notice_id(&self, app: &AppHandle<Wry>, id: i64) -> Result<(), ShellError> {
        let Some(notice) = lock(&self.feed_shown).notifications.iter().find(|n| n.id == id).cloned() else {
            tracing::debug!(id, "a notification clicked that is no longer unread");
            return Ok(());
        };
        self.open_this_notice(app, notice)
    }

    fn open_this_notice(&self, app: &AppHandle<Wry>, notice: feed::Notice) -> Result<(), ShellError> {
        let opened = match &notice.file {
            Some(file) => self.open_local(app, file, false, false)?,
            None => false,
        };
        if !opened {
            if let (Some(link), Some(nc)) = (&notice.link, lock(&self.nc).clone()) {
                opener(app).open_on(link, nc.base()).map_err(super::open_error)?;
            }
        }
        self.feed_event(feed::FeedEvent::MarkRead(notice.id));
        Ok(())
    }
}
