//! Faults: a fault-injecting proxy (tests/servers/fault_proxy.py) in front of a real WebDAV
//! server (rclone, and Apache mod_dav which checks preconditions) answers 500 and 503, resets
//! connections, stalls, answers 401 once and truncates bodies. The engine recovers, or stops with
//! a clear message, and loses nothing.
mod drive_support;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use drive_support::*;
use passerelle::drive::{
    run::{sync_once, FolderPaths, Outcome, RunOptions},
    Auth, DriveError, RemoteError, WebDav,
};

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_proxy(upstream: &str) -> (Proxy, u16) {
    let python = std::env::var("PASSERELLE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers/fault_proxy.py");
    let mut child = Command::new(python).arg(script).arg(upstream).stdout(Stdio::piped()).spawn().expect("proxy");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port");
    (Proxy(child), line.trim().parse().expect("port number"))
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_are_survived_without_loss() {
    faults("PASSERELLE_TEST_RCLONE_DAV").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_are_survived_without_loss_on_apache() {
    faults("PASSERELLE_TEST_APACHE_DAV").await;
}

async fn faults(server: &str) {
    let (url, direct) = fresh(server).await;
    let base = std::env::var(server).expect("stack env");
    let (_proxy, port) = start_proxy(&base);
    let proxied = url::Url::parse(&format!("http://127.0.0.1:{port}{}", url.path())).expect("url");
    // A short read timeout so that a stall is a timeout in seconds, not a minute.
    let http = reqwest::Client::builder().read_timeout(Duration::from_secs(2)).build().expect("client");
    let (user, password) = user();
    let mut dav = WebDav::new(http, proxied.clone(), Auth::Basic { user, password });
    dav.backoff = Duration::from_millis(50);

    let home = tempfile::tempdir().expect("tempdir");
    let root = home.path().join("folder");
    for i in 0..25 {
        write(&root, &format!("d{}/up {i}.txt", i % 3), format!("upload {i} {}", "u".repeat(i * 100)).as_bytes());
    }
    for i in 0..15 {
        put(&direct, &format!("down {i}.txt"), format!("download {i} {}", "d".repeat(i * 300)).as_bytes()).await;
    }
    let folder = FolderPaths::new(&home.path().join("data"), &root, proxied.as_str());
    let options = RunOptions { backoff: Duration::from_millis(50), retry_failed: true, ..RunOptions::default() };

    let mut login_stops = 0;
    let mut converged = false;
    for run in 0..20 {
        match sync_once(&folder, &dav, &options, None).await {
            Ok(Outcome::Done(s)) if s.report.failed.is_empty() && s.report.done == 0 => {
                converged = true;
                break;
            }
            Ok(Outcome::Done(s)) => eprintln!("run {run}: {} done, failed {:?}", s.report.done, s.report.failed),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(DriveError::Remote(RemoteError::Unauthorized)) => {
                // The clear stop: "log in again". A new run (after a new login) goes on.
                assert_eq!(
                    DriveError::Remote(RemoteError::Unauthorized).to_string(),
                    "the server refused the credentials: please log in again"
                );
                login_stops += 1;
            }
            Err(e) => eprintln!("run {run}: stopped: {e} [{}]", e.code()),
        }
    }
    assert!(converged, "the sync converged despite the faults");
    assert_eq!(login_stops, 1, "the one 401 stopped one run with a log-in-again error");
    let local = local_tree(&root);
    assert_eq!(local.values().flatten().count(), 40, "every file on this side");
    same(&local, &remote_tree(&direct).await);
}
