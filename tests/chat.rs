//! Chat counts end to end: a real Keycloak login through Chromium, then the chat login with the
//! access token against the Rocket.Chat test double (tests/servers/rocketchat.py, which checks
//! the token at the real Keycloak's userinfo), the counts, the live websocket, the faults.
//!
//! Each test starts its own copy of the test double on port 0, so that faults and counts of one
//! test cannot disturb another; the stack's copy (PASSERELLE_TEST_ROCKETCHAT) is left to the
//! desktop shell's tests and to manual use.
//!
//! `PASSERELLE_CHAT_IDLE_SECS` sets the idle window of `idle_costs_no_rest_requests` (default 5;
//! 300 for the five-minute figure of the issue).
mod support;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use passerelle::{
    auth::Session,
    chat::{self, Chat, ChatEvent, ChatEventKind, ChatHandle, ChatOptions, ChatState, RoomKind},
    config::Profile,
};
use serde_json::{json, Value};
use support::Home;
use tokio::{sync::broadcast, time::timeout};

/// A private copy of the Rocket.Chat test double.
struct TestServer {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestServer {
    fn start(extra: &[&str]) -> TestServer {
        let mut child = Command::new(support::env("PASSERELLE_TEST_PYTHON"))
            .arg(support::env("PASSERELLE_TEST_ROCKETCHAT_SERVER"))
            .args(["--port", "0", "--issuer", &support::env("PASSERELLE_TEST_ISSUER"), "--ping-interval", "1", "--ping-timeout", "3"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Rocket.Chat test double");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port line");
        let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("the test double printed {line:?}, not a port"));
        TestServer { child, base: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() }
    }

    fn profile(&self) -> Profile {
        let mut profile = support::profile();
        profile.rocketchat = Some(url::Url::parse(&self.base).expect("url"));
        profile
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let r = self.http.post(format!("{}/_control/{path}", self.base)).json(&body).send().await.expect("control API");
        assert!(r.status().is_success(), "control {path}: {}", r.status());
        r.json().await.expect("control JSON")
    }

    async fn room(&self, t: &str, name: &str, members: &[&str]) -> String {
        let v = self.control("rooms", json!({"t": t, "name": name, "members": members})).await;
        v["rid"].as_str().expect("rid").to_string()
    }

    async fn post(&self, rid: &str, from: &str, text: &str) -> String {
        let v = self.control("messages", json!({"rid": rid, "from": from, "text": text})).await;
        v["_id"].as_str().expect("message id").to_string()
    }

    async fn fault(&self, body: Value) {
        self.control("faults", body).await;
    }

    async fn stats(&self) -> Value {
        self.http.get(format!("{}/_control/stats", self.base)).send().await.expect("stats").json().await.expect("JSON")
    }

    /// REST requests `user` made to the API, all endpoints together.
    async fn rest_requests(&self, user: &str) -> u64 {
        let stats = self.stats().await;
        stats["requests"].as_object().map(|m| m.values().filter_map(|e| e[user].as_u64()).sum()).unwrap_or(0)
    }

    async fn requests(&self, endpoint: &str, user: &str) -> u64 {
        self.stats().await["requests"][endpoint][user].as_u64().unwrap_or(0)
    }
}

async fn login(server: &TestServer, home: &Home) -> Session {
    support::login_with("alice", "alice-pass-1", home, &server.profile()).await.expect("Keycloak login")
}

/// Fast reconnects and polls, so that fault tests take seconds.
fn quick() -> ChatOptions {
    ChatOptions {
        min_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        poll_every: Duration::from_secs(3),
        socket_idle: Duration::from_secs(5),
    }
}

/// Waits (without polling: the watch channel wakes us) for a state matching `pred`.
async fn wait_state(handle: &ChatHandle, within: Duration, pred: impl Fn(&ChatState) -> bool) -> ChatState {
    let mut rx = handle.counts();
    let found = match timeout(within, rx.wait_for(|s| pred(s))).await {
        Ok(Ok(state)) => Some(state.clone()),
        _ => None,
    };
    found.unwrap_or_else(|| panic!("no matching chat state within {within:?}; last: {:?}", *rx.borrow()))
}

fn total(state: &ChatState) -> Option<u64> {
    match state {
        ChatState::Ready(c) => Some(c.total),
        _ => None,
    }
}

async fn next_event(events: &mut broadcast::Receiver<ChatEvent>, within: Duration) -> ChatEvent {
    timeout(within, events.recv()).await.expect("a notification in time").expect("the event channel")
}

/// The one login, the chat login, the counts by the official rules; then a message arrives
/// live: the count and the notification within a second, without a single REST request.
#[tokio::test(flavor = "multi_thread")]
async fn counts_and_notifications_arrive_live() {
    let server = TestServer::start(&[]);
    let home = support::home();
    let session = login(&server, &home).await;

    let general = server.room("c", "general", &["alice", "bob"]).await;
    let bureau = server.room("p", "bureau", &["alice", "bob"]).await;
    let direct = server.room("d", "", &["alice", "bob"]).await;
    let archived = server.room("c", "old-news", &["alice", "bob"]).await;
    let hidden = server.room("c", "random", &["alice", "bob"]).await;
    for text in ["bonjour", "@alice tu as vu ?", "ok"] {
        server.post(&general, "bob", text).await;
    }
    server.post(&direct, "bob", "un mot privé").await;
    for _ in 0..5 {
        server.post(&archived, "bob", "old").await;
        server.post(&hidden, "bob", "noise").await;
    }
    server.control("subscriptions", json!({"user": "alice", "rid": archived, "set": {"archived": true}})).await;
    server.control("subscriptions", json!({"user": "alice", "rid": hidden, "set": {"hideUnreadStatus": true}})).await;

    // One REST load, as the CLI does.
    let counts = chat::fetch_counts(&session).await.expect("counts");
    assert_eq!((counts.total, counts.label.as_str(), counts.mentions, counts.dot), (4, "4", 2, false));
    let rooms: Vec<(&str, RoomKind, u64, u64)> = counts.rooms.iter().map(|r| (r.name.as_str(), r.kind, r.unread, r.mentions)).collect();
    assert_eq!(rooms, vec![("general", RoomKind::Channel, 3, 1), ("Bob", RoomKind::Direct, 1, 1)]);
    assert_eq!(counts.rooms[0].url, format!("{}/channel/general", server.base));
    assert_eq!(counts.rooms[1].url, format!("{}/direct/{direct}", server.base));
    // The chat login is in the secret store, not a second login.
    let saved: Value = serde_json::from_str(&home.secrets().get("chat").expect("store").expect("chat secret")).expect("JSON");
    assert!(saved["user_id"].is_string() && saved["auth_token"].is_string(), "{saved:?}");
    assert_eq!(server.requests("POST /api/v1/login", "alice").await, 1);

    // Live.
    let handle = Chat::start_with(session.clone(), quick());
    let mut events = handle.events();
    wait_state(&handle, Duration::from_secs(10), |s| total(s) == Some(4)).await;
    wait_for_socket(&server, "alice").await;
    let before = server.rest_requests("alice").await;
    let handle_before = handle.rest_requests();

    let posted_at = tokio::time::Instant::now();
    let id = server.post(&bureau, "bob", "@alice peux-tu relire le budget avant jeudi ?").await;
    let state = wait_state(&handle, Duration::from_secs(1), |s| total(s) == Some(5)).await;
    let event = next_event(&mut events, Duration::from_secs(1)).await;
    let latency = posted_at.elapsed();
    assert_eq!(state.counts().map(|c| c.mentions), Some(3));
    assert_eq!(event.kind, ChatEventKind::Mention);
    assert_eq!(event.message_id, id, "the first event is the live message, nothing from the first load");
    assert_eq!((event.room.as_str(), event.sender.as_str()), ("bureau", "Bob"));
    assert_eq!(event.excerpt.as_deref(), Some("@alice peux-tu relire le budget avant jeudi ?"));
    assert_eq!(event.url, format!("{}/group/bureau", server.base));
    eprintln!("message to count and notification: {latency:?}");

    // The room is sent again unchanged (an edit, a reaction): no second notification. A
    // direct message then notifies, and is the very next event.
    server.control("touch", json!({"rid": bureau})).await;
    let dm = server.post(&direct, "bob", "tu es là ?").await;
    let event = next_event(&mut events, Duration::from_secs(1)).await;
    assert_eq!((event.kind, event.message_id.as_str(), event.room.as_str()), (ChatEventKind::DirectMessage, dm.as_str(), "Bob"));
    // A message that does not concern Alice counts but does not notify.
    server.post(&general, "bob", "rien de spécial").await;
    wait_state(&handle, Duration::from_secs(1), |s| total(s) == Some(7)).await;
    assert!(events.try_recv().is_err(), "no notification for a plain channel message");

    assert_eq!(server.rest_requests("alice").await, before, "live updates came over the socket, not REST");
    assert_eq!(handle.rest_requests(), handle_before);

    // The CLI reads the same counts with the saved chat login.
    let out = support::cli(&home).args(["chat", "--json"]).output().expect("run passerelle");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!((v["state"].as_str(), v["total"].as_u64(), v["mentions"].as_u64()), (Some("ready"), Some(7), Some(4)), "{v}");
    assert_eq!(server.requests("POST /api/v1/login", "alice").await, 1, "the CLI reused the saved chat login");
    let out = support::cli(&home).args(["chat"]).output().expect("run passerelle");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("7 unread, 4 mentions"), "{text}");
    assert!(text.contains("/group/bureau"), "{text}");
}

/// The next line matching `pred` within 15 s.
async fn next_matching(lines: &mut tokio::sync::mpsc::UnboundedReceiver<Value>, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(deadline, lines.recv()).await {
            Ok(Some(v)) if pred(&v) => return v,
            Ok(Some(_)) => continue,
            _ => panic!("no {what} line from passerelle chat --watch"),
        }
    }
}

async fn wait_for_socket(server: &TestServer, user: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.stats().await["sockets"][user].as_u64().unwrap_or(0) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no websocket for {user}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The socket drops without a goodbye; a message arrives meanwhile; the client reconnects and
/// catches up with `updatedSince`. Garbage frames on the socket are shrugged off.
#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_socket_reconnects_and_catches_up() {
    let server = TestServer::start(&[]);
    let home = support::home();
    let session = login(&server, &home).await;
    let general = server.room("c", "general", &["alice", "bob"]).await;
    server.post(&general, "bob", "one").await;
    let handle = Chat::start_with(session, quick());
    wait_state(&handle, Duration::from_secs(10), |s| total(s) == Some(1)).await;
    wait_for_socket(&server, "alice").await;

    server.fault(json!({"malformed_frames": "alice"})).await;
    server.post(&general, "bob", "two").await;
    let state = wait_state(&handle, Duration::from_secs(2), |s| total(s) == Some(2)).await;
    assert!(state.counts().is_some_and(|c| c.degraded), "the garbage subscription marks the counts degraded");
    assert_eq!(server.stats().await["connects"]["alice"], 1, "garbage frames did not cost the socket");

    server.fault(json!({"drop_sockets": "alice"})).await;
    server.post(&general, "bob", "three").await;
    server.post(&general, "bob", "four").await;
    wait_state(&handle, Duration::from_secs(10), |s| total(s) == Some(4)).await;
    let stats = server.stats().await;
    assert!(stats["connects"]["alice"].as_u64() >= Some(2), "{stats}");
    let catch_ups = stats["log"]
        .as_array()
        .expect("log")
        .iter()
        .filter(|e| e["request"] == "GET /api/v1/subscriptions.get" && e["query"].as_str().is_some_and(|q| q.contains("updatedSince")))
        .count();
    assert!(catch_ups >= 1, "caught up with updatedSince: {stats}");
    // Live again after the reconnect.
    server.post(&general, "bob", "five").await;
    wait_state(&handle, Duration::from_secs(1), |s| total(s) == Some(5)).await;
}

/// The server answers 429 with Retry-After: the client waits at least that long before asking
/// again, then catches up.
#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_respected() {
    let server = TestServer::start(&[]);
    let home = support::home();
    let session = login(&server, &home).await;
    let general = server.room("c", "general", &["alice", "bob"]).await;
    let handle = Chat::start_with(session, quick());
    wait_state(&handle, Duration::from_secs(10), |s| total(s) == Some(0)).await;
    wait_for_socket(&server, "alice").await;

    server.fault(json!({"rate_limit": {"endpoint": "subscriptions.get", "count": 1, "retry_after": 2}})).await;
    server.fault(json!({"drop_sockets": "alice"})).await;
    server.post(&general, "bob", "pendant la coupure").await;
    wait_state(&handle, Duration::from_secs(15), |s| total(s) == Some(1)).await;

    let stats = server.stats().await;
    let times: Vec<f64> = stats["log"]
        .as_array()
        .expect("log")
        .iter()
        .filter(|e| e["request"] == "GET /api/v1/subscriptions.get")
        .filter_map(|e| e["t"].as_f64())
        .collect();
    // The first load, the limited catch-up, the retry.
    assert!(times.len() >= 3, "{stats}");
    let gap = times[2] - times[1];
    assert!(gap >= 1.9, "the retry came {gap:.2} s after the 429, before Retry-After (2 s)");
    eprintln!("retry {gap:.2} s after a 429 with Retry-After: 2");

    // A cut-off answer: a warning, the last counts kept (degraded), and a later retry.
    server.fault(json!({"malformed_rest": {"endpoint": "subscriptions.get", "count": 1}})).await;
    server.fault(json!({"drop_sockets": "alice"})).await;
    server.post(&general, "bob", "encore").await;
    wait_state(&handle, Duration::from_secs(15), |s| total(s) == Some(2)).await;
}

/// When the websocket cannot be opened (a proxy that does not pass it), the counts still
/// follow by polling `updatedSince`, no more often than `poll_every`.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_websocket_the_counts_are_polled_gently() {
    let server = TestServer::start(&[]);
    let home = support::home();
    let session = login(&server, &home).await;
    let general = server.room("c", "general", &["alice", "bob"]).await;
    server.fault(json!({"refuse_sockets": true})).await;
    let handle = Chat::start_with(session, quick());
    wait_state(&handle, Duration::from_secs(10), |s| total(s) == Some(0)).await;
    server.post(&general, "bob", "par sondage").await;
    wait_state(&handle, Duration::from_secs(8), |s| total(s) == Some(1)).await;
    server.post(&general, "bob", "encore").await;
    wait_state(&handle, Duration::from_secs(8), |s| total(s) == Some(2)).await;

    let stats = server.stats().await;
    assert!(stats["connects"]["alice"].is_null(), "no socket was ever opened: {stats}");
    let times: Vec<f64> = stats["log"]
        .as_array()
        .expect("log")
        .iter()
        .filter(|e| e["request"] == "GET /api/v1/subscriptions.get")
        .filter_map(|e| e["t"].as_f64())
        .collect();
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| *g >= 2.9), "polls closer than poll_every (3 s): {gaps:?}");
    eprintln!("polls without a websocket, seconds apart: {gaps:.2?}");
}

/// `passerelle chat --watch --json` against the stack's test double: a state line, then the
/// notification line of a new mention.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_watches_live() {
    let control = support::env("PASSERELLE_TEST_ROCKETCHAT_CONTROL");
    let http = reqwest::Client::new();
    let home = support::home();
    let _session = support::login("alice", "alice-pass-1", &home).await;
    let name = format!("watch-{}", std::process::id());
    let room: Value = http
        .post(format!("{control}/rooms"))
        .json(&json!({"t": "c", "name": name, "members": ["alice", "bob"]}))
        .send()
        .await
        .expect("control")
        .json()
        .await
        .expect("JSON");
    let rid = room["rid"].as_str().expect("rid").to_string();

    let mut child = support::cli(&home)
        .args(["chat", "--watch", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run passerelle chat --watch");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    next_matching(&mut lines, "ready state", |v| v["type"] == "state" && v["state"]["state"] == "ready").await;
    // The socket is up once the state is ready (subscribed before the load).
    let posted: Value = http
        .post(format!("{control}/messages"))
        .json(&json!({"rid": rid, "from": "bob", "text": "@alice regarde ça"}))
        .send()
        .await
        .expect("control")
        .json()
        .await
        .expect("JSON");
    let event = next_matching(&mut lines, "event", |v| v["type"] == "event" && v["event"]["rid"] == rid.as_str()).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(event["event"]["kind"], "mention");
    assert_eq!(event["event"]["message_id"], posted["_id"]);
    assert_eq!(event["event"]["excerpt"], "@alice regarde ça");
}

/// The chat's login token dies (sockets closed, REST says 401, resume is refused): the client
/// logs in again with the access token, silently, and the counts go on.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_chat_token_gives_a_silent_relogin() {
    let server = TestServer::start(&[]);
    let home = support::home();
    let session = login(&server, &home).await;
    let general = server.room("c", "general", &["alice", "bob"]).await;
    let handle = Chat::start_with(session.clone(), quick());
    wait_state(&handle, Duration::from_secs(10), |s| total(s) == Some(0)).await;
    wait_for_socket(&server, "alice").await;
    assert_eq!(server.requests("POST /api/v1/login", "alice").await, 1);

    server.fault(json!({"expire_tokens": "alice"})).await;
    server.post(&general, "bob", "après l'expiration").await;
    wait_state(&handle, Duration::from_secs(10), |s| total(s) == Some(1)).await;
    assert_eq!(server.requests("POST /api/v1/login", "alice").await, 2, "one silent re-login");
    server.post(&general, "bob", "en direct").await;
    wait_state(&handle, Duration::from_secs(1), |s| total(s) == Some(2)).await;

    // The one-shot load too: 401, re-login, answer (the live task stopped, not to race it).
    drop(handle);
    server.fault(json!({"expire_tokens": "alice"})).await;
    let counts = chat::fetch_counts(&session).await.expect("counts after a re-login");
    assert_eq!(counts.total, 2);
    assert_eq!(server.requests("POST /api/v1/login", "alice").await, 3);
}

/// A server without the access-token login: a clear "unavailable" state, not an error; the
/// personal access token is the way around it.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_access_token_login_is_unavailable() {
    let server = TestServer::start(&["--no-access-token-login"]);
    let home = support::home();
    let session = login(&server, &home).await;
    let handle = Chat::start_with(session.clone(), quick());
    let state = wait_state(&handle, Duration::from_secs(10), |s| !matches!(s, ChatState::Loading)).await;
    match &state {
        ChatState::Unavailable { reason, chat_url } => {
            assert!(reason.starts_with("chat counts unavailable on this server"), "{reason}");
            assert_eq!(chat_url.as_deref(), Some(format!("{}/", server.base).as_str()));
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    let out = support::cli(&home).args(["chat", "--json"]).output().expect("run passerelle");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["state"], "unavailable", "{v}");

    // The advanced setting: a personal access token, checked, then used.
    let general = server.room("c", "general", &["alice", "bob"]).await;
    server.post(&general, "bob", "hello").await;
    let pat = server.control("personal-token", json!({"user": "alice"})).await;
    let out = support::cli(&home)
        .args(["chat", "--token-user", pat["userId"].as_str().expect("id")])
        .env("PASSERELLE_CHAT_TOKEN", pat["token"].as_str().expect("token"))
        .output()
        .expect("run passerelle");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = support::cli(&home).args(["chat", "--json"]).output().expect("run passerelle");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!((v["state"].as_str(), v["total"].as_u64()), (Some("ready"), Some(1)), "{v}");
    let live = Chat::start_with(session, quick());
    wait_state(&live, Duration::from_secs(10), |s| total(s) == Some(1)).await;
    server.post(&general, "bob", "live").await;
    wait_state(&live, Duration::from_secs(1), |s| total(s) == Some(2)).await;
    // A wrong token is refused and not kept.
    let out = support::cli(&home)
        .args(["chat", "--token-user", "nobody"])
        .env("PASSERELLE_CHAT_TOKEN", "wrong")
        .output()
        .expect("run passerelle");
    assert!(!out.status.success());
}

/// Idle cost: with the socket open and the server pinging every second, the client makes no
/// REST request at all after the first load (and answers the pings).
#[tokio::test(flavor = "multi_thread")]
async fn idle_costs_no_rest_requests() {
    let window: u64 = std::env::var("PASSERELLE_CHAT_IDLE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let server = TestServer::start(&[]);
    let home = support::home();
    let session = login(&server, &home).await;
    server.room("c", "general", &["alice", "bob"]).await;
    let handle = Chat::start(session);
    wait_state(&handle, Duration::from_secs(10), |s| total(s) == Some(0)).await;
    wait_for_socket(&server, "alice").await;
    let before = server.rest_requests("alice").await;
    let pongs_before = server.stats().await["pongs"]["alice"].as_u64().unwrap_or(0);
    // A measurement window, not a synchronisation: the point is that nothing happens.
    tokio::time::sleep(Duration::from_secs(window)).await;
    let stats = server.stats().await;
    let during = server.rest_requests("alice").await - before;
    let pongs = stats["pongs"]["alice"].as_u64().unwrap_or(0) - pongs_before;
    eprintln!("idle {window} s: {during} REST requests, {pongs} pongs, {} socket connects", stats["connects"]["alice"]);
    assert_eq!(during, 0, "REST requests while idle: {stats}");
    assert_eq!(server.requests("GET /api/v1/subscriptions.get", "alice").await, 1, "only the first load");
    assert!(pongs >= window / 3, "the client answers the server's pings ({pongs} in {window} s)");
    assert_eq!(stats["connects"]["alice"], 1, "the socket stayed up");
    assert!(matches!(*handle.counts().borrow(), ChatState::Ready(_)));
}

/// Dropping the handle stops the task and closes the socket.
#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_handle_stops_the_task() {
    let server = TestServer::start(&[]);
    let home = support::home();
    let session = login(&server, &home).await;
    let handle = Chat::start_with(session, quick());
    wait_state(&handle, Duration::from_secs(10), |s| total(s) == Some(0)).await;
    wait_for_socket(&server, "alice").await;
    drop(handle);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.stats().await["sockets"]["alice"].as_u64().unwrap_or(0) > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the socket stayed open after the handle was dropped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A socket that goes silent (a half-dead NAT, a frozen proxy) is pinged, then given up and
/// replaced; what was missed is caught up.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_socket_is_detected_and_replaced() {
    let server = TestServer::start(&[]);
    let home = support::home();
    let session = login(&server, &home).await;
    let general = server.room("c", "general", &["alice", "bob"]).await;
    let options = ChatOptions { socket_idle: Duration::from_secs(2), ..quick() };
    let handle = Chat::start_with(session, options);
    wait_state(&handle, Duration::from_secs(10), |s| total(s) == Some(0)).await;
    wait_for_socket(&server, "alice").await;
    server.fault(json!({"silence": "alice"})).await;
    server.post(&general, "bob", "dans le vide").await;
    // Silent for 2 s: ping; 2 s more: give up, reconnect, catch up.
    wait_state(&handle, Duration::from_secs(10), |s| total(s) == Some(1)).await;
    let stats = server.stats().await;
    assert!(stats["connects"]["alice"].as_u64() >= Some(2), "{stats}");
}
