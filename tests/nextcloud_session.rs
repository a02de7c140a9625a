//! What each Nextcloud request costs the server, and the bookkeeping of chunked uploads,
//! against the Nextcloud test double (tests/servers/nextcloud.py, NOT Nextcloud; the session
//! cookie behaviour was observed on a real Nextcloud 34.0.1). One throwaway double per test.
mod nextcloud_double;

use nextcloud_double::{noise, upload_of, Double, SyncedFolder, USER};

use std::time::Duration;

use bytes::Bytes;
use passerelle::drive::{
    journal::Journal,
    nextcloud::{
        chunked::{ChunkOptions, MIB},
        NextcloudRemote,
    },
    remote::{Precondition, Remote, Upload},
    run::{self, Outcome, RunOptions},
};

/// Issue 11, performance: each request that comes with only the app password makes Nextcloud
/// log in again (token lookup, decrypting the stored password, a new session: half the time of
/// a small PROPFIND on 34.0.1). The session cookie it sets is sent back, so one login serves
/// the next requests; never with a POST (the bulk upload), which Nextcloud would refuse as a
/// CSRF failure and answer by logging the session out.
#[tokio::test]
async fn the_session_cookie_saves_a_login_per_request_and_never_goes_with_a_post() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    nc.reset().await;
    let remote = NextcloudRemote::new(client.clone(), "", None);
    for _ in 0..5 {
        remote.stat("").await.expect("stat");
    }
    let stats = nc.stats().await;
    assert_eq!(stats["app_password_logins"].as_u64(), Some(1), "{stats}");
    assert_eq!(stats["session_requests"].as_u64(), Some(4), "{stats}");

    let files = (0..3).map(|i| (format!("small-{i}.txt"), Bytes::from(format!("file {i}")), 1_700_000_000)).collect();
    let stored = remote.put_new_many(files).await;
    assert!(stored.iter().all(|r| r.is_ok()), "{stored:?}");
    remote.stat("small-0.txt").await.expect("stat").expect("uploaded");
    let stats = nc.stats().await;
    assert_eq!(stats["csrf_logouts"].as_u64().unwrap_or(0), 0, "a POST carried the session cookie: {stats}");
    assert_eq!(stats["session_requests"].as_u64(), Some(5), "the session outlived the POST: {stats}");
}

/// Issue 11, defect 5: the open chunked uploads live in the journal, and an earlier side file
/// (`<cache>.uploads.json`) is moved into it and deleted.
#[tokio::test]
async fn open_chunked_uploads_are_kept_in_the_journal_and_an_old_side_file_moves_there() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("folder.tree.json");
    let journal = dir.path().join("folder.sqlite");
    let side = dir.path().join("folder.tree.uploads.json");
    std::fs::write(&side, br#"{"passerelle-old-upload": 1700000000}"#).unwrap();
    let mut remote = NextcloudRemote::new(client.clone(), "", Some(cache.clone())).with_journal(&journal);
    assert!(!side.exists(), "the side file is moved into the journal");
    assert_eq!(remote.open_uploads(), ["passerelle-old-upload"]);
    assert_eq!(Journal::open(&journal).unwrap().uploads().unwrap().into_iter().collect::<Vec<_>>(), [("passerelle-old-upload".to_string(), 1_700_000_000)]);

    remote.chunking = ChunkOptions { chunk_size: 5 * MIB, threshold: 5 * MIB, parallel: 2 };
    // The first listing after a change cleans what was abandoned more than a day ago: the old
    // id, known only from the side file, is cleaned and forgotten.
    remote.list_tree().await.unwrap();
    assert!(remote.open_uploads().is_empty());
    assert!(Journal::open(&journal).unwrap().uploads().unwrap().is_empty());
    let body = futures_util::stream::iter(vec![
        Ok(bytes::Bytes::from(noise(5 * MIB as usize, 1))),
        Err(std::io::Error::other("disk unplugged")),
    ]);
    let upload = Upload { len: 12 * MIB, body: Box::pin(body), mtime: 1 };
    assert!(remote.put("cut.bin", upload, Precondition::Create).await.is_err());
    let in_journal: Vec<String> = Journal::open(&journal).unwrap().uploads().unwrap().into_keys().collect();
    assert_eq!(in_journal.len(), 1, "{in_journal:?}");
    assert!(!side.exists(), "nothing written beside the cache any more");
    let new_id = in_journal[0].clone();
    assert_eq!(nc.propfind(&format!("remote.php/dav/uploads/{USER}/{new_id}"), "0").await.0, 207);

    // After a restart it is known from the journal alone; cleaning removes it.
    let restarted = NextcloudRemote::new(client, "", Some(cache)).with_journal(&journal);
    assert_eq!(restarted.open_uploads(), [new_id.clone()]);
    assert_eq!(restarted.clean_uploads(Duration::ZERO).await.expect("clean"), 1);
    assert_eq!(nc.propfind(&format!("remote.php/dav/uploads/{USER}/{new_id}"), "0").await.0, 404);
    assert!(Journal::open(&journal).unwrap().uploads().unwrap().is_empty());
}

/// Issue 11, performance: a first download makes one GET per file, each a full request on the
/// server (about 10 ms of server time for a 10 KB file on 34.0.1, quiet), while Nextcloud can
/// send several files of one folder as one tar (`ZipFolderPlugin`, `files` filter: 30 files
/// in 0.07 s there). Small files of a folder come in one request; a folder with one file and
/// big files keep their own GET; every byte and date is as on the server.
#[tokio::test]
async fn small_files_of_a_folder_come_down_in_one_request() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let up = NextcloudRemote::new(client.clone(), "", None);
    let mut want = Vec::new();
    for (dir, n) in [("a", 5), ("b", 3), ("c", 1)] {
        client.mkdirs(dir).await.unwrap();
        for i in 0..n {
            let path = format!("{dir}/f{i}.txt");
            let content = noise(1000 + i * 10, (i + n) as u64);
            up.put(&path, upload_of(content.clone(), 1_700_000_000 + i as i64), Precondition::Create).await.unwrap();
            want.push((path, content, 1_700_000_000 + i as i64));
        }
    }
    let big = noise(2 * MIB as usize, 99);
    up.put("a/big.bin", upload_of(big.clone(), 1_700_000_500), Precondition::Create).await.unwrap();
    want.push(("a/big.bin".into(), big, 1_700_000_500));

    let SyncedFolder { home: _home, root, paths } = nc.folder();
    let remote = NextcloudRemote::new(client, "", None);
    nc.reset().await;
    let outcome = run::sync_once(&paths, &remote, &RunOptions::default(), None).await.expect("sync");
    let Outcome::Done(summary) = outcome else { panic!("{outcome:?}") };
    assert!(summary.report.failed.is_empty(), "{:?}", summary.report.failed);
    for (path, content, mtime) in &want {
        let file = root.join(path);
        assert_eq!(&std::fs::read(&file).unwrap(), content, "{path}");
        let secs = std::fs::metadata(&file).unwrap().modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs as i64, *mtime, "{path}");
    }
    let stats = nc.stats().await;
    // a/ (5 small files) and b/ (3) in one tar each; c/f0.txt and the 2 MiB file alone.
    assert_eq!(stats["tar_downloads"].as_u64(), Some(2), "{stats}");
    assert_eq!(stats["methods"]["GET"].as_u64(), Some(4), "{stats}");
    // Nothing left to do: the journal holds what the tars brought.
    let outcome = run::sync_once(&paths, &remote, &RunOptions::default(), None).await.expect("sync");
    let Outcome::Done(summary) = outcome else { panic!("{outcome:?}") };
    assert_eq!(summary.report.done, 0);
}

/// A batch the server refuses (a file deleted since the listing makes the whole tar 404,
/// observed on 34.0.1) falls back to one GET per file: nothing is lost or half-written.
#[tokio::test]
async fn a_refused_batch_falls_back_to_single_downloads() {
    let nc = Double::start(None);
    let client = nc.connect().await;
    let remote = NextcloudRemote::new(client.clone(), "", None);
    client.mkdirs("d").await.unwrap();
    for i in 0..3 {
        remote.put(&format!("d/f{i}.txt"), upload_of(vec![b'a' + i as u8; 100], 1_700_000_000), Precondition::Create).await.unwrap();
    }
    let names = vec!["f0.txt".to_string(), "gone.txt".to_string()];
    assert_eq!(remote.get_many("d", names).await.unwrap_err().code(), "not_found");
    let got = remote.get_many("d", vec!["f2.txt".into(), "f0.txt".into()]).await.unwrap();
    let got: Vec<(String, Vec<u8>)> = got.into_iter().map(|(n, b)| (n, b.to_vec())).collect();
    assert_eq!(got, [("f2.txt".to_string(), vec![b'c'; 100]), ("f0.txt".to_string(), vec![b'a'; 100])]);
}
