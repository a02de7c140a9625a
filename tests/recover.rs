//! Recover what was lost and see what changed (issue 15), against the Nextcloud test double
//! (tests/servers/nextcloud.py, NOT Nextcloud; each behaviour used here was checked against a
//! real Nextcloud 34.0.1, run "recover"): the trash with who deleted, a
//! file's versions with their authors, a version looked at read-only, the recent changes of the
//! activity feed, and notifications polled with If-None-Match (304 while nothing changed).
//!
//! Needs the test stack's Python (`eval "$(scripts/stack up)"`, or PASSERELLE_TEST_PYTHON).
mod nextcloud_double;

use std::time::Duration;

use nextcloud_double::{write, Double, USER};
use passerelle::drive::{
    nextcloud::{
        self, bulk,
        feed::{self, Feed, FeedConfig, FeedEvent, Polled},
        NextcloudRemote,
    },
    remote::{Precondition, Remote},
};
use serde_json::json;

/// Polls `check` until it is true or the deadline passes (never a bare sleep as a verdict).
macro_rules! eventually {
    ($what:expr, $check:expr) => {{
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if $check {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {}", $what);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }};
}

#[tokio::test]
async fn the_trash_says_where_when_and_who_and_a_restore_brings_the_file_back() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let dir = tempfile::tempdir().unwrap();
    client.mkdirs("Clients/Dupont").await.unwrap();
    let f = write(dir.path(), "devis.txt", b"devis 2026-041");
    bulk::put_file(&client, "Clients/Dupont/devis.txt", &f, 1_700_000_000, Precondition::Create).await.unwrap();
    let remote = NextcloudRemote::new(client.clone(), "", None);
    remote.delete("Clients/Dupont/devis.txt", None).await.unwrap();

    let trash = nextcloud::trash(&client).await.unwrap();
    assert_eq!(trash.len(), 1);
    let item = &trash[0];
    assert_eq!(item.name, "devis.txt");
    assert_eq!(item.original_folder(), "Clients/Dupont");
    assert_eq!(item.size, 14);
    assert!(item.deleted_at > 1_700_000_000, "{item:?}");
    assert_eq!(item.deleted_by.as_deref(), Some("Alice"), "who deleted it, by display name");

    // Restored by its trash id (what the window sends).
    let restored = nextcloud::restore(&client, &item.id).await.unwrap();
    assert_eq!(restored.original_location, "Clients/Dupont/devis.txt");
    assert_eq!(nc.read("Clients/Dupont/devis.txt").await.unwrap(), b"devis 2026-041");
    assert!(nextcloud::trash(&client).await.unwrap().is_empty());
}

#[tokio::test]
async fn versions_name_their_author_and_a_restore_keeps_the_current_content() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "v1", b"premier jet");
    bulk::put_file(&client, "rapport.txt", &f, 1_700_000_000, Precondition::Create).await.unwrap();
    let f = write(dir.path(), "v2", b"relu par moi");
    bulk::put_file(&client, "rapport.txt", &f, 1_700_000_600, Precondition::Any).await.unwrap();
    // A colleague edits the shared file (the double writes it as Bob).
    nc.control("_test/write-as", json!({"user": USER, "actor": "bob", "path": "rapport.txt", "content": "corrigé par Bob"})).await;

    let versions = nextcloud::versions(&client, "rapport.txt").await.unwrap();
    assert_eq!(versions.iter().map(|v| v.size).collect::<Vec<_>>(), [12, 11], "newest first, the current one left out");
    assert_eq!(versions[0].author.as_deref(), Some(USER));
    assert!(versions[0].mtime > versions[1].mtime);

    // Looked at before restoring: a read-only copy, nothing changes on the server.
    let look = tempfile::tempdir().unwrap();
    let copy = nextcloud::fetch_version(&client, "rapport.txt", &versions[1].id, look.path()).await.unwrap();
    assert_eq!(std::fs::read(&copy).unwrap(), b"premier jet");
    assert!(std::fs::metadata(&copy).unwrap().permissions().readonly(), "{copy:?}");
    assert!(copy.file_name().unwrap().to_str().unwrap().starts_with("rapport ("), "{copy:?}");
    assert_eq!(nc.read("rapport.txt").await.unwrap(), "corrigé par Bob".as_bytes());
    // Looking again replaces the copy (it was read-only).
    let again = nextcloud::fetch_version(&client, "rapport.txt", &versions[1].id, look.path()).await.unwrap();
    assert_eq!(again, copy);

    nextcloud::restore_version(&client, "rapport.txt", &versions[1].id).await.unwrap();
    assert_eq!(nc.read("rapport.txt").await.unwrap(), b"premier jet");
    let after = nextcloud::versions(&client, "rapport.txt").await.unwrap();
    let bob = after.iter().find(|v| v.author.as_deref() == Some("bob")).expect("Bob's content is now a version");
    assert_eq!(bob.size, "corrigé par Bob".len() as u64);
}

#[tokio::test]
async fn recent_changes_say_who_and_come_back_304_when_nothing_changed() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..6 {
        let f = write(dir.path(), &format!("f{i}"), b"x");
        bulk::put_file(&client, &format!("note-{i}.txt"), &f, 1_700_000_000 + i, Precondition::Create).await.unwrap();
    }
    nc.control("_test/write-as", json!({"user": USER, "actor": "bob", "path": "note-2.txt", "content": "Bob"})).await;

    let Polled::Changed { etag, items } = feed::recent(&client, 5, None).await.unwrap() else { panic!("a first answer") };
    assert_eq!(items.len(), 5, "the last five");
    assert_eq!(items[0].path, "note-2.txt");
    assert_eq!(items[0].kind, "file_changed");
    assert!(!items[0].by_me);
    assert_eq!(items[0].actor_name, "Bob");
    assert_eq!(items[1].path, "note-5.txt");
    assert!(items[1].by_me);
    let etag = etag.expect("an ETag");
    assert_eq!(feed::recent(&client, 5, Some(&etag)).await.unwrap(), Polled::Unchanged);
    let stats = nc.stats().await;
    assert_eq!(stats["ocs"]["activity 304"], 1, "{stats}");
}

#[tokio::test]
async fn notifications_are_polled_with_their_etag_and_marked_read() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let Polled::Changed { etag, items } = feed::notifications(&client, None).await.unwrap() else { panic!("a first answer") };
    assert!(items.is_empty());
    let etag = etag.expect("an ETag");
    assert!(etag.starts_with('"'), "kept quoted, as sent: {etag}");
    assert_eq!(feed::notifications(&client, Some(&etag)).await.unwrap(), Polled::Unchanged);

    let base = nc.url.as_str().trim_end_matches('/');
    nc.control("_test/notifications", json!({"user": USER, "kind": "share", "actor": "bob", "path": "devis.txt", "base": base})).await;
    let Polled::Changed { items, .. } = feed::notifications(&client, Some(&etag)).await.unwrap() else { panic!("a change") };
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].app, "files_sharing");
    assert_eq!(items[0].file.as_deref(), Some("devis.txt"));
    assert_eq!(items[0].actor.as_deref(), Some("Bob"));

    feed::mark_read(&client, items[0].id).await.unwrap();
    let Polled::Changed { items, .. } = feed::notifications(&client, None).await.unwrap() else { panic!("an answer") };
    assert!(items.is_empty(), "read means deleted on the server");
}

/// The loop: the first look counts what is there without announcing it; a new notification is
/// announced once; "opened" marks it read; while nothing changes each look is one request
/// answered 304.
#[tokio::test]
async fn the_feed_announces_new_notifications_once_and_idles_on_304() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let base = nc.url.as_str().trim_end_matches('/');
    nc.control("_test/notifications", json!({"user": USER, "app": "files_reminders", "subject": "Rappel : devis"})).await;
    // A short interval so the test sees several looks; the default is 5 minutes.
    let config = FeedConfig { every: Duration::from_millis(200), tick: Duration::from_millis(50), ..FeedConfig::default() };
    let handle = Feed::start(client.clone(), config);
    let mut arrivals = handle.arrivals();
    let mut state = handle.state();
    state.wait_for(|s| s.notifications.len() == 1).await.unwrap();

    nc.control("_test/notifications", json!({"user": USER, "kind": "share", "actor": "bob", "path": "devis.txt", "base": base})).await;
    let new = tokio::time::timeout(Duration::from_secs(20), arrivals.recv()).await.expect("an arrival").unwrap();
    assert_eq!(new.app, "files_sharing", "only the new one is announced");
    state.wait_for(|s| s.notifications.len() == 2).await.unwrap();

    handle.send(FeedEvent::MarkRead(new.id));
    state.wait_for(|s| s.notifications.len() == 1).await.unwrap();
    eventually!(
        "the server to forget it",
        matches!(feed::notifications(&client, None).await, Ok(Polled::Changed { items, .. }) if items.len() == 1)
    );

    // Idle: once the loop has the new ETag (its first 304 after the change), only 304s.
    let not_modified = async || nc.stats().await["ocs"]["notifications 304"].as_u64().unwrap_or(0);
    nc.reset().await;
    eventually!("a look answered 304", not_modified().await >= 1);
    nc.reset().await;
    eventually!("three more idle looks", not_modified().await >= 3);
    let stats = nc.stats().await;
    let ok = stats["ocs"]["notifications 200"].as_u64().unwrap_or(0);
    assert_eq!(ok, 0, "nothing changed, so no full answer: {stats}");
    assert!(tokio::time::timeout(Duration::from_millis(1), arrivals.recv()).await.is_err(), "nothing announced twice");
}

/// A share that came while the computer was off is told once when the app starts; the account's
/// first start tells none of the backlog; a restart never tells one twice. The mark the app keeps
/// between starts (`FeedState::announced` in, `FeedConfig::announced` out) is all that carries over.
#[tokio::test]
async fn notifications_from_while_the_app_was_off_are_told_once_at_start() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let base = nc.url.as_str().trim_end_matches('/');
    nc.control("_test/notifications", json!({"user": USER, "app": "files_reminders", "subject": "Rappel : ancien"})).await;

    // The account's first start: the old one is counted and marked, not announced.
    let first = Feed::start(client.clone(), FeedConfig::default());
    let mut arrivals = first.arrivals();
    let seen = first.state().wait_for(|s| s.announced.is_some()).await.unwrap().clone();
    assert_eq!(seen.notifications.len(), 1);
    assert!(arrivals.try_recv().is_err(), "the backlog of a first start is not announced");
    let mark = seen.announced;
    drop(first);

    // The app is not running: a colleague shares a file.
    nc.control("_test/notifications", json!({"user": USER, "kind": "share", "actor": "bob", "path": "devis.txt", "base": base})).await;
    let second = Feed::start(client.clone(), FeedConfig { announced: mark, ..FeedConfig::default() });
    let mut arrivals = second.arrivals();
    let seen = second.state().wait_for(|s| s.announced.is_some()).await.unwrap().clone();
    assert_eq!(seen.notifications.len(), 2);
    let told = arrivals.try_recv().expect("the share that came while off is announced at start");
    assert_eq!(told.app, "files_sharing");
    assert!(arrivals.try_recv().is_err(), "only that one: the old one was there at the first start");
    assert!(seen.announced > mark);
    let mark = seen.announced;
    drop(second);

    // Started again with nothing new: nothing is told twice.
    let third = Feed::start(client, FeedConfig { announced: mark, ..FeedConfig::default() });
    let mut arrivals = third.arrivals();
    let seen = third.state().wait_for(|s| s.announced.is_some()).await.unwrap().clone();
    assert_eq!(seen.notifications.len(), 2);
    assert_eq!(seen.announced, mark);
    assert!(arrivals.try_recv().is_err(), "announced before the restart: not again");
}

/// The idle cost of "Récemment" and the notifications, with the default settings (5 minutes),
/// for `PASSERELLE_BENCH_MINUTES` (15 by default) of real time: run by
/// `scripts/bench-notifications`, which prints the table. Against the double, its own count of
/// requests and statuses; with `PASSERELLE_LIVE_NEXTCLOUD_URL` (and `_USER`, `_APP_PASSWORD`),
/// against that real server, counted by the client.
#[tokio::test]
#[ignore = "a benchmark: 15 minutes of real time"]
async fn idle_cost_of_notifications() {
    let minutes: u64 = std::env::var("PASSERELLE_BENCH_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(15);
    let live = std::env::var("PASSERELLE_LIVE_NEXTCLOUD_URL").ok();
    let double = if live.is_none() { Some(Double::start(None)) } else { None };
    let client = match (&live, &double) {
        (Some(url), _) => {
            let url = url::Url::parse(url).unwrap();
            let user = std::env::var("PASSERELLE_LIVE_NEXTCLOUD_USER").unwrap();
            let creds = nextcloud::Credentials::AppPassword {
                login: user.clone(),
                password: std::env::var("PASSERELLE_LIVE_NEXTCLOUD_APP_PASSWORD").unwrap(),
            };
            let info = nextcloud::server_info(&passerelle::http::client(), &url, &creds).await.unwrap().unwrap();
            nextcloud::Nextcloud::new(passerelle::http::client(), &url, &user, creds, info)
        }
        (None, Some(d)) => d.connect().await,
        _ => unreachable!(),
    };
    let handle = Feed::start(client, FeedConfig::default());
    let mut state = handle.state();
    // The first look (notifications and recent changes) is the start, not the idle cost.
    let start = state.wait_for(|s| s.requests >= 2).await.unwrap().clone();
    assert_eq!(start.requests, 2, "the first look is two requests");
    if let Some(d) = &double {
        d.reset().await;
    }
    // A little over the span, so the look due at its very end is in.
    tokio::time::sleep(Duration::from_secs(minutes * 60 + 20)).await;
    let end = state.borrow().clone();
    let requests = end.requests - start.requests;
    let not_modified = end.not_modified - start.not_modified;
    let server = match &double {
        Some(d) => {
            let stats = d.stats().await;
            format!("double: {} requests, {} answered 304", stats["requests"], stats["ocs"]["notifications 304"])
        }
        None => "real server".to_string(),
    };
    println!("| idle minutes | requests | answered 304 | per 5 min | counted by |");
    println!("|---|---|---|---|---|");
    println!("| {minutes} | {requests} | {not_modified} | {:.2} | client; {server} |", requests as f64 * 5.0 / minutes as f64);
    assert!(requests <= minutes / 5 + 1, "at most one request per 5 minutes while idle");
    assert_eq!(requests, not_modified, "every idle look answered 304");
}

/// A look where nothing changed is still published (`passerelle notifications --follow` and the
/// idle benchmark wait for the first look; on an empty account they waited forever).
#[tokio::test]
async fn a_look_at_an_empty_account_is_published() {
    let nc = Double::start(None);
    let handle = Feed::start(nc.connect().await, FeedConfig::default());
    let mut state = handle.state();
    let first = tokio::time::timeout(Duration::from_secs(20), state.wait_for(|s| s.requests >= 2)).await;
    let first = first.expect("the first look is published").unwrap().clone();
    assert!(first.notifications.is_empty() && first.recent.is_empty());
    assert_eq!(nc.stats().await["ocs"]["activity 304"], 1, "no activity at all: 304 (APIv2Controller::get)");
}
