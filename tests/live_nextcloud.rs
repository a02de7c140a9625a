//! Opt-in live suite: the Nextcloud scenarios against a REAL Nextcloud given by environment
//! variables. Without them it says, visibly, that it was skipped and why.
//!
//! ```sh
//! PASSERELLE_LIVE_NEXTCLOUD_URL=https://cloud.example.coop/ \
//! PASSERELLE_LIVE_NEXTCLOUD_USER=alice \
//! PASSERELLE_LIVE_NEXTCLOUD_APP_PASSWORD=xxxxx-xxxxx-xxxxx-xxxxx-xxxxx \
//!   cargo test --test live_nextcloud -- --nocapture --test-threads 1
//! ```
//! Everything happens in a fresh folder `passerelle-live-<random>` that is deleted at the end
//! (it then sits in the account's trash). When `nextcloudcmd` (Debian `nextcloud-desktop-cmd`)
//! is installed, the upload of 300 × 10 KB + 2 × 10 MB is also timed with it and the ratio
//! printed (goal: Passerelle ≤ 0.7 × nextcloudcmd).
//!
//! `live_sync_engine_uses_the_advertised_upload_paths` runs the sync engine itself (as `passerelle
//! sync` does) through a recording relay, prints which upload paths it took (bulk, chunked,
//! single PUT) and fails when the server advertises chunking or bulk upload and it was not used.
use std::{
    io::Write,
    path::Path,
    sync::{Arc, Mutex},
    time::Instant,
};

use passerelle::drive::{
    nextcloud::{
        self,
        bulk::{self, BulkFile, BulkOptions},
        chunked::{self, ChunkOptions},
        walk::{self, TreeCache},
        Credentials, Nextcloud,
    },
    remote::Precondition,
};

struct Live {
    url: url::Url,
    user: String,
    password: String,
}

/// Written straight to stderr: the test harness captures `eprintln!`, not this.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn live() -> Option<Live> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        get("PASSERELLE_LIVE_NEXTCLOUD_URL"),
        get("PASSERELLE_LIVE_NEXTCLOUD_USER"),
        get("PASSERELLE_LIVE_NEXTCLOUD_APP_PASSWORD"),
    ) {
        (Some(url), Some(user), Some(password)) => Some(Live { url: url::Url::parse(&url).expect("PASSERELLE_LIVE_NEXTCLOUD_URL"), user, password }),
        _ => {
            say("SKIPPED live_nextcloud: set PASSERELLE_LIVE_NEXTCLOUD_URL, PASSERELLE_LIVE_NEXTCLOUD_USER and \
                 PASSERELLE_LIVE_NEXTCLOUD_APP_PASSWORD to run it against a real Nextcloud (see README)");
            None
        }
    }
}

fn write(dir: &Path, name: &str, content: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, content).expect("write");
    p
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[tokio::test]
async fn live_nextcloud_scenarios() {
    let Some(live) = live() else { return };
    let http = passerelle::http::client();
    let info = nextcloud::detect(&http, &live.url).await.expect("status.php").expect("this is not a Nextcloud");
    // `detect` reads the capabilities without credentials (what a real server shows anyone); the
    // engine's own reading is checked in `live_sync_engine_uses_the_advertised_upload_paths`.
    let (chunking, bulk) = advertised(&live).await;
    say(&format!(
        "live: {} {}: anonymous detect says chunking={} bulk={}; advertised to the user: chunking={chunking} bulk={bulk}",
        info.product, info.version, info.chunking, info.bulk_upload
    ));
    let nc = Nextcloud::new(
        http.clone(),
        &live.url,
        &live.user,
        Credentials::AppPassword { login: live.user.clone(), password: live.password.clone() },
        info,
    );
    let q = nc.quota().await.expect("quota");
    say(&format!("live: quota used {} free {:?} warning {:?}", q.used, q.free, q.warning()));

    let folder = format!("passerelle-live-{:08x}", rand::random::<u32>());
    nc.mkdirs(&folder).await.expect("mkdir");
    let local = tempfile::tempdir().unwrap();

    // No-op poll: one request.
    let mut cache = TreeCache::default();
    walk::walk(&nc, &folder, &mut cache).await.expect("walk");
    let poll = walk::walk(&nc, &folder, &mut cache).await.expect("poll");
    assert!(poll.unchanged && poll.requests == 1, "no-op poll: {} requests", poll.requests);

    // 300 × 10 KB + 2 × 10 MB.
    let mut small = Vec::new();
    for i in 0..300 {
        let rel = format!("{folder}/small/f{i:03}.txt");
        small.push(BulkFile { path: rel.clone(), source: write(local.path(), &rel, &noise(10_240, i)), mtime: 1_700_000_000 });
    }
    let t = Instant::now();
    let before = nc.requests();
    let big_a = write(local.path(), "big-a.bin", &noise(10 << 20, 1001));
    let big_b = write(local.path(), "big-b.bin", &noise(10 << 20, 1002));
    let options = BulkOptions::default();
    let (path_a, path_b) = (format!("{folder}/big-a.bin"), format!("{folder}/big-b.bin"));
    let (report, a, b) = tokio::join!(
        bulk::upload(&nc, small, &options),
        bulk::put_file(&nc, &path_a, &big_a, 1_700_000_000, Precondition::Create),
        bulk::put_file(&nc, &path_b, &big_b, 1_700_000_000, Precondition::Create),
    );
    let ours = t.elapsed();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    a.expect("big-a");
    b.expect("big-b");
    say(&format!("live: 300 × 10 KB + 2 × 10 MB in {:.2} s, {} requests", ours.as_secs_f64(), nc.requests() - before));

    // Deep change: only the changed path is listed.
    walk::walk(&nc, &folder, &mut cache).await.unwrap();
    let f = write(local.path(), "changed.txt", b"changed");
    bulk::put_file(&nc, &format!("{folder}/small/f007.txt"), &f, 1_700_000_500, Precondition::Any).await.unwrap();
    let w = walk::walk(&nc, &folder, &mut cache).await.unwrap();
    let mut listed = w.listed.clone();
    listed.sort();
    assert_eq!(listed, vec!["".to_string(), "small".to_string()]);

    // Chunked upload, resumable.
    let big = write(local.path(), "chunked.bin", &noise(24 << 20, 77));
    let done = chunked::upload(&nc, &big, &format!("{folder}/chunked.bin"), 1_700_000_000, None, &ChunkOptions { chunk_size: 5 << 20, ..Default::default() })
        .await
        .expect("chunked");
    say(&format!("live: chunked upload done, mtime accepted: {}", done.mtime_accepted));

    // Versions and trash round trip.
    let path = format!("{folder}/small/f007.txt");
    let versions = nextcloud::versions(&nc, &path).await.expect("versions");
    assert!(!versions.is_empty(), "an overwritten file has a version");
    nextcloud::restore_version(&nc, &path, &versions[0].id).await.expect("restore version");
    let victim = format!("{folder}/small/f008.txt");
    let answer = nc.send(reqwest::Method::DELETE, nc.files_url(&victim), |b| b).await.unwrap();
    assert!(answer.status().is_success());
    nextcloud::restore(&nc, &victim).await.expect("restore from trash");

    // nextcloudcmd, when installed, on the same data.
    if let Ok(status) = std::process::Command::new("nextcloudcmd").arg("--version").output() {
        if status.status.success() {
            let src = local.path().join("cmp");
            for i in 0..300 {
                write(&src, &format!("small/f{i:03}.txt"), &noise(10_240, i));
            }
            write(&src, "big-a.bin", &noise(10 << 20, 1001));
            write(&src, "big-b.bin", &noise(10 << 20, 1002));
            let target = format!("{folder}-cmd");
            nc.mkdirs(&target).await.unwrap();
            let t = Instant::now();
            let out = std::process::Command::new("nextcloudcmd")
                .args(["--non-interactive", "-s", "-u", &live.user, "-p", &live.password, "--path", &format!("/{target}")])
                .arg(&src)
                .arg(live.url.as_str())
                .output()
                .expect("nextcloudcmd");
            let theirs = t.elapsed();
            assert!(out.status.success(), "nextcloudcmd failed");
            say(&format!(
                "live: nextcloudcmd {:.2} s, Passerelle {:.2} s, ratio {:.2} (goal ≤ 0.70)",
                theirs.as_secs_f64(),
                ours.as_secs_f64(),
                ours.as_secs_f64() / theirs.as_secs_f64()
            ));
            let _ = nc.send(reqwest::Method::DELETE, nc.files_url(&target), |b| b).await;
        }
    } else {
        say("live: nextcloudcmd is not installed (Debian nextcloud-desktop-cmd): no comparison");
    }

    let _ = nc.send(reqwest::Method::DELETE, nc.files_url(&folder), |b| b).await;
}

/// What the server advertises to this user: capabilities read WITH the credentials, since a
/// real Nextcloud shows `dav` and `files` only to an authenticated caller (observed on 34.0.1).
async fn advertised(live: &Live) -> (bool, bool) {
    let url = live.url.join("ocs/v2.php/cloud/capabilities?format=json").expect("capabilities URL");
    let answer = reqwest::Client::new()
        .get(url)
        .basic_auth(&live.user, Some(&live.password))
        .header("OCS-APIRequest", "true")
        .send()
        .await
        .expect("capabilities");
    assert!(answer.status().is_success(), "capabilities: {}", answer.status());
    let doc: serde_json::Value = answer.json().await.expect("capabilities JSON");
    let dav = &doc["ocs"]["data"]["capabilities"]["dav"];
    (dav["chunking"].as_str() == Some("1.0"), dav["bulkupload"].as_str() == Some("1.0"))
}

/// A loopback HTTP/1.1 relay in front of the live server that records each request's method and
/// path. Looking at the wire is the one way to tell, from outside the engine, which upload path
/// it took. Bodies are buffered whole (the test's largest request is one chunk).
struct Recorder {
    base: url::Url,
    seen: Arc<Mutex<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    async fn start(upstream: &url::Url) -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let origin = upstream.origin().ascii_serialization();
        let mine = format!("http://127.0.0.1:{port}");
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                while let Ok((sock, _)) = listener.accept().await {
                    tokio::spawn(relay(sock, origin.clone(), mine.clone(), client.clone(), seen.clone()));
                }
            }
        });
        let mut base = upstream.clone();
        base.set_scheme("http").expect("scheme");
        base.set_host(Some("127.0.0.1")).expect("host");
        base.set_port(Some(port)).expect("port");
        Recorder { base, seen, task }
    }

    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.seen.lock().expect("lock"))
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    sock: tokio::net::TcpStream,
    origin: String,
    mine: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<(String, String)>>>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let mut sock = BufReader::new(sock);
    loop {
        let mut line = Vec::new();
        if sock.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let line = String::from_utf8_lossy(&line).trim_end().to_string();
        let mut parts = line.split(' ');
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else { return };
        let (method, target) = (method.to_string(), target.to_string());
        let mut headers = Vec::new();
        loop {
            let mut h = Vec::new();
            if sock.read_until(b'\n', &mut h).await.unwrap_or(0) == 0 {
                return;
            }
            let h = String::from_utf8_lossy(&h).trim_end().to_string();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().replace(&mine, &origin)));
            }
        }
        let value = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let mut body = Vec::new();
        if value("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            loop {
                let mut size = Vec::new();
                if sock.read_until(b'\n', &mut size).await.unwrap_or(0) == 0 {
                    return;
                }
                let size = String::from_utf8_lossy(&size);
                let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                if sock.read_exact(&mut chunk).await.is_err() {
                    return;
                }
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(len) = value("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body = vec![0; len];
            if sock.read_exact(&mut body).await.is_err() {
                return;
            }
        }
        seen.lock().expect("lock").push((method.clone(), target.clone()));
        let Ok(m) = reqwest::Method::from_bytes(method.as_bytes()) else { return };
        let mut b = client.request(m.clone(), format!("{origin}{target}"));
        for (k, v) in &headers {
            if !matches!(k.as_str(), "host" | "content-length" | "transfer-encoding" | "connection" | "keep-alive") {
                b = b.header(k.as_str(), v.as_str());
            }
        }
        let out = match b.body(body).send().await {
            Ok(answer) => {
                let status = answer.status();
                let mut head = format!("HTTP/1.1 {} {}\r\n", status.as_u16(), status.canonical_reason().unwrap_or(""));
                let length = answer.headers().get("content-length").cloned();
                for (k, v) in answer.headers() {
                    if !matches!(k.as_str(), "content-length" | "transfer-encoding" | "connection" | "keep-alive") {
                        head.push_str(&format!("{}: {}\r\n", k, String::from_utf8_lossy(v.as_bytes())));
                    }
                }
                let bytes = answer.bytes().await.unwrap_or_default();
                let length = if m == reqwest::Method::HEAD {
                    length.map(|l| String::from_utf8_lossy(l.as_bytes()).to_string()).unwrap_or_else(|| "0".into())
                } else {
                    bytes.len().to_string()
                };
                head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
                let mut out = head.into_bytes();
                if m != reqwest::Method::HEAD {
                    out.extend_from_slice(&bytes);
                }
                out
            }
            Err(e) => format!("HTTP/1.1 502 Bad Gateway\r\nContent-Length: {}\r\n\r\n{e}", e.to_string().len()).into_bytes(),
        };
        if sock.get_mut().write_all(&out).await.is_err() {
            return;
        }
    }
}

fn tree(top: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![top.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(top).expect("prefix").to_string_lossy().replace('\\', "/");
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

/// The sync engine, as `passerelle sync --once` runs it, on 40 small files and one 24 MiB file,
/// then a download of the same into an empty folder. Prints the upload paths it used and fails
/// when an advertised capability was not used, or when anything did not arrive byte for byte.
#[tokio::test(flavor = "multi_thread")]
async fn live_sync_engine_uses_the_advertised_upload_paths() {
    use passerelle::drive::run::{self, FolderPaths, Outcome, RunOptions};
    let Some(live) = live() else { return };
    let (chunking, bulk) = advertised(&live).await;
    let relay = Recorder::start(&live.url).await;

    // Connect the way the CLI does: the app password a Login Flow v2 login saved, through
    // `nextcloud::connect` (which also reads the server's capabilities).
    let home = tempfile::tempdir().expect("home");
    let store = passerelle::auth::SecretStore::file(home.path().join("secrets.json"));
    let key = format!("nextcloud:{}", relay.base.as_str().trim_end_matches('/'));
    let saved = serde_json::json!({"mode": "app_password", "login": live.user, "app_password": live.password});
    store.set(&key, &saved.to_string()).expect("save the app password");
    let options = nextcloud::ConnectOptions { non_interactive: true, ..Default::default() };
    let nc = nextcloud::connect(&passerelle::http::client(), &relay.base, None, &store, &options).await.expect("connect");
    let info = nc.info().clone();
    say(&format!(
        "live: {} {}: the server advertises chunking={chunking} bulk={bulk}; Passerelle read chunking={} bulk={}",
        info.product, info.version, info.chunking, info.bulk_upload
    ));

    let folder = format!("passerelle-live-engine-{:08x}", rand::random::<u32>());
    nc.mkdirs(&folder).await.expect("mkdir");
    let src = tempfile::tempdir().expect("src");
    for i in 0..40u64 {
        write(src.path(), &format!("d{}/f{i:02}.txt", i % 4), &noise(10_240, 500 + i));
    }
    write(src.path(), "big.bin", &noise(24 << 20, 4242));
    relay.take();

    let remote = nextcloud::NextcloudRemote::new(nc.clone(), &folder, Some(home.path().join("up.tree.json")));
    let paths = FolderPaths::new(home.path(), src.path(), relay.base.as_str());
    let outcome = run::sync_once(&paths, &remote, &RunOptions::default(), None).await.expect("upload sync");
    let Outcome::Done(summary) = outcome else { panic!("upload sync did not run: {outcome:?}") };
    assert!(summary.report.failed.is_empty(), "failed: {:?}", summary.report.failed);
    let seen = relay.take();
    let count = |f: &dyn Fn(&str, &str) -> bool| seen.iter().filter(|(m, p)| f(m, p)).count();
    let bulk_posts = count(&|m, p| m == "POST" && p.trim_end_matches('/').ends_with("/remote.php/dav/bulk"));
    let chunked_uploads = count(&|m, p| m == "MKCOL" && p.contains("/remote.php/dav/uploads/"));
    let single_puts = count(&|m, p| m == "PUT" && p.contains("/remote.php/dav/files/"));
    say(&format!(
        "live: upload paths used by the sync engine: bulk {bulk_posts} POST(s), chunked {chunked_uploads} upload(s), \
         single PUT {single_puts} file(s); {} requests in all",
        seen.len()
    ));

    // Whatever path was taken, everything must be on the server: download it into an empty folder.
    let down = tempfile::tempdir().expect("down");
    let remote_down = nextcloud::NextcloudRemote::new(nc.clone(), &folder, Some(home.path().join("down.tree.json")));
    let paths_down = FolderPaths::new(home.path(), down.path(), relay.base.as_str());
    let outcome = run::sync_once(&paths_down, &remote_down, &RunOptions::default(), None).await.expect("download sync");
    let Outcome::Done(summary) = outcome else { panic!("download sync did not run: {outcome:?}") };
    assert!(summary.report.failed.is_empty(), "failed: {:?}", summary.report.failed);
    let (sent, got) = (tree(src.path()), tree(down.path()));
    let missing: Vec<_> = sent.keys().filter(|k| got.get(*k) != sent.get(*k)).collect();
    assert!(missing.is_empty(), "not on the server byte for byte after the upload sync: {missing:?}");
    let _ = nc.send(reqwest::Method::DELETE, nc.files_url(&folder), |b| b).await;

    let mut unused = Vec::new();
    if bulk && bulk_posts == 0 {
        unused.push("bulk upload (dav.bulkupload) is advertised but the engine sent no bulk POST");
    }
    if chunking && chunked_uploads == 0 {
        unused.push("chunked upload v2 (dav.chunking) is advertised but the 24 MiB file did not go chunked");
    }
    assert!(unused.is_empty(), "{}", unused.join("; "));
}
