//! The background task behind [`super::ChatHandle`]: open the websocket and subscribe, then
//! one full REST load (subscribed first, so nothing falls between the two). While the socket is
//! up, nothing else touches the server. When it drops: reconnect with
//! exponential back-off and jitter, poll `updatedSince` at most every `poll_every` meanwhile,
//! and catch up with `updatedSince` once the socket is back (subscribed first, so that nothing
//! falls between the catch-up and the stream). Notifications come from the server's own
//! `<userId>/notification` stream, so its rules (room and user preferences, threads,
//! @all/@here, highlights) decide, not ours.
use std::{
    collections::{HashSet, VecDeque},
    sync::Arc,
    time::Duration,
};

use rand::Rng;
use serde_json::Value;
use tokio::{
    sync::{broadcast, watch},
    time::Instant,
};

use super::{
    counts::{self, Ledger, Presence, Subscription},
    ddp::{Push, Socket, SocketFailure},
    rest::Rest,
    ChatError, ChatEvent, ChatEventKind, ChatOptions, ChatState, UNAVAILABLE,
};

/// How many message ids are remembered to never notify twice.
const SEEN_CAPACITY: usize = 2048;
/// Excerpts are cut to this many characters.
const EXCERPT_CHARS: usize = 140;
/// A socket that lived this long resets the back-off.
const STABLE: Duration = Duration::from_secs(60);

/// Exponential back-off with "equal jitter": half the delay fixed, half random, so that a
/// hundred members whose server restarts do not all come back in the same second.
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max, failures: 0 }
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn next_delay(&mut self) -> Duration {
        let exp = self.min.saturating_mul(1u32 << self.failures.min(20)).min(self.max);
        self.failures = self.failures.saturating_add(1);
        let half = exp / 2;
        half + half.mul_f64(rand::rng().random_range(0.0..=1.0))
    }
}

/// What to do after an error.
enum Flow {
    /// The error is published; try again after this long.
    Retry(Duration),
    /// Only the websocket must wait this long (the server's DDP rate limit): REST is fine.
    Wait(Duration),
    Stop,
}

/// Message ids already notified, bounded.
#[derive(Default)]
struct Seen {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Seen {
    /// True the first time an id is seen.
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= SEEN_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.order.push_back(id.to_string());
        self.set.insert(id.to_string());
        true
    }
}

pub(crate) struct Live {
    rest: Arc<Rest>,
    state: watch::Sender<ChatState>,
    events: broadcast::Sender<ChatEvent>,
    options: ChatOptions,
    ledger: Ledger,
    /// False until a full load succeeded: the catch-up is then a full load.
    loaded: bool,
    seen: Seen,
    last_rest: Instant,
    /// The member's chat user id, from the credentials of the open socket.
    me: Option<String>,
    /// Since when the socket is down: polling starts only after `poll_every` of that, since a
    /// quick reconnect catches up anyway.
    down_since: Option<Instant>,
    /// What the open socket told the server about the member's presence.
    presence: Presence,
    /// The member's chat user name, to tell mentions from other notifications.
    username: Option<String>,
    /// A live socket dropped and has not come back yet (see `confirm_current`).
    socket_lost: bool,
    /// The member's activity as the front end reads it from the OS (`None`: unknown).
    activity: watch::Receiver<Option<super::Activity>>,
}

impl Live {
    pub fn new(
        rest: Arc<Rest>,
        state: watch::Sender<ChatState>,
        events: broadcast::Sender<ChatEvent>,
        options: ChatOptions,
        activity: watch::Receiver<Option<super::Activity>>,
    ) -> Live {
        Live {
            activity,
            rest,
            state,
            events,
            options,
            ledger: Ledger::default(),
            loaded: false,
            seen: Seen::default(),
            last_rest: Instant::now(),
            me: None,
            down_since: None,
            presence: Presence::Untouched,
            username: None,
            socket_lost: false,
        }
    }

    fn publish(&self, state: ChatState) {
        self.state.send_if_modified(|current| {
            if *current == state {
                false
            } else {
                *current = state;
                true
            }
        });
    }

    fn current_counts(&self) -> counts::ChatCounts {
        let mut counts = self.ledger.counts(self.rest.base());
        counts.presence = self.presence;
        counts
    }

    fn publish_counts(&self) {
        self.publish(ChatState::Ready(self.current_counts()));
    }

    /// The counts again with the connection's new presence, once they are loaded.
    fn republish_presence(&self) {
        if self.loaded {
            self.publish_counts();
        }
    }

    fn last_counts(&self) -> Option<counts::ChatCounts> {
        self.loaded.then(|| self.current_counts())
    }

    /// Publishes what an error means and says whether to go on.
    fn on_error(&self, e: ChatError, backoff: Duration) -> Flow {
        match e {
            ChatError::Unavailable(detail) => {
                tracing::warn!(%detail, "{UNAVAILABLE}");
                self.publish(ChatState::Unavailable {
                    reason: format!("{UNAVAILABLE}: {detail}"),
                    chat_url: Some(self.rest.base().to_string()),
                });
                Flow::Stop
            }
            ChatError::NotConfigured => {
                self.publish(ChatState::NotConfigured);
                Flow::Stop
            }
            ChatError::RateLimited { retry_after } => Flow::Retry(retry_after),
            ChatError::BadAnswer(reason) => {
                tracing::warn!(%reason, "the chat server's answer is unreadable: keeping the last counts");
                let mut counts = self.current_counts();
                counts.degraded = true;
                self.publish(ChatState::Ready(counts));
                Flow::Retry(backoff)
            }
            ChatError::Network(reason) | ChatError::Server { message: reason, .. } => {
                tracing::info!(%reason, "the chat server cannot be reached");
                self.publish(ChatState::Offline { last: self.last_counts(), reason });
                Flow::Retry(backoff)
            }
            ChatError::Auth(e) if !e.needs_login() => {
                self.publish(ChatState::Offline { last: self.last_counts(), reason: e.to_string() });
                Flow::Retry(backoff)
            }
            ChatError::LoginRefused(ref detail) => {
                // Perhaps the chat's identity provider has a hiccup: try again, slowly (the
                // retry costs no Keycloak refresh: see `Rest::login`).
                tracing::warn!(%detail, "{e}");
                self.publish(ChatState::Failed { code: e.code().into(), message: e.to_string() });
                Flow::Retry(self.options.max_backoff)
            }
            e => {
                tracing::warn!(error = %e, "chat counts stopped");
                self.publish(ChatState::Failed { code: e.code().into(), message: e.to_string() });
                Flow::Stop
            }
        }
    }

    /// A live socket dropped and the next one cannot be opened, while counts are shown as
    /// current: one REST catch-up says whether they still are, or publishes `Offline` with
    /// them as the last known (issue 14, item 6: the tray said "3 non lus" as if current while
    /// the server was down). Once per lost socket, so an outage costs one call, and a server
    /// that never passes the websocket is polled as before.
    async fn confirm_current(&mut self) {
        if !self.loaded || !matches!(*self.state.borrow(), ChatState::Ready(_)) {
            return;
        }
        if let Err(e) = self.load().await {
            let _ = self.on_error(e, self.options.poll_every);
        }
    }

    /// A full load, or an `updatedSince` catch-up once loaded.
    async fn load(&mut self) -> Result<(), ChatError> {
        self.last_rest = Instant::now();
        let since = if self.loaded { self.ledger.newest() } else { None };
        let page = self.rest.subscriptions(since).await?;
        if let Some(creds) = self.rest.known_credentials().await {
            self.ledger.set_preferences(creds.preferences());
        }
        if since.is_some() && self.loaded {
            self.ledger.apply(&page.update, &page.remove);
        } else {
            self.ledger.replace_all(&page.update);
        }
        if self.ledger.newest().is_none() {
            // No dated subscription: the server's clock (a second early: `Date` drops the
            // milliseconds) is the next `updatedSince`.
            if let Some(t) = page.server_time {
                self.ledger.mark(t - 1000);
            }
        }
        self.loaded = true;
        self.publish_counts();
        Ok(())
    }

    pub async fn run(mut self) {
        let mut backoff = Backoff::new(self.options.min_backoff, self.options.max_backoff);
        loop {
            let connected_at = Instant::now();
            let mut at_least = Duration::ZERO;
            let mut logged_in = true;
            match self.connected(&mut backoff).await {
                Ok(()) => {}
                Err(Flow::Wait(wait)) => at_least = wait,
                // No credentials (the error is published): a REST load would only log in again.
                Err(Flow::Retry(wait)) => (at_least, logged_in) = (wait, false),
                Err(Flow::Stop) => return,
            }
            if !self.loaded && logged_in {
                // No socket yet and nothing shown: load over REST rather than wait for it.
                if let Err(e) = self.load().await {
                    if let Flow::Stop = self.on_error(e, Duration::ZERO) {
                        return;
                    }
                }
            }
            self.down_since.get_or_insert_with(Instant::now);
            if connected_at.elapsed() >= STABLE {
                backoff.reset();
            }
            let wake = Instant::now() + backoff.next_delay().max(at_least);
            if let Flow::Stop = self.wait_polling(wake).await {
                return;
            }
        }
    }

    /// Opens the socket and serves it until it drops. `Err(Stop)` ends the task.
    async fn connected(&mut self, backoff: &mut Backoff) -> Result<(), Flow> {
        let mut relogged = false;
        let mut socket = loop {
            let creds = match self.rest.credentials().await {
                Ok(c) => c,
                Err(e) => return Err(self.on_error(e, backoff.next_delay())),
            };
            let active = *self.activity.borrow_and_update() == Some(super::Activity::Active);
            match Socket::open(self.rest.base(), &creds, self.options.socket_idle, active).await {
                Ok(socket) => {
                    self.me = Some(creds.user_id.clone());
                    self.down_since = None;
                    self.socket_lost = false;
                    self.presence = socket.presence;
                    self.username = creds.username.clone();
                    self.ledger.set_preferences(creds.preferences());
                    break socket;
                }
                Err(SocketFailure::RateLimited(wait)) => {
                    // The server's DDP rate limiter, not a dead token: wait, keep the login.
                    tracing::info!(wait_ms = wait.as_millis() as u64, "the chat's websocket asks to slow down");
                    return Err(Flow::Wait(wait));
                }
                Err(SocketFailure::LoginRefused(reason)) if !relogged => {
                    tracing::info!(%reason, "the chat's websocket refused our login token");
                    relogged = true;
                    if let Err(e) = self.rest.relogin_after(&creds.auth_token).await {
                        return Err(self.on_error(e, backoff.next_delay()));
                    }
                }
                Err(SocketFailure::LoginRefused(reason) | SocketFailure::Lost(reason)) => {
                    tracing::info!(%reason, "the chat's websocket is not available");
                    // A live socket just dropped and cannot come back: is the server down?
                    if std::mem::take(&mut self.socket_lost) {
                        self.confirm_current().await;
                    }
                    return Ok(());
                }
            }
        };
        // Subscribed: now load, or catch up with what happened while the socket was down.
        let mut catch_up: Option<Instant> = Some(Instant::now());
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        loop {
            tokio::select! {
                push = socket.next() => match push {
                    Ok(push) => self.on_push(push),
                    Err(failure) => {
                        tracing::info!(?failure, "the chat's websocket dropped");
                        self.presence = Presence::Untouched;
                        self.socket_lost = true;
                        return Ok(());
                    }
                },
                changed = self.activity.changed() => {
                    if changed.is_err() {
                        // The handle is gone; the task is being stopped.
                        return Err(Flow::Stop);
                    }
                    let activity = *self.activity.borrow_and_update();
                    // Unknown: the presence is left as it is.
                    if let Some(activity) = activity {
                        let active = activity == super::Activity::Active;
                        if let Err(failure) = socket.declare(active).await {
                            tracing::info!(?failure, "the chat's websocket dropped");
                            self.presence = Presence::Untouched;
                            self.socket_lost = true;
                            return Ok(());
                        }
                        self.presence = socket.presence;
                        self.republish_presence();
                    }
                }
                _ = tokio::time::sleep_until(catch_up.unwrap_or(far)), if catch_up.is_some() => {
                    catch_up = match self.load().await {
                        Ok(()) => None,
                        Err(e) => match self.on_error(e, self.options.poll_every) {
                            Flow::Retry(after) | Flow::Wait(after) => Some(Instant::now() + after),
                            Flow::Stop => {
                                socket.close().await;
                                return Err(Flow::Stop);
                            }
                        },
                    };
                }
            }
        }
    }

    /// Waits until `wake`, polling `updatedSince` when both the last REST load and the loss of
    /// the socket are older than `poll_every` (the websocket is down: this is the fallback).
    async fn wait_polling(&mut self, wake: Instant) -> Flow {
        loop {
            let down_since = self.down_since.unwrap_or_else(Instant::now);
            let poll_at = self.last_rest.max(down_since) + self.options.poll_every;
            if poll_at >= wake {
                tokio::time::sleep_until(wake).await;
                return Flow::Retry(Duration::ZERO);
            }
            tokio::time::sleep_until(poll_at).await;
            if let Err(e) = self.load().await {
                match self.on_error(e, self.options.poll_every) {
                    Flow::Stop => return Flow::Stop,
                    // `load` moved `last_rest`: the next poll is a period away (or after Retry-After).
                    Flow::Retry(after) | Flow::Wait(after) => {
                        self.last_rest = Instant::now() + after.saturating_sub(self.options.poll_every)
                    }
                }
            }
        }
    }

    fn on_push(&mut self, push: Push) {
        match push {
            Push::Subscription { action, value } => {
                if action == "removed" {
                    self.ledger.remove(&value);
                } else {
                    self.ledger.upsert(&value);
                }
                if self.loaded {
                    self.publish_counts();
                }
            }
            Push::Notification { value } => self.on_notification(&value),
        }
    }

    /// The server chose to notify the member of a message.
    fn on_notification(&mut self, value: &Value) {
        let Some(event) = notification(value, self.me.as_deref(), self.username.clone(), &self.ledger, self.rest.base()) else {
            tracing::warn!("ignoring an unreadable notification from the chat server");
            return;
        };
        if !self.seen.insert(&event.message_id) {
            return;
        }
        tracing::debug!(kind = ?event.kind, rid = %event.rid, "new chat notification");
        // No receiver is fine: nobody listens to notifications right now.
        let _ = self.events.send(event);
    }
}

/// The event for one `notification` push (`notifyDesktopUser` in `app/lib/server/functions/
/// notifications/desktop.ts`: `{title, text, payload: {_id, rid, tmid, sender: {_id, username,
/// name}, type, message: {msg}, name}}`). The server already applied its rules; this only
/// names the kind: a direct message, a mention of `username`, or another message.
pub(crate) fn notification(value: &Value, me: Option<&str>, username: Option<String>, ledger: &Ledger, base: &url::Url) -> Option<ChatEvent> {
    let payload = value.get("payload")?;
    let message_id = payload.get("_id")?.as_str().filter(|id| !id.is_empty())?.to_string();
    let rid = payload.get("rid")?.as_str().filter(|rid| !rid.is_empty())?.to_string();
    let sender = payload.get("sender")?;
    if me.is_some() && sender.get("_id").and_then(Value::as_str) == me {
        return None;
    }
    let t = payload.get("type").and_then(Value::as_str).unwrap_or_default();
    let msg = payload.get("message").and_then(|m| m.get("msg")).and_then(Value::as_str).unwrap_or_default();
    let mentioned = username.is_some_and(|u| {
        msg.split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '!' | '?' | '(' | ')'))
            .any(|word| word.strip_prefix('@').is_some_and(|w| w.trim_end_matches('.') == u))
    });
    let kind = if t == "d" {
        ChatEventKind::DirectMessage
    } else if mentioned {
        ChatEventKind::Mention
    } else {
        ChatEventKind::Message
    };
    let sender_name = sender
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .or_else(|| sender.get("username").and_then(Value::as_str))
        .unwrap_or_default()
        .to_string();
    let sub = ledger.get(&rid);
    let room_name = match (sub, kind) {
        (Some(s), _) => s.display_name(),
        (None, ChatEventKind::DirectMessage) => sender_name.clone(),
        (None, _) => payload.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
    };
    let url = match sub {
        Some(s) => counts::room_url(base, s),
        None => {
            let stub = Subscription {
                id: None,
                rid: rid.clone(),
                kind: counts::RoomKind::from_code(t),
                name: payload.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                fname: None,
                unread: 0,
                user_mentions: 0,
                group_mentions: 0,
                thread_unread: 0,
                thread_user_mentions: 0,
                thread_group_mentions: 0,
                alert: false,
                unread_alert: counts::UnreadAlert::Default,
                open: true,
                hide_unread_status: false,
                hide_mention_status: false,
                archived: false,
                updated_at: None,
                degraded: false,
            };
            counts::room_url(base, &stub)
        }
    };
    let excerpt = Some(msg).filter(|m| !m.is_empty()).map(|m| {
        let mut cut: String = m.chars().take(EXCERPT_CHARS).collect();
        if m.chars().count() > EXCERPT_CHARS {
            cut.push('…');
        }
        cut
    });
    Some(ChatEvent { kind, message_id, rid, room: room_name, sender: sender_name, excerpt, url })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn base() -> url::Url {
        url::Url::parse("https://chat.example.coop/").unwrap()
    }

    /// A `notification` push as `desktop.ts` builds it.
    fn push(t: &str, from: &str, msg: &str) -> Value {
        json!({"title": "#general", "text": msg, "payload": {
            "_id": "M1", "rid": "R1", "tmid": null, "type": t, "name": "general",
            "sender": {"_id": from, "username": from, "name": format!("{from} name")},
            "message": {"msg": msg}
        }})
    }

    #[test]
    fn which_kind_of_notification() {
        let ledger = Ledger::default();
        let n = |v: &Value| notification(v, Some("me"), Some("alice".into()), &ledger, &base()).map(|e| e.kind);
        assert_eq!(n(&push("c", "bob", "@alice tu as vu ?")), Some(ChatEventKind::Mention));
        assert_eq!(n(&push("c", "bob", "merci @alice.")), Some(ChatEventKind::Mention));
        assert_eq!(n(&push("c", "bob", "@alicette regarde")), Some(ChatEventKind::Message), "another name");
        assert_eq!(n(&push("c", "bob", "@all réunion")), Some(ChatEventKind::Message));
        assert_eq!(n(&push("d", "bob", "coucou")), Some(ChatEventKind::DirectMessage));
        assert_eq!(n(&push("c", "me", "@alice")), None, "my own message");
        assert_eq!(n(&json!({"payload": "x"})), None, "garbage");
        assert_eq!(n(&json!({"payload": {"_id": "", "rid": "R1", "sender": {}}})), None, "omnichannel sends no _id");

        let event = notification(&push("d", "bob", "hello"), Some("me"), None, &ledger, &base()).unwrap();
        assert_eq!((event.room.as_str(), event.sender.as_str()), ("bob name", "bob name"));
        assert_eq!(event.url, "https://chat.example.coop/direct/R1");
        assert_eq!(event.excerpt.as_deref(), Some("hello"));
        let event = notification(&push("p", "bob", "hello"), Some("me"), None, &ledger, &base()).unwrap();
        assert_eq!((event.room.as_str(), event.url.as_str()), ("general", "https://chat.example.coop/group/general"));
    }

    #[test]
    fn seen_is_bounded_and_dedupes() {
        let mut seen = Seen::default();
        assert!(seen.insert("a"));
        assert!(!seen.insert("a"));
        for i in 0..SEEN_CAPACITY {
            seen.insert(&i.to_string());
        }
        assert!(seen.order.len() <= SEEN_CAPACITY);
        assert!(seen.insert("a"), "forgotten after capacity");
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let delays: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        for (d, exp) in delays.iter().zip([1u64, 2, 4, 8, 8, 8]) {
            let exp = Duration::from_secs(exp);
            assert!(*d >= exp / 2 && *d <= exp, "{d:?} for {exp:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }
}
