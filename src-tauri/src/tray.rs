//! The tray: what it shows ([`TrayModel`], fed by the core's watch streams), the menu built from
//! it, and the closed set of things a click can mean ([`MenuAction`]). Menu ids are produced and
//! parsed only here, so no handler ever matches on a raw string.
use passerelle::{
    chat::ChatState,
    visio::{LinkKind, ToolLink},
};
use tauri::{
    menu::{Menu, MenuBuilder, MenuItem, SubmenuBuilder},
    AppHandle, Runtime,
};

use crate::{
    i18n::Catalog,
    icon::{Badge, TrayState},
};

/// The tray's id; libayatana-appindicator publishes it under `/org/ayatana/NotificationItem/`.
pub const TRAY_ID: &str = "passerelle";
/// Rooms listed under the chat line.
pub const MENU_ROOMS: usize = 5;

/// Where the member's folder stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SyncLine {
    /// Logged in, but the sync has not reported yet (or this build has none).
    #[default]
    Waiting,
    UpToDate,
    Syncing { done: u64, total: u64 },
    Paused,
    /// Paused after the member kept the files at a safety stop: nothing deleted, nothing syncs
    /// until they choose (« Reprendre » asks again).
    Held,
    NeedsConfirmation,
    /// An error code, worded from the catalog.
    Error(String),
    /// Synced, except `files` that wait for a retry; `code` says why (the first one that is
    /// not a lock, else `locked`). `locked`: those of them being edited online, named.
    Failed { files: usize, code: String, locked: Vec<LockedFile> },
    /// The file server cannot be reached. `server_down`: other servers answer, so the computer
    /// is online. `files`: local changes waiting; `last_sync`: already formatted ("14:32").
    Offline { server_down: bool, files: usize, last_sync: Option<String> },
}

/// A file waiting because it is being edited online (Nextcloud's files_lock): the tray names it
/// and who holds it, so the member knows whom to ask rather than what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedFile {
    /// The file's name (not its folder: a menu line is short).
    pub name: String,
    /// The lock holder's display name; `None` when the server names nobody (an app lock).
    pub by: Option<String>,
}

/// Locked files named one per line; the rest are counted.
pub const MENU_LOCKED: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    pub used: u64,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextMeeting {
    pub title: String,
    /// Already formatted for the member ("14:30").
    pub time: String,
    pub url: String,
}

/// One of "Récemment"'s changes; worded when the menu is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentLine {
    pub name: String,
    /// `created`, `changed`, `deleted`, `restored`, or `other`.
    pub kind: &'static str,
    /// Who, when not the member.
    pub by: Option<String>,
    /// Already formatted ("14:32", "28/11 14:32").
    pub time: String,
}

/// Lines under "Récemment".
pub const MENU_RECENT: usize = 5;
/// Notifications listed under "Récemment" (the count says how many in all).
pub const MENU_NOTICES: usize = 5;

/// Everything the tray shows. Rebuilt into a menu whenever it changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrayModel {
    /// The member's name when logged in.
    pub account: Option<String>,
    pub sync: SyncLine,
    pub quota: Option<Quota>,
    pub chat: Option<ChatState>,
    pub meeting: Option<NextMeeting>,
    pub links: Vec<ToolLink>,
    pub teams: Vec<String>,
    pub has_jitsi: bool,
    pub has_folder: bool,
    /// The server's recent changes (the activity feed); `None` when it has no activity app.
    pub recent: Vec<RecentLine>,
    /// Unread Nextcloud notifications: the server's own sentences, newest first.
    pub notices: Vec<String>,
    /// The server keeps a trash and versions (a Nextcloud): "Récupérer un fichier…" is offered.
    pub can_recover: bool,
}

impl TrayModel {
    pub fn state(&self) -> TrayState {
        if self.account.is_none() {
            return TrayState::LoggedOut;
        }
        match &self.sync {
            SyncLine::Waiting | SyncLine::UpToDate => TrayState::UpToDate,
            SyncLine::Syncing { .. } => TrayState::Syncing,
            SyncLine::Paused | SyncLine::Held => TrayState::Paused,
            // Files that wait only for a colleague's online editing to end: nothing is wrong
            // and nothing is for the member to fix (the change is kept and goes up by itself),
            // so not the red error, which would send them looking for a fault; but not « à
            // jour » either, since their change is not on the server yet.
            SyncLine::Failed { files, locked, .. } if *files > 0 && locked.len() == *files => TrayState::Attention,
            SyncLine::NeedsConfirmation | SyncLine::Error(_) | SyncLine::Failed { .. } => TrayState::Error,
            SyncLine::Offline { .. } => TrayState::Offline,
        }
    }

    pub fn badge(&self) -> Badge {
        match self.chat.as_ref().and_then(ChatState::counts) {
            Some(c) if c.total > 0 => Badge::Count(c.total),
            Some(c) if c.dot => Badge::Dot,
            _ => Badge::None,
        }
    }

    pub fn status_text(&self, t: &Catalog) -> String {
        if self.account.is_none() {
            return t.t("tray.status.logged_out");
        }
        match &self.sync {
            SyncLine::Waiting if self.has_folder => t.t("tray.status.up_to_date"),
            SyncLine::Waiting => t.t("tray.status.waiting"),
            SyncLine::UpToDate => t.t("tray.status.up_to_date"),
            SyncLine::Syncing { done, total } if *total > 0 => match total.saturating_sub(*done) {
                1 => t.t("tray.status.syncing_one"),
                left => t.f("tray.status.syncing", &[("files", &left.to_string())]),
            },
            SyncLine::Syncing { .. } => t.t("tray.status.syncing_plain"),
            SyncLine::Paused => t.t("tray.status.paused"),
            SyncLine::Held => t.t("tray.status.held"),
            SyncLine::NeedsConfirmation => t.t("tray.status.needs_confirmation"),
            SyncLine::Error(code) => t.error(code),
            SyncLine::Failed { files, .. } => waiting(t, *files),
            SyncLine::Offline { server_down: true, .. } => t.t("tray.status.server_down"),
            SyncLine::Offline { server_down: false, .. } => t.t("tray.status.offline"),
        }
    }

    /// The lines under the status: why files wait, and since when nothing was synced.
    pub fn detail_lines(&self, t: &Catalog) -> Vec<String> {
        if self.account.is_none() {
            return Vec::new();
        }
        match &self.sync {
            SyncLine::Failed { code, locked, .. } => {
                let mut lines: Vec<String> = locked.iter().take(MENU_LOCKED).map(|f| f.label(t)).collect();
                if locked.len() > MENU_LOCKED {
                    lines.push(t.f("tray.status.locked_more", &[("count", &(locked.len() - MENU_LOCKED).to_string())]));
                }
                if !locked.is_empty() {
                    // The reassurance: the change is kept and will go up by itself.
                    lines.push(t.error("locked"));
                }
                if code != "locked" {
                    lines.push(t.error(code));
                }
                lines
            }
            SyncLine::Held => vec![t.t("tray.status.held_detail")],
            SyncLine::Offline { files, last_sync, .. } => {
                let mut lines = Vec::new();
                if *files > 0 {
                    lines.push(waiting(t, *files));
                }
                if let Some(time) = last_sync {
                    lines.push(t.f("tray.status.last_sync", &[("time", time)]));
                }
                lines
            }
            _ => Vec::new(),
        }
    }

    /// The quota line; marked as old when the file server cannot be asked.
    /// The session ended on the server: the menu offers a new login (issue 14, item 10), also
    /// after the member answered « Plus tard » to the question.
    pub fn needs_login(&self) -> bool {
        self.account.is_some() && self.sync == SyncLine::Error("login_required".into())
    }

    pub fn quota_line(&self, t: &Catalog) -> Option<String> {
        let q = self.quota.as_ref()?;
        let (used, total) = (t.size(q.used), t.size(q.total));
        Some(match self.sync {
            SyncLine::Offline { .. } => t.f("tray.quota_stale", &[("used", &used), ("total", &total)]),
            _ => t.f("tray.quota", &[("used", &used), ("total", &total)]),
        })
    }

    pub fn tooltip(&self, t: &Catalog) -> String {
        match &self.sync {
            SyncLine::Syncing { done, total } if self.account.is_some() && *total > 0 => {
                t.f("tray.tooltip_progress", &[("done", &done.to_string()), ("total", &total.to_string())])
            }
            _ => t.f("tray.tooltip", &[("status", &self.status_text(t))]),
        }
    }

    fn chat_line(&self, t: &Catalog) -> Option<String> {
        let state = self.chat.as_ref()?;
        Some(match state {
            ChatState::Loading => t.t("tray.chat.loading"),
            ChatState::NotConfigured => return None,
            ChatState::Unavailable { .. } | ChatState::Failed { .. } | ChatState::Offline { last: None, .. } => {
                match state.problem().unwrap_or_default() {
                    "offline" => t.t("tray.chat.offline"),
                    "chat_login_refused" => t.t("tray.chat.refused"),
                    "chat_two_factor" => t.t("tray.chat.two_factor"),
                    "chat_token_refused" => t.t("tray.chat.token_refused"),
                    _ => t.t("tray.chat.unavailable"),
                }
            }
            // The counts are old: say the server is down rather than show them as current.
            ChatState::Offline { last: Some(c), .. } if c.total > 0 => {
                t.f("tray.chat.offline_last", &[("count", &c.total.to_string())])
            }
            ChatState::Offline { .. } => t.t("tray.chat.offline"),
            ChatState::Ready(c) => {
                let count = if c.label.is_empty() { c.total.to_string() } else { c.label.clone() };
                if c.total == 0 && c.dot {
                    t.t("tray.chat.alert")
                } else if c.total == 0 {
                    t.t("tray.chat.none")
                } else if c.total == 1 && c.mentions > 0 {
                    t.t("tray.chat.mention_one")
                } else if c.total == 1 {
                    t.t("tray.chat.count_one")
                } else if c.mentions > 0 {
                    t.f("tray.chat.mentions", &[("count", &count), ("mentions", &c.mentions.to_string())])
                } else {
                    t.f("tray.chat.count", &[("count", &count)])
                }
            }
        })
    }
}

impl LockedFile {
    /// "rapport.odt : en cours de modification en ligne (par Bob Martin)".
    pub fn label(&self, t: &Catalog) -> String {
        let why = match &self.by {
            Some(who) => t.f("drive.locked_by", &[("who", who)]),
            None => t.t("drive.locked"),
        };
        t.f("tray.status.locked_file", &[("name", &self.name), ("why", &why)])
    }
}

fn waiting(t: &Catalog, files: usize) -> String {
    match files {
        1 => t.t("tray.status.waiting_one"),
        n => t.f("tray.status.waiting_files", &[("files", &n.to_string())]),
    }
}

/// Everything a menu click can mean. Indices refer to the [`TrayModel`] the menu was built
/// from, which the shell keeps beside the menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuAction {
    Login,
    OpenFolder,
    SyncNow,
    /// "Partager un fichier…": a file chooser in the folder, then a link in the clipboard.
    ShareFile,
    Pause,
    Resume,
    OpenChat,
    OpenRoom(usize),
    Visio,
    VisioAudio,
    TeamRoom(usize),
    CopyInvite,
    JoinMeeting,
    Link(usize),
    Settings,
    Logout,
    Quit,
    /// "Récupérer un fichier…".
    Recover,
    /// A line of "Récemment".
    Recent(usize),
    /// An unread Nextcloud notification (opening it marks it read).
    Notice(usize),
}

impl MenuAction {
    pub fn id(self) -> String {
        match self {
            MenuAction::Login => "login".into(),
            MenuAction::OpenFolder => "open-folder".into(),
            MenuAction::SyncNow => "sync-now".into(),
            MenuAction::ShareFile => "share-file".into(),
            MenuAction::Pause => "pause".into(),
            MenuAction::Resume => "resume".into(),
            MenuAction::OpenChat => "open-chat".into(),
            MenuAction::OpenRoom(i) => format!("room:{i}"),
            MenuAction::Visio => "visio".into(),
            MenuAction::VisioAudio => "visio-audio".into(),
            MenuAction::TeamRoom(i) => format!("team:{i}"),
            MenuAction::CopyInvite => "copy-invite".into(),
            MenuAction::JoinMeeting => "join-meeting".into(),
            MenuAction::Link(i) => format!("link:{i}"),
            MenuAction::Settings => "settings".into(),
            MenuAction::Logout => "logout".into(),
            MenuAction::Quit => "quit".into(),
            MenuAction::Recover => "recover".into(),
            MenuAction::Recent(i) => format!("recent:{i}"),
            MenuAction::Notice(i) => format!("notice:{i}"),
        }
    }

    /// The action behind a menu id; `None` for the informative lines and anything unknown.
    pub fn parse(id: &str) -> Option<MenuAction> {
        let indexed = |prefix: &str, make: fn(usize) -> MenuAction| {
            id.strip_prefix(prefix).and_then(|n| n.parse().ok()).map(make)
        };
        Some(match id {
            "login" => MenuAction::Login,
            "open-folder" => MenuAction::OpenFolder,
            "sync-now" => MenuAction::SyncNow,
            "share-file" => MenuAction::ShareFile,
            "pause" => MenuAction::Pause,
            "resume" => MenuAction::Resume,
            "open-chat" => MenuAction::OpenChat,
            "visio" => MenuAction::Visio,
            "visio-audio" => MenuAction::VisioAudio,
            "copy-invite" => MenuAction::CopyInvite,
            "join-meeting" => MenuAction::JoinMeeting,
            "settings" => MenuAction::Settings,
            "logout" => MenuAction::Logout,
            "quit" => MenuAction::Quit,
            "recover" => MenuAction::Recover,
            _ => {
                return indexed("room:", MenuAction::OpenRoom)
                    .or_else(|| indexed("team:", MenuAction::TeamRoom))
                    .or_else(|| indexed("link:", MenuAction::Link))
                    .or_else(|| indexed("recent:", MenuAction::Recent))
                    .or_else(|| indexed("notice:", MenuAction::Notice))
            }
        })
    }
}

/// The menu for a model, in the member's language.
pub fn build_menu<R: Runtime>(app: &AppHandle<R>, model: &TrayModel, t: &Catalog) -> tauri::Result<Menu<R>> {
    let item = |action: MenuAction, label: String| MenuItem::with_id(app, action.id(), label, true, None::<&str>);
    let info = |id: &str, label: String| MenuItem::with_id(app, format!("info:{id}"), label, false, None::<&str>);

    let mut menu = MenuBuilder::new(app).item(&info("status", model.status_text(t))?);
    for (i, line) in model.detail_lines(t).into_iter().enumerate() {
        menu = menu.item(&info(&format!("detail:{i}"), line)?);
    }
    let Some(name) = &model.account else {
        return menu
            .separator()
            .item(&item(MenuAction::Login, t.t("tray.login"))?)
            .separator()
            .item(&item(MenuAction::Quit, t.t("tray.quit"))?)
            .build();
    };

    if let Some(line) = model.quota_line(t) {
        menu = menu.item(&info("quota", line)?);
    }
    if model.needs_login() {
        menu = menu.item(&item(MenuAction::Login, t.t("tray.relogin"))?);
    }
    menu = menu.separator();
    if model.has_folder {
        menu = menu.item(&item(MenuAction::OpenFolder, t.t("tray.open_folder"))?);
        menu = menu.item(&item(MenuAction::SyncNow, t.t("tray.sync_now"))?);
        menu = menu.item(&item(MenuAction::ShareFile, t.t("tray.share"))?);
        menu = match model.sync {
            SyncLine::Paused | SyncLine::Held => menu.item(&item(MenuAction::Resume, t.t("tray.resume"))?),
            _ => menu.item(&item(MenuAction::Pause, t.t("tray.pause"))?),
        };
        menu = menu.separator();
    }
    if model.can_recover {
        menu = menu.item(&item(MenuAction::Recover, t.t("tray.recover"))?);
        menu = menu.item(&recent_menu(app, model, t)?);
        menu = menu.separator();
    }

    if let Some(line) = model.chat_line(t) {
        menu = menu.item(&item(MenuAction::OpenChat, line)?);
        if let Some(counts) = model.chat.as_ref().and_then(ChatState::counts) {
            for (i, room) in counts.rooms.iter().take(MENU_ROOMS).enumerate() {
                let label = t.f("tray.chat.room", &[("room", &room.name), ("count", &room.unread.to_string())]);
                menu = menu.item(&item(MenuAction::OpenRoom(i), label)?);
            }
        }
        menu = menu.separator();
    }

    if model.has_jitsi {
        menu = menu
            .item(&item(MenuAction::Visio, t.t("tray.visio"))?)
            .item(&item(MenuAction::VisioAudio, t.t("tray.visio_audio"))?);
        for (i, team) in model.teams.iter().enumerate() {
            menu = menu.item(&item(MenuAction::TeamRoom(i), t.f("tray.team_room", &[("team", team)]))?);
        }
        menu = menu.item(&item(MenuAction::CopyInvite, t.t("tray.copy_invite"))?);
    }
    if let Some(m) = &model.meeting {
        menu = menu.item(&item(MenuAction::JoinMeeting, t.f("tray.join_meeting", &[("title", &m.title), ("time", &m.time)]))?);
    }
    menu = menu.separator();

    if !model.links.is_empty() {
        let mut tools = SubmenuBuilder::new(app, t.t("tray.tools"));
        for (i, link) in model.links.iter().enumerate() {
            // The account page's name is ours to translate; the others are the organisation's.
            let label = match link.kind {
                LinkKind::Account => t.t("tray.account_link"),
                LinkKind::Tool => link.name.clone(),
            };
            tools = tools.item(&item(MenuAction::Link(i), label)?);
        }
        menu = menu.item(&tools.build()?);
    }
    menu.item(&info("account", t.f("tray.account", &[("name", name)]))?)
        .item(&item(MenuAction::Settings, t.t("tray.settings"))?)
        .item(&item(MenuAction::Logout, t.t("tray.logout"))?)
        .separator()
        .item(&item(MenuAction::Quit, t.t("tray.quit"))?)
        .build()
}

impl TrayModel {
    /// "Récemment", with the count of unread notifications next to it.
    pub fn recent_title(&self, t: &Catalog) -> String {
        match self.notices.len() {
            0 => t.t("tray.recent"),
            n => t.f("tray.recent_count", &[("count", &n.to_string())]),
        }
    }
}

impl RecentLine {
    pub fn label(&self, t: &Catalog) -> String {
        let key = match &self.by {
            Some(_) => format!("tray.recent.{}_by", self.kind),
            None => format!("tray.recent.{}", self.kind),
        };
        t.f(&key, &[("name", &self.name), ("by", self.by.as_deref().unwrap_or_default()), ("time", &self.time)])
    }
}

/// A notification's sentence, cut to fit a menu line.
fn menu_text(text: &str) -> String {
    const MAX: usize = 70;
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX - 1).collect();
    format!("{cut}…")
}

fn recent_menu<R: Runtime>(app: &AppHandle<R>, model: &TrayModel, t: &Catalog) -> tauri::Result<tauri::menu::Submenu<R>> {
    let item = |action: MenuAction, label: String| MenuItem::with_id(app, action.id(), label, true, None::<&str>);
    let info = |id: &str, label: String| MenuItem::with_id(app, format!("info:{id}"), label, false, None::<&str>);
    let mut sub = SubmenuBuilder::new(app, model.recent_title(t));
    if !model.notices.is_empty() {
        sub = sub.item(&info("notices", t.t("tray.notices"))?);
        for (i, text) in model.notices.iter().take(MENU_NOTICES).enumerate() {
            sub = sub.item(&item(MenuAction::Notice(i), menu_text(text))?);
        }
        sub = sub.separator();
    }
    if model.recent.is_empty() {
        sub = sub.item(&info("recent-none", t.t("tray.recent.none"))?);
    }
    for (i, line) in model.recent.iter().take(MENU_RECENT).enumerate() {
        sub = sub.item(&item(MenuAction::Recent(i), line.label(t))?);
    }
    sub.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;
    use passerelle::chat::ChatCounts;

    #[test]
    fn every_action_round_trips_through_its_id() {
        let all = [
            MenuAction::Login,
            MenuAction::OpenFolder,
            MenuAction::SyncNow,
            MenuAction::ShareFile,
            MenuAction::Pause,
            MenuAction::Resume,
            MenuAction::OpenChat,
            MenuAction::OpenRoom(3),
            MenuAction::Visio,
            MenuAction::VisioAudio,
            MenuAction::TeamRoom(1),
            MenuAction::CopyInvite,
            MenuAction::JoinMeeting,
            MenuAction::Link(0),
            MenuAction::Settings,
            MenuAction::Logout,
            MenuAction::Quit,
            MenuAction::Recover,
            MenuAction::Recent(4),
            MenuAction::Notice(0),
        ];
        for action in all {
            assert_eq!(MenuAction::parse(&action.id()), Some(action));
        }
        assert_eq!(MenuAction::parse("info:status"), None);
        assert_eq!(MenuAction::parse("room:x"), None);
        assert_eq!(MenuAction::parse(""), None);
    }

    #[test]
    fn status_lines_read_as_the_issue_says() {
        let t = Catalog::load(Lang::Fr);
        let mut m = TrayModel { account: Some("Alice".into()), has_folder: true, ..Default::default() };
        m.sync = SyncLine::UpToDate;
        assert_eq!(m.status_text(&t), "À jour");
        m.sync = SyncLine::Syncing { done: 3, total: 15 };
        assert_eq!(m.status_text(&t), "Synchronisation… 12 fichiers");
        assert_eq!(m.state(), TrayState::Syncing);
        m.sync = SyncLine::Error("offline".into());
        assert_eq!(m.status_text(&t), t.error("offline"));
        assert!(!t.error("offline").starts_with("error."), "worded from the catalog");
        m.account = None;
        assert_eq!(m.state(), TrayState::LoggedOut);
    }

    /// Issue 14, item 15: « Garder mes fichiers » holds the sync, and the tray says what that
    /// means instead of a bare « En pause ».
    #[test]
    fn a_hold_after_a_safety_stop_is_explained() {
        let t = Catalog::load(Lang::Fr);
        let mut m = TrayModel { account: Some("Alice".into()), has_folder: true, ..Default::default() };
        m.sync = crate::shell::sync_line(&passerelle::drive::DriveStatus::Held, true);
        assert_eq!(m.status_text(&t), "En pause : le serveur semble vide");
        assert_eq!(m.detail_lines(&t), ["Rien n'a été supprimé. «\u{a0}Reprendre\u{a0}» vous redemandera quoi faire de vos fichiers."]);
        assert_eq!(m.state(), TrayState::Paused);
    }

    /// Issue 14, item 1: never « À jour » while files wait; how many, and why.
    #[test]
    fn failed_files_are_told_not_hidden() {
        let t = Catalog::load(Lang::Fr);
        let mut m = TrayModel { account: Some("Alice".into()), has_folder: true, ..Default::default() };
        m.sync = SyncLine::Failed { files: 2, code: "quota_exceeded".into(), locked: vec![] };
        assert_eq!(m.status_text(&t), "2 fichiers en attente");
        assert_eq!(m.detail_lines(&t), [t.error("quota_exceeded")]);
        assert_eq!(m.state(), TrayState::Error);
        m.sync = SyncLine::Failed { files: 1, code: "forbidden".into(), locked: vec![] };
        assert_eq!(m.status_text(&t), "1 fichier en attente");
    }

    /// Issue 15: a file edited online names itself and who edits it, says the change is kept,
    /// and shows the attention icon, not the red error (a wait, not a fault).
    #[test]
    fn a_locked_file_names_its_holder_and_is_a_wait() {
        let t = Catalog::load(Lang::Fr);
        let bob = LockedFile { name: "rapport.odt".into(), by: Some("Bob Martin".into()) };
        let mut m = TrayModel { account: Some("Alice".into()), has_folder: true, ..Default::default() };
        m.sync = SyncLine::Failed { files: 1, code: "locked".into(), locked: vec![bob.clone()] };
        assert_eq!(m.status_text(&t), "1 fichier en attente");
        assert_eq!(
            m.detail_lines(&t),
            ["rapport.odt : en cours de modification en ligne (par Bob Martin)".to_string(), t.error("locked")]
        );
        assert!(t.error("locked").contains("gardées"), "{}", t.error("locked"));
        assert_eq!(m.state(), TrayState::Attention);
        // An app lock (Collabora, OnlyOffice) names nobody.
        let app = LockedFile { name: "budget.ods".into(), by: None };
        assert_eq!(app.label(&t), "budget.ods : en cours de modification en ligne");
        let en = Catalog::load(Lang::En);
        assert_eq!(bob.label(&en), "rapport.odt: being edited online (by Bob Martin)");
        // Beside another failure: the lock is named, the other reason told, and the icon is the
        // error's (something else wants the member).
        m.sync = SyncLine::Failed { files: 2, code: "quota_exceeded".into(), locked: vec![bob.clone()] };
        let lines = m.detail_lines(&t);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0], bob.label(&t));
        assert_eq!(lines[2], t.error("quota_exceeded"));
        assert_eq!(m.state(), TrayState::Error);
        // Many locks: three named, the others counted.
        let many: Vec<LockedFile> = (0..5).map(|i| LockedFile { name: format!("f{i}.odt"), by: None }).collect();
        m.sync = SyncLine::Failed { files: 5, code: "locked".into(), locked: many };
        let lines = m.detail_lines(&t);
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert_eq!(lines[3], "Autres fichiers en cours de modification en ligne : 2");
        assert_eq!(m.state(), TrayState::Attention);
    }

    /// Issue 14, item 2: the file server down is not "offline"; files waiting, the last sync,
    /// and a quota that says it is old.
    #[test]
    fn file_server_down_is_told_apart_from_offline() {
        let t = Catalog::load(Lang::Fr);
        let mut m = TrayModel {
            account: Some("Alice".into()),
            has_folder: true,
            quota: Some(Quota { used: 1024 * 1024 * 1024, total: 10 * 1024 * 1024 * 1024 }),
            ..Default::default()
        };
        assert_eq!(m.quota_line(&t).as_deref(), Some("1 Go sur 10 Go"));
        m.sync = SyncLine::Offline { server_down: true, files: 3, last_sync: Some("14:32".into()) };
        assert_eq!(m.status_text(&t), "Serveur de fichiers injoignable");
        assert_eq!(m.detail_lines(&t), ["3 fichiers en attente", "Dernière synchronisation : 14:32"]);
        assert_eq!(m.quota_line(&t).as_deref(), Some("1 Go sur 10 Go (à la dernière synchronisation)"));
        assert_eq!(m.state(), TrayState::Offline);
        m.sync = SyncLine::Offline { server_down: false, files: 0, last_sync: None };
        assert_eq!(m.status_text(&t), "Hors ligne");
        assert!(m.detail_lines(&t).is_empty());
    }

    /// Issue 14, item 10: an ended session offers « Se reconnecter… »; an unreachable login
    /// server does not (nothing to do but wait).
    #[test]
    fn an_ended_session_offers_a_new_login() {
        let ended = TrayModel { account: Some("Alice".into()), sync: SyncLine::Error("login_required".into()), ..Default::default() };
        assert!(ended.needs_login());
        let waiting = TrayModel { sync: SyncLine::Error("login_unreachable".into()), ..ended.clone() };
        assert!(!waiting.needs_login());
        assert!(!TrayModel { account: None, ..ended }.needs_login());
    }

    /// Issue 14, item 3: the login server unreachable reads as "wait", never "log in again".
    #[test]
    fn login_server_unreachable_is_not_an_expired_login() {
        let t = Catalog::load(Lang::Fr);
        let m = TrayModel { account: Some("Alice".into()), sync: SyncLine::Error("login_unreachable".into()), ..Default::default() };
        let text = m.status_text(&t);
        assert!(!text.starts_with("error."), "{text}");
        assert!(!text.contains("expiré") && !text.contains("Reconnectez"), "{text}");
        assert_ne!(text, t.error("login_required"));
    }

    /// Issue 14, item 6: old chat counts are not shown as current while the server is down.
    #[test]
    fn the_chat_line_says_when_the_server_is_down() {
        let t = Catalog::load(Lang::Fr);
        let counts = ChatCounts { total: 4, label: "4".into(), ..Default::default() };
        let mut m = TrayModel { account: Some("Alice".into()), ..Default::default() };
        m.chat = Some(ChatState::Offline { last: Some(counts.clone()), reason: "refused".into() });
        assert_eq!(m.chat_line(&t).as_deref(), Some("Discussion : serveur injoignable (4 non lus au dernier passage)"));
        m.chat = Some(ChatState::Offline { last: None, reason: "refused".into() });
        assert_eq!(m.chat_line(&t).as_deref(), Some("Discussion : hors ligne"));
        m.chat = Some(ChatState::Ready(counts));
        assert_eq!(m.chat_line(&t).as_deref(), Some("Discussion : 4 non lus"));
    }

    /// Issue 15: "Récemment" says who changed what, and counts the unread notifications.
    #[test]
    fn recent_lines_and_the_notice_count_read_plainly() {
        let t = Catalog::load(Lang::Fr);
        let mut m = TrayModel { account: Some("Alice".into()), can_recover: true, ..Default::default() };
        assert_eq!(m.recent_title(&t), "Récemment");
        m.notices = vec!["@bob shared devis.txt with you".into(), "Rappel".into()];
        assert_eq!(m.recent_title(&t), "Récemment (2)");
        let mine = RecentLine { name: "devis.txt".into(), kind: "changed", by: None, time: "14:32".into() };
        assert_eq!(mine.label(&t), "devis.txt — modifié par vous, 14:32");
        let bob = RecentLine { by: Some("Bob".into()), kind: "deleted", ..mine.clone() };
        assert_eq!(bob.label(&t), "devis.txt — supprimé par Bob, 14:32");
        let en = Catalog::load(Lang::En);
        assert_eq!(bob.label(&en), "devis.txt — deleted by Bob, 14:32");
        assert_eq!(m.recent_title(&en), "Recent (2)");
        assert!(menu_text(&"x".repeat(200)).chars().count() <= 70);
    }

    #[test]
    fn the_badge_follows_the_chat() {
        let mut m = TrayModel { account: Some("Alice".into()), ..Default::default() };
        assert_eq!(m.badge(), Badge::None);
        m.chat = Some(ChatState::Ready(ChatCounts { total: 0, dot: true, ..Default::default() }));
        assert_eq!(m.badge(), Badge::Dot);
        m.chat = Some(ChatState::Ready(ChatCounts { total: 120, label: "120".into(), ..Default::default() }));
        assert_eq!(m.badge(), Badge::Count(120));
        let t = Catalog::load(Lang::Fr);
        assert_eq!(m.chat_line(&t).as_deref(), Some("Discussion : 120 non lus"));
    }

    /// Each chat failure has its own plain words (issue 13).
    #[test]
    fn chat_failures_read_plainly() {
        let t = Catalog::load(Lang::Fr);
        let line = |state: ChatState| TrayModel { chat: Some(state), ..Default::default() }.chat_line(&t).unwrap_or_default();
        let failed = |code: &str| ChatState::Failed { code: code.into(), message: String::new() };
        assert_eq!(line(ChatState::Offline { last: None, reason: String::new() }), "Discussion : hors ligne");
        assert_eq!(line(ChatState::Unavailable { reason: String::new(), chat_url: None }), "Ouvrir la discussion");
        assert!(line(failed("chat_login_refused")).starts_with("Discussion : connexion refusée par le serveur"));
        assert!(line(failed("chat_two_factor")).contains("jeton d'accès personnel"));
        assert!(line(failed("chat_token_refused")).contains("jeton d'accès personnel est refusé"));
    }
}
