//! The member's next meetings, read-only from CalDAV (Nextcloud's `/remote.php/dav` or any
//! CalDAV server), so the tray can offer "join my next meeting".
//!
//! # Public API (stable: the desktop shell builds on it)
//! - [`caldav_root`]`(profile)`: `Profile.caldav`, else `{nextcloud}/remote.php/dav`.
//! - [`CalDav::new`]`(http, root, CalDavAuth)`: one client per member; keep it alive, it caches
//!   the discovery and each calendar's events under its `getctag` / `sync-token`.
//!   [`CalDavAuth::Bearer`] (the login's token, Nextcloud with bearer checking) or
//!   [`CalDavAuth::Basic`] (user + password or app password; [`CalDavAuth::basic_from_store`]
//!   keeps it in the keychain; `CalDavAuth::from(nextcloud.credentials())` reuses what Drive's
//!   Nextcloud connection settled on).
//! - [`next_meetings`]`(&client, &profile, Window) -> Result<Meetings, CalendarError>`: the
//!   occurrences overlapping the window, in start order, recurrences expanded, each a
//!   [`Meeting`] with start, end, title, link and [`MeetingKind`] (`jitsi`, `external`, `none`).
//!   Broken events or calendars become [`Meetings::warnings`]; the rest still shows.
//!   [`Window::next_24h`]`(now)` is the usual window; the time is always passed in.
//! - [`next_meetings_in`]: the same with the member's time zone given (tests, settings).
//! - [`expand`]`(ics, &Window, jitsi, local_tz, calendar)`, [`parse_report`]`(xml, calendar)`,
//!   [`meetings_from`]`(resources, ...)`: the pure parse + expand steps, their work bounded by
//!   [`Limits`] (per event and per refresh; hostile rules become warnings).
//! - [`starting_soon`]`(&meetings, now, &notified)`: the pure "meeting starting in 10 min"
//!   computation; [`StartingSoon`] keeps the notified set so an occurrence fires once.
//! - [`Freshness`]: refresh at most every 5 min, and at once after a wake.
//! - [`Agenda`]`::new(client, profile, tz)` then [`Agenda::tick`]`(now, woke) -> Tick` every
//!   30 s: all of the above in one object for the tray (fresh list when refreshed, meetings
//!   starting soon, refresh error).
//! - [`Meeting::join_url`]`(&profile, JoinOptions)`: the URL to open for a meeting.
//!
//! Invariant: nothing here reads the clock; the window and `now` come from the caller.
mod dav;
mod expand;
mod soon;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use url::Url;

use crate::{
    auth::{AuthError, SecretError, SecretStore, Session},
    config::Profile,
    visio::{self, JoinOptions},
};

pub use dav::{parse_calendars, parse_report, CalDav, CalendarInfo, Resource, Stats};
pub use expand::{classify, expand, expand_with, Budget, Expanded, Limits};
pub use soon::{starting_soon, Freshness, StartingSoon, REFRESH_INTERVAL, SOON, WAKE_GAP};

#[derive(Debug, Error)]
pub enum CalendarError {
    #[error("this organisation has no calendar server in its settings")]
    NotConfigured,
    #[error("no password is saved for the calendar account “{user}”: set PASSERELLE_CALDAV_PASSWORD once")]
    NoPassword { user: String },
    #[error("the calendar server cannot be reached: {0}")]
    Unreachable(String),
    #[error("the calendar server refused the user name or password")]
    BadCredentials,
    /// The calendar server refused the login's token, even a fresh one, while the login itself
    /// is valid: it wants a password of its own (never "log in again").
    #[error("the calendar server does not accept the login; it needs its own password")]
    TokenRefused,
    #[error("the calendar server answered {status} for {what}")]
    Refused { status: u16, what: String },
    #[error("the calendar server's answer could not be read: {0}")]
    Xml(String),
    /// An answer over `http::DAV_ANSWER_LIMIT`: a broken or hostile server.
    #[error("the calendar server's answer is too large: {0}")]
    TooLarge(String),
    #[error("no calendars were found: {0}")]
    Discovery(String),
    /// A link in the server's answer (principal, calendar home) leads to another server: the
    /// next request would carry the member's token or password there.
    #[error("the calendar server sent a link to another server ({origin}); it was not followed")]
    OtherServer { origin: String },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Secrets(#[from] SecretError),
}

impl CalendarError {
    /// A stable code for scripts and the IPC boundary.
    pub fn code(&self) -> &'static str {
        match self {
            CalendarError::NotConfigured => "no_calendar",
            CalendarError::NoPassword { .. } => "no_password",
            CalendarError::Unreachable(_) => "offline",
            CalendarError::BadCredentials => "bad_credentials",
            CalendarError::TokenRefused => "calendar_password_needed",
            CalendarError::Refused { .. } => "refused",
            CalendarError::Xml(_) => "bad_xml",
            CalendarError::TooLarge(_) => "too_large",
            CalendarError::Discovery(_) => "discovery",
            CalendarError::OtherServer { .. } => "other_server",
            CalendarError::Auth(e) => e.code(),
            CalendarError::Secrets(_) => "secrets",
        }
    }
}

/// How to authenticate to the CalDAV server.
#[derive(Clone)]
pub enum CalDavAuth {
    /// The login's access token (Nextcloud with bearer checking on).
    Bearer(Session),
    /// A user name and a password or app password (generic servers, Nextcloud app passwords).
    Basic { user: String, password: String },
}

impl std::fmt::Debug for CalDavAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CalDavAuth::Bearer(s) => f.debug_tuple("Bearer").field(s).finish(),
            CalDavAuth::Basic { user, .. } => f.debug_struct("Basic").field("user", user).finish_non_exhaustive(),
        }
    }
}

/// The keychain entry for Basic credentials.
pub const SECRET_KEY: &str = crate::auth::secrets::CALENDAR_KEY;

/// What is kept: the password and the server it was given for. A password is only ever sent
/// to that server (`server`, an origin), whatever the profile says later.
#[derive(Serialize, Deserialize)]
struct StoredBasic {
    user: String,
    password: String,
    #[serde(default)]
    server: Option<String>,
}

fn origin_of(root: &Url) -> String {
    root.origin().ascii_serialization()
}

impl CalDavAuth {
    /// Basic credentials for `user` on the server at `root`: a given `password` is saved in the
    /// keychain (replacing the old one); without one, the saved password of that same user on
    /// that same server is used.
    pub fn basic_from_store(store: &SecretStore, root: &Url, user: &str, password: Option<&str>) -> Result<CalDavAuth, CalendarError> {
        if let Some(password) = password {
            save_basic(store, root, user, password)?;
            return Ok(CalDavAuth::Basic { user: user.into(), password: password.into() });
        }
        match CalDavAuth::saved_basic(store, root)? {
            Some(CalDavAuth::Basic { user: saved, password }) if saved == user => Ok(CalDavAuth::Basic { user: saved, password }),
            _ => Err(CalendarError::NoPassword { user: user.into() }),
        }
    }

    /// The Basic credentials saved for the server at `root`, if any. A password saved for
    /// another server (or by a version that did not record the server) is not used.
    pub fn saved_basic(store: &SecretStore, root: &Url) -> Result<Option<CalDavAuth>, CalendarError> {
        let stored = store.get_owned(SECRET_KEY)?.and_then(|text| serde_json::from_str::<StoredBasic>(&text).ok());
        Ok(stored
            .filter(|s| s.server.as_deref() == Some(origin_of(root).as_str()))
            .map(|s| CalDavAuth::Basic { user: s.user, password: s.password }))
    }
}

fn save_basic(store: &SecretStore, root: &Url, user: &str, password: &str) -> Result<(), CalendarError> {
    let stored = StoredBasic { user: user.into(), password: password.into(), server: Some(origin_of(root)) };
    let text = serde_json::to_string(&stored).map_err(|e| CalendarError::Xml(e.to_string()))?;
    store.set_owned(SECRET_KEY, &text)?;
    Ok(())
}

/// The calendar server, when it is not the organisation's Nextcloud: such a server does not
/// know the files' app password and rarely takes the login's token, so the member gives it a
/// password of its own, once ([`save_password`]). `None` when the calendar is Nextcloud's (or
/// there is none).
pub fn separate_server(profile: &Profile) -> Option<Url> {
    let root = profile.caldav.as_ref()?;
    match &profile.nextcloud {
        Some(nextcloud) if nextcloud.origin() == root.origin() => None,
        _ => Some(root.clone()),
    }
}

/// What the calendar connection needs from the member, for the settings window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordState {
    /// The calendar is Nextcloud's (or there is none): nothing to enter.
    NotNeeded,
    /// A separate server and no password saved for it.
    Missing,
    /// A password is saved for this server.
    Saved,
}

/// Whether the member has a password to give for the calendar server, and for which user
/// name: the saved one, else the login's user name (`default_user`).
pub fn password_state(store: &SecretStore, profile: &Profile) -> (PasswordState, Option<String>) {
    let Some(root) = separate_server(profile) else { return (PasswordState::NotNeeded, None) };
    match CalDavAuth::saved_basic(store, &root) {
        Ok(Some(CalDavAuth::Basic { user, .. })) => (PasswordState::Saved, Some(user)),
        Ok(_) => (PasswordState::Missing, None),
        Err(e) => {
            tracing::warn!(code = e.code(), "the calendar password could not be read");
            (PasswordState::Missing, None)
        }
    }
}

/// Checks `user` and `password` against the calendar server at `root` (one PROPFIND), and keeps
/// them in the secret store only when the server accepts them: a mistyped password is said at
/// once ([`CalendarError::BadCredentials`]), not at the next refresh.
pub async fn save_password(http: &reqwest::Client, store: &SecretStore, root: &Url, user: &str, password: &str) -> Result<(), CalendarError> {
    let (user, password) = (user.trim(), password.trim_end_matches(['\r', '\n']));
    if user.is_empty() || password.is_empty() {
        return Err(CalendarError::NoPassword { user: user.into() });
    }
    let client = CalDav::new(http.clone(), root.clone(), CalDavAuth::Basic { user: user.into(), password: password.into() });
    client.check().await?;
    save_basic(store, root, user, password)
}

/// How to reach the member's calendar, decided once for both front ends:
/// - a separate calendar server ([`separate_server`]): the password the member gave for it, else
///   the login's token (some servers take it; one that refuses it ends in
///   [`CalendarError::TokenRefused`], "give its password in the settings");
/// - Nextcloud's own calendar: the files' credentials (the bearer token, or the app password
///   from Login Flow v2), never opening a browser from here; before the files' first
///   connection, the login's token.
///
/// `session` may be `None` for a member logged in to Nextcloud alone (Login Flow v2): its app
/// password still opens the calendar.
pub async fn auth_for(
    http: &reqwest::Client,
    profile: &Profile,
    session: Option<&Session>,
    store: &SecretStore,
) -> Result<CalDavAuth, CalendarError> {
    let bearer = || session.map(|s| CalDavAuth::Bearer(s.clone())).ok_or(CalendarError::Auth(AuthError::NotLoggedIn));
    if let Some(root) = separate_server(profile) {
        return match CalDavAuth::saved_basic(store, &root)? {
            Some(saved) => Ok(saved),
            None => bearer(),
        };
    }
    if let Some(base) = &profile.nextcloud {
        let options = crate::drive::nextcloud::ConnectOptions { non_interactive: true, ..Default::default() };
        match crate::drive::nextcloud::connect(http, base, session, store, &options).await {
            Ok(nc) => return Ok(CalDavAuth::from(nc.credentials())),
            Err(e) => tracing::info!(code = e.code(), "no Nextcloud connection yet; the calendar tries the login's token"),
        }
    }
    bearer()
}

/// Nextcloud's calendars take the same credentials as its files: whatever Drive's
/// `drive::nextcloud::connect` settled on (the bearer token, or the Login Flow v2 app password).
impl From<&crate::drive::nextcloud::Credentials> for CalDavAuth {
    fn from(credentials: &crate::drive::nextcloud::Credentials) -> CalDavAuth {
        match credentials {
            crate::drive::nextcloud::Credentials::Bearer(session) => CalDavAuth::Bearer(session.clone()),
            crate::drive::nextcloud::Credentials::AppPassword { login, password } => {
                CalDavAuth::Basic { user: login.clone(), password: password.clone() }
            }
        }
    }
}

/// The CalDAV root for this organisation.
pub fn caldav_root(profile: &Profile) -> Result<Url, CalendarError> {
    if let Some(root) = &profile.caldav {
        return Ok(root.clone());
    }
    let nextcloud = profile.nextcloud.as_ref().ok_or(CalendarError::NotConfigured)?;
    let mut root = nextcloud.clone();
    root.path_segments_mut()
        .map_err(|()| CalendarError::NotConfigured)?
        .pop_if_empty()
        .extend(["remote.php", "dav", ""]);
    Ok(root)
}

/// A span of time, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn new(start: DateTime<Utc>, length: Duration) -> Window {
        Window { start, end: start + length }
    }

    /// The next 24 hours from `now`.
    pub fn next_24h(now: DateTime<Utc>) -> Window {
        Window::new(now, Duration::hours(24))
    }

    pub fn contains(&self, other: &Window) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// True when `[start, end)` overlaps the window; a zero-length event counts at its start.
    pub fn overlaps(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        if end <= start {
            return self.start <= start && start < self.end;
        }
        start < self.end && end > self.start
    }
}

/// What kind of link a meeting has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeetingKind {
    /// A link to the organisation's own Jitsi.
    Jitsi,
    /// Another visio link (any https link).
    External,
    /// No link: not a visio.
    None,
}

impl MeetingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MeetingKind::Jitsi => "jitsi",
            MeetingKind::External => "external",
            MeetingKind::None => "none",
        }
    }
}

/// One occurrence of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meeting {
    /// Stable per occurrence: `UID` + the original start (the `RECURRENCE-ID` for a moved one).
    pub id: String,
    pub uid: String,
    pub title: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub all_day: bool,
    pub link: Option<Url>,
    pub kind: MeetingKind,
    /// The calendar's display name.
    pub calendar: String,
}

impl Meeting {
    /// The URL to open to join: for the organisation's Jitsi, the room with the member's
    /// options (and the title as subject unless one is given); for an external link, the link.
    pub fn join_url(&self, profile: &Profile, mut options: JoinOptions) -> Option<Url> {
        let link = self.link.as_ref()?;
        match (self.kind, profile.jitsi.as_ref()) {
            (MeetingKind::Jitsi, Some(jitsi)) => {
                // The room is what follows the Jitsi base path (Jitsi may live under a path).
                let rest = link.path().strip_prefix(jitsi.path().trim_end_matches('/')).unwrap_or(link.path());
                let room = rest.split('/').find(|s| !s.is_empty())?;
                let room = percent_encoding::percent_decode_str(room).decode_utf8().ok()?;
                if options.subject.is_none() {
                    options.subject = Some(self.title.clone());
                }
                visio::meeting_url(jitsi, &room, &options).ok()
            }
            _ => Some(link.clone()),
        }
    }
}

/// The outcome of a refresh: the meetings, and what had to be skipped, in plain words.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Meetings {
    pub meetings: Vec<Meeting>,
    pub warnings: Vec<String>,
}

/// The member's time zone (IANA), for all-day and floating times; UTC if it cannot be told.
pub fn local_timezone() -> chrono_tz::Tz {
    std::env::var("TZ")
        .ok()
        .and_then(|tz| tz.trim_start_matches(':').parse().ok())
        .or_else(|| iana_time_zone::get_timezone().ok().and_then(|tz| tz.parse().ok()))
        .unwrap_or(chrono_tz::UTC)
}

/// The meetings overlapping `window` from every calendar of the member that holds events, in
/// the machine's time zone (for all-day and floating times). Calendars whose `getctag` /
/// `sync-token` did not change are not downloaded again.
pub async fn next_meetings(client: &CalDav, profile: &Profile, window: Window) -> Result<Meetings, CalendarError> {
    next_meetings_in(client, profile, window, local_timezone()).await
}

/// [`next_meetings`] with the member's time zone given.
pub async fn next_meetings_in(
    client: &CalDav,
    profile: &Profile,
    window: Window,
    local: chrono_tz::Tz,
) -> Result<Meetings, CalendarError> {
    let fetched = client.fetch(window).await?;
    let jitsi = profile.jitsi.clone();
    // Expanding is CPU work (bounded by `Limits`, yet up to a second for hostile rules): off the
    // async runtime, so the tray and the sync keep running meanwhile.
    let resources = fetched.resources;
    let mut out = tokio::task::spawn_blocking(move || meetings_from(&resources, &window, jitsi.as_ref(), local))
        .await
        .map_err(|e| CalendarError::Xml(format!("the events could not be expanded: {e}")))?;
    out.warnings.splice(0..0, fetched.warnings);
    Ok(out)
}

/// The pure step after the download: every resource expanded and classified, sorted. A
/// resource that cannot be read becomes a warning; the others still show. The work of one
/// call is bounded by [`Limits::DEFAULT`].
pub fn meetings_from(resources: &[Resource], window: &Window, jitsi: Option<&Url>, local: chrono_tz::Tz) -> Meetings {
    meetings_from_limited(resources, window, jitsi, local, Limits::DEFAULT)
}

/// [`meetings_from`] with the limits given (tests).
pub fn meetings_from_limited(
    resources: &[Resource],
    window: &Window,
    jitsi: Option<&Url>,
    local: chrono_tz::Tz,
    limits: Limits,
) -> Meetings {
    let mut out = Meetings::default();
    let mut budget = Budget::new(limits);
    for resource in resources {
        match expand_with(&resource.ics, window, jitsi, local, &resource.calendar, &mut budget) {
            Ok(expanded) => {
                out.meetings.extend(expanded.meetings);
                out.warnings.extend(expanded.warnings.into_iter().map(|w| format!("{}: {w}", resource.href)));
            }
            Err(e) => {
                tracing::warn!(href = %resource.href, error = %e, "skipping an unreadable event");
                out.warnings.push(format!("{}: skipped, the event could not be read ({e})", resource.href));
            }
        }
    }
    sort(&mut out.meetings);
    out
}

/// Start order; ties by end, then title, so the list is stable.
pub fn sort(meetings: &mut [Meeting]) {
    meetings.sort_by(|a, b| (a.start, a.end, &a.title, &a.id).cmp(&(b.start, b.end, &b.title, &b.id)));
}

/// What one [`Agenda::tick`] brings the shell.
#[derive(Debug, Clone, Default)]
pub struct Tick {
    /// The fresh list, when a refresh ran and succeeded.
    pub refreshed: Option<Meetings>,
    /// Meetings to announce now ("starting in 10 min"), each occurrence once.
    pub starting: Vec<Meeting>,
    /// A refresh failed; the previous list stays in force.
    pub error: Option<String>,
}

/// The calendar as the tray runs it: call [`Agenda::tick`] every 30 s or so with the time (and
/// `woke` when the OS says the machine woke up). It refreshes at most every
/// [`REFRESH_INTERVAL`], at once after a wake, and announces each meeting once.
#[derive(Debug)]
pub struct Agenda {
    client: CalDav,
    profile: Profile,
    local: chrono_tz::Tz,
    freshness: Freshness,
    soon: StartingSoon,
    current: Meetings,
}

impl Agenda {
    pub fn new(client: CalDav, profile: Profile, local: chrono_tz::Tz) -> Agenda {
        Agenda { client, profile, local, freshness: Freshness::default(), soon: StartingSoon::new(), current: Meetings::default() }
    }

    /// The last list fetched.
    pub fn meetings(&self) -> &Meetings {
        &self.current
    }

    pub fn client(&self) -> &CalDav {
        &self.client
    }

    pub async fn tick(&mut self, now: DateTime<Utc>, woke: bool) -> Tick {
        let mut tick = Tick::default();
        if self.freshness.poll(now, woke) {
            match next_meetings_in(&self.client, &self.profile, Window::next_24h(now), self.local).await {
                Ok(fresh) => {
                    self.freshness.mark(now);
                    self.current = fresh.clone();
                    tick.refreshed = Some(fresh);
                }
                Err(e) => {
                    tracing::warn!(error = %e, code = e.code(), "the calendar could not be refreshed");
                    tick.error = Some(e.to_string());
                }
            }
        }
        tick.starting = self.soon.poll(&self.current.meetings, now);
        tick
    }
}
