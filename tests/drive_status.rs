//! What the continuous sync tells the tray (issue 14, items 1 and 4): the items that failed
//! (with their size) and the last run's conflicts are in the idle status, and a poll that finds
//! nothing to do changes nothing (no « Synchronisation… » flicker every 30 s).
use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use futures_util::future::BoxFuture;
use passerelle::drive::{
    memory::MemoryRemote,
    remote::{Download, Precondition, Stored, Upload},
    run::FolderPaths,
    task::{Drive, DriveConfig, DriveStatus, FailedItem},
    Remote, RemoteEntry, RemoteError,
};
use tokio::time::{timeout, Instant};

/// The in-memory server, counting listings (one per run) and refusing one file for lack of
/// space, as Nextcloud does with 507.
struct Server {
    inner: MemoryRemote,
    lists: Arc<AtomicUsize>,
    full_for: &'static str,
}

impl Remote for Server {
    fn list(&self, dir: &str) -> BoxFuture<'_, Result<Vec<(String, RemoteEntry)>, RemoteError>> {
        if dir.is_empty() || dir == "/" {
            self.lists.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.list(dir)
    }
    fn stat(&self, path: &str) -> BoxFuture<'_, Result<Option<RemoteEntry>, RemoteError>> {
        self.inner.stat(path)
    }
    fn get(&self, path: &str) -> BoxFuture<'_, Result<Download, RemoteError>> {
        self.inner.get(path)
    }
    fn put(&self, path: &str, upload: Upload, pre: Precondition) -> BoxFuture<'_, Result<Stored, RemoteError>> {
        if path.ends_with(self.full_for) {
            return Box::pin(async { Err(RemoteError::InsufficientStorage) });
        }
        self.inner.put(path, upload, pre)
    }
    fn mkdir(&self, path: &str) -> BoxFuture<'_, Result<Stored, RemoteError>> {
        self.inner.mkdir(path)
    }
    fn delete(&self, path: &str, if_match: Option<&str>) -> BoxFuture<'_, Result<(), RemoteError>> {
        self.inner.delete(path, if_match)
    }
    fn rename(&self, from: &str, to: &str) -> BoxFuture<'_, Result<(), RemoteError>> {
        self.inner.rename(from, to)
    }
}

async fn wait_status(rx: &mut tokio::sync::watch::Receiver<DriveStatus>, pred: impl Fn(&DriveStatus) -> bool) -> DriveStatus {
    let r = timeout(Duration::from_secs(30), rx.wait_for(|s| pred(s))).await;
    r.expect("status in time").expect("task alive").clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_and_conflicts_reach_the_status_and_quiet_polls_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("folder");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(root.join("rapport annuel.pdf"), vec![7u8; 123_456]).expect("write");
    std::fs::write(root.join("ok.txt"), b"fine").expect("write");
    // Created on both sides with different contents: a conflict, both versions kept.
    std::fs::write(root.join("budget.ods"), b"mine").expect("write");
    let memory = MemoryRemote::new();
    memory.write("budget.ods", b"theirs");
    let lists = Arc::new(AtomicUsize::new(0));
    let server = Server { inner: memory.clone(), lists: lists.clone(), full_for: "rapport annuel.pdf" };
    let mut config = DriveConfig::new(FolderPaths::new(&dir.path().join("data"), &root, "memory"), Arc::new(server));
    config.watch = false;
    config.poll_every = Duration::from_millis(100);
    let handle = Drive::start(config);
    let mut status = handle.status();

    // Item 1: the refused file is in the status, with its real size; the conflict too.
    let idle = wait_status(&mut status, |s| matches!(s, DriveStatus::Idle { .. })).await;
    let DriveStatus::Idle { failed, conflicts, .. } = idle.clone() else { unreachable!() };
    assert_eq!(
        failed,
        [FailedItem { path: "rapport annuel.pdf".into(), code: "quota_exceeded".into(), size: Some(123_456), by: None }],
        "{idle:?}"
    );
    assert_eq!(conflicts, ["budget.ods"], "{idle:?}");
    assert!(memory.snapshot().contains_key("ok.txt"));

    // Item 4: polls that find nothing new publish nothing (before: « Synchronisation… » and a
    // new « À jour » each time). Every status change from here on is recorded.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut watcher = handle.status();
    watcher.borrow_and_update();
    let record = seen.clone();
    let recorder = tokio::spawn(async move {
        while watcher.changed().await.is_ok() {
            let now = watcher.borrow_and_update().clone();
            record.lock().unwrap().push(now);
        }
    });
    let start_lists = lists.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    while lists.load(Ordering::SeqCst) < start_lists + 5 {
        assert!(Instant::now() < deadline, "the task stopped polling");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let changes = seen.lock().unwrap().clone();
    assert!(changes.is_empty(), "quiet polls changed the status: {changes:?}");
    // The failure is still told (it waits for its back-off), and so is the last conflict.
    assert_eq!(*status.borrow(), idle);
    recorder.abort();
    handle.shutdown().await;
}
