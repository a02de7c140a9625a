//! Files being edited online (Nextcloud's files_lock: Collabora, OnlyOffice, or a user's lock),
//! against the Nextcloud test double
//! (tests/servers/nextcloud.py, NOT Nextcloud; its files_lock behaviour was observed on a real
//! Nextcloud 34.0.1). One throwaway double per test on port 0.
mod nextcloud_double;

use nextcloud_double::{upload_of, write, Double, SyncedFolder, APP_PASSWORD, USER};

use std::{collections::BTreeMap, path::Path};

use passerelle::drive::{
    journal::Record,
    local::LocalEntry,
    nextcloud::NextcloudRemote,
    plan::{self, Action},
    remote::{Precondition, Remote, RemoteEntry, RemoteError},
    run::{self, FolderPaths, Outcome, RunOptions, Summary},
    status, Kind,
};
use serde_json::json;

async fn sync(paths: &FolderPaths, remote: &NextcloudRemote) -> Summary {
    match run::sync_once(paths, remote, &RunOptions::default(), None).await.expect("sync") {
        Outcome::Done(s) => s,
        other => panic!("not done: {other:?}"),
    }
}

/// The names in the synced folder (a conflict copy would show here).
fn names(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// A colleague edits the file online while the member edits it here: the member's change stays
/// on the computer, the item reads "being edited online (by Bob Martin)", nothing is sent while
/// the lock lasts (no PUT, no conflict copy, however many runs), and the change goes up once the
/// lock ends, without a conflict copy although the lock changed the server's ETag twice.
#[tokio::test]
async fn a_file_edited_online_waits_keeps_the_local_change_and_goes_up_after_the_lock() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let SyncedFolder { home, root, paths } = nc.folder();
    write(&root, "rapport.odt", b"version 1");
    let remote = NextcloudRemote::new(client.clone(), "", Some(home.path().join("tree.json"))).with_journal(&paths.journal);
    sync(&paths, &remote).await;
    assert_eq!(nc.read("rapport.odt").await.unwrap(), b"version 1");

    nc.control("_test/lock", json!({"user": USER, "path": "rapport.odt", "type": 0, "owner": "bob", "displayname": "Bob Martin"})).await;
    write(&root, "rapport.odt", b"version 2, edited here");
    nc.reset().await;
    for _ in 0..3 {
        let s = sync(&paths, &remote).await;
        let failed: Vec<_> = s.report.failed.iter().map(|f| (f.path.as_str(), f.code.as_str(), f.by.as_deref())).collect();
        assert_eq!(failed, [("rapport.odt", "locked", Some("Bob Martin"))]);
        assert!(s.report.conflicts.is_empty(), "{:?}", s.report.conflicts);
        assert_eq!(names(&root), ["rapport.odt"], "no conflict copy");
        assert_eq!(std::fs::read(root.join("rapport.odt")).unwrap(), b"version 2, edited here");
    }
    assert_eq!(nc.read("rapport.odt").await.unwrap(), b"version 1");
    let stats = nc.stats().await;
    assert_eq!(stats["methods"]["PUT"].as_u64().unwrap_or(0), 0, "nothing sent while locked: {stats}");
    // What `status` (and the tray, through DriveStatus) shows.
    let st = status::read(&paths).unwrap();
    let waiting: Vec<_> = st.failures.iter().map(|f| (f.path.as_str(), f.code.as_str(), f.detail.as_deref())).collect();
    assert_eq!(waiting, [("rapport.odt", "locked", Some("Bob Martin"))]);

    nc.control("_test/unlock", json!({"user": USER, "path": "rapport.odt"})).await;
    let s = sync(&paths, &remote).await;
    assert!(s.report.failed.is_empty(), "{:?}", s.report.failed);
    assert!(s.report.conflicts.is_empty(), "{:?}", s.report.conflicts);
    assert_eq!(names(&root), ["rapport.odt"]);
    assert_eq!(nc.read("rapport.odt").await.unwrap(), b"version 2, edited here");
    assert!(status::read(&paths).unwrap().failures.is_empty());
}

/// An online editor's lock (an app lock, type 1) shuts out the owner's own clients too
/// (observed on 34.0.1); the one editing is named by `nc:lock-owner-editor`. A lock taken
/// after the listing: the upload's 423 becomes a wait, named, not a failure or a conflict.
#[tokio::test]
async fn an_online_editors_lock_taken_after_the_listing_turns_the_423_into_a_named_wait() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let remote = NextcloudRemote::new(client.clone(), "", None);
    let stored = remote.put("notes.txt", upload_of(b"one".to_vec(), 1_700_000_000), Precondition::Create).await.unwrap();
    // The LOCK as files_lock's DAV plugin takes it (X-User-Lock), here by the member herself.
    let lock = nc
        .http
        .request(reqwest::Method::from_bytes(b"LOCK").unwrap(), nc.url.join(&format!("remote.php/dav/files/{USER}/notes.txt")).unwrap())
        .basic_auth(USER, Some(APP_PASSWORD))
        .header("X-User-Lock", "1")
        .header("X-User-Lock-Type", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(lock.status().as_u16(), 200);
    let err = remote
        .put("notes.txt", upload_of(b"two".to_vec(), 1_700_000_100), Precondition::Replace(stored.etag.clone().unwrap()))
        .await
        .unwrap_err();
    match &err {
        RemoteError::Locked { path, by } => {
            assert_eq!(path, "notes.txt");
            assert_eq!(by.as_deref(), Some(USER));
        }
        other => panic!("not read as locked: {other:?}"),
    }
    assert_eq!(err.code(), "locked");
    assert_eq!(remote.delete("notes.txt", None).await.unwrap_err().code(), "locked");
    assert_eq!(nc.read("notes.txt").await.unwrap(), b"one");

    // Through the engine: the listing already says it is locked, so no PUT is even tried.
    let SyncedFolder { home: _home, root, paths } = nc.folder();
    let remote = NextcloudRemote::new(client, "", None);
    let s = sync(&paths, &remote).await;
    assert!(s.report.failed.is_empty(), "reading a locked file is fine: {:?}", s.report.failed);
    write(&root, "notes.txt", b"two, from here");
    nc.reset().await;
    let s = sync(&paths, &remote).await;
    let failed: Vec<_> = s.report.failed.iter().map(|f| (f.code.as_str(), f.by.as_deref())).collect();
    assert_eq!(failed, [("locked", Some(USER))]);
    assert_eq!(nc.stats().await["methods"]["PUT"].as_u64().unwrap_or(0), 0);
    assert_eq!(names(&root), ["notes.txt"]);
}

fn rec(size: u64, mtime_s: i64, etag: &str) -> Record {
    Record { kind: Kind::File, size, mtime: mtime_s * 1_000_000_000, inode: 7, etag: Some(etag.into()), file_id: Some("9".into()), checksum: None }
}

fn remote_file(size: u64, mtime_s: i64, etag: &str) -> RemoteEntry {
    RemoteEntry { kind: Kind::File, size, mtime: Some(mtime_s), etag: Some(etag.into()), file_id: Some("9".into()), server_path: "a.odt".into() }
}

fn local_file(size: u64, mtime_s: i64) -> LocalEntry {
    LocalEntry { kind: Kind::File, size, mtime: mtime_s * 1_000_000_000, inode: 7, disk_path: "a.odt".into() }
}

/// The planner's part, as a table: locked + changed here = wait (no action); after the lock,
/// an ETag moved by the lock alone (same size and date) is not a server edit for a path that
/// waited; a real edit (another size or date) still is a conflict.
#[test]
fn planner_waits_on_locks_and_does_not_mistake_a_lock_for_an_edit() {
    let now = time::macros::datetime!(2026-11-29 23:00);
    let j = BTreeMap::from([("a.odt".to_string(), rec(3, 100, "e1"))]);
    let edited_here = BTreeMap::from([("a.odt".to_string(), local_file(10, 200))]);
    // Locked (the lock moved the ETag): wait.
    let locked_remote = BTreeMap::from([("a.odt".to_string(), remote_file(3, 100, "e2"))]);
    let mut o = plan::Options::new(now);
    o.locked.insert("a.odt".into(), "Bob".into());
    let p = plan::plan(&j, &edited_here, &locked_remote, &o);
    assert!(p.actions.is_empty(), "{p}");
    assert_eq!(p.locked, [plan::LockWait { path: "a.odt".into(), by: "Bob".into() }]);
    // Unlocked since (ETag moved again), the path waited: an upload guarded by the new ETag.
    let unlocked = BTreeMap::from([("a.odt".to_string(), remote_file(3, 100, "e3"))]);
    let mut o = plan::Options::new(now);
    o.lock_waits.insert("a.odt".into());
    let p = plan::plan(&j, &edited_here, &unlocked, &o);
    match p.actions.as_slice() {
        [Action::Upload { pre: Precondition::Replace(e), .. }] => assert_eq!(e, "e3"),
        other => panic!("{other:?}"),
    }
    // Edited online meanwhile (new size and date): a conflict, as without any lock.
    let edited_online = BTreeMap::from([("a.odt".to_string(), remote_file(5, 300, "e4"))]);
    let p = plan::plan(&j, &edited_here, &edited_online, &o);
    assert!(matches!(p.actions.as_slice(), [Action::Conflict { .. }]), "{p}");
    // Without the wait noted, a moved ETag is a server edit (the rule is only for locks).
    let p = plan::plan(&j, &edited_here, &unlocked, &plan::Options::new(now));
    assert!(matches!(p.actions.as_slice(), [Action::Conflict { .. }]), "{p}");
    // Locked but unchanged here: the server's edit is downloaded (reading is allowed).
    let same_here = BTreeMap::from([("a.odt".to_string(), local_file(3, 100))]);
    let mut o = plan::Options::new(now);
    o.locked.insert("a.odt".into(), "Bob".into());
    let p = plan::plan(&j, &same_here, &edited_online, &o);
    assert!(matches!(p.actions.as_slice(), [Action::Download { .. }]), "{p}");
    assert!(p.locked.is_empty());
}
