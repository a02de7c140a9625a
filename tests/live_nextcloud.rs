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
use std::{io::Write, path::Path, time::Instant};

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
    say(&format!("live: {} {} chunking={} bulk={}", info.product, info.version, info.chunking, info.bulk_upload));
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
