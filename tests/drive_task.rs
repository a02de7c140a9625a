//! Continuous mode: the per-folder task picks up a local edit through the watcher (debounced),
//! publishes its status, pauses, resumes, and asks before mass deletions.
use std::{sync::Arc, time::Duration};

use passerelle::drive::{
    memory::MemoryRemote,
    run::FolderPaths,
    task::{Drive, DriveConfig, DriveStatus, Event},
};
use tokio::time::{timeout, Instant};

async fn wait_status(rx: &mut tokio::sync::watch::Receiver<DriveStatus>, pred: impl Fn(&DriveStatus) -> bool) -> DriveStatus {
    let r = timeout(Duration::from_secs(20), rx.wait_for(|s| pred(s))).await;
    r.expect("status in time").expect("task alive").clone()
}

async fn wait_remote(remote: &MemoryRemote, path: &str, data: &[u8]) -> Duration {
    let start = Instant::now();
    loop {
        if remote.snapshot().get(path).and_then(|d| d.as_ref()).is_some_and(|d| &d[..] == data) {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{path} never reached the server");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn edits_are_picked_up_by_the_watcher() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("folder");
    std::fs::create_dir_all(&root).expect("mkdir");
    let remote = MemoryRemote::new();
    let mut config = DriveConfig::new(FolderPaths::new(&dir.path().join("data"), &root, "memory"), Arc::new(remote.clone()));
    // A long poll: only the watcher can explain a quick upload.
    config.poll_every = Duration::from_secs(3600);
    let handle = Drive::start(config);
    let mut status = handle.status();
    wait_status(&mut status, |s| matches!(s, DriveStatus::Idle { .. })).await;

    std::fs::write(root.join("note.txt"), b"first").expect("write");
    let latency = wait_remote(&remote, "note.txt", b"first").await;
    eprintln!("edit to upload done (memory remote, 0.5 s debounce): {latency:?}");
    assert!(latency < Duration::from_secs(5));

    // Remote changes come with a poll or a "sync now".
    remote.write("from-server.txt", b"hello");
    handle.send(Event::SyncNow);
    let start = Instant::now();
    while std::fs::read(root.join("from-server.txt")).ok().as_deref() != Some(&b"hello"[..]) {
        assert!(start.elapsed() < Duration::from_secs(20), "download never happened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    handle.send(Event::Pause);
    wait_status(&mut status, |s| matches!(s, DriveStatus::Paused)).await;
    handle.send(Event::Resume);
    wait_status(&mut status, |s| matches!(s, DriveStatus::Idle { .. })).await;

    // A mass deletion on the server: the task asks, and deletes only after "yes".
    for i in 0..6 {
        std::fs::write(root.join(format!("f{i}.txt")), b"x").expect("write");
    }
    wait_remote(&remote, "f5.txt", b"x").await;
    wait_status(&mut status, |s| matches!(s, DriveStatus::Idle { .. })).await;
    for i in 0..6 {
        remote.remove(&format!("f{i}.txt"));
    }
    remote.remove("note.txt");
    remote.remove("from-server.txt");
    handle.send(Event::SyncNow);
    let asked = wait_status(&mut status, |s| matches!(s, DriveStatus::NeedsConfirmation { .. })).await;
    let DriveStatus::NeedsConfirmation { question, .. } = asked else { unreachable!() };
    assert!(question.contains("Delete anyway?"), "{question}");
    assert!(root.join("f0.txt").exists(), "nothing deleted before the answer");
    handle.send(Event::ConfirmDeletes(true));
    let start = Instant::now();
    while root.join("f0.txt").exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "deletion never happened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let json = serde_json::to_value(&*status.borrow()).expect("serializable status");
    assert!(json["state"].is_string());
    handle.shutdown().await;
}
