//! Rocket.Chat's realtime API: Meteor's DDP over one websocket (`/websocket`). Connects, logs in
//! with `resume` (the REST login token), declares the connection away (see the chat module's
//! doc on presence), subscribes to the member's `stream-notify-user` streams
//! (`subscriptions-changed`, `notification`) and answers the server's pings. What arrives is
//! handed over as [`Push`]es.
//!
//! Errors follow meteor's `ddp-server` and Rocket.Chat's rate limiter
//! (`apps/meteor/app/lib/server/startup/rateLimiter.ts`): a refused `resume` is a 403
//! Meteor.Error ("You've been logged out by the server"); a rate-limited call or subscription
//! is `too-many-requests` with `details.timeToReset` (ms), which says nothing of the token.
//!
//! TLS goes through rustls with the aws-lc-rs provider and the platform verifier, the same
//! stack as the HTTP client, so the process has one TLS implementation.
use std::{sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{tungstenite::Message, Connector, MaybeTlsStream, WebSocketStream};
use url::Url;

use super::{counts::Presence, rest::Credentials};

/// How long each step of the handshake may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a socket could not be opened or was lost.
#[derive(Debug)]
pub(crate) enum SocketFailure {
    /// The `resume` login was refused: the token is dead, log in again over REST.
    LoginRefused(String),
    /// The server's DDP rate limiter: wait this long, the token is fine.
    RateLimited(Duration),
    /// Anything else: network, protocol, a closed socket. Retry later.
    Lost(String),
}

/// Something the server pushed about the member.
#[derive(Debug)]
pub(crate) enum Push {
    /// `subscriptions-changed`: the action ("inserted", "updated", "removed") and the subscription.
    Subscription { action: String, value: Value },
    /// `notification`: what the server's own rules chose to notify (`notifyDesktopUser` in
    /// `app/lib/server/functions/notifications/desktop.ts`): `{title, text, payload: {_id, rid,
    /// tmid, sender, type, message: {msg}, name}}`.
    Notification { value: Value },
}

/// The streams of `stream-notify-user` the socket follows.
const STREAMS: [&str; 2] = ["subscriptions-changed", "notification"];

/// Reads a DDP error (of a `result` or a `nosub`): rate limit, refused login, or other.
fn ddp_failure(error: &Value, what: &str) -> SocketFailure {
    let reason = error["reason"].as_str().or_else(|| error["message"].as_str()).unwrap_or("refused");
    if error["error"] == "too-many-requests" {
        let wait = error["details"]["timeToReset"].as_u64().unwrap_or(10_000).max(1000);
        return SocketFailure::RateLimited(Duration::from_millis(wait));
    }
    if what == "login" {
        return SocketFailure::LoginRefused(reason.to_string());
    }
    lost(format!("the chat refused the {what}: {reason}"))
}

pub(crate) struct Socket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    user_id: String,
    next_id: u64,
    /// How long a silent socket is trusted before we ping it, and then before we give up.
    idle: Duration,
    pinged: bool,
    /// What the server was told about this connection's presence.
    pub presence: Presence,
}

/// The websocket address for the chat's base URL: `ws(s)://HOST/PATH/websocket`.
pub(crate) fn socket_url(base: &Url) -> Result<Url, String> {
    let mut url = base.join("websocket").map_err(|e| e.to_string())?;
    let scheme = match url.scheme() {
        "https" => "wss",
        "http" => "ws",
        other => return Err(format!("unsupported chat address scheme “{other}”")),
    };
    url.set_scheme(scheme).map_err(|_| "cannot make a websocket address".to_string())?;
    Ok(url)
}

fn tls_connector() -> Result<Connector, String> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_platform_verifier()
        .map_err(|e| e.to_string())?
        .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}

fn lost(e: impl std::fmt::Display) -> SocketFailure {
    SocketFailure::Lost(e.to_string())
}

impl Socket {
    /// Connects, logs in and subscribes; ready to read pushes when this returns.
    pub async fn open(base: &Url, creds: &Credentials, idle: Duration, active: bool) -> Result<Socket, SocketFailure> {
        let url = socket_url(base).map_err(SocketFailure::Lost)?;
        let connector = if url.scheme() == "wss" { Some(tls_connector().map_err(SocketFailure::Lost)?) } else { None };
        let request = url.as_str();
        let (ws, _) = tokio::time::timeout(
            STEP_TIMEOUT,
            tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector),
        )
        .await
        .map_err(|_| lost("the chat's websocket did not answer in time"))?
        .map_err(|e| lost(format!("the chat's websocket cannot be reached: {e}")))?;
        let mut socket = Socket { ws, user_id: creds.user_id.clone(), next_id: 0, idle, pinged: false, presence: Presence::Online };

        socket.send(json!({"msg": "connect", "version": "1", "support": ["1"]})).await?;
        let connected = socket.until(|m| matches!(m["msg"].as_str(), Some("connected" | "failed"))).await?;
        if connected["msg"] == "failed" {
            return Err(lost("the chat server does not speak DDP version 1"));
        }

        let id = socket.call("login", json!([{"resume": creds.auth_token}])).await?;
        let result = socket.until(|m| m["msg"] == "result" && m["id"] == id.as_str()).await?;
        if let Some(error) = result.get("error") {
            return Err(ddp_failure(error, "login"));
        }

        // The login made this connection "online" for colleagues: say it is away at once,
        // unless the OS says the member is at the computer.
        let method = if active { "UserPresence:online" } else { "UserPresence:away" };
        let id = socket.call(method, json!([])).await?;
        let result = socket.until(|m| m["msg"] == "result" && m["id"] == id.as_str()).await?;
        match result.get("error") {
            None => socket.presence = if active { Presence::Online } else { Presence::Away },
            Some(error) if error["error"] == "too-many-requests" => return Err(ddp_failure(error, "presence")),
            Some(error) => {
                tracing::warn!(reason = %error["reason"], "the chat server did not take the away status: the member may show online");
            }
        }

        for stream in STREAMS {
            let id = socket.next_id();
            let event = format!("{}/{stream}", creds.user_id);
            socket.send(json!({"msg": "sub", "id": id, "name": "stream-notify-user", "params": [event, false]})).await?;
            let answer = socket
                .until(|m| {
                    (m["msg"] == "ready" && m["subs"].as_array().is_some_and(|s| s.iter().any(|x| x == id.as_str())))
                        || (m["msg"] == "nosub" && m["id"] == id.as_str())
                })
                .await?;
            if answer["msg"] == "nosub" {
                return Err(ddp_failure(&answer["error"], &format!("{stream} stream")));
            }
        }
        tracing::debug!(presence = ?socket.presence, "chat websocket connected, logged in and subscribed");
        Ok(socket)
    }

    /// Tells the server whether the member is at the computer (`UserPresence:online` or
    /// `UserPresence:away` on this connection). The answer comes later among the pushes, which
    /// skip it: a refusal leaves the presence as the server had it.
    pub async fn declare(&mut self, active: bool) -> Result<(), SocketFailure> {
        let method = if active { "UserPresence:online" } else { "UserPresence:away" };
        self.call(method, json!([])).await?;
        self.presence = if active { Presence::Online } else { Presence::Away };
        tracing::debug!(method, "presence declared");
        Ok(())
    }

    fn next_id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    async fn send(&mut self, value: Value) -> Result<(), SocketFailure> {
        self.ws.send(Message::text(value.to_string())).await.map_err(|e| lost(format!("the chat's websocket failed: {e}")))
    }

    async fn call(&mut self, method: &str, params: Value) -> Result<String, SocketFailure> {
        let id = self.next_id();
        self.send(json!({"msg": "method", "method": method, "params": params, "id": id})).await?;
        Ok(id)
    }

    /// Reads until a message matches, answering pings on the way (handshake only).
    async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> Result<Value, SocketFailure> {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| lost("the chat's websocket did not answer in time"))?;
            let Some(value) = self.frame(frame)? else { continue };
            if value["msg"] == "ping" {
                self.pong(&value).await?;
                continue;
            }
            if wanted(&value) {
                return Ok(value);
            }
        }
    }

    async fn pong(&mut self, ping: &Value) -> Result<(), SocketFailure> {
        let mut pong = json!({"msg": "pong"});
        if let Some(id) = ping.get("id") {
            pong["id"] = id.clone();
        }
        self.send(pong).await
    }

    /// One websocket frame as JSON; `None` for frames to skip (control frames, garbage).
    fn frame(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<Option<Value>, SocketFailure> {
        match frame {
            None => Err(lost("the chat's websocket was closed")),
            Some(Err(e)) => Err(lost(format!("the chat's websocket failed: {e}"))),
            Some(Ok(Message::Close(_))) => Err(lost("the chat server closed the websocket")),
            Some(Ok(Message::Text(text))) => match serde_json::from_str::<Value>(text.as_str()) {
                Ok(v) if v.is_object() => Ok(Some(v)),
                _ => {
                    tracing::warn!(len = text.len(), "ignoring an unreadable frame from the chat server");
                    Ok(None)
                }
            },
            Some(Ok(Message::Binary(_))) => {
                tracing::warn!("ignoring a binary frame from the chat server");
                Ok(None)
            }
            // Pings, pongs and raw frames are handled by tungstenite itself.
            Some(Ok(_)) => Ok(None),
        }
    }

    /// The next push about the member. Answers pings; pings the server itself when the socket
    /// has been silent for `idle`, and gives up after another `idle` without an answer.
    pub async fn next(&mut self) -> Result<Push, SocketFailure> {
        loop {
            let frame = match tokio::time::timeout(self.idle, self.ws.next()).await {
                Ok(frame) => frame,
                Err(_) if self.pinged => return Err(lost("the chat's websocket went silent")),
                Err(_) => {
                    self.pinged = true;
                    self.send(json!({"msg": "ping"})).await?;
                    continue;
                }
            };
            self.pinged = false;
            let Some(value) = self.frame(frame)? else { continue };
            match value["msg"].as_str() {
                Some("ping") => self.pong(&value).await?,
                Some("changed") if value["collection"] == "stream-notify-user" => {
                    if let Some(push) = self.push(&value) {
                        return Ok(push);
                    }
                }
                _ => {}
            }
        }
    }

    fn push(&self, value: &Value) -> Option<Push> {
        let fields = &value["fields"];
        let event = fields["eventName"].as_str()?;
        let stream = event.strip_prefix(self.user_id.as_str()).and_then(|s| s.strip_prefix('/'))?;
        let args = fields["args"].as_array().map(Vec::as_slice);
        match (stream, args) {
            // `notifyUser(uid, 'subscriptions-changed', action, subscription)`.
            ("subscriptions-changed", Some([action, body, ..])) => {
                Some(Push::Subscription { action: action.as_str().unwrap_or_default().to_string(), value: body.clone() })
            }
            // `notifyUser(uid, 'notification', payload)`: one argument.
            ("notification", Some([body, ..])) => Some(Push::Notification { value: body.clone() }),
            (stream, _) => {
                tracing::warn!(stream, "ignoring a chat event without the expected arguments");
                None
            }
        }
    }

    /// Says goodbye politely; errors do not matter any more.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_urls() {
        let u = |s: &str| socket_url(&Url::parse(s).unwrap()).unwrap().to_string();
        assert_eq!(u("https://chat.example.coop/"), "wss://chat.example.coop/websocket");
        assert_eq!(u("http://127.0.0.1:18083/"), "ws://127.0.0.1:18083/websocket");
        assert_eq!(u("https://example.coop/chat/"), "wss://example.coop/chat/websocket");
    }

    #[test]
    fn ddp_errors_are_read() {
        // meteor ddp-rate-limiter's error, as Rocket.Chat sends it.
        let limited = json!({"isClientSafe": true, "error": "too-many-requests",
            "reason": "Error, too many requests. Please slow down. You must wait 7 seconds before trying again.",
            "details": {"timeToReset": 6500}, "errorType": "Meteor.Error"});
        assert!(matches!(ddp_failure(&limited, "login"), SocketFailure::RateLimited(d) if d == Duration::from_millis(6500)));
        let dead = json!({"error": 403, "reason": "You've been logged out by the server. Please log in again."});
        assert!(matches!(ddp_failure(&dead, "login"), SocketFailure::LoginRefused(_)));
        assert!(matches!(ddp_failure(&json!({"error": "not-allowed"}), "notification stream"), SocketFailure::Lost(_)));
    }

    /// The websocket's TLS is built on aws-lc-rs explicitly: no process-wide provider needed,
    /// no second one pulled in.
    #[test]
    fn the_tls_connector_builds() {
        assert!(matches!(tls_connector(), Ok(Connector::Rustls(_))));
    }
}
