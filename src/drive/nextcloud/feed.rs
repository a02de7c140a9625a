//! What changed in the member's space ("Récemment", from the activity app) and what the team
//! asked of them (Nextcloud's notifications), read politely: each answer's `ETag` goes back as
//! `If-None-Match`, so a poll where nothing changed is one request answered 304 with no body.
//!
//! [`Feed::start`] runs the loop: notifications every [`FeedConfig::every`] (5 minutes) while
//! idle, at once after the computer wakes from sleep (the wall clock ran ahead of the monotonic
//! one) or when asked ([`FeedEvent::Wake`]); the recent changes when asked
//! ([`FeedEvent::RefreshRecent`], sent by the front end when a sync brought changes), never on a
//! timer of their own. So the idle cost is one request per 5 minutes.
//!
//! Server facts (observed on Nextcloud 34.0.1, run "recover"):
//! - notifications (`apps/notifications/lib/Controller/EndpointController.php`): `ETag` is
//!   `"md5(json ids)"`, quoted; `If-None-Match` must carry the quotes (an unquoted one gets
//!   200); 304 when equal; 204 when no app sends notifications; `DELETE .../notifications/{id}`
//!   answers 200 `[]`, also for an id that is gone;
//! - activity (`apps/activity/lib/Controller/APIv2Controller.php`): `ETag` is `md5(json ids)`,
//!   unquoted; 304 when equal **and when there is no activity at all**; `user` is who acted,
//!   `object_name` the path from the files root with a leading slash.
use std::time::{Duration, SystemTime};

use reqwest::{header, Method, StatusCode};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, watch};

use super::{
    body_error,
    client::{failure, Nextcloud},
    NextcloudError,
};
use crate::http::{json_limited, JSON_ANSWER_LIMIT};

/// How many changes "Récemment" shows.
pub const RECENT: usize = 5;
/// At most one notifications request per this while idle.
pub const POLL_EVERY: Duration = Duration::from_secs(5 * 60);
/// How often the loop looks at the clocks (no request) to notice a wake from sleep.
pub const TICK: Duration = Duration::from_secs(30);
/// The wall clock running this much ahead of the monotonic clock means the computer slept.
pub const SLEPT: Duration = Duration::from_secs(60);

/// One change in the member's space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub id: i64,
    /// The activity's type: `file_created`, `file_changed`, `file_deleted`, `file_restored`,
    /// `shared_with_by`, ... (the front ends word the ones they know).
    pub kind: String,
    /// From the files root, no leading slash (`Projets/devis.txt`).
    pub path: String,
    /// User id of who made it.
    pub actor: String,
    /// Their display name when the server gives it, else the id.
    pub actor_name: String,
    /// The member made it themself (through sync, the web, ...).
    pub by_me: bool,
    /// Unix seconds.
    pub at: i64,
    /// The server's own sentence, in the server's language (for logs and `--json`).
    pub subject: String,
}

impl Change {
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// One Nextcloud notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub id: i64,
    /// The app that sent it (`files_sharing`, `comments`, `files_reminders`, ...).
    pub app: String,
    /// The server's sentence, in the member's server-side language.
    pub subject: String,
    pub message: String,
    /// Where the server says it leads (opened only on the server's own origin).
    pub link: Option<String>,
    /// Unix seconds.
    pub at: i64,
    /// The file it is about, from the files root, when it names one.
    pub file: Option<String>,
    /// Who caused it, when named.
    pub actor: Option<String>,
}

/// An answer to a conditional request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled<T> {
    /// 304: as the last time.
    Unchanged,
    Changed { etag: Option<String>, items: T },
    /// The app is not there (404, or 204 "no app sends notifications"): stop asking.
    Unavailable,
}

fn ocs_get(nc: &Nextcloud, path: &str) -> reqwest::Url {
    nc.ocs_url(path)
}

fn parse_time(value: &Value) -> i64 {
    value
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

/// The last `limit` changes in the member's files (activity filter `files`), newest first.
pub async fn recent(nc: &Nextcloud, limit: usize, etag: Option<&str>) -> Result<Polled<Vec<Change>>, NextcloudError> {
    let path = format!("apps/activity/api/v2/activity/files?format=json&limit={limit}");
    Ok(match poll(nc, &path, etag).await? {
        // Also what a member with no activity at all gets (APIv2Controller::get).
        Polled::Unchanged if etag.is_none() => Polled::Changed { etag: None, items: Vec::new() },
        Polled::Changed { etag, items } => {
            let me = nc.user();
            Polled::Changed { etag, items: items.iter().filter_map(|a| change(a, me)).take(limit).collect() }
        }
        Polled::Unchanged => Polled::Unchanged,
        Polled::Unavailable => Polled::Unavailable,
    })
}

/// One conditional OCS GET: 304 is `Unchanged`, 204 or 404 (the app is not there) is
/// `Unavailable`, 200 gives the `ocs.data` array and the answer's ETag, as sent.
async fn poll(nc: &Nextcloud, path: &str, etag: Option<&str>) -> Result<Polled<Vec<Value>>, NextcloudError> {
    let url = ocs_get(nc, path);
    let answer = nc
        .send(Method::GET, url.clone(), |b| {
            let b = b.header("OCS-APIRequest", "true").header(header::ACCEPT, "application/json");
            match etag {
                Some(tag) => b.header(header::IF_NONE_MATCH, tag),
                None => b,
            }
        })
        .await?;
    let status = answer.status();
    if status == StatusCode::NOT_MODIFIED {
        return Ok(Polled::Unchanged);
    }
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_FOUND {
        return Ok(Polled::Unavailable);
    }
    if status != StatusCode::OK {
        return Err(failure(answer, url.path()).await);
    }
    let tag = answer.headers().get(header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_string);
    let body: Value = json_limited(answer, JSON_ANSWER_LIMIT).await.map_err(body_error)?;
    Ok(Polled::Changed { etag: tag, items: body["ocs"]["data"].as_array().cloned().unwrap_or_default() })
}

fn change(a: &Value, me: &str) -> Option<Change> {
    if a["object_type"].as_str() != Some("files") {
        return None;
    }
    let path = a["object_name"].as_str()?.trim_matches('/').to_string();
    if path.is_empty() {
        return None;
    }
    let actor = a["user"].as_str().unwrap_or_default().to_string();
    // The rich subject names the actor with a display name ({user} or {actor}) when it is
    // someone else; "You ..." otherwise.
    let params = &a["subject_rich"][1];
    let actor_name = ["user", "actor"]
        .iter()
        .find_map(|k| (params[*k]["type"].as_str() == Some("user")).then(|| params[*k]["name"].as_str()).flatten())
        .unwrap_or(&actor)
        .to_string();
    Some(Change {
        id: a["activity_id"].as_i64().unwrap_or(0),
        kind: a["type"].as_str().unwrap_or_default().to_string(),
        by_me: actor == me,
        actor,
        actor_name,
        path,
        at: parse_time(&a["datetime"]),
        subject: a["subject"].as_str().unwrap_or_default().to_string(),
    })
}

/// The member's notifications, newest first. `etag`: the last answer's, sent back as it came.
pub async fn notifications(nc: &Nextcloud, etag: Option<&str>) -> Result<Polled<Vec<Notice>>, NextcloudError> {
    Ok(match poll(nc, "apps/notifications/api/v2/notifications?format=json", etag).await? {
        Polled::Changed { etag, items } => {
            let mut out: Vec<Notice> = items.iter().filter_map(notice).collect();
            out.sort_by_key(|n| std::cmp::Reverse(n.id));
            Polled::Changed { etag, items: out }
        }
        Polled::Unchanged => Polled::Unchanged,
        Polled::Unavailable => Polled::Unavailable,
    })
}

fn notice(n: &Value) -> Option<Notice> {
    let params = &n["subjectRichParameters"];
    let file = ["file", "share"]
        .iter()
        .find_map(|k| params[*k]["path"].as_str().map(|p| p.trim_matches('/').to_string()))
        .filter(|p| !p.is_empty());
    let actor = ["actor", "user"]
        .iter()
        .find_map(|k| (params[*k]["type"].as_str() == Some("user")).then(|| params[*k]["name"].as_str()).flatten())
        .map(str::to_string);
    Some(Notice {
        id: n["notification_id"].as_i64()?,
        app: n["app"].as_str().unwrap_or_default().to_string(),
        subject: n["subject"].as_str().unwrap_or_default().to_string(),
        message: n["message"].as_str().unwrap_or_default().to_string(),
        link: n["link"].as_str().filter(|l| !l.is_empty()).map(str::to_string),
        at: parse_time(&n["datetime"]),
        file,
        actor,
    })
}

/// Marks a notification read: Nextcloud deletes it (`DELETE .../notifications/{id}`, 200 also
/// when it is already gone).
pub async fn mark_read(nc: &Nextcloud, id: i64) -> Result<(), NextcloudError> {
    let url = ocs_get(nc, &format!("apps/notifications/api/v2/notifications/{id}?format=json"));
    let answer = nc.send(Method::DELETE, url.clone(), |b| b.header("OCS-APIRequest", "true")).await?;
    match answer.status().as_u16() {
        200 | 404 => Ok(()),
        _ => Err(failure(answer, url.path()).await),
    }
}

/// Whether the notifications are due: `every` went by on the monotonic clock, or the wall clock
/// ran [`SLEPT`] ahead of it (the computer slept: the monotonic clock stops meanwhile, so a
/// wake would otherwise wait out the rest of the interval). Pure.
pub fn poll_due(monotonic: Duration, wall: Option<Duration>, every: Duration) -> bool {
    if monotonic >= every {
        return true;
    }
    matches!(wall, Some(w) if w > monotonic + SLEPT)
}

#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub every: Duration,
    pub tick: Duration,
    pub recent: usize,
    /// The highest notification id already announced to this account, as the front end kept it
    /// ([`Marks`]); `None` when this account was never looked at here.
    pub announced: Option<i64>,
}

impl Default for FeedConfig {
    fn default() -> FeedConfig {
        FeedConfig { every: POLL_EVERY, tick: TICK, recent: RECENT, announced: None }
    }
}

/// The notifications to announce, oldest first, and the new mark (the highest id announced or
/// passed over). Nextcloud numbers notifications from one growing counter (an autoincrement
/// column; observed on Nextcloud 34.0.1, run "locknotify": two new ones got 10 and
/// 11 after 1 and 2), so "newer than the mark" is "a higher id": one announced before a restart
/// is never announced again, and one that came while the computer was off is announced at start.
///
/// With no mark (the account's very first look on this computer) nothing is announced: the
/// backlog is the server's history, not news, and a member who installs the app is not greeted
/// by months of old notices; the mark is set (to 0 when there is none yet) so that the next
/// start announces whatever came after this look. Pure.
pub fn to_announce(items: &[Notice], mark: Option<i64>) -> (Vec<Notice>, Option<i64>) {
    let highest = items.iter().map(|n| n.id).max().unwrap_or(0);
    let Some(mark) = mark else { return (Vec::new(), Some(highest)) };
    let mut fresh: Vec<Notice> = items.iter().filter(|n| n.id > mark).cloned().collect();
    fresh.sort_by_key(|n| n.id); // oldest first, as they happened
    (fresh, Some(mark.max(highest)))
}

/// Where the front end keeps each account's mark across restarts: a small JSON map in the data
/// folder (state, not a secret, not a setting the member chose). A missing or damaged file
/// reads as empty: the cost is one start that announces nothing old.
#[derive(Debug, Clone)]
pub struct Marks {
    path: std::path::PathBuf,
}

impl Marks {
    pub fn new(dirs: &crate::paths::Dirs) -> Marks {
        Marks { path: dirs.data.join("notifications-announced.json") }
    }

    /// Whose mark: the user on that server (another account, or the same name on another
    /// server, starts afresh).
    pub fn account(nc: &Nextcloud) -> String {
        format!("{}@{}", nc.user(), nc.base().as_str().trim_end_matches('/'))
    }

    fn all(&self) -> std::collections::BTreeMap<String, i64> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                tracing::warn!(path = %self.path.display(), error = %e, "the notifications mark is unreadable; starting afresh");
                Default::default()
            }),
            Err(_) => Default::default(),
        }
    }

    pub fn get(&self, account: &str) -> Option<i64> {
        self.all().get(account).copied()
    }

    /// Saves atomically (a temporary file renamed over the old one).
    pub fn set(&self, account: &str, mark: i64) -> std::io::Result<()> {
        let mut all = self.all();
        if all.get(account) == Some(&mark) {
            return Ok(());
        }
        all.insert(account.to_string(), mark);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&all).map_err(std::io::Error::other)?)?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// What the loop is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// The computer woke or came back online: look now.
    Wake,
    /// A sync brought changes: read the recent changes again.
    RefreshRecent,
    /// The member opened this notification.
    MarkRead(i64),
}

/// What the tray shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedState {
    pub recent: Vec<Change>,
    pub notifications: Vec<Notice>,
    /// Requests sent so far, and how many of them were answered 304 (the idle-cost figure).
    pub requests: u64,
    pub not_modified: u64,
    /// The highest notification id announced or passed over ([`to_announce`]): the front end
    /// keeps it ([`Marks`]) and gives it back at the next start ([`FeedConfig::announced`]).
    pub announced: Option<i64>,
}

/// The running loop; dropping the handle stops it.
pub struct FeedHandle {
    state: watch::Receiver<FeedState>,
    new: broadcast::Sender<Notice>,
    events: mpsc::UnboundedSender<FeedEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FeedHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FeedHandle {
    pub fn state(&self) -> watch::Receiver<FeedState> {
        self.state.clone()
    }
    /// Notifications newer than the mark ([`FeedConfig::announced`]): those that came while the
    /// app was not running, then each new one once. On an account's first look, none.
    pub fn arrivals(&self) -> broadcast::Receiver<Notice> {
        self.new.subscribe()
    }
    pub fn send(&self, event: FeedEvent) {
        self.events.send(event).ok();
    }
}

pub struct Feed;

impl Feed {
    pub fn start(nc: Nextcloud, config: FeedConfig) -> FeedHandle {
        let (state_tx, state) = watch::channel(FeedState::default());
        let (new, _) = broadcast::channel(64);
        let (events, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(nc, config, state_tx, new.clone(), rx));
        FeedHandle { state, new, events, task }
    }
}

struct Looker {
    nc: Nextcloud,
    config: FeedConfig,
    state: watch::Sender<FeedState>,
    new: broadcast::Sender<Notice>,
    notices_etag: Option<String>,
    recent_etag: Option<String>,
    notices_on: bool,
    recent_on: bool,
    /// The highest id announced or passed over; `None` before the account's first answer.
    mark: Option<i64>,
    start_requests: u64,
}

impl Looker {
    async fn notifications(&mut self) {
        if !self.notices_on {
            return;
        }
        match notifications(&self.nc, self.notices_etag.as_deref()).await {
            Ok(Polled::Unchanged) => {
                tracing::trace!("notifications: unchanged (304)");
                self.state.send_if_modified(|s| {
                    s.not_modified += 1;
                    false
                });
            }
            Ok(Polled::Unavailable) => {
                tracing::info!("the server has no notifications app: not asking again");
                self.notices_on = false;
            }
            Ok(Polled::Changed { etag, items }) => {
                self.notices_etag = etag;
                let (fresh, mark) = to_announce(&items, self.mark);
                self.mark = mark;
                for n in fresh {
                    self.new.send(n).ok();
                }
                self.state.send_if_modified(|s| {
                    let changed = s.notifications != items || s.announced != mark;
                    s.notifications = items;
                    s.announced = mark;
                    changed
                });
            }
            Err(e) => tracing::debug!(code = e.code(), "notifications could not be read: {e}"),
        }
        self.count();
    }

    async fn recent(&mut self) {
        if !self.recent_on {
            return;
        }
        match recent(&self.nc, self.config.recent, self.recent_etag.as_deref()).await {
            Ok(Polled::Unchanged) => {
                self.state.send_if_modified(|s| {
                    s.not_modified += 1;
                    false
                });
            }
            Ok(Polled::Unavailable) => {
                tracing::info!("the server has no activity app: no recent changes");
                self.recent_on = false;
            }
            Ok(Polled::Changed { etag, items }) => {
                self.recent_etag = etag;
                self.state.send_if_modified(|s| {
                    let changed = s.recent != items;
                    s.recent = items;
                    changed
                });
            }
            Err(e) => tracing::debug!(code = e.code(), "recent changes could not be read: {e}"),
        }
        self.count();
    }

    /// Each look is published (a watcher learns that one happened, even when nothing changed;
    /// the tray compares what it shows and redraws nothing then).
    fn count(&self) {
        let requests = self.nc.requests() - self.start_requests;
        self.state.send_modify(|s| s.requests = requests);
    }
}

async fn run(
    nc: Nextcloud,
    config: FeedConfig,
    state: watch::Sender<FeedState>,
    new: broadcast::Sender<Notice>,
    mut events: mpsc::UnboundedReceiver<FeedEvent>,
) {
    let start_requests = nc.requests();
    let mut looker = Looker {
        nc,
        config: config.clone(),
        state,
        new,
        notices_etag: None,
        recent_etag: None,
        notices_on: true,
        recent_on: true,
        mark: config.announced,
        start_requests,
    };
    looker.notifications().await;
    looker.recent().await;
    let mut last = (tokio::time::Instant::now(), SystemTime::now());
    loop {
        let monotonic = last.0.elapsed();
        let wall = SystemTime::now().duration_since(last.1).ok();
        if poll_due(monotonic, wall, config.every) {
            let woke = monotonic < config.every;
            looker.notifications().await;
            if woke {
                // Away for a while: what changed meanwhile too.
                looker.recent().await;
            }
            last = (tokio::time::Instant::now(), SystemTime::now());
            continue;
        }
        let wait = config.tick.min(config.every.saturating_sub(monotonic)).max(Duration::from_millis(10));
        tokio::select! {
            event = events.recv() => match event {
                None => return,
                Some(FeedEvent::Wake) => {
                    looker.notifications().await;
                    looker.recent().await;
                    last = (tokio::time::Instant::now(), SystemTime::now());
                }
                Some(FeedEvent::RefreshRecent) => looker.recent().await,
                Some(FeedEvent::MarkRead(id)) => {
                    match mark_read(&looker.nc, id).await {
                        Ok(()) => {
                            looker.state.send_if_modified(|s| {
                                let before = s.notifications.len();
                                s.notifications.retain(|n| n.id != id);
                                s.notifications.len() != before
                            });
                        }
                        Err(e) => tracing::warn!(code = e.code(), "the notification could not be marked read: {e}"),
                    }
                    looker.count();
                }
            },
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_after_the_interval_or_after_a_sleep_never_sooner() {
        let five = Duration::from_secs(300);
        assert!(!poll_due(Duration::from_secs(30), Some(Duration::from_secs(30)), five));
        assert!(!poll_due(Duration::from_secs(299), Some(Duration::from_secs(301)), five));
        assert!(poll_due(Duration::from_secs(300), Some(Duration::from_secs(300)), five));
        // Suspended for an hour after 30 s: the wall clock is far ahead.
        assert!(poll_due(Duration::from_secs(30), Some(Duration::from_secs(3630)), five));
        // The wall clock set back: no poll before the interval.
        assert!(!poll_due(Duration::from_secs(30), None, five));
    }

    fn n(id: i64) -> Notice {
        Notice { id, app: "files_sharing".into(), subject: format!("n{id}"), message: String::new(), link: None, at: 0, file: None, actor: None }
    }

    /// Issue 15: a share that came while the computer was off is told once at start; the
    /// account's first look tells none of the backlog; nothing is told twice across restarts.
    #[test]
    fn announced_once_newer_than_the_mark_never_the_first_backlog() {
        let ids = |v: Vec<Notice>| v.into_iter().map(|n| n.id).collect::<Vec<_>>();
        // Newest first, as the server lists them.
        let items = [n(9), n(7), n(3)];
        let (fresh, mark) = to_announce(&items, None);
        assert!(fresh.is_empty(), "the first look's backlog is not announced");
        assert_eq!(mark, Some(9));
        let (fresh, mark) = to_announce(&items, Some(3));
        assert_eq!(ids(fresh), [7, 9], "oldest first");
        assert_eq!(mark, Some(9));
        let (fresh, mark) = to_announce(&items, Some(9));
        assert!(fresh.is_empty(), "already announced before the restart");
        assert_eq!(mark, Some(9));
        // Read elsewhere (gone from the list): the mark never goes back.
        let (fresh, mark) = to_announce(&[n(4)], Some(9));
        assert!(fresh.is_empty());
        assert_eq!(mark, Some(9));
        // A first look with nothing: the mark is set, so the next start tells what came after.
        assert_eq!(to_announce(&[], None), (vec![], Some(0)));
        assert_eq!(ids(to_announce(&[n(1)], Some(0)).0), [1]);
    }

    #[test]
    fn marks_are_kept_per_account_and_a_damaged_file_reads_empty() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = crate::paths::Dirs { config: dir.path().join("config"), data: dir.path().join("data"), logs: dir.path().join("logs") };
        let marks = Marks::new(&dirs);
        assert_eq!(marks.get("bob@https://nc.example.coop"), None);
        marks.set("bob@https://nc.example.coop", 12).unwrap();
        marks.set("alice@https://nc.example.coop", 3).unwrap();
        let again = Marks::new(&dirs);
        assert_eq!(again.get("bob@https://nc.example.coop"), Some(12));
        assert_eq!(again.get("alice@https://nc.example.coop"), Some(3));
        assert_eq!(again.get("bob@https://other.example.coop"), None);
        std::fs::write(dirs.data.join("notifications-announced.json"), "{not json").unwrap();
        assert_eq!(again.get("bob@https://nc.example.coop"), None);
    }

    #[test]
    fn a_colleagues_share_reads_as_observed() {
        // The shape observed on Nextcloud 34.0.1 (admin shared a file with alice).
        let n: Value = serde_json::from_str(r#"{"notification_id":6,"app":"files_sharing","user":"alice",
            "datetime":"2026-11-29T22:36:32+00:00","object_type":"activity_notification","object_id":"8337",
            "subject":"@admin shared devis-recover-2.txt with you","message":"","link":"http://127.0.0.1:8034/index.php/apps/files/?dir=/",
            "subjectRich":"{actor} shared {file} with you","subjectRichParameters":{"file":{"type":"file","id":"8337",
            "name":"devis-recover-2.txt","path":"devis-recover-2.txt","link":"http://127.0.0.1:8034/index.php/f/8337"},
            "actor":{"type":"user","id":"admin","name":"admin"}},"messageRich":"","messageRichParameters":[],
            "icon":"","shouldNotify":true,"actions":[]}"#).unwrap();
        let n = notice(&n).unwrap();
        assert_eq!(n.id, 6);
        assert_eq!(n.file.as_deref(), Some("devis-recover-2.txt"));
        assert_eq!(n.actor.as_deref(), Some("admin"));
        assert_eq!(n.at, 1795991792);
    }
}
