//! A local folder and its journal belong to one account on one server (issue 14, item 13), and
//! a safety stop can be answered "send my files back" (item 15). The core enforces both, so the
//! command line is as safe as the desktop.
use std::{path::Path, sync::Arc, time::Duration};

use passerelle::{
    drive::{
        memory::MemoryRemote,
        run::{sync_once, FolderPaths, Outcome, RunOptions},
        task::{Drive, DriveConfig, DriveStatus, Event},
        DriveError,
    },
    folder::{self, Owner},
};

fn remote(account: &str) -> MemoryRemote {
    let mut remote = MemoryRemote::new();
    remote.account = Some(account.to_string());
    remote
}

fn files(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

async fn fill(root: &Path, n: usize) {
    std::fs::create_dir_all(root).unwrap();
    for i in 0..n {
        std::fs::write(root.join(format!("note-{i}.txt")), format!("note {i}")).unwrap();
    }
}

fn code(result: Result<Outcome, DriveError>) -> String {
    match result {
        Err(e) => e.code().to_string(),
        Ok(o) => format!("{o:?}").split_whitespace().next().unwrap_or_default().to_string(),
    }
}

/// Logging out alice and syncing her folder as bob against bob's empty space used to read every
/// file as deleted on the server: one "delete anyway" (or `--allow-deletes`) and alice's files
/// were gone. Now the folder is refused to bob, even with deletions allowed, and nothing moves.
#[tokio::test]
async fn another_account_never_syncs_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let root = dir.path().join("Passerelle");
    fill(&root, 6).await;
    let folder = FolderPaths::new(&data, &root, "https://files.example.coop/");
    let alice = remote("alice");
    let done = sync_once(&folder, &alice, &RunOptions::default(), None).await.unwrap();
    assert!(matches!(done, Outcome::Done(_)));
    assert_eq!(alice.snapshot().len(), 6);
    assert_eq!(
        folder::owner_of(&folder.owner).unwrap(),
        Some(Owner { server: "https://files.example.coop/".into(), account: "alice".into() })
    );

    let bob = remote("bob");
    let allow = RunOptions { allow_deletes: true, ..RunOptions::default() };
    assert_eq!(code(sync_once(&folder, &bob, &allow, None).await), "folder_other_account");
    assert_eq!(files(&root).len(), 6, "alice's files are all there");
    assert!(bob.snapshot().is_empty(), "nothing of alice's went to bob's space");
    // A dry run is refused too, and records nothing.
    let dry = RunOptions { dry_run: true, ..RunOptions::default() };
    assert_eq!(code(sync_once(&folder, &bob, &dry, None).await), "folder_other_account");

    // The same account with another server, or another server folder, is refused too.
    let elsewhere = FolderPaths::nextcloud(&data, &root, &"https://files.example.coop/".parse().unwrap(), "Équipe");
    assert_eq!(code(sync_once(&elsewhere, &alice, &RunOptions::default(), None).await), "folder_other_server");
    assert_eq!(files(&root).len(), 6);

    // Alice still syncs it.
    alice.write("from-server.txt", b"hello");
    assert!(matches!(sync_once(&folder, &alice, &RunOptions::default(), None).await.unwrap(), Outcome::Done(_)));
    assert_eq!(std::fs::read(root.join("from-server.txt")).unwrap(), b"hello");
}

/// Bob is proposed a folder of his own; alice's stays hers. An emptied folder may change hands,
/// with a fresh journal (no "the folder is empty" stop, nothing of alice's replayed).
#[tokio::test]
async fn another_account_gets_its_own_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let default = dir.path().join("Passerelle");
    fill(&default, 4).await;
    let server = "https://files.example.coop/";
    let folder = FolderPaths::new(&data, &default, server);
    let alice = remote("alice");
    sync_once(&folder, &alice, &RunOptions::default(), None).await.unwrap();

    let bob_owner = Owner { server: server.into(), account: "bob".into() };
    let alice_owner = Owner { server: server.into(), account: "alice".into() };
    assert_eq!(folder::propose(&data, &default, &alice_owner, "Alice"), default);
    let proposed = folder::propose(&data, &default, &bob_owner, "Bob Martin");
    assert_eq!(proposed, dir.path().join("Passerelle - Bob Martin"));
    assert!(!proposed.exists(), "proposing creates nothing");

    let bob = remote("bob");
    bob.write("bob.txt", b"bob's");
    let his = FolderPaths::new(&data, &proposed, server);
    assert!(matches!(sync_once(&his, &bob, &RunOptions::default(), None).await.unwrap(), Outcome::Done(_)));
    assert_eq!(files(&proposed), ["bob.txt"]);
    assert_eq!(files(&default).len(), 4, "alice's folder untouched");

    // Alice empties her folder and leaves: bob may take the empty folder, starting afresh.
    for f in files(&default) {
        std::fs::remove_file(default.join(f)).unwrap();
    }
    let out = sync_once(&folder, &bob, &RunOptions::default(), None).await.unwrap();
    assert!(matches!(out, Outcome::Done(_)), "{out:?}");
    assert_eq!(files(&default), ["bob.txt"]);
    assert_eq!(alice.snapshot().len(), 4, "nothing deleted on alice's side");
    assert_eq!(folder::owner_of(&folder.owner).unwrap(), Some(bob_owner));
}

/// Issue 14, item 15: the server lost the files; instead of "delete mine too", the member
/// answers "send them back": every file goes up again, none is deleted here.
#[tokio::test]
async fn a_safety_stop_can_send_the_files_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("Passerelle");
    fill(&root, 6).await;
    std::fs::create_dir(root.join("Compta")).unwrap();
    std::fs::write(root.join("Compta/bilan.txt"), "bilan").unwrap();
    let folder = FolderPaths::new(&dir.path().join("data"), &root, "memory");
    let server = remote("alice");
    sync_once(&folder, &server, &RunOptions::default(), None).await.unwrap();
    let before = server.snapshot();
    for key in before.keys() {
        server.remove(key);
    }
    assert!(matches!(sync_once(&folder, &server, &RunOptions::default(), None).await.unwrap(), Outcome::NeedsConfirmation { .. }));
    let back = RunOptions { send_back: true, ..RunOptions::default() };
    let out = sync_once(&folder, &server, &back, None).await.unwrap();
    let Outcome::Done(summary) = out else { panic!("{out:?}") };
    assert!(summary.report.failed.is_empty(), "{:?}", summary.report.failed);
    assert_eq!(server.snapshot(), before, "the server has every file and folder again");
    assert_eq!(files(&root).len(), 7);
    // And the next ordinary run has nothing to ask or do.
    let Outcome::Done(summary) = sync_once(&folder, &server, &RunOptions::default(), None).await.unwrap() else { panic!() };
    assert_eq!(summary.report.done, 0);
}

/// The continuous task: "keep my files" holds the sync and says so (`Held`, not a bare pause);
/// "send them back" resumes and uploads them.
#[tokio::test(flavor = "multi_thread")]
async fn the_task_holds_then_sends_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("Passerelle");
    fill(&root, 5).await;
    let server = remote("alice");
    let mut config = DriveConfig::new(FolderPaths::new(&dir.path().join("data"), &root, "memory"), Arc::new(server.clone()));
    config.watch = false;
    config.poll_every = Duration::from_secs(3600);
    let handle = Drive::start(config);
    let mut status = handle.status();
    let mut wait = async |pred: fn(&DriveStatus) -> bool| {
        tokio::time::timeout(Duration::from_secs(20), status.wait_for(pred)).await.expect("in time").expect("alive").clone()
    };
    wait(|s| matches!(s, DriveStatus::Idle { .. })).await;
    for key in server.snapshot().keys() {
        server.remove(key);
    }
    handle.send(Event::SyncNow);
    wait(|s| matches!(s, DriveStatus::NeedsConfirmation { .. })).await;
    handle.send(Event::ConfirmDeletes(false));
    wait(|s| matches!(s, DriveStatus::Held)).await;
    handle.send(Event::SendBack);
    wait(|s| matches!(s, DriveStatus::Idle { .. })).await;
    assert_eq!(server.snapshot().len(), 5);
    assert_eq!(files(&root).len(), 5);
    handle.shutdown().await;
}
