//! Nextcloud extras against the Nextcloud test double (tests/servers/nextcloud.py, a server
//! reproducing the behaviours of the reference, not Nextcloud), one throwaway copy per test on
//! port 0 so that switches (bearer off, tiny quotas) do not leak between tests. Bearer tokens are
//! real Keycloak tokens, checked by the double against the real Keycloak userinfo endpoint.
//!
//! Needs the test stack: `eval "$(scripts/stack up)"`.
mod nextcloud_double;
mod support;

use nextcloud_double::{noise, upload_of, write, Double, SyncedFolder, APP_PASSWORD, USER};

use std::{io::Write, sync::Arc, time::Duration};

use md5::{Digest, Md5};
use passerelle::{
    browser::Opener,
    drive::{
        nextcloud::{
            self,
            bulk::{self, BulkFile, BulkOptions},
            chunked::{self, ChunkOptions, MIB},
            walk::{self, TreeCache},
            ConnectOptions, Credentials, Mode, NextcloudError, NextcloudRemote,
        },
        remote::{Precondition, Remote, Upload},
        run::{self, FolderPaths, Outcome, RunOptions},
    },
};
use serde_json::json;

#[tokio::test]
async fn detects_nextcloud_and_reads_capabilities_only_with_the_csrf_header() {
    let nc = Double::start(None);
    let http = passerelle::http::client();
    let creds = Credentials::AppPassword { login: USER.into(), password: APP_PASSWORD.into() };
    let info = nextcloud::server_info(&http, &nc.url, &creds).await.expect("server info").expect("a Nextcloud");
    assert_eq!(info.version, "34.0.1");
    assert!(info.chunking && info.bulk_upload && info.trash && info.versions);
    // Anonymous: a real Nextcloud 34 shows no dav/files capabilities (observed), so neither
    // does the double.
    let anonymous = nextcloud::detect(&http, &nc.url).await.expect("detect").expect("a Nextcloud");
    assert!(!anonymous.chunking && !anonymous.bulk_upload && !anonymous.trash && !anonymous.versions);
    assert_eq!(info.chunk_max_size, Some(100 * 1024 * 1024));

    let without = http.get(nc.url.join("ocs/v2.php/cloud/capabilities?format=json").unwrap()).send().await.unwrap();
    assert_eq!(without.status().as_u16(), 412);
    assert!(without.text().await.unwrap().contains("CSRF check failed"));

    // Capabilities follow what the server advertises.
    nc.control("_test/capabilities", json!({"bulkupload": false, "chunking": false})).await;
    let info = nextcloud::server_info(&http, &nc.url, &creds).await.unwrap().unwrap();
    assert!(!info.chunking && !info.bulk_upload);

    // A generic WebDAV/CalDAV server is not a Nextcloud: no extras.
    if let Ok(caldav) = std::env::var("PASSERELLE_TEST_CALDAV") {
        let generic = nextcloud::detect(&http, &url::Url::parse(&caldav).unwrap()).await.expect("detect");
        assert_eq!(generic, None);
    }
}

#[tokio::test]
async fn bearer_first_then_login_flow_v2_when_the_server_refuses_bearer() {
    let nc = Double::start(None);
    let home = support::home();
    let session = support::login("alice", "alice-pass-1", &home).await;
    let http = passerelle::http::client();
    let store = home.secrets();

    // 1. Bearer accepted (checked against the real Keycloak userinfo).
    let never = Opener::hook(|_| panic!("the browser must not open when bearer works"));
    let options = ConnectOptions { opener: never, ..ConnectOptions::default() };
    let client = nextcloud::connect(&http, &nc.url, Some(&session), &store, &options).await.expect("bearer connect");
    assert!(matches!(client.credentials(), Credentials::Bearer(_)));
    assert_eq!(client.user(), "alice");
    assert_eq!(nextcloud::saved_mode(&store, &nc.url), Some(Mode::Bearer));
    let q = client.quota().await.expect("quota with bearer");
    assert_eq!(q.total, Some(157_286_400));

    // 2. Bearer checking switched off on the server: 401, then Login Flow v2.
    nc.control("_test/bearer", json!({"enabled": false})).await;
    let (opener, mut opened) = nc.granting_opener("alice");
    let options = ConnectOptions { opener, poll_every: Duration::from_millis(200), ..ConnectOptions::default() };
    let client = nextcloud::connect(&http, &nc.url, Some(&session), &store, &options).await.expect("login flow connect");
    let login_url = opened.try_recv().expect("the login page was opened");
    assert!(login_url.contains("/index.php/login/v2/flow/"), "{login_url}");
    assert!(matches!(client.credentials(), Credentials::AppPassword { .. }));
    assert_eq!(nextcloud::saved_mode(&store, &nc.url), Some(Mode::AppPassword));
    client.quota().await.expect("quota with the app password");

    // 3. The next start reuses the saved app password: no browser.
    let never = Opener::hook(|_| panic!("the saved app password must be reused"));
    let again = nextcloud::connect(&http, &nc.url, Some(&session), &store, &ConnectOptions { opener: never, ..ConnectOptions::default() })
        .await
        .expect("reconnect");
    let Credentials::AppPassword { login, password } = again.credentials().clone() else { panic!("app password") };

    // 4. Logout revokes it on the server.
    assert!(nextcloud::logout(&http, &nc.url, &store).await.expect("logout"), "revoked on the server");
    assert_eq!(nextcloud::saved_mode(&store, &nc.url), None);
    let after = reqwest::Client::new()
        .request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), nc.url.join("remote.php/dav/files/alice/").unwrap())
        .basic_auth(login, Some(password))
        .header("Depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(after.status().as_u16(), 401, "a revoked app password is refused");
}

#[tokio::test]
async fn login_flow_can_be_cancelled_and_expires() {
    let nc = Double::start(None);
    let http = passerelle::http::client();

    // Expired: nobody approves; a short deadline stands in for the 10 minutes.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let opener = Opener::hook(move |u| {
        let _ = tx.send(u.to_string());
        Ok(())
    });
    let options = ConnectOptions {
        opener,
        poll_every: Duration::from_millis(100),
        timeout: Duration::from_millis(800),
        ..ConnectOptions::default()
    };
    nc.reset().await;
    let err = nextcloud::login_flow(&http, &nc.url, &options).await.err().expect("expired");
    assert!(matches!(err, NextcloudError::LoginExpired), "{err:?}");
    assert_eq!(err.code(), "login_expired");
    assert!(rx.try_recv().is_ok());
    let polls = nc.stats().await["methods"]["POST"].as_u64().unwrap();
    assert!((5..=12).contains(&polls), "polled every 100 ms for 800 ms, not hammering: {polls} POSTs");

    // Expired on the server side (the flow token died): still 404, still our deadline.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let expire = nc.url.join("_test/login-flow/expire").unwrap();
    let opener = Opener::hook(move |u| {
        let _ = tx.send(u.to_string());
        let (expire, login) = (expire.clone(), u.to_string());
        tokio::spawn(async move {
            let _ = reqwest::Client::new().post(expire).json(&json!({"login": login})).send().await;
        });
        Ok(())
    });
    let options = ConnectOptions { opener, poll_every: Duration::from_millis(100), timeout: Duration::from_millis(600), ..ConnectOptions::default() };
    let err = nextcloud::login_flow(&http, &nc.url, &options).await.err().expect("expired");
    assert!(matches!(err, NextcloudError::LoginExpired));
    assert!(rx.try_recv().is_ok());

    // Cancelled from elsewhere (the tray's Cancel) while waiting. The next poll is an hour
    // away, so only a cancel that acts at once can end the flow (no clock in the verdict: the
    // hour is far beyond the test's own deadline).
    let (opened_tx, mut opened) = tokio::sync::mpsc::unbounded_channel::<()>();
    let options = ConnectOptions {
        opener: Opener::hook(move |_| {
            let _ = opened_tx.send(());
            Ok(())
        }),
        poll_every: Duration::from_secs(3600),
        ..ConnectOptions::default()
    };
    let cancel = options.cancel.clone();
    let flow = tokio::spawn({
        let http = http.clone();
        let url = nc.url.clone();
        async move { nextcloud::login_flow(&http, &url, &options).await }
    });
    // Waiting for the member: the login page was opened.
    opened.recv().await.expect("the login page opened");
    cancel.cancel();
    let err = tokio::time::timeout(Duration::from_secs(120), flow).await.expect("cancel acts at once, not at the next poll").unwrap().err().expect("cancelled");
    assert!(matches!(err, NextcloudError::LoginCancelled), "{err:?}");

    // Granted: 404 until then, 200 once.
    let (opener, _rx) = nc.granting_opener("alice");
    let options = ConnectOptions { opener, poll_every: Duration::from_millis(100), ..ConnectOptions::default() };
    let granted = nextcloud::login_flow(&http, &nc.url, &options).await.expect("granted");
    assert_eq!(granted.login_name, "alice");
    assert!(!granted.app_password.is_empty());
}

#[tokio::test]
async fn noop_poll_on_10000_files_is_one_request() {
    let nc = Double::start(None);
    nc.control("_test/seed", json!({"user": USER, "files": 10000, "per_folder": 100})).await;
    let client = nc.connect().await;
    let mut cache = TreeCache::default();
    let first = walk::walk(&client, "", &mut cache).await.expect("first walk");
    assert_eq!(first.entries().values().filter(|e| !e.is_dir).count(), 10000);
    assert_eq!(first.requests, 1 + 1 + 1 + 100, "root depth 0, root, seed/, 100 folders");

    nc.reset().await;
    let poll = walk::walk(&client, "", &mut cache).await.expect("poll");
    assert!(poll.unchanged);
    assert_eq!(poll.requests, 1);
    assert_eq!(nc.requests().await, 1, "the server saw exactly one request");
    assert_eq!(poll.entries(), first.entries());

    // Through the engine's Remote, with the cache kept on disk across a restart.
    let dir = tempfile::tempdir().unwrap();
    let cache_file = dir.path().join("nextcloud-tree.json");
    let remote = NextcloudRemote::new(client.clone(), "", Some(cache_file.clone()));
    let listing = remote.list_tree().await.expect("full listing");
    assert_eq!(listing.entries.len(), 10000 + 101);
    let restarted = NextcloudRemote::new(client.clone(), "", Some(cache_file));
    nc.reset().await;
    let listing2 = restarted.list_tree().await.expect("no-op listing");
    assert_eq!(listing2.requests, 1);
    assert_eq!(nc.requests().await, 1);
    assert_eq!(listing2.entries, listing.entries);
}

#[tokio::test]
async fn a_deep_change_descends_only_the_changed_path() {
    let nc = Double::start(None);
    nc.control("_test/seed", json!({"user": USER, "files": 2000, "per_folder": 100})).await;
    let client = nc.connect().await;
    client.mkdirs("a/b/c").await.unwrap();
    client.mkdirs("a/sibling").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "x.txt", b"one");
    bulk::put_file(&client, "a/b/c/x.txt", &f, 1_700_000_000, Precondition::Create).await.unwrap();
    let mut cache = TreeCache::default();
    walk::walk(&client, "", &mut cache).await.unwrap();

    let f = write(dir.path(), "x.txt", b"two, longer");
    let done = bulk::put_file(&client, "a/b/c/x.txt", &f, 1_700_000_100, Precondition::Any).await.unwrap();
    assert!(done.mtime_accepted, "X-OC-MTime: accepted");
    nc.reset().await;
    let w = walk::walk(&client, "", &mut cache).await.unwrap();
    let mut listed = w.listed.clone();
    listed.sort();
    assert_eq!(listed, vec!["", "a", "a/b", "a/b/c"]);
    assert_eq!(w.requests, 5, "one Depth-0 check, then the four folders on the path");
    assert_eq!(nc.requests().await, 5);
    let x = w.get("a/b/c/x.txt").unwrap();
    assert_eq!(x.size, 11);
    assert_eq!(x.mtime, Some(1_700_000_100));
    assert_eq!(x.etag, done.etag, "the ETag from the PUT answer is the listed one");
    assert_eq!(x.file_id, done.file_id, "OC-FileId and oc:fileid agree");
    assert_eq!(w.entries().len(), 2000 + 21 + 5);
}

#[tokio::test]
async fn quota_skips_what_cannot_fit_handles_507_and_warns_at_90_percent() {
    let quota = 10 * 1_000_000;
    let nc = Double::start(Some(quota));
    let client = nc.connect().await;
    let dir = tempfile::tempdir().unwrap();

    let q = client.quota().await.unwrap();
    assert_eq!((q.used, q.free, q.total), (0, Some(quota), Some(quota)));
    assert_eq!(q.warning(), None);

    // A file that fits.
    let remote = NextcloudRemote::new(client.clone(), "", None);
    remote.list_tree().await.unwrap();
    let stored = remote.put("fits.bin", upload_of(noise(4_000_000, 1), 1_700_000_000), Precondition::Create).await.unwrap();
    assert!(stored.etag.is_some());
    assert_eq!(nc.read("fits.bin").await.unwrap(), noise(4_000_000, 1));

    // A file that does not: refused before a byte is sent, with the free space in the message.
    nc.reset().await;
    let err = remote
        .put("too-big.bin", upload_of(noise(7_000_000, 2), 1_700_000_000), Precondition::Create)
        .await
        .err()
        .expect("refused");
    assert_eq!(err.code(), "quota_exceeded");
    assert_eq!(nc.stats().await["puts"], 0, "nothing was sent");
    let message = nextcloud::not_enough_space(remote.quota().unwrap().free.unwrap());
    // 6,000,000 bytes free is 5.7 MiB: Nextcloud's units, rounded down so free space is never overstated.
    assert_eq!(message, "not enough space on the server (5 MB free)");

    // 507 mid-run: someone else filled the space since our listing.
    let other = write(dir.path(), "other.bin", &noise(5_500_000, 3));
    bulk::put_file(&client, "other.bin", &other, 1, Precondition::Create).await.unwrap();
    let big = write(dir.path(), "late.bin", &noise(1_000_000, 4));
    let err = bulk::put_file(&client, "late.bin", &big, 1, Precondition::Create).await.err().expect("507");
    // Nextcloud 34's 507 reads "Insufficient space in /late.bin": no figures, none made up.
    assert!(matches!(err, NextcloudError::InsufficientStorage { free: None }), "{err:?}");
    assert_eq!(err.to_string(), "not enough space on the server");
    assert_eq!(nc.read("late.bin").await, None, "nothing half-written");
    // Chunked over quota: MKCOL works, the first chunk gets 507, the upload folder is removed.
    let chunky = write(dir.path(), "chunky.bin", &noise(6 * MIB as usize, 5));
    let err = chunked::upload(&client, &chunky, "chunky.bin", 1, None, &ChunkOptions { chunk_size: 5 * MIB, ..Default::default() })
        .await
        .err()
        .expect("507 on the first chunk");
    assert_eq!(err.code(), "quota_exceeded");
    let id = chunked::upload_id("chunky.bin", 6 * MIB, 1);
    assert_eq!(nc.propfind(&format!("remote.php/dav/uploads/{USER}/{id}"), "0").await.0, 404, "already cleaned up");

    // 90 %: a warning.
    let q = client.quota().await.unwrap();
    assert_eq!(q.used, 9_500_000);
    assert!(q.warning().expect("warning at 95%").contains("95% full"), "{:?}", q.warning());
}

#[tokio::test]
async fn quota_hole_without_content_length_is_real_so_we_never_send_without_it() {
    // The double reproduces the observed hole; this documents why uploads always carry a length.
    let nc = Double::start(Some(1_000_000));
    let body = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from(noise(2_000_000, 9)))]);
    let r = reqwest::Client::new()
        .put(nc.url.join("remote.php/dav/files/alice/sneaky.bin").unwrap())
        .basic_auth(USER, Some(APP_PASSWORD))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "chunked transfer-encoding slips past the quota check");
    let with_length = reqwest::Client::new()
        .put(nc.url.join("remote.php/dav/files/alice/honest.bin").unwrap())
        .basic_auth(USER, Some(APP_PASSWORD))
        .body(noise(2_000_000, 9))
        .send()
        .await
        .unwrap();
    assert_eq!(with_length.status().as_u16(), 507);
    assert!(with_length.text().await.unwrap().contains("Sabre\\DAV\\Exception\\InsufficientStorage"));
}

#[tokio::test]
async fn bulk_upload_of_1000_files_in_batches_with_failures_retried_alone() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 0..1000 {
        let rel = format!("docs/d{}/f{i:04}.txt", i % 7);
        let src = write(dir.path(), &rel, format!("file {i}\n").repeat(i % 50 + 1).as_bytes());
        files.push(BulkFile { path: rel, source: src, mtime: 1_700_000_000 + i as i64 });
    }
    // One file fails on the server inside its batch, another arrives with a bad checksum.
    nc.control("_test/fail", json!({"user": USER, "path": "docs/d3/f0010.txt"})).await;
    nc.control("_test/fail", json!({"user": USER, "path": "docs/d4/f0550.txt", "mode": "checksum"})).await;
    nc.reset().await;
    let report = bulk::upload(&client, files, &BulkOptions { max_files: 100, ..Default::default() }).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.uploaded.len(), 1000);
    assert_eq!(report.bulk_requests, 10);
    let stats = nc.stats().await;
    assert_eq!(stats["bulk_posts"], 10, "1,000 files / 100 per request");
    assert!(report.retried_alone.contains(&"docs/d3/f0010.txt".to_string()));
    assert!(report.retried_alone.contains(&"docs/d4/f0550.txt".to_string()));
    // After a bad checksum the server stops reading the batch: the rest of it is sent alone.
    assert_eq!(report.retried_alone.len(), 1 + 50, "f0010, then f0550 and the 49 after it in its batch");
    assert_eq!(stats["puts"].as_u64().unwrap() as usize, report.retried_alone.len());
    let mkcols = stats["methods"]["MKCOL"].as_u64().unwrap();
    assert_eq!(mkcols, 8, "docs and its 7 folders, created first");
    assert!(stats["requests"].as_u64().unwrap() < 10 + 8 + 100);
    for i in [0usize, 10, 500, 550, 999] {
        let rel = format!("docs/d{}/f{i:04}.txt", i % 7);
        assert_eq!(nc.read(&rel).await.unwrap(), format!("file {i}\n").repeat(i % 50 + 1).into_bytes(), "{rel}");
    }
    let mut cache = TreeCache::default();
    let w = walk::walk(&client, "", &mut cache).await.unwrap();
    assert_eq!(w.get("docs/d5/f0999.txt").unwrap().mtime, Some(1_700_000_999), "X-OC-Mtime kept");

    // A file that keeps failing is reported by name, the others go through.
    client.mkdirs("again").await.unwrap();
    let a = write(dir.path(), "again/a.txt", b"a");
    let b = write(dir.path(), "again/b.txt", b"b");
    let report = bulk::upload(
        &client,
        vec![
            BulkFile { path: "missing-parent/x/a.txt".into(), source: a, mtime: 1 },
            BulkFile { path: "again/b.txt".into(), source: b, mtime: 1 },
        ],
        &BulkOptions { create_parents: false, ..Default::default() },
    )
    .await;
    assert_eq!(report.uploaded.iter().map(|u| u.path.as_str()).collect::<Vec<_>>(), vec!["again/b.txt"]);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, "missing-parent/x/a.txt", "reported by name");
}

#[tokio::test]
async fn chunked_100mb_upload_killed_midway_resumes_with_only_the_missing_chunks() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let content = noise(100 * 1_000_000, 42);
    let src = write(dir.path(), "big.bin", &content);
    drop(content);
    let options = ChunkOptions { chunk_size: 10 * MIB, parallel: 2, ..Default::default() };
    let mtime = 1_700_000_321;

    // Killed in the middle, at a point that does not depend on the machine's speed: the server
    // holds chunks 5 and up before reading them, the task dies once both transfers are held, and
    // its requests are over (the held ones get a cut body) before anything is looked at.
    nc.control("_test/hold-chunks", json!({"from": 5})).await;
    let task = tokio::spawn({
        let (client, src, options) = (client.clone(), src.clone(), options.clone());
        async move { chunked::upload(&client, &src, "media/big.bin", mtime, None, &options).await }
    });
    client.mkdirs("media").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let held = loop {
        let started = nc.stats().await["chunk_puts"].as_array().unwrap().iter().filter_map(|v| v.as_u64()).collect::<Vec<_>>();
        // Both transfers held (parallel: 2): chunks 1 to 4 are then whole on the server.
        let held: Vec<u64> = started.into_iter().filter(|n| *n >= 5).collect();
        if held.len() >= 2 {
            break held;
        }
        assert!(std::time::Instant::now() < deadline, "the upload never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    task.abort();
    let _ = task.await;
    nc.control("_test/release-chunks", json!({})).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while nc.stats().await["in_flight"].as_u64() != Some(0) {
        assert!(std::time::Instant::now() < deadline, "the killed upload's requests never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(nc.read("media/big.bin").await, None, "no partial file under the real name");

    // What is on the server now.
    let id = chunked::upload_id("media/big.bin", 100_000_000, mtime);
    let listed = reqwest::Client::new()
        .request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), nc.url.join(&format!("remote.php/dav/uploads/{USER}/{id}")).unwrap())
        .basic_auth(USER, Some(APP_PASSWORD))
        .header("Depth", "1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let complete: Vec<u64> = (1..=10u64)
        .filter(|n| {
            let size = if *n == 10 { 100_000_000 - 9 * 10 * MIB } else { 10 * MIB };
            listed.contains(&format!("/{n:05}</d:href><d:propstat><d:prop><d:getcontentlength>{size}<"))
        })
        .collect();
    // Chunks 1-4 are whole. A held chunk is usually cut, but the kernel may already hold all of
    // its 10 MiB in the loopback socket buffers when the client dies (seen under heavy load):
    // then it arrives whole, which is as true as a cut one. Nothing else may be there.
    assert!((1..=4).all(|n| complete.contains(&n)), "killed in the middle: the chunks before the held ones, whole: {complete:?}");
    assert!(complete.iter().all(|n| *n <= 4 || held.contains(n)), "only chunks that were sent: {complete:?}, held {held:?}");

    nc.reset().await;
    let done = chunked::upload(&client, &src, "media/big.bin", mtime, None, &options).await.expect("resume");
    assert!(done.mtime_accepted);
    let sent: Vec<u64> = nc.stats().await["chunk_puts"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(sent.len() + complete.len(), 10, "only the missing chunks: sent {sent:?}, had {complete:?}");
    assert!(sent.iter().all(|n| !complete.contains(n)));
    let back = nc.read("media/big.bin").await.expect("assembled");
    assert_eq!(back.len(), 100_000_000);
    assert_eq!(Md5::digest(&back), Md5::digest(std::fs::read(&src).unwrap()), "byte-identical");

    // A wrong total is refused (400), as Nextcloud does.
    let http = reqwest::Client::new();
    let up = nc.url.join(&format!("remote.php/dav/uploads/{USER}/wrong")).unwrap();
    let dest = nc.url.join(&format!("remote.php/dav/files/{USER}/wrong.bin")).unwrap();
    let mk = http.request(reqwest::Method::from_bytes(b"MKCOL").unwrap(), up.clone()).basic_auth(USER, Some(APP_PASSWORD))
        .header("Destination", dest.as_str()).header("OC-Total-Length", "100").send().await.unwrap();
    assert_eq!(mk.status().as_u16(), 201);
    let put = http.put(format!("{up}/00001")).basic_auth(USER, Some(APP_PASSWORD)).body(vec![0u8; 50]).send().await.unwrap();
    assert_eq!(put.status().as_u16(), 201);
    let mv = http.request(reqwest::Method::from_bytes(b"MOVE").unwrap(), format!("{up}/.file")).basic_auth(USER, Some(APP_PASSWORD))
        .header("Destination", dest.as_str()).send().await.unwrap();
    assert_eq!(mv.status().as_u16(), 400);
}

#[tokio::test]
async fn trash_and_version_restore_round_trip() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let dir = tempfile::tempdir().unwrap();
    client.mkdirs("notes").await.unwrap();
    let f = write(dir.path(), "v1.txt", b"first version");
    bulk::put_file(&client, "notes/plan.txt", &f, 1_700_000_000, Precondition::Create).await.unwrap();
    let f = write(dir.path(), "v2.txt", b"second version, edited");
    bulk::put_file(&client, "notes/plan.txt", &f, 1_700_000_500, Precondition::Any).await.unwrap();

    let versions = nextcloud::versions(&client, "notes/plan.txt").await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].size, 13);
    nextcloud::restore_version(&client, "notes/plan.txt", &versions[0].id).await.unwrap();
    assert_eq!(nc.read("notes/plan.txt").await.unwrap(), b"first version");
    let versions = nextcloud::versions(&client, "notes/plan.txt").await.unwrap();
    assert_eq!(versions.len(), 1, "the replaced content became a version");
    assert_eq!(versions[0].size, 22);

    let remote = NextcloudRemote::new(client.clone(), "", None);
    remote.delete("notes/plan.txt", None).await.unwrap();
    assert_eq!(nc.read("notes/plan.txt").await, None);
    let trash = nextcloud::trash(&client).await.unwrap();
    assert_eq!(trash.len(), 1);
    assert_eq!(trash[0].original_location, "notes/plan.txt");
    assert_eq!(trash[0].name, "plan.txt");
    let restored = nextcloud::restore(&client, "notes/plan.txt").await.unwrap();
    assert_eq!(restored.original_location, "notes/plan.txt");
    assert_eq!(nc.read("notes/plan.txt").await.unwrap(), b"first version");
    assert!(nextcloud::trash(&client).await.unwrap().is_empty());
    let err = nextcloud::restore(&client, "notes/nothing.txt").await.err().unwrap();
    assert_eq!(err.code(), "not_found");
}

#[tokio::test]
async fn the_engine_syncs_through_nextcloud_and_turns_a_server_rename_into_a_local_rename() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let SyncedFolder { home, root, paths } = nc.folder();
    write(&root, "docs/small.txt", b"hello");
    // Written on the server by another device.
    let other = tempfile::tempdir().unwrap();
    let report = write(other.path(), "report.odt", &noise(300_000, 7));
    client.mkdirs("docs").await.unwrap();
    bulk::put_file(&client, "docs/report.odt", &report, 1_700_000_000, Precondition::Create).await.unwrap();
    let cache = home.path().join("tree.json");
    let remote = Arc::new(NextcloudRemote::new(client.clone(), "", Some(cache.clone())));
    let options = RunOptions::default();
    let outcome = run::sync_once(&paths, remote.as_ref(), &options, None).await.expect("first sync");
    assert!(matches!(outcome, Outcome::Done(_)));
    assert_eq!(nc.read("docs/small.txt").await.unwrap(), b"hello");
    assert_eq!(std::fs::read(root.join("docs/report.odt")).unwrap(), noise(300_000, 7));

    // Our own uploads changed the folder ETags: the next run re-lists the changed path once.
    run::sync_once(&paths, remote.as_ref(), &options, None).await.expect("settling sync");
    // No change anywhere: one request to know it.
    nc.reset().await;
    let outcome = run::sync_once(&paths, remote.as_ref(), &options, None).await.expect("no-op sync");
    assert!(matches!(outcome, Outcome::Done(_)));
    assert_eq!(nc.requests().await, 1, "{}", nc.stats().await);

    // Renamed on the server (another device): a local rename, not a download.
    let http = reqwest::Client::new();
    let mv = http
        .request(reqwest::Method::from_bytes(b"MOVE").unwrap(), nc.url.join("remote.php/dav/files/alice/docs/report.odt").unwrap())
        .basic_auth(USER, Some(APP_PASSWORD))
        .header("Destination", nc.url.join("remote.php/dav/files/alice/docs/report-final.odt").unwrap().as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(mv.status().as_u16(), 201);
    nc.reset().await;
    run::sync_once(&paths, remote.as_ref(), &options, None).await.expect("sync after rename");
    assert!(!root.join("docs/report.odt").exists());
    assert_eq!(std::fs::read(root.join("docs/report-final.odt")).unwrap(), noise(300_000, 7));
    assert_eq!(nc.stats().await["methods"]["GET"].as_u64().unwrap_or(0), 0, "renamed locally, not downloaded");
    let _ = std::io::stdout().flush();
}

// ---------------------------------------------------------------- issue 11: Nextcloud for real

fn chunky(remote: &mut NextcloudRemote) {
    remote.chunking = ChunkOptions { chunk_size: 5 * MIB, threshold: 5 * MIB, parallel: 2 };
}

/// Defect 1: capabilities are read as the member; anonymously a real Nextcloud shows no
/// dav/files entries, so chunking, bulk, trash and versions all read as absent.
#[tokio::test]
async fn capabilities_are_read_with_the_members_credentials() {
    let nc = Double::start(None);
    let home = support::home();
    let client = nc.flow_login(&home.secrets(), None, None).await;
    let info = client.info();
    assert!(info.chunking, "chunking read as absent: {info:?}");
    assert!(info.bulk_upload && info.trash && info.versions, "{info:?}");
    assert_eq!(info.chunk_max_size, Some(100 * 1024 * 1024));
}

/// Defect 2: the assembly MOVE is guarded on the destination (Overwrite: F for a new file,
/// `If: <dest> (["etag"])` for a known version); If-None-Match on it always got 412.
#[tokio::test]
async fn chunked_assembly_is_guarded_on_the_destination_not_on_the_source() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let mut remote = NextcloudRemote::new(client.clone(), "", None);
    chunky(&mut remote);
    remote.list_tree().await.unwrap();
    let v1 = noise(6 * MIB as usize, 21);
    let first = remote.put("big.bin", upload_of(v1.clone(), 1_700_000_000), Precondition::Create).await.expect("new file, chunked");
    assert_eq!(nc.read("big.bin").await.unwrap(), v1);
    assert_eq!(nc.stats().await["chunk_puts"].as_array().unwrap().len(), 2, "it went chunked");
    let etag = first.etag.expect("the assembly answers an ETag");
    assert!(first.file_id.is_some(), "OC-FileId of the assembly MOVE");

    // Replacing the version we know works.
    let v2 = noise(6 * MIB as usize, 22);
    let second = remote.put("big.bin", upload_of(v2.clone(), 1_700_000_100), Precondition::Replace(etag.clone())).await.expect("replace");
    assert_eq!(nc.read("big.bin").await.unwrap(), v2);

    // Changed on the server meanwhile: a conflict, never an overwrite.
    let other = reqwest::Client::new()
        .put(nc.url.join("remote.php/dav/files/alice/big.bin").unwrap())
        .basic_auth(USER, Some(APP_PASSWORD))
        .body(b"edited on the web".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 204);
    let err = remote
        .put("big.bin", upload_of(noise(6 * MIB as usize, 23), 1_700_000_200), Precondition::Replace(second.etag.unwrap()))
        .await
        .err()
        .expect("refused");
    assert_eq!(err.code(), "changed_meanwhile");
    let err = remote.put("big.bin", upload_of(noise(6 * MIB as usize, 24), 1), Precondition::Create).await.err().expect("refused");
    assert_eq!(err.code(), "changed_meanwhile", "a file that appeared meanwhile is not overwritten");
    assert_eq!(nc.read("big.bin").await.unwrap(), b"edited on the web");

    // The double answers like the real server: If-None-Match on the MOVE is checked against .file.
    let http = reqwest::Client::new();
    let up = nc.url.join(&format!("remote.php/dav/uploads/{USER}/raw")).unwrap();
    let dest = nc.url.join(&format!("remote.php/dav/files/{USER}/raw.bin")).unwrap();
    let mk = http.request(reqwest::Method::from_bytes(b"MKCOL").unwrap(), up.clone()).basic_auth(USER, Some(APP_PASSWORD))
        .header("Destination", dest.as_str()).send().await.unwrap();
    assert_eq!(mk.status().as_u16(), 201);
    let put = http.put(format!("{up}/00001")).basic_auth(USER, Some(APP_PASSWORD)).body(vec![1u8; 10]).send().await.unwrap();
    assert_eq!(put.status().as_u16(), 201);
    assert!(put.headers().get("ETag").is_none(), "chunk PUTs carry no ETag");
    let (_, listing) = nc.propfind(&format!("remote.php/dav/uploads/{USER}/raw"), "1").await;
    assert!(listing.contains("/raw/.file</d:href>"), "the upload folder lists .file: {listing}");
    let mv = http.request(reqwest::Method::from_bytes(b"MOVE").unwrap(), format!("{up}/.file")).basic_auth(USER, Some(APP_PASSWORD))
        .header("Destination", dest.as_str()).header("If-None-Match", "*").send().await.unwrap();
    assert_eq!(mv.status().as_u16(), 412);
    assert_eq!(nc.propfind(&format!("remote.php/dav/uploads/{USER}"), "1").await.0, 405, "the uploads root refuses listing");
}

/// Defect 2 (second half): a precondition refused on every pass ends as a failed item, never
/// as "0 done, 0 failed".
#[tokio::test]
async fn a_refused_precondition_on_every_pass_is_a_failure_not_a_silent_success() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    nc.control("_test/capabilities", json!({"bulkupload": false})).await;
    let client = nextcloud::Nextcloud::new(client.http().clone(), &nc.url, USER, client.credentials().clone(), {
        let mut i = client.info().clone();
        i.bulk_upload = false;
        i
    });
    nc.control("_test/fail", json!({"user": USER, "path": "stubborn.txt", "mode": "precondition", "times": 100})).await;
    let SyncedFolder { home: _home, root, paths } = nc.folder();
    write(&root, "stubborn.txt", b"never accepted");
    write(&root, "fine.txt", b"accepted");
    let remote = NextcloudRemote::new(client, "", None);
    let Outcome::Done(summary) = run::sync_once(&paths, &remote, &RunOptions::default(), None).await.expect("sync") else {
        panic!("not done")
    };
    let failed: Vec<_> = summary.report.failed.iter().map(|f| (f.path.as_str(), f.code.as_str())).collect();
    assert_eq!(failed, vec![("stubborn.txt", "changed_meanwhile")], "{:?}", summary.report);
    assert_eq!(nc.read("fine.txt").await.unwrap(), b"accepted");
}

/// Defects 3 and 4: the engine sends small new files in bulk and records every file id
/// (bulk answer's fileid, PUT's OC-FileId, MKCOL's OC-FileId).
#[tokio::test]
async fn the_engine_bulk_uploads_small_files_and_records_every_file_id() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let SyncedFolder { home: _home, root, paths } = nc.folder();
    for i in 0..30 {
        write(&root, &format!("d{}/f{i:02}.txt", i % 3), format!("small {i}\n").as_bytes());
    }
    write(&root, "d0/medium.bin", &noise(2 * MIB as usize, 5));
    let remote = NextcloudRemote::new(client.clone(), "", None);
    nc.reset().await;
    let Outcome::Done(summary) = run::sync_once(&paths, &remote, &RunOptions::default(), None).await.expect("sync") else {
        panic!("not done")
    };
    assert!(summary.report.failed.is_empty(), "{:?}", summary.report.failed);
    let stats = nc.stats().await;
    assert_eq!(stats["bulk_posts"], 4, "30 small files in 4 bulk requests (one per transfer at once): {stats}");
    assert_eq!(stats["puts"], 1, "only the 2 MiB file goes as a PUT: {stats}");
    assert_eq!(nc.read("d2/f29.txt").await.unwrap(), b"small 29\n");

    let records = passerelle::drive::journal::Journal::open(&paths.journal).unwrap().records().unwrap();
    assert_eq!(records.len(), 30 + 1 + 3);
    let mut cache = TreeCache::default();
    let w = walk::walk(&client, "", &mut cache).await.unwrap();
    for (path, rec) in &records {
        let listed = w.get(path).unwrap_or_else(|| panic!("{path} listed"));
        assert_eq!(rec.file_id, listed.file_id, "{path}: the journal has the server's file id");
    }
}

/// Defect 5: chunked uploads are remembered (the uploads root cannot be listed) and cleaned.
#[tokio::test]
async fn abandoned_chunked_uploads_are_remembered_and_cleaned() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("folder.tree.json");
    let mut remote = NextcloudRemote::new(client.clone(), "", Some(cache.clone()));
    chunky(&mut remote);
    remote.list_tree().await.unwrap();
    // The local file is cut short mid-upload (a crash would leave the same on the server).
    let body = futures_util::stream::iter(vec![
        Ok(bytes::Bytes::from(noise(5 * MIB as usize, 1))),
        Err(std::io::Error::other("disk unplugged")),
    ]);
    let upload = Upload { len: 12 * MIB, body: Box::pin(body), mtime: 1 };
    assert!(remote.put("cut.bin", upload, Precondition::Create).await.is_err());
    let ids = remote.open_uploads();
    assert_eq!(ids.len(), 1);
    assert_eq!(nc.propfind(&format!("remote.php/dav/uploads/{USER}/{}", ids[0]), "0").await.0, 207);

    // After a restart the id is still known, and cleaning removes the upload.
    let restarted = NextcloudRemote::new(client, "", Some(cache));
    assert_eq!(restarted.open_uploads(), ids);
    assert_eq!(restarted.clean_uploads(Duration::ZERO).await.expect("clean"), 1);
    assert_eq!(nc.propfind(&format!("remote.php/dav/uploads/{USER}/{}", ids[0]), "0").await.0, 404);
    assert!(restarted.open_uploads().is_empty());
}

/// Defect 6: the server keeps serving an old quota figure for minutes; the pre-check counts
/// what was uploaded since, and a 507 without figures never says "0 MB free".
#[tokio::test]
async fn quota_counts_what_the_servers_cached_figure_does_not_show_yet() {
    let quota = 10_000_000;
    let nc = Double::start(Some(quota));
    let client = nc.connect().await;
    client.mkdirs("work").await.unwrap();
    // A sub-folder: its oc:size is not the account's, so only the cached figure is known.
    let remote = NextcloudRemote::new(client.clone(), "work", None);
    remote.list_tree().await.unwrap();
    remote.put("a.bin", upload_of(noise(6_000_000, 1), 1), Precondition::Create).await.expect("fits");
    remote.list_tree().await.unwrap();
    let (_, props) = nc.propfind(&format!("remote.php/dav/files/{USER}/"), "0").await;
    assert!(props.contains("<d:quota-used-bytes>0</d:quota-used-bytes>"), "the double serves the stale figure: {props}");
    nc.reset().await;
    let err = remote.put("b.bin", upload_of(noise(6_000_000, 2), 1), Precondition::Create).await.err().expect("cannot fit");
    assert_eq!(err.code(), "quota_exceeded");
    assert_eq!(nc.stats().await["puts"], 0, "refused before sending");
    assert_eq!(remote.quota().unwrap().free, Some(4_000_000));

    // On the account root, oc:size is counted fresh: the figures are right at once.
    let q = client.quota().await.unwrap();
    assert_eq!((q.used, q.free, q.fresh), (6_000_000, Some(4_000_000), true));
}

/// Defect 8: the versions collection also lists the current content; it is not an earlier
/// version.
#[tokio::test]
async fn versions_leave_out_the_current_content() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "v1.txt", b"one");
    bulk::put_file(&client, "n.txt", &f, 1_700_000_000, Precondition::Create).await.unwrap();
    assert!(nextcloud::versions(&client, "n.txt").await.unwrap().is_empty(), "a new file has no earlier version");
    let f = write(dir.path(), "v2.txt", b"two!");
    bulk::put_file(&client, "n.txt", &f, 1_700_000_100, Precondition::Any).await.unwrap();
    let vs = nextcloud::versions(&client, "n.txt").await.unwrap();
    assert_eq!(vs.iter().map(|v| (v.mtime, v.size)).collect::<Vec<_>>(), vec![(1_700_000_000, 3)]);
}

/// Defect 10: with nothing saved, a background connection says to log in (nothing was sent,
/// so nothing was "refused").
#[tokio::test]
async fn without_any_credentials_a_background_connection_says_to_log_in() {
    let nc = Double::start(None);
    let home = support::home();
    let options = ConnectOptions { non_interactive: true, ..ConnectOptions::default() };
    let err = nextcloud::connect(&passerelle::http::client(), &nc.url, None, &home.secrets(), &options).await.err().expect("no login");
    assert_eq!(err.code(), "not_logged_in", "{err}");
}

/// A connection without kept facts asks each server fact once: `status.php` (is it a
/// Nextcloud, which version), `cloud/user` (whose password), the capabilities; `status.php` was
/// once asked again with the capabilities, one more request in line before the first listing.
#[tokio::test]
async fn a_fresh_connection_asks_each_server_fact_once() {
    let nc = Double::start(None);
    let home = support::home();
    let store = home.secrets();
    nc.flow_login(&store, None, None).await;
    nc.reset().await;
    let options = ConnectOptions { non_interactive: true, ..ConnectOptions::default() };
    let client = nextcloud::connect(&passerelle::http::client(), &nc.url, None, &store, &options).await.unwrap();
    assert!(client.info().chunking && client.info().bulk_upload, "the member's capabilities were read");
    let stats = nc.stats().await;
    assert_eq!(stats["methods"]["GET"], 3, "status.php, cloud/user and the capabilities, once each: {stats}");
    assert_eq!(stats["requests"], 3, "{stats}");
}

/// Defect 11: with the server facts kept beside the tree cache, a no-op sync is one request.
#[tokio::test]
async fn a_noop_sync_with_kept_server_facts_is_one_request() {
    let nc = Double::start(None);
    let home = support::home();
    let store = home.secrets();
    let dir = tempfile::tempdir().unwrap();
    let facts = dir.path().join("folder.server.json");
    nc.flow_login(&store, None, Some(facts.clone())).await;
    let root = dir.path().join("Passerelle");
    write(&root, "a.txt", b"a");
    let paths = FolderPaths::new(&dir.path().join("data"), &root, nc.url.as_str());
    let cache = dir.path().join("folder.tree.json");
    let options = ConnectOptions { non_interactive: true, facts: Some(facts.clone()), ..ConnectOptions::default() };
    for _ in 0..2 {
        let client = nextcloud::connect(&passerelle::http::client(), &nc.url, None, &store, &options).await.unwrap();
        let remote = NextcloudRemote::new(client, "", Some(cache.clone())).with_facts(facts.clone());
        run::sync_once(&paths, &remote, &RunOptions::default(), None).await.unwrap();
    }
    nc.reset().await;
    let client = nextcloud::connect(&passerelle::http::client(), &nc.url, None, &store, &options).await.unwrap();
    assert!(client.info().chunking, "the kept facts are the member's capabilities");
    let remote = NextcloudRemote::new(client, "", Some(cache.clone())).with_facts(facts.clone());
    run::sync_once(&paths, &remote, &RunOptions::default(), None).await.unwrap();
    assert_eq!(nc.requests().await, 1, "status.php, capabilities and cloud/user are not asked again: {}", nc.stats().await);

    // An error forgets them: the next connection reads them again.
    assert!(nextcloud::logout(&passerelle::http::client(), &nc.url, &store).await.unwrap(), "app password revoked");
    assert!(run::sync_once(&paths, &remote, &RunOptions::default(), None).await.is_err());
    assert!(!facts.exists(), "forgotten after the error");
}
