//! The shell's state and what each tray action does. The tray and the windows only call into
//! here; here only calls into the core (`passerelle::*`) and the Tauri plugins.
use std::{
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard, RwLock},
};

#[path = "shell_share.rs"]
mod share;
pub use share::{request_in, FilesAccess};

use passerelle::{
    auth::{self, LoginCancel, LoginOptions, PendingLogin, SecretStore, Session},
    calendar,
    browser::{OpenError, Opener},
    chat::{Chat, ChatEventKind, ChatHandle, ChatState},
    config::{self, Profile, Settings, Source},
    drive::{
        self,
        nextcloud::{
            self,
            feed::{FeedEvent, FeedHandle},
            remote::NextcloudRemote,
            ConnectOptions,
        },
        run::FolderPaths,
        Drive, DriveConfig, DriveHandle, DriveStatus, Remote, WebDav,
    },
    paths::Dirs,
    visio::{self, JoinOptions},
};
use tauri::{tray::TrayIcon, AppHandle, Manager, Wry};
use tauri_plugin_clipboard_manager::ClipboardExt;
use tauri_plugin_opener::OpenerExt;
use tauri::async_runtime::JoinHandle;
use tokio::sync::watch;

use crate::{
    error::ShellError,
    i18n::{Catalog, Lang},
    icon::{self, Theme},
    notify::{self, NoticeKind},
    tray::{self, LockedFile, MenuAction, NextMeeting, Quota, SyncLine, TrayModel},
    windows::{self, DialogKind, WindowKind},
};

#[path = "shell_recover.rs"]
mod recover;
pub use recover::{RecoverState, TrashView, VersionView};

/// Managed by Tauri; one per app.
pub struct Shell {
    pub dirs: Dirs,
    pub http: reqwest::Client,
    pub store: SecretStore,
    settings: Mutex<Settings>,
    session: Mutex<Option<Session>>,
    /// The wizard's login while it waits for the browser.
    login: Mutex<Option<LoginWait>>,
    /// The sync asked the member to log in again (the held session is dead): the wizard runs
    /// a real login instead of skipping to the folder. Cleared by a login.
    relogin: std::sync::atomic::AtomicBool,
    /// Dropping it stops the chat task.
    chat: Mutex<Option<ChatHandle>>,
    /// The folder's sync task; dropping it stops the task.
    drive: Mutex<Option<DriveHandle>>,
    /// Watchers feeding the model from the core's streams; aborted on logout.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    model: watch::Sender<TrayModel>,
    /// The model the current menu was built from: menu indices refer to it.
    shown: Mutex<TrayModel>,
    catalog: RwLock<Catalog>,
    /// The ad-hoc room: fresh for each "start a visio", except the room of an invite just
    /// copied (see `visio::AdHocRoom`).
    room: Mutex<visio::AdHocRoom>,
    /// What the sync's dialogs show: the file refused for lack of space, the last conflicts.
    details: Mutex<DialogDetails>,
    /// The folder's Nextcloud connection and where the folder maps, once the sync has
    /// connected (sharing waits on it); `None` logged out or on plain WebDAV.
    files: watch::Sender<Option<FilesAccess>>,
    /// Files the "not enough space" dialog was already opened for: once each.
    space_asked: Mutex<std::collections::HashSet<String>>,
    /// The Nextcloud connection the folder's sync made (the recover window and the feed use it).
    nc: Mutex<Option<nextcloud::Nextcloud>>,
    /// "Récemment" and the notifications; dropping it stops the loop.
    feed: Mutex<Option<FeedHandle>>,
    /// What the feed last showed: the tray's lines refer to these by index.
    feed_shown: Mutex<passerelle::drive::nextcloud::feed::FeedState>,
    /// The file the recover window opens on (`--recover PATH`, "Versions précédentes…").
    recover_target: Mutex<Option<String>>,
    theme: Theme,
}

/// What the wizard's folder step shows (see [`Shell::folder_choice`]).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FolderChoice {
    /// The local folder proposed: this account's, never another's.
    pub path: PathBuf,
    /// The server folder ("" for the whole space).
    pub server_folder: String,
    /// The folders at the top of the space (Nextcloud).
    pub server_folders: Vec<String>,
    /// The room the server folder's files will take here, worded ("12 Mo").
    pub size: Option<String>,
    /// The file server could not be asked (the folder can still be chosen).
    pub problem: Option<ShellError>,
    /// Why the usual folder is not proposed (another account's), worded.
    pub note: Option<String>,
}

/// A server folder as the member may give it: `Team/Projects`, no `..`.
fn clean_server_folder(given: &str) -> Result<String, ShellError> {
    let path = given.trim().trim_matches('/').to_string();
    if path.split('/').any(|seg| seg == ".." || seg == "." || (seg.is_empty() && !path.is_empty())) {
        return Err(ShellError::new("server_folder_refused"));
    }
    Ok(path)
}

/// The facts a sync dialog shows (`dialog_details`): names and sizes, never an error text.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DialogDetails {
    pub name: String,
    pub size: String,
    pub conflicts: Vec<String>,
}

/// A login started by the wizard (`begin_login`) and not finished yet.
struct LoginWait {
    /// The login page's address: shown, copied or opened again when no browser opened.
    url: String,
    cancel: LoginCancel,
    /// Taken by `finish_login`, which waits on it.
    pending: Option<PendingLogin>,
    source: Source,
}

/// What the wizard's "Se connecter" leads to.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum LoginStart {
    /// The organisation's published settings name servers outside the typed domain: the member
    /// accepts them (the wizard asks again with them) or refuses.
    Hosts { domain: String, servers: Vec<config::ForeignHost> },
    /// Waiting for the browser; `opened` is false when no browser could be opened, and the
    /// member then copies `url` into one.
    Waiting { url: String, opened: bool },
}

/// Locks a mutex even if a panicking thread poisoned it: the data are plain values.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shell {
    pub fn new(dirs: Dirs) -> Shell {
        let settings = Settings::load(&dirs).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the settings could not be read; starting from defaults");
            Settings::default()
        });
        let store = SecretStore::open(&dirs);
        let lang = Lang::choose(settings.language.as_deref());
        lang.make_current();
        let catalog = Catalog::load(lang);
        Shell {
            http: passerelle::http::client(),
            store,
            settings: Mutex::new(settings),
            session: Mutex::new(None),
            login: Mutex::new(None),
            relogin: Default::default(),
            chat: Mutex::new(None),
            drive: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            model: watch::channel(TrayModel::default()).0,
            shown: Mutex::new(TrayModel::default()),
            catalog: RwLock::new(catalog),
            room: Mutex::new(visio::AdHocRoom::default()),
            details: Mutex::new(DialogDetails::default()),
            files: watch::channel(None).0,
            space_asked: Mutex::new(Default::default()),
            nc: Mutex::new(None),
            feed: Mutex::new(None),
            feed_shown: Mutex::new(Default::default()),
            recover_target: Mutex::new(None),
            theme: Theme::detect(),
            dirs,
        }
    }

    pub fn catalog(&self) -> Catalog {
        self.catalog.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    pub fn update_settings(&self, change: impl FnOnce(&mut Settings)) -> Result<Settings, ShellError> {
        let mut settings = lock(&self.settings);
        change(&mut settings);
        settings.save(&self.dirs)?;
        Ok(settings.clone())
    }

    pub fn session(&self) -> Option<Session> {
        lock(&self.session).clone()
    }

    pub fn model(&self) -> watch::Receiver<TrayModel> {
        self.model.subscribe()
    }

    pub fn profile(&self) -> Option<(Profile, Source)> {
        self.settings().profile().ok()
    }

    /// Whether the folder in the settings was confirmed by this login.
    pub fn folder_confirmed(&self, session: &Session) -> bool {
        let settings = self.settings();
        settings.folder.is_some() && settings.folder_account.as_deref() == Some(session.identity().subject.as_str())
    }

    /// The folder the wizard may show at once, before the server is asked: the one this login
    /// confirmed, or the default when no account holds it yet; else `None`, and the folder
    /// step waits for [`Shell::folder_choice`] (another account's folder never shows).
    pub fn quick_folder(&self, session: &Session) -> Option<PathBuf> {
        let settings = self.settings();
        let profile = session.profile();
        if self.folder_confirmed(session) {
            return Some(settings.folder(profile));
        }
        let default = Settings { folder: None, ..settings }.folder(profile);
        let record = passerelle::folder::owner_record(&self.dirs.data, &default);
        matches!(passerelle::folder::owner_of(&record), Ok(None)).then_some(default)
    }

    /// The folder in use, or the one the wizard proposes.
    pub fn folder(&self) -> Option<PathBuf> {
        let settings = self.settings();
        let (profile, _) = settings.profile().ok()?;
        Some(settings.folder(&profile))
    }

    pub fn set_language(&self, app: &AppHandle<Wry>, tag: Option<String>) -> Result<(), ShellError> {
        let settings = self.update_settings(|s| s.language = tag)?;
        let lang = Lang::choose(settings.language.as_deref());
        lang.make_current();
        *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = Catalog::load(lang);
        // Same model, new words: redraw the tray, and the file manager's actions.
        self.draw_tray(app, &self.model.borrow().clone(), true);
        if self.files.borrow().is_some() {
            self.install_file_actions();
        }
        Ok(())
    }

    /// Picks up the session of an earlier run, without network.
    pub fn restore(&self, app: &AppHandle<Wry>) {
        let Some((profile, _)) = self.profile() else {
            self.model.send_modify(|m| *m = TrayModel::default());
            return;
        };
        match Session::restore(self.http.clone(), profile, self.store.clone()) {
            Ok(session) => {
                let settings = self.settings();
                if settings.folder.is_some() && settings.folder_account.is_none() {
                    // Chosen before folders were bound to a login: the login still saved is the
                    // one that chose it (another login goes through the wizard's folder step).
                    let subject = session.identity().subject.clone();
                    if let Err(e) = self.update_settings(|s| s.folder_account = Some(subject)) {
                        tracing::warn!(code = %e.code, "the folder's account could not be saved");
                    }
                }
                self.start_session(app, session)
            }
            Err(e) => {
                tracing::info!(code = e.code(), "no saved session");
                self.model.send_modify(|m| *m = TrayModel::default());
            }
        }
    }

    /// The session the wizard may go on with: none when the held one is dead (the sync asked
    /// for a new login, or the login server refused its refresh), so "Se reconnecter" runs a
    /// real login instead of skipping to the folder with the dead session.
    pub fn live_session(&self) -> Option<Session> {
        if self.relogin.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        self.session().filter(|s| !s.has_ended())
    }

    /// True when a session is held but a new login is needed.
    pub fn needs_relogin(&self) -> bool {
        self.session().is_some() && self.live_session().is_none()
    }

    /// The wizard's "Se connecter": resolves the organisation (bundled, else the typed domain,
    /// with the hosts the member accepted), starts the login and opens the browser. Servers
    /// outside the typed domain are not an error: the wizard shows them and asks.
    pub async fn begin_login(&self, app: &AppHandle<Wry>, domain: Option<String>, accepted_hosts: Vec<String>) -> Result<LoginStart, ShellError> {
        self.cancel_login();
        let settings = self.settings();
        let domain = domain.as_deref().map(str::trim).filter(|d| !d.is_empty());
        let (profile, source) = match config::resolve(&self.http, &settings, domain, None, &accepted_hosts).await {
            Err(config::ConfigError::ForeignHosts { domain, servers, .. }) => {
                tracing::info!(hosts = ?servers, "the organisation's settings name servers outside its domain: asking the member");
                return Ok(LoginStart::Hosts { domain, servers });
            }
            other => other?,
        };
        let cancel = LoginCancel::default();
        let options = LoginOptions { language: Some(self.catalog().lang), cancel: cancel.clone(), ..LoginOptions::default() };
        let pending = auth::begin(&self.http, &profile, &self.store, &options).await?;
        let url = pending.url().to_string();
        let opened = self.open_login_page(app, &url);
        *lock(&self.login) = Some(LoginWait { url: url.clone(), cancel, pending: Some(pending), source });
        Ok(LoginStart::Waiting { url, opened })
    }

    /// Opens the login page; false (logged) when no browser could be opened.
    fn open_login_page(&self, app: &AppHandle<Wry>, url: &str) -> bool {
        match opener(app).open(url) {
            Ok(()) => {
                tracing::info!("the browser was opened for the login");
                true
            }
            Err(e) => {
                tracing::warn!(code = e.code(), "no browser could be opened for the login: {e}");
                false
            }
        }
    }

    /// Waits for the browser of the login `begin_login` started, then keeps the session and
    /// the organisation.
    pub async fn finish_login(&self, app: &AppHandle<Wry>) -> Result<Session, ShellError> {
        let (pending, source, cancel) = {
            let mut wait = lock(&self.login);
            let wait = wait.as_mut().ok_or_else(|| ShellError::new("login_stopped"))?;
            let pending = wait.pending.take().ok_or_else(|| ShellError::new("login_stopped"))?;
            (pending, wait.source, wait.cancel.clone())
        };
        let profile = pending.profile().clone();
        let result = pending.finish().await;
        {
            // Forget the wait, unless a newer login replaced it meanwhile.
            let mut wait = lock(&self.login);
            if wait.as_ref().is_some_and(|w| w.cancel.same(&cancel)) {
                *wait = None;
            }
        }
        let session = result?;
        // Another member was logged in here: their access ends on the servers too, without
        // holding up the wizard.
        let (http, replacing) = (self.http.clone(), session.clone());
        tauri::async_runtime::spawn(async move { passerelle::account::end_replaced(&http, &replacing).await });
        if source != Source::Bundled {
            self.update_settings(|s| s.profile = Some(profile))?;
        }
        // Stopping the old session's sync also forgets that it asked for a new login.
        self.start_session(app, session.clone());
        Ok(session)
    }

    /// "Annuler" (or Escape) while waiting for the browser: ends the wait; the core closes the
    /// loopback listener.
    pub fn cancel_login(&self) {
        if let Some(wait) = lock(&self.login).take() {
            tracing::info!("the member stopped the login");
            wait.cancel.cancel();
        }
    }

    /// "Ouvrir à nouveau": the same login page again. False when no browser opened.
    pub fn reopen_login(&self, app: &AppHandle<Wry>) -> Result<bool, ShellError> {
        let url = lock(&self.login).as_ref().map(|w| w.url.clone()).ok_or_else(|| ShellError::new("login_stopped"))?;
        Ok(self.open_login_page(app, &url))
    }

    /// "Copier le lien": the login page's address to the clipboard.
    pub fn copy_login_link(&self, app: &AppHandle<Wry>) -> Result<(), ShellError> {
        let url = lock(&self.login).as_ref().map(|w| w.url.clone()).ok_or_else(|| ShellError::new("login_stopped"))?;
        app.clipboard().write_text(url).map_err(|e| ShellError::logged("clipboard", &e))
    }

    /// Wires a session to the tray: identity, links, visio, and the chat's live counts.
    fn start_session(&self, app: &AppHandle<Wry>, session: Session) {
        self.stop_session();
        let profile = session.profile().clone();
        let settings = self.settings();
        // Only a folder this login confirmed syncs (issue 14, items 13-14): another account's
        // folder, or none yet, waits for the wizard's « Utiliser ce dossier ».
        let has_folder = self.folder_confirmed(&session);
        self.model.send_modify(|m| {
            *m = TrayModel {
                account: Some(session.identity().name.clone()),
                sync: if settings.paused { SyncLine::Paused } else { SyncLine::Waiting },
                links: visio::links(&profile),
                teams: profile.teams.iter().map(|t| t.name.clone()).collect(),
                has_jitsi: profile.jitsi.is_some(),
                has_folder,
                chat: profile.rocketchat.as_ref().map(|_| ChatState::Loading),
                ..TrayModel::default()
            }
        });
        *lock(&self.session) = Some(session.clone());
        if profile.rocketchat.is_some() {
            self.start_chat(app, session.clone());
            if let Some(task) = crate::idle::start(app) {
                lock(&self.tasks).push(task);
            }
        }
        if has_folder {
            self.start_drive(app);
        }
        self.start_calendar(app, session);
    }

    /// The next meeting for the tray, and "starting in 10 min" notifications (`agenda.rs`).
    fn start_calendar(&self, app: &AppHandle<Wry>, session: Session) {
        if let Some(task) = crate::agenda::start(app, session) {
            lock(&self.tasks).push(task);
        }
    }

    /// The tray's "join the next meeting" line.
    pub fn set_meeting(&self, line: Option<NextMeeting>) {
        self.model.send_if_modified(|model| {
            let changed = model.meeting != line;
            model.meeting = line;
            changed
        });
    }

    /// Starts the folder's sync against the profile's server (Nextcloud with the one login, or
    /// plain WebDAV with the bearer token), and feeds its status and quota to the tray.
    pub fn start_drive(&self, app: &AppHandle<Wry>) {
        let Some(session) = self.session() else { return };
        let profile = session.profile().clone();
        let settings = self.settings();
        let root = settings.folder(&profile);
        let server_folder = settings.remote_path.clone().unwrap_or_default();
        let (url, is_nextcloud) = match (&profile.webdav, &profile.nextcloud) {
            (Some(u), _) => (u.clone(), false),
            (None, Some(u)) => (u.clone(), true),
            (None, None) => return,
        };
        if let Some(old) = lock(&self.drive).take() {
            old.send(drive::Event::Shutdown);
        }
        let app = app.clone();
        let task = tauri::async_runtime::spawn(async move {
            let shell = app.state::<Shell>();
            let paths = if is_nextcloud {
                FolderPaths::nextcloud(&shell.dirs.data, &root, &url, &server_folder)
            } else {
                FolderPaths::new(&shell.dirs.data, &root, url.as_str())
            };
            let remote: Arc<dyn Remote> = if is_nextcloud {
                let options = ConnectOptions { opener: opener(&app), ..ConnectOptions::default() };
                let nc = loop {
                    match nextcloud::connect(&shell.http, &url, Some(&session), &shell.store, &options).await {
                        Ok(nc) => break nc,
                        // A server that cannot be reached now is tried again later, as the
                        // sync would; the tray says which one.
                        Err(e @ (nextcloud::NextcloudError::Offline(_) | nextcloud::NextcloudError::LoginUnreachable(_))) => {
                            tracing::warn!(code = e.code(), "cannot connect to the file server yet: {e}");
                            let status = match e {
                                nextcloud::NextcloudError::Offline(message) => DriveStatus::Offline { message, last_sync: None, waiting: 0 },
                                other => DriveStatus::Error { code: other.code().into(), message: other.to_string() },
                            };
                            shell.on_drive_status(&app, status);
                            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                        }
                        Err(e) => {
                            tracing::warn!(code = e.code(), "the file server refused the login: {e}");
                            // Worded from the code: the error's own text is English.
                            shell.model.send_modify(|m| m.sync = SyncLine::Error(e.code().to_string()));
                            return;
                        }
                    }
                };
                shell.watch_quota(&app, nc.clone());
                *lock(&shell.nc) = Some(nc.clone());
                shell.start_feed(&app, nc.clone());
                let cache = paths.journal.with_extension("tree.json");
                // The server folder this sync mirrors; sharing maps local paths below it.
                let sub = server_folder.clone();
                shell.files.send_replace(Some(FilesAccess { nc: nc.clone(), root: root.clone(), sub: sub.clone() }));
                shell.install_file_actions();
                Arc::new(NextcloudRemote::new(nc, &sub, Some(cache)).with_journal(&paths.journal))
            } else {
                Arc::new(WebDav::new(shell.http.clone(), url, drive::Auth::Bearer(session)))
            };
            let handle = Drive::start(DriveConfig::new(paths, remote));
            if shell.settings().paused {
                handle.send(drive::Event::Pause);
            }
            let mut status = handle.status();
            *lock(&shell.drive) = Some(handle);
            loop {
                let current = status.borrow_and_update().clone();
                shell.on_drive_status(&app, current);
                if status.changed().await.is_err() {
                    break;
                }
            }
        });
        lock(&self.tasks).push(task);
    }

    fn on_drive_status(&self, app: &AppHandle<Wry>, status: DriveStatus) {
        tracing::debug!(?status, "drive status");
        let line = sync_line(&status, self.online_hint());
        // A run that moved files may be in the activity feed now: "Récemment" looks again
        // (no timer of its own, so an idle app costs no request for it).
        if matches!(self.model.borrow().sync, SyncLine::Syncing { .. }) && matches!(status, DriveStatus::Idle { .. }) {
            self.feed_event(FeedEvent::RefreshRecent);
        }
        self.model.send_modify(|m| m.sync = line);
        match status {
            DriveStatus::NeedsConfirmation { .. } => self.ask(app, DialogKind::MassDelete),
            DriveStatus::LoginRequired { .. } => {
                // Asked once per ended session (every later look at the server says the same),
                // and not while the wizard's login runs: the tray offers « Se reconnecter… ».
                let first = !self.relogin.swap(true, std::sync::atomic::Ordering::SeqCst);
                if first && lock(&self.login).is_none() {
                    self.ask(app, DialogKind::LoginAgain)
                }
            }
            DriveStatus::Idle { failed, conflicts, .. } => {
                // "Not enough space": once per file, with its real name and size.
                let refused = failed.iter().find(|f| f.code == "quota_exceeded" && !lock(&self.space_asked).contains(&f.path));
                if let Some(item) = refused {
                    lock(&self.space_asked).insert(item.path.clone());
                    let t = self.catalog();
                    let mut details = lock(&self.details);
                    details.name = item.path.rsplit('/').next().unwrap_or(&item.path).to_string();
                    details.size = item.size.map(|s| t.size(s)).unwrap_or_default();
                    drop(details);
                    self.ask(app, DialogKind::NoSpace);
                }
                if !conflicts.is_empty() {
                    lock(&self.details).conflicts = conflicts;
                    self.ask(app, DialogKind::Conflicts);
                }
            }
            DriveStatus::Offline { .. } => self.check_online(app),
            _ => {}
        }
    }

    /// The chat answers, so the computer is online (a first guess before asking the login
    /// server).
    fn online_hint(&self) -> bool {
        matches!(self.model.borrow().chat, Some(ChatState::Ready(_)))
    }

    /// The file server cannot be reached: asks the login server whether the computer is
    /// online, to say "file server unreachable" rather than "offline".
    fn check_online(&self, app: &AppHandle<Wry>) {
        let Some(session) = self.session() else { return };
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            let shell = app.state::<Shell>();
            let online = passerelle::auth::login_server_answers(&shell.http, session.profile()).await;
            shell.model.send_if_modified(|m| {
                let online = online || matches!(m.chat, Some(ChatState::Ready(_)));
                match &mut m.sync {
                    SyncLine::Offline { server_down, .. } if *server_down != online => {
                        *server_down = online;
                        true
                    }
                    _ => false,
                }
            });
        });
    }

    pub fn dialog_details(&self) -> DialogDetails {
        lock(&self.details).clone()
    }

    /// Reads the quota now and after each completed sync; warns once from 90 %.
    fn watch_quota(&self, app: &AppHandle<Wry>, nc: nextcloud::Nextcloud) {
        let app = app.clone();
        let mut model = self.model();
        let task = tauri::async_runtime::spawn(async move {
            let mut warned = false;
            loop {
                match nc.quota().await {
                    Ok(q) => {
                        let shell = app.state::<Shell>();
                        if let Some(total) = q.total {
                            shell.model.send_if_modified(|m| {
                                let new = Some(Quota { used: q.used, total });
                                let changed = m.quota != new;
                                m.quota = new;
                                changed
                            });
                        }
                        if !warned && q.warning().is_some() {
                            warned = true;
                            let t = shell.catalog();
                            let (used, total) = (t.size(q.used), t.size(q.total.unwrap_or(0)));
                            notify::send(&app, NoticeKind::Quota, &t.t("notify.quota.title"), &t.f("notify.quota.body", &[("used", &used), ("total", &total)]));
                        }
                    }
                    Err(e) => tracing::debug!(code = e.code(), "quota unavailable"),
                }
                // Next look when a sync run ends: the tray's own model says so, no timer.
                loop {
                    let was_syncing = matches!(model.borrow_and_update().sync, SyncLine::Syncing { .. });
                    if model.changed().await.is_err() {
                        return;
                    }
                    let now_up = matches!(model.borrow().sync, SyncLine::UpToDate | SyncLine::Failed { .. });
                    if was_syncing && now_up {
                        break;
                    }
                }
            }
        });
        lock(&self.tasks).push(task);
    }

    /// Selective sync: the unticked folders' contents go into a block of the drive's ignore
    /// file that Passerelle manages (the member's own lines above it are kept), so neither side
    /// of them is touched. Then a sync picks the change up.
    pub fn exclude_folders(&self, list: Vec<String>) -> Result<(), ShellError> {
        // Only in a folder this login confirmed: never in another account's.
        if !self.session().is_some_and(|s| self.folder_confirmed(&s)) {
            return Err(ShellError::new("no_folder"));
        }
        let list: Vec<String> = list
            .into_iter()
            .map(|f| f.trim().trim_matches('/').to_string())
            .filter(|f| !f.is_empty() && !f.contains(['\n', '\r']) && !f.split('/').any(|part| part == ".."))
            .collect();
        let settings = self.update_settings(|s| s.excluded_folders = list.clone())?;
        if let Some((profile, _)) = settings.profile().ok() {
            let file = settings.folder(&profile).join(drive::names::IGNORE_FILE);
            let old = std::fs::read_to_string(&file).unwrap_or_default();
            std::fs::write(&file, ignore_text(&old, &list))?;
        }
        self.drive_event(drive::Event::SyncNow);
        Ok(())
    }

    /// Sends an event to the folder's sync task, if one runs.
    /// The running sync's status stream, if a sync runs.
    pub fn drive_status(&self) -> Option<watch::Receiver<DriveStatus>> {
        lock(&self.drive).as_ref().map(|h| h.status())
    }

    pub fn drive_event(&self, event: drive::Event) {
        match lock(&self.drive).as_ref() {
            Some(handle) => handle.send(event),
            None => tracing::debug!(?event, "no sync running"),
        }
    }

    /// Hands the member's activity (from the OS idle time, `idle.rs`) to the running chat.
    pub fn set_chat_activity(&self, activity: passerelle::chat::Activity) {
        if let Some(chat) = lock(&self.chat).as_ref() {
            chat.set_activity(Some(activity));
        }
    }

    /// The chat's problem when a personal access token is the way in, for the settings.
    pub fn chat_token_problem(&self) -> Option<String> {
        let model = self.model.borrow();
        let code = model.chat.as_ref()?.problem()?;
        matches!(code, "chat_two_factor" | "chat_token_refused").then(|| code.to_string())
    }

    /// A personal access token the member made in the chat (for an account with two-factor
    /// login, which the single login cannot pass): the core checks it with the server and keeps
    /// it, then the chat starts again with it.
    pub async fn use_chat_token(&self, app: &AppHandle<Wry>, user_id: &str, token: &str) -> Result<(), ShellError> {
        let session = self.session().ok_or_else(|| ShellError::new("not_logged_in"))?;
        if user_id.trim().is_empty() || token.trim().is_empty() {
            return Err(ShellError::new("chat_token_missing"));
        }
        passerelle::chat::use_personal_token(&session, user_id, token).await?;
        self.model.send_modify(|m| m.chat = Some(ChatState::Loading));
        self.start_chat(app, session);
        Ok(())
    }

    fn start_chat(&self, app: &AppHandle<Wry>, session: Session) {
        let handle = Chat::start(session);
        let mut counts = handle.counts();
        let model = self.model.clone();
        let counts_task = tauri::async_runtime::spawn(async move {
            loop {
                let state = counts.borrow_and_update().clone();
                model.send_modify(|m| m.chat = Some(state));
                if counts.changed().await.is_err() {
                    break;
                }
            }
        });
        let mut events = handle.events();
        let app = app.clone();
        let events_task = tauri::async_runtime::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => {
                        let shell = app.state::<Shell>();
                        if shell.settings().notifications == Some(false) {
                            continue;
                        }
                        let t = shell.catalog();
                        let (kind, title) = match event.kind {
                            ChatEventKind::Mention => (
                                NoticeKind::Mention,
                                t.f("notify.mention.title", &[("sender", &event.sender), ("room", &event.room)]),
                            ),
                            ChatEventKind::DirectMessage => {
                                (NoticeKind::DirectMessage, t.f("notify.direct.title", &[("sender", &event.sender)]))
                            }
                            ChatEventKind::Message => (
                                NoticeKind::Mention,
                                t.f("notify.message.title", &[("sender", &event.sender), ("room", &event.room)]),
                            ),
                        };
                        let body = event.excerpt.clone().unwrap_or_else(|| t.t("notify.no_excerpt"));
                        notify::send(&app, kind, &title, &body);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "chat notifications were dropped");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        *lock(&self.chat) = Some(handle);
        lock(&self.tasks).extend([counts_task, events_task]);
    }

    fn stop_session(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        lock(&self.feed).take();
        lock(&self.nc).take();
        lock(&self.chat).take();
        self.files.send_replace(None);
        if let Some(handle) = lock(&self.drive).take() {
            handle.send(drive::Event::Shutdown);
        }
        lock(&self.session).take();
        // Its sync stopped first, so none of its last "log in again" outlives this.
        self.relogin.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    pub async fn logout(&self) -> Result<(), ShellError> {
        let session = self.session();
        let profile = session.as_ref().map(|s| s.profile().clone()).or_else(|| self.profile().map(|p| p.0));
        self.stop_session();
        self.remove_file_actions();
        self.model.send_modify(|m| *m = TrayModel::default());
        if let Some(profile) = profile {
            passerelle::account::logout(&self.http, &profile, &self.store).await?;
        }
        Ok(())
    }

    /// Connects to the profile's file server as this login, for the folder step: the account
    /// the server names (a local folder belongs to it) and, on a Nextcloud, its folders and
    /// sizes. `None` for a plain WebDAV server (no server folders to choose).
    async fn file_space(&self, app: &AppHandle<Wry>, session: &Session, server_folder: &str) -> Result<Option<nextcloud::SpaceChoice>, ShellError> {
        let profile = session.profile();
        let Some(url) = profile.nextcloud.as_ref().filter(|_| profile.webdav.is_none()) else { return Ok(None) };
        let options = ConnectOptions { opener: opener(app), ..ConnectOptions::default() };
        let nc = nextcloud::connect(&self.http, url, Some(session), &self.store, &options).await?;
        Ok(Some(nc.space_choice(server_folder).await?))
    }

    /// The folder step's proposal (issue 14, items 13-14; issue 11, defect 12): the local
    /// folder for this account (never another account's), the server folders and the room the
    /// chosen one takes. Nothing is created and nothing syncs.
    pub async fn folder_choice(&self, app: &AppHandle<Wry>, server_folder: Option<String>) -> Result<FolderChoice, ShellError> {
        let session = self.session().ok_or_else(|| ShellError::new("not_logged_in"))?;
        let settings = self.settings();
        let confirmed = self.folder_confirmed(&session);
        let server_folder = match server_folder {
            Some(f) => clean_server_folder(&f)?,
            None if confirmed => settings.remote_path.clone().unwrap_or_default(),
            None => String::new(),
        };
        let profile = session.profile().clone();
        let base = if confirmed { settings.folder(&profile) } else { Settings { folder: None, ..settings.clone() }.folder(&profile) };
        let t = self.catalog();
        let mut choice = FolderChoice { path: base.clone(), server_folder: server_folder.clone(), ..FolderChoice::default() };
        let account = match self.file_space(app, &session, &server_folder).await {
            Ok(Some(space)) => {
                choice.server_folders = space.folders;
                choice.size = Some(t.size(space.size));
                space.account
            }
            Ok(None) => session.identity().subject.clone(),
            Err(e) => {
                // The folder can still be chosen; the first sync checks whose it is.
                choice.problem = Some(e);
                return Ok(choice);
            }
        };
        let paths = self.folder_paths(&profile, &base, &server_folder);
        let owner = paths.owner_for(Some(&account));
        let label = session.identity().username.clone().unwrap_or_else(|| session.identity().name.clone());
        choice.path = passerelle::folder::propose(&self.dirs.data, &base, &owner, &label);
        if choice.path != base {
            let name = base.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let record = passerelle::folder::owner_of(&paths.owner).ok().flatten();
            let key = match record {
                Some(r) if r.account == account => "wizard.folder.other_server",
                _ => "wizard.folder.other_account",
            };
            choice.note = Some(t.f(key, &[("folder", &name)]));
        }
        Ok(choice)
    }

    fn folder_paths(&self, profile: &Profile, root: &std::path::Path, server_folder: &str) -> FolderPaths {
        match (&profile.webdav, &profile.nextcloud) {
            (Some(u), _) => FolderPaths::new(&self.dirs.data, root, u.as_str()),
            (None, Some(u)) => FolderPaths::nextcloud(&self.dirs.data, root, u, server_folder),
            (None, None) => FolderPaths::new(&self.dirs.data, root, ""),
        }
    }

    /// Keeps the chosen folder (and server folder), creating it, and starts syncing: the
    /// member's « Utiliser ce dossier ». A folder of another account is refused.
    pub async fn choose_folder(&self, app: &AppHandle<Wry>, path: PathBuf, server_folder: Option<String>) -> Result<PathBuf, ShellError> {
        if !path.is_absolute() {
            return Err(ShellError::new("folder_not_absolute"));
        }
        let session = self.session().ok_or_else(|| ShellError::new("not_logged_in"))?;
        let server_folder = clean_server_folder(server_folder.as_deref().unwrap_or_default())?;
        // The member chose it, so a folder with files is adopted; a private place never is.
        passerelle::folder::check(&path)?;
        match self.file_space(app, &session, &server_folder).await {
            Ok(space) => {
                let account = space.map(|s| s.account).unwrap_or_else(|| session.identity().subject.clone());
                let paths = self.folder_paths(session.profile(), &path, &server_folder);
                passerelle::folder::check_owner(&paths.owner, &path, &paths.owner_for(Some(&account)))?;
            }
            // Unreachable now: the first sync checks whose the folder is before anything moves.
            Err(e) => tracing::info!(code = %e.code, "the folder's owner will be checked by the first sync"),
        }
        std::fs::create_dir_all(&path).map_err(|e| ShellError::logged("folder_not_created", &e))?;
        let subject = session.identity().subject.clone();
        self.update_settings(|s| {
            s.folder = Some(path.clone());
            s.folder_account = Some(subject);
            s.remote_path = (!server_folder.is_empty()).then_some(server_folder);
        })?;
        self.model.send_modify(|m| m.has_folder = true);
        self.start_drive(app);
        Ok(path)
    }

    pub fn set_autostart(&self, app: &AppHandle<Wry>, on: bool) -> Result<(), ShellError> {
        if let Err(e) = crate::autostart::set(app, on) {
            tracing::warn!(error = %e, "autostart could not be changed");
            return Err(ShellError::new("autostart"));
        }
        self.update_settings(|s| s.autostart = Some(on))?;
        Ok(())
    }

    pub fn set_paused(&self, paused: bool) -> Result<(), ShellError> {
        self.update_settings(|s| s.paused = paused)?;
        if lock(&self.drive).is_some() {
            // The task answers with its own status.
            self.drive_event(if paused { drive::Event::Pause } else { drive::Event::Resume });
        } else {
            self.model.send_modify(|m| m.sync = if paused { SyncLine::Paused } else { SyncLine::Waiting });
        }
        Ok(())
    }

    /// Redraws icon, tooltip and menu for a model; called on every change of the model.
    pub fn redraw(&self, app: &AppHandle<Wry>, model: &TrayModel) {
        self.draw_tray(app, model, false);
    }

    /// `force`: redraw even an unchanged model (the language changed).
    fn draw_tray(&self, app: &AppHandle<Wry>, model: &TrayModel, force: bool) {
        // Rebuilding the menu renumbers its items on D-Bus; skip it when nothing shown changed.
        if !force && *lock(&self.shown) == *model && app.tray_by_id(tray::TRAY_ID).is_some() {
            return;
        }
        let Some(tray) = app.tray_by_id(tray::TRAY_ID) else { return };
        let t = self.catalog();
        if let Err(e) = draw(app, &tray, model, &t, self.theme) {
            tracing::warn!(error = %e, "the tray could not be updated");
        }
        *lock(&self.shown) = model.clone();
    }

    /// Runs a menu action. Errors are logged and, when the member can act on them, shown.
    pub fn act(&self, app: &AppHandle<Wry>, action: MenuAction) {
        tracing::info!(?action, "tray menu");
        if let Err(e) = self.try_act(app, action) {
            tracing::warn!(code = %e.code, message = %e.message, ?action, "the action failed");
            self.tell_failure(app, &e);
        }
    }

    /// A failed action started from outside the menu (the file manager's entry point).
    pub fn act_failed(&self, app: &AppHandle<Wry>, e: &ShellError) {
        tracing::warn!(code = %e.code, message = %e.message, "the action failed");
        self.tell_failure(app, e);
    }

    /// A failed action is never silent: a notification with the catalog's sentence.
    fn tell_failure(&self, app: &AppHandle<Wry>, e: &ShellError) {
        let t = self.catalog();
        notify::send(app, NoticeKind::ActionFailed, &t.t("notify.action_failed.title"), &t.error(&e.code));
    }

    fn try_act(&self, app: &AppHandle<Wry>, action: MenuAction) -> Result<(), ShellError> {
        let shown = lock(&self.shown).clone();
        let t = self.catalog();
        match action {
            MenuAction::Login => windows::open(app, WindowKind::Wizard, &t.t("wizard.title"))?,
            MenuAction::Settings => windows::open(app, WindowKind::Settings, &t.t("settings.title"))?,
            MenuAction::Quit => app.exit(0),
            MenuAction::Logout => {
                let app = app.clone();
                tauri::async_runtime::spawn(async move {
                    let shell = app.state::<Shell>();
                    if let Err(e) = shell.logout().await {
                        tracing::warn!(code = %e.code, "logout: {}", e.message);
                        shell.tell_failure(&app, &e);
                    }
                });
            }
            MenuAction::OpenFolder => {
                let folder = self.folder().ok_or_else(|| ShellError::new("no_folder"))?;
                if !folder.is_dir() {
                    return Err(ShellError::logged("folder_missing", &folder.display()));
                }
                app.opener()
                    .open_path(folder.display().to_string(), None::<&str>)
                    .map_err(|e| ShellError::logged("browser", &e))?;
            }
            MenuAction::SyncNow => {
                self.drive_event(drive::Event::SyncNow);
                // "Look now" covers the notifications too (one request, 304 if nothing new).
                self.feed_event(FeedEvent::Wake);
            }
            MenuAction::Pause => self.set_paused(true)?,
            MenuAction::Resume => self.set_paused(false)?,
            MenuAction::ShareFile => self.share_from_tray(app)?,
            MenuAction::OpenChat => {
                let session = self.session().ok_or_else(|| ShellError::new("not_logged_in"))?;
                if let Some(url) = passerelle::chat::chat_url(&session) {
                    opener(app).open(url.as_str()).map_err(open_error)?;
                }
            }
            MenuAction::OpenRoom(i) => {
                let room = shown.chat.as_ref().and_then(ChatState::counts).and_then(|c| c.rooms.get(i).cloned());
                if let Some(room) = room {
                    opener(app).open(&room.url).map_err(open_error)?;
                }
            }
            MenuAction::Visio | MenuAction::VisioAudio => {
                let room = lock(&self.room).for_start(chrono::Utc::now());
                let url = self.meeting(action == MenuAction::VisioAudio, room)?;
                visio::open(&opener(app), &url)?;
            }
            MenuAction::TeamRoom(i) => {
                let session = self.session().ok_or_else(|| ShellError::new("not_logged_in"))?;
                let Some(name) = shown.teams.get(i) else { return Ok(()) };
                let room = visio::team_room(session.profile(), name)?.room.clone();
                let url = self.meeting(false, room)?;
                visio::open(&opener(app), &url)?;
            }
            MenuAction::CopyInvite => {
                let room = lock(&self.room).for_invite(chrono::Utc::now());
                let url = self.meeting(false, room)?;
                visio::copy_invite(&PluginClipboard(app.clone()), &url)?;
                notify::send(app, NoticeKind::InviteCopied, &t.t("notify.invite_copied.title"), &t.t("notify.invite_copied.body"));
            }
            MenuAction::JoinMeeting => {
                if let Some(m) = &shown.meeting {
                    opener(app).open(&m.url).map_err(open_error)?;
                }
            }
            MenuAction::Link(i) => {
                if let Some(link) = shown.links.get(i) {
                    opener(app).open(link.url.as_str()).map_err(open_error)?;
                }
            }
            MenuAction::Recover => self.open_recover(app, None)?,
            MenuAction::Recent(i) => self.open_recent(app, i)?,
            MenuAction::Notice(i) => self.open_notice(app, i)?,
        }
        Ok(())
    }

    /// A meeting URL in `room` with the member's name.
    fn meeting(&self, audio_only: bool, room: String) -> Result<url::Url, ShellError> {
        let session = self.session().ok_or_else(|| ShellError::new("not_logged_in"))?;
        let jitsi = visio::jitsi_host(session.profile())?;
        let options = JoinOptions { display_name: Some(session.identity().name.clone()), audio_only, ..JoinOptions::default() };
        Ok(visio::meeting_url(jitsi, &room, &options)?)
    }

    pub fn ask(&self, app: &AppHandle<Wry>, kind: DialogKind) {
        let t = self.catalog();
        let title = t.t(&format!("dialog.{}.title", kind.tag()));
        if let Err(e) = windows::open(app, WindowKind::Dialog(kind), &title) {
            tracing::warn!(error = %e, "the dialog could not open");
        }
    }
}

/// The tray's sync line for a status of the folder's sync. `online`: another server answers.
pub fn sync_line(status: &DriveStatus, online: bool) -> SyncLine {
    match status {
        DriveStatus::Starting => SyncLine::Waiting,
        DriveStatus::Idle { failed, .. } if !failed.is_empty() => {
            let locked: Vec<LockedFile> = failed
                .iter()
                .filter(|f| f.code == "locked")
                .map(|f| LockedFile {
                    name: f.path.rsplit('/').next().unwrap_or(&f.path).to_string(),
                    // The engine gives "" when the server names nobody (an app lock).
                    by: f.by.clone().filter(|b| !b.trim().is_empty()),
                })
                .collect();
            // The reason told is the first that is not a lock: a lock ends by itself, the
            // other may need the member.
            let code = failed.iter().find(|f| f.code != "locked").unwrap_or(&failed[0]).code.clone();
            SyncLine::Failed { files: failed.len(), code, locked }
        }
        DriveStatus::Idle { .. } => SyncLine::UpToDate,
        DriveStatus::Syncing { done, total, .. } => SyncLine::Syncing { done: *done as u64, total: *total as u64 },
        DriveStatus::Paused => SyncLine::Paused,
        DriveStatus::Held => SyncLine::Held,
        DriveStatus::NeedsConfirmation { .. } => SyncLine::NeedsConfirmation,
        DriveStatus::Offline { last_sync, waiting, .. } => SyncLine::Offline {
            server_down: online,
            files: *waiting,
            last_sync: last_sync.as_deref().and_then(local_time),
        },
        // Worded from the code: the message is English and may name a path or a URL.
        DriveStatus::LoginRequired { .. } => SyncLine::Error("login_required".into()),
        DriveStatus::Error { code, .. } => SyncLine::Error(code.clone()),
    }
}

/// "14:32" today, "28/11 14:32" before, in the member's time zone.
fn local_time(rfc3339: &str) -> Option<String> {
    let tz = calendar::local_timezone();
    let at = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?.with_timezone(&tz);
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    Some(if at.date_naive() == today { at.format("%H:%M").to_string() } else { at.format("%d/%m %H:%M").to_string() })
}

fn draw(app: &AppHandle<Wry>, tray: &TrayIcon<Wry>, model: &TrayModel, t: &Catalog, theme: Theme) -> tauri::Result<()> {
    tray.set_icon(Some(icon::render(model.state(), theme, &model.badge())?))?;
    tray.set_tooltip(Some(model.tooltip(t)))?;
    tray.set_menu(Some(tray::build_menu(app, model, t)?))?;
    Ok(())
}

const IGNORE_MARK: &str = "# Passerelle: folders left out in the settings (managed below this line)";

/// The ignore file with its managed block replaced by `folders`.
fn ignore_text(old: &str, folders: &[String]) -> String {
    let mine = old.split(IGNORE_MARK).next().unwrap_or_default().trim_end();
    let mut text = String::from(mine);
    if !text.is_empty() {
        text.push('\n');
    }
    if !folders.is_empty() {
        text.push_str(IGNORE_MARK);
        text.push('\n');
        for f in folders {
            text.push_str(&format!("{f}/*\n"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14, item 1: an idle run with failed items is not « À jour ».
    #[test]
    fn failed_items_are_not_up_to_date() {
        let failed = vec![drive::FailedItem { path: "a/rapport.pdf".into(), code: "quota_exceeded".into(), size: Some(5), by: None }];
        let idle = DriveStatus::Idle { last_sync: None, failed, conflicts: vec![] };
        assert_eq!(sync_line(&idle, true), SyncLine::Failed { files: 1, code: "quota_exceeded".into(), locked: vec![] });
        let clean = DriveStatus::Idle { last_sync: None, failed: vec![], conflicts: vec!["x".into()] };
        assert_eq!(sync_line(&clean, true), SyncLine::UpToDate);
        let down = DriveStatus::Offline { message: String::new(), last_sync: None, waiting: 2 };
        assert_eq!(sync_line(&down, true), SyncLine::Offline { server_down: true, files: 2, last_sync: None });
        let login = DriveStatus::Error { code: "login_unreachable".into(), message: String::new() };
        assert_eq!(sync_line(&login, true), SyncLine::Error("login_unreachable".into()));
    }

    /// Issue 15: the drive's locked items reach the tray with the file's name and the holder;
    /// another failure beside them gives the reason told.
    #[test]
    fn locked_items_carry_their_holder_to_the_tray() {
        let item = |path: &str, code: &str, by: Option<&str>| drive::FailedItem {
            path: path.into(),
            code: code.into(),
            size: Some(5),
            by: by.map(str::to_string),
        };
        let idle = |failed| DriveStatus::Idle { last_sync: None, failed, conflicts: vec![] };
        let bob = LockedFile { name: "rapport.odt".into(), by: Some("Bob Martin".into()) };
        let app = LockedFile { name: "budget.ods".into(), by: None };
        let status = idle(vec![item("Projets/rapport.odt", "locked", Some("Bob Martin")), item("budget.ods", "locked", Some(""))]);
        assert_eq!(sync_line(&status, true), SyncLine::Failed { files: 2, code: "locked".into(), locked: vec![bob.clone(), app] });
        let status = idle(vec![item("Projets/rapport.odt", "locked", Some("Bob Martin")), item("gros.bin", "quota_exceeded", None)]);
        assert_eq!(sync_line(&status, true), SyncLine::Failed { files: 2, code: "quota_exceeded".into(), locked: vec![bob] });
    }

    /// Issue 11, defect 12: the server folder the member picks stays inside their space.
    #[test]
    fn a_server_folder_stays_in_the_space() {
        assert_eq!(clean_server_folder(" /Équipe/Projets/ ").unwrap(), "Équipe/Projets");
        assert_eq!(clean_server_folder("").unwrap(), "");
        for bad in ["../bob", "Équipe/../..", "a//b", "./a"] {
            assert_eq!(clean_server_folder(bad).unwrap_err().code, "server_folder_refused", "{bad}");
        }
    }

    #[test]
    fn the_managed_block_keeps_the_members_lines() {
        let first = ignore_text("*.tmp\n", &["Archives".into()]);
        assert_eq!(first, format!("*.tmp\n{IGNORE_MARK}\nArchives/*\n"));
        let ignore = drive::names::Ignore::new(&first);
        assert!(ignore.is_ignored("Archives/2019/bilan.pdf"));
        assert!(!ignore.is_ignored("Projets/Archives.txt"));
        let again = ignore_text(&first, &["Photos".into()]);
        assert_eq!(again, format!("*.tmp\n{IGNORE_MARK}\nPhotos/*\n"));
        assert_eq!(ignore_text(&again, &[]), "*.tmp\n");
    }
}

fn open_error(e: OpenError) -> ShellError {
    ShellError::logged("browser", &e)
}

/// The one way the shell opens URLs: `PASSERELLE_BROWSER` when set (tests record URLs with it),
/// else the opener plugin.
pub fn opener(app: &AppHandle<Wry>) -> Opener {
    if std::env::var("PASSERELLE_BROWSER").is_ok_and(|b| !b.trim().is_empty()) {
        return Opener::System;
    }
    let app = app.clone();
    Opener::hook(move |url| app.opener().open_url(url, None::<&str>).map_err(|e| OpenError::Launch(e.to_string())))
}

/// The invite goes through the clipboard plugin, which lives as long as the app.
struct PluginClipboard(AppHandle<Wry>);

impl visio::Clipboard for PluginClipboard {
    fn set_text(&self, text: &str) -> Result<(), visio::VisioError> {
        self.0.clipboard().write_text(text.to_string()).map_err(|e| visio::VisioError::Clipboard(e.to_string()))
    }
}
