//! Rocket.Chat unread and mention counts, live, from the one login.
//!
//! The member's Keycloak access token logs in to the chat (`POST /api/v1/login`); the chat's
//! own login token is kept in the secret store under "chat" and renewed silently on 401. The
//! counts follow the official apps' rules ([`counts`]); a DDP websocket keeps them live, so an
//! idle member costs the server nothing but the open socket and its pings.
//!
//! # Public API (stable: the desktop shell builds on it)
//! - [`Chat::start`]`(session) -> `[`ChatHandle`] starts the background task (login, first load,
//!   websocket, reconnects, catch-up, fallback polling). [`Chat::start_with`] takes
//!   [`ChatOptions`]. Needs a tokio runtime. The task stops when the last clone of the handle is
//!   dropped.
//! - [`ChatHandle::counts`]` -> watch::Receiver<`[`ChatState`]`>`: `Loading`, `Ready(ChatCounts)`,
//!   `Offline { last, reason }` (retrying), `Unavailable { reason, chat_url }` (the server has no
//!   access-token login: show the chat link without counts), `NotConfigured` (no chat in the
//!   profile), `Failed { code, message }` (stopped: a new login or token is needed).
//!   Serialized with a `"state"` tag, e.g. `{"state":"ready","total":3,"label":"3",...}`.
//!   The failures a member must act on carry their error code in `Failed`: `chat_login_refused`,
//!   `chat_two_factor`, `chat_token_refused`; the counts carry [`Presence`], how Passerelle's
//!   connection shows the member to colleagues.
//! - [`ChatHandle::events`]` -> broadcast::Receiver<`[`ChatEvent`]`>`: a message the server's own
//!   notification rules chose for the member (its `<userId>/notification` stream: room and user
//!   preferences, threads, @all/@here, highlights), at most once per message.
//! - [`ChatHandle::rest_requests`]: REST requests made so far (the idle cost).
//! - [`fetch_counts`]`(&session)`: one REST load, for the CLI.
//! - [`use_personal_token`]`(&session, user_id, token)` and [`forget`]`(&session)`: the
//!   advanced setting (a personal access token instead of the access-token login).
//! - [`counts::count`], [`ChatCounts`], [`RoomCount`]: the pure counting rules and their result.
//!
//! Presence: Rocket.Chat registers a presence connection ("online") for a websocket login
//! (`apps/meteor/server/startup/presence.ts`; 6.x for `resume` logins, later versions for any),
//! and the member's status is online while any connection is (`ee/packages/presence/src/lib/
//! processConnectionStatus.ts`). There is no login without one, and a member whose connections
//! are all offline gets no notification at all (`shouldNotifyDesktop` in
//! `app/lib/server/functions/notifications/desktop.ts`). So right after its login the socket
//! calls `UserPresence:away` (`apps/meteor/server/methods/userPresence.ts`): colleagues see
//! the member online only when another client of theirs is, e-mail notifications still go out
//! (they are skipped only while online), and the member's own status choice (busy, invisible)
//! still wins. The REST-only CLI registers no connection at all. When the front end knows the
//! OS idle time ([`ChatHandle::set_activity`]), the connection follows it as the official
//! desktop app does: `UserPresence:online` while the member is active, `UserPresence:away` once
//! idle; while the idle time is unknown nothing is changed.
//!
//! Invariants: the counting rules know nothing of HTTP or sockets; tokens are never logged.
pub mod counts;
mod ddp;
mod live;
mod rest;

use std::{
    sync::{atomic::AtomicU64, Arc},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::{broadcast, watch};
use url::Url;

pub use counts::{ChatCounts, Presence, RoomCount, RoomKind};
pub use rest::CredentialKind;

use crate::auth::{AuthError, SecretError, Session};

/// The default fallback polling period: see [`ChatOptions::poll_every`].
pub const POLL_EVERY: Duration = Duration::from_secs(5 * 60);

/// Rocket.Chat's default REST limit per route and IP address: calls per minute.
pub const SERVER_CALLS_PER_MINUTE: u32 = 10;

/// The secret store key of the chat's login token.
pub const SECRET_KEY: &str = crate::auth::secrets::CHAT_KEY;

/// The plain words for a server without access-token login.
pub const UNAVAILABLE: &str = "chat counts unavailable on this server";

#[derive(Debug, Error)]
pub enum ChatError {
    #[error("no chat server is set up for this organisation")]
    NotConfigured,
    #[error("{UNAVAILABLE} ({0}); the chat still opens in the browser")]
    Unavailable(String),
    /// The detail (the server's words, if any) is for the logs.
    #[error("chat login refused by the server (is the Keycloak service set up for access-token login?)")]
    LoginRefused(String),
    #[error("the chat account asks for a second factor at login, which the one login cannot give: use a personal access token (passerelle chat --token-user)")]
    TwoFactorRequired,
    #[error("the chat refused the personal access token: set a new one")]
    PersonalTokenRefused,
    #[error("the chat server asks to slow down; trying again in {} s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    #[error("the chat server cannot be reached: {0}")]
    Network(String),
    #[error("the chat server answered with an error ({status}{})", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Server { status: u16, message: String },
    #[error("the chat server's answer could not be read: {0}")]
    BadAnswer(String),
    /// An answer over `http::JSON_ANSWER_LIMIT`: a broken or hostile server.
    #[error("the chat server's answer is too large: {0}")]
    TooLarge(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Secrets(#[from] SecretError),
}

impl ChatError {
    /// A stable code for scripts and the IPC boundary.
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::NotConfigured => "chat_not_configured",
            ChatError::Unavailable(_) => "chat_unavailable",
            ChatError::LoginRefused(_) => "chat_login_refused",
            ChatError::TwoFactorRequired => "chat_two_factor",
            ChatError::PersonalTokenRefused => "chat_token_refused",
            ChatError::RateLimited { .. } => "rate_limited",
            ChatError::Network(_) => "offline",
            ChatError::Server { .. } => "server_error",
            ChatError::BadAnswer(_) => "bad_answer",
            ChatError::TooLarge(_) => "too_large",
            ChatError::Auth(e) => e.code(),
            ChatError::Secrets(_) => "secrets",
        }
    }
}

/// What the tray shows about the chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ChatState {
    Loading,
    Ready(ChatCounts),
    /// The server cannot be reached; retrying. `last`: the counts known before.
    Offline { last: Option<ChatCounts>, reason: String },
    /// The server has no access-token login: offer the chat link without counts.
    Unavailable { reason: String, chat_url: Option<String> },
    NotConfigured,
    /// Stopped until the member logs in again or sets a new token.
    Failed { code: String, message: String },
}

impl ChatState {
    /// What keeps the counts from the member, as a stable code for the words of the front
    /// ends: `offline` (nothing known yet), `chat_unavailable` (the server has no access-token
    /// login: offer the chat link), `chat_login_refused`, `chat_two_factor` (offer the personal
    /// access token), `chat_token_refused`, or another error's code. `None` when counts show.
    pub fn problem(&self) -> Option<&str> {
        match self {
            ChatState::Offline { last: None, .. } => Some("offline"),
            ChatState::Unavailable { .. } => Some("chat_unavailable"),
            ChatState::Failed { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The counts to show, current or last known.
    pub fn counts(&self) -> Option<&ChatCounts> {
        match self {
            ChatState::Ready(c) => Some(c),
            ChatState::Offline { last, .. } => last.as_ref(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatEventKind {
    /// The message names the member (@user name).
    Mention,
    DirectMessage,
    /// Any other message the server chose to notify (the member's preferences, @all/@here, a
    /// highlighted word, a followed thread).
    Message,
}

/// A message that deserves a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatEvent {
    pub kind: ChatEventKind,
    /// The message's id: one event per message.
    pub message_id: String,
    pub rid: String,
    /// The room's display name (the sender's name for a direct message).
    pub room: String,
    /// The sender's display name.
    pub sender: String,
    /// The start of the message, when the stream carries it.
    pub excerpt: Option<String>,
    /// Where one click opens the room.
    pub url: String,
}

/// Tuning of the live task; the defaults are what the app uses.
#[derive(Debug, Clone)]
pub struct ChatOptions {
    /// First reconnect delay; doubles on each failure, with jitter.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// While the websocket is down, poll `subscriptions.get?updatedSince=` at most this often.
    /// Rocket.Chat limits each route to 10 calls a minute per IP address (`ApiClass.ts`,
    /// `API_Enable_Rate_Limiter_Limit_Calls_Default`), shared by everyone behind one office
    /// NAT: the default keeps a team of 20 at 4 calls a minute.
    pub poll_every: Duration,
    /// A silent websocket is pinged after this long, and dropped after as long again.
    pub socket_idle: Duration,
}

impl Default for ChatOptions {
    fn default() -> Self {
        ChatOptions {
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5 * 60),
            poll_every: POLL_EVERY,
            socket_idle: Duration::from_secs(45),
        }
    }
}

/// The chat's web address from the profile, normalised to end with `/`.
pub fn chat_url(session: &Session) -> Option<Url> {
    session.profile().rocketchat.as_ref().map(with_slash)
}

fn rest_for(session: &Session, requests: Arc<AtomicU64>) -> Result<rest::Rest, ChatError> {
    let base = chat_url(session).ok_or(ChatError::NotConfigured)?;
    Ok(rest::Rest::new(session.clone(), base, requests))
}

/// One REST load of the counts (login first when needed).
pub async fn fetch_counts(session: &Session) -> Result<ChatCounts, ChatError> {
    let rest = rest_for(session, Arc::default())?;
    let page = rest.subscriptions(None).await?;
    let mut ledger = counts::Ledger::default();
    if let Some(creds) = rest.known_credentials().await {
        ledger.set_preferences(creds.preferences());
    }
    ledger.replace_all(&page.update);
    // One REST load registers no presence connection: the member's status is left alone.
    Ok(ledger.counts(rest.base()))
}

/// Uses a personal access token (created in the chat's account settings) instead of the
/// access-token login. It is checked against the server, then kept in the secret store.
pub async fn use_personal_token(session: &Session, user_id: &str, token: &str) -> Result<(), ChatError> {
    let rest = rest_for(session, Arc::default())?;
    rest.use_personal_token(user_id.trim(), token.trim()).await
}

/// Forgets the chat's login token or personal access token.
pub fn forget(session: &Session) -> Result<(), ChatError> {
    session.secrets().delete(rest::SECRET_KEY)?;
    Ok(())
}

/// Logging out of the chat: the login token we obtained is revoked on the server
/// (`POST /api/v1/logout` with it), then forgotten locally whatever the server said, so this
/// works with no session at all (the "please log in again" state) and offline. A personal
/// access token is only forgotten: the member manages it in the chat's settings. True when the
/// server confirmed the revocation.
#[tracing::instrument(skip_all)]
pub async fn logout(http: &reqwest::Client, profile: &crate::config::Profile, store: &crate::auth::SecretStore) -> Result<bool, ChatError> {
    // Revoked whoever it was saved for: logging out leaves no live token behind.
    let saved = store.get_any(rest::SECRET_KEY)?;
    let base = profile.rocketchat.as_ref().map(with_slash);
    let mut revoked = false;
    if let (Some(text), Some(base)) = (saved, base) {
        match serde_json::from_str::<rest::Credentials>(&text) {
            // Only to the server that gave it.
            Ok(creds) if creds.server == base.as_str() && creds.kind == CredentialKind::Login => {
                revoked = rest::logout(http, &base, &creds).await;
            }
            _ => {}
        }
    }
    store.delete(rest::SECRET_KEY)?;
    Ok(revoked)
}

fn with_slash(url: &Url) -> Url {
    let mut url = url.clone();
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// Starts the live counts.
pub struct Chat;

impl Chat {
    pub fn start(session: Session) -> ChatHandle {
        Chat::start_with(session, ChatOptions::default())
    }

    pub fn start_with(session: Session, options: ChatOptions) -> ChatHandle {
        let (state_tx, state_rx) = watch::channel(ChatState::Loading);
        let (events_tx, _) = broadcast::channel(64);
        let (activity_tx, activity_rx) = watch::channel(None);
        let requests = Arc::new(AtomicU64::new(0));
        let task = match rest_for(&session, requests.clone()) {
            Ok(rest) => {
                let live = live::Live::new(Arc::new(rest), state_tx, events_tx.clone(), options, activity_rx);
                Some(tokio::spawn(live.run()))
            }
            Err(_) => {
                let _ = state_tx.send(ChatState::NotConfigured);
                None
            }
        };
        ChatHandle { shared: Arc::new(Shared { state: state_rx, events: events_tx, task, requests, activity: activity_tx }) }
    }
}

/// A handle on the live counts. Clone it freely; dropping the last clone stops the task.
#[derive(Clone)]
pub struct ChatHandle {
    shared: Arc<Shared>,
}

struct Shared {
    state: watch::Receiver<ChatState>,
    events: broadcast::Sender<ChatEvent>,
    task: Option<tokio::task::JoinHandle<()>>,
    requests: Arc<AtomicU64>,
    activity: watch::Sender<Option<Activity>>,
}

/// Whether the member is at the computer, from the OS's idle time (as the official desktop app
/// does with Electron's `powerMonitor.getSystemIdleState`, `src/ui/main/...` of
/// `RocketChat/Rocket.Chat.Electron`: "active" sets online, "idle" and "locked" away).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Used the computer within the idle threshold: the connection says "online".
    Active,
    /// Idle past the threshold, or the screen locked: the connection says "away".
    Idle,
}

/// The drop guard: the background task lives as long as a handle does.
impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl ChatHandle {
    /// What the OS says of the member's activity; `None` when it cannot tell, and then the
    /// connection's presence is left as it is ("away" from its login on).
    pub fn set_activity(&self, activity: Option<Activity>) {
        self.shared.activity.send_if_modified(|current| {
            let changed = *current != activity;
            *current = activity;
            changed
        });
    }

    pub fn counts(&self) -> watch::Receiver<ChatState> {
        self.shared.state.clone()
    }

    pub fn events(&self) -> broadcast::Receiver<ChatEvent> {
        self.shared.events.subscribe()
    }

    /// REST requests made to the chat server since the start.
    pub fn rest_requests(&self) -> u64 {
        self.shared.requests.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback polling of a whole office behind one address stays far below the server's
    /// per-IP, per-route limit (10 calls a minute by default): a team of 20 uses under half.
    #[test]
    fn polling_stays_far_below_the_servers_rate_limit() {
        let team = 20.0;
        let calls_per_minute = team * 60.0 / ChatOptions::default().poll_every.as_secs_f64();
        assert!(calls_per_minute <= f64::from(SERVER_CALLS_PER_MINUTE) / 2.0, "{calls_per_minute} calls a minute");
    }

    #[test]
    fn failures_have_codes_and_plain_words() {
        let refused = ChatError::LoginRefused("500".into());
        assert_eq!(refused.code(), "chat_login_refused");
        assert_eq!(
            refused.to_string(),
            "chat login refused by the server (is the Keycloak service set up for access-token login?)"
        );
        assert_eq!(ChatError::TwoFactorRequired.code(), "chat_two_factor");
        assert!(ChatError::TwoFactorRequired.to_string().contains("--token-user"));
    }
}
