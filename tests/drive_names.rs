//! Hostile names: a test server (tests/servers/webdav_hostile.py) lists names that try to
//! escape the root (`..%2F..`, backslashes, absolute-looking, other hosts), that no disk can hold
//! (300 bytes, NUL), NFC/NFD twins and case twins. Nothing may be written outside the root, and
//! each refused item is reported with a reason while the rest syncs.
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

mod hostile;

use passerelle::drive::{
    run::{sync_once, FolderPaths, Outcome, RunOptions},
    Auth, WebDav,
};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> String {
    std::env::var("PASSERELLE_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn start_hostile() -> (Server, u16) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers/webdav_hostile.py");
    let mut child = Command::new(python()).arg(script).stdout(Stdio::piped()).spawn().expect("start hostile server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port");
    let port = line.trim().parse().expect("port number");
    (Server(child), port)
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_are_refused_and_nothing_escapes() {
    let (_server, port) = start_hostile();
    let outer = tempfile::tempdir().expect("tempdir");
    let root = outer.path().join("a").join("b").join("root");
    let data = tempfile::tempdir().expect("data");
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}/dav/")).expect("url");
    let dav = WebDav::new(reqwest::Client::new(), url.clone(), Auth::None);
    let folder = FolderPaths::new(data.path(), &root, url.as_str());
    let outcome = sync_once(&folder, &dav, &RunOptions::default(), None).await.expect("sync runs");
    let Outcome::Done(summary) = outcome else { panic!("unexpected outcome {outcome:?}") };
    assert!(summary.report.failed.is_empty(), "{:?}", summary.report.failed);

    // Nothing outside the root: walk the whole temp dir.
    let mut everything = Vec::new();
    fn walk(dir: &std::path::Path, out: &mut Vec<String>, base: &std::path::Path) {
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            out.push(e.path().strip_prefix(base).expect("prefix").to_string_lossy().into_owned());
            if e.path().is_dir() {
                walk(&e.path(), out, base);
            }
        }
    }
    walk(outer.path(), &mut everything, outer.path());
    everything.sort();
    let inside: Vec<&str> = everything.iter().filter_map(|p| p.strip_prefix("a/b/root/")).collect();
    assert_eq!(everything.len(), 3 + inside.len(), "only a, a/b, a/b/root and what is inside: {everything:?}");
    let mut expected = vec!["README.md", "Readme.md", "con.txt", "ok.txt", "sub", "sub/inner.txt", "\u{e9}t\u{e9}.txt"];
    if passerelle::drive::local::case_insensitive(&root) {
        expected.retain(|p| *p != "README.md");
    }
    let mut got: Vec<&str> = inside.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    assert_eq!(std::fs::read(root.join("ok.txt")).expect("ok.txt"), b"fine");

    // Every refused item comes with its path and a reason.
    let refused: Vec<String> = summary.refused.iter().map(|r| format!("{} => {}", r.path, r.reason)).collect();
    let text = refused.join("\n");
    for needle in [
        "../../escape.txt => the name contains a slash",
        "..\\..\\win-escape.txt => the name contains a slash or a backslash",
        "a\\b.txt => the name contains a slash or a backslash",
        "/etc/passwd => the name contains a slash",
        "outside the synced folder",
        ".. => “..” would point outside its folder",
        "NUL character",
        "bytes long; the limit is 255",
        "same name as “e\u{301}te\u{301}.txt” in another Unicode form",
        "sub/../../../deep-escape.txt => the name contains a slash",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(summary.warnings.iter().any(|w| w.path == "con.txt" && w.reason.contains("reserved name on Windows")));
}

#[test]
fn case_twins_keep_one_on_a_case_insensitive_disk() {
    use passerelle::drive::{names::Ignore, remote::RemoteListing, run::filter_remote, Kind, RemoteEntry};
    let mut listing = RemoteListing::default();
    for name in ["Readme.md", "README.md", "Dir", "dir", "dir/x"] {
        let kind = if name.contains('.') || name.contains('/') { Kind::File } else { Kind::Dir };
        listing.entries.insert(
            name.into(),
            RemoteEntry { kind, size: 0, mtime: None, etag: None, file_id: None, server_path: name.into() },
        );
    }
    filter_remote(&mut listing, &Ignore::new(""), true);
    assert_eq!(listing.entries.keys().collect::<Vec<_>>(), ["Dir", "README.md"]);
    assert_eq!(listing.refused.len(), 2);
    assert!(listing.refused.iter().all(|r| r.reason.contains("differs only by case")));
}

/// A Nextcloud answering the walk's PROPFINDs from a list chosen by the test; after 200
/// requests it answers 500, so a walk that never ends fails instead of hanging.
async fn hostile_nextcloud(children: fn(&str) -> Vec<(String, bool)>) -> hostile::TinyServer {
    let count = std::sync::atomic::AtomicUsize::new(0);
    hostile::TinyServer::start(move |request| {
        if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 200 {
            return (500, hostile::XML, Vec::new());
        }
        if request.method != "PROPFIND" {
            return (405, hostile::XML, Vec::new());
        }
        let folder = "<d:resourcetype><d:collection/></d:resourcetype><d:getetag>\"e\"</d:getetag>";
        let file = "<d:resourcetype/><d:getcontentlength>4</d:getcontentlength><d:getetag>\"f\"</d:getetag>";
        // Collections are answered with a trailing slash, as Nextcloud does.
        let own = format!("{}/", request.path.trim_end_matches('/'));
        let mut responses: Vec<(String, &str)> = vec![(own.clone(), folder)];
        if request.header("depth") == Some("1") {
            for (name, dir) in children(&own) {
                responses.push((format!("{own}{name}{}", if dir { "/" } else { "" }), if dir { folder } else { file }));
            }
        }
        let refs: Vec<(&str, &str)> = responses.iter().map(|(h, p)| (h.as_str(), *p)).collect();
        (207, hostile::XML, hostile::multistatus(&refs))
    })
    .await
}

/// Issue 12, item 13: the Nextcloud walk accepted a child named `..`; the URL dropped it and
/// the same folder was listed forever (215 requests in 10 s). Now it is refused and reported,
/// and the walk ends after listing each real folder once.
#[tokio::test]
async fn nextcloud_walk_refuses_a_folder_named_dot_dot() {
    use passerelle::drive::{
        nextcloud::{Credentials, Nextcloud, NextcloudRemote, ServerInfo},
        Remote,
    };
    let server = hostile_nextcloud(|own| {
        if own.ends_with("/alice/") {
            vec![("ok.txt".into(), false), ("..".into(), true), ("sub".into(), true)]
        } else if own.ends_with("/sub/") {
            vec![("inner.txt".into(), false), ("..".into(), true)]
        } else {
            vec![]
        }
    })
    .await;
    let info = ServerInfo {
        product: "Nextcloud".into(),
        version: "31.0.0".into(),
        chunking: false,
        bulk_upload: false,
        chunk_max_size: None,
        trash: false,
        versions: false,
        sharing: None,
    };
    let creds = Credentials::AppPassword { login: "alice".into(), password: "secret".into() };
    let nc = Nextcloud::new(reqwest::Client::new(), &server.url, "alice", creds, info);
    let remote = NextcloudRemote::new(nc, "", None);
    let listing = remote.list_tree().await.expect("the walk ends");
    let keys: Vec<&str> = listing.entries.keys().map(String::as_str).collect();
    assert_eq!(keys, ["ok.txt", "sub", "sub/inner.txt"]);
    let refused: Vec<&str> = listing.refused.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(refused, ["..", "sub/.."]);
    // The root's Depth 0, then each real folder once.
    assert_eq!(server.seen().len(), 3, "{:?}", server.seen().iter().map(|r| &r.path).collect::<Vec<_>>());
}

/// Issue 12, item 19: the remote walk had no depth limit; a server inventing ever deeper
/// folders was walked for as long as it liked. Now the walk stops at 256 levels with
/// `too_large`, having listed each level once.
#[tokio::test]
async fn the_walk_stops_at_256_levels() {
    let server = hostile::TinyServer::start(|request| {
        if request.method != "PROPFIND" {
            return (405, hostile::XML, Vec::new());
        }
        let folder = "<d:resourcetype><d:collection/></d:resourcetype>";
        let own = request.path.clone();
        let child = format!("{own}d/");
        (207, hostile::XML, hostile::multistatus(&[(&own, folder), (&child, folder)]))
    })
    .await;
    let dav = WebDav::new(reqwest::Client::new(), server.url.join("dav/").unwrap(), Auth::Basic { user: "u".into(), password: "p".into() });
    let e = passerelle::drive::Remote::list_tree(&dav).await.expect_err("an endless tree is refused");
    assert_eq!(e.code(), "too_large", "{e}");
    // Levels 0 to 256 listed once each; the children of the last one are refused.
    assert_eq!(server.seen().len(), 257);
}

/// Issue 12, item 19: a PROPFIND answer was read whole, whatever its size. Over 64 MiB it is
/// refused with `too_large` (here announced by Content-Length, so nothing is downloaded).
#[tokio::test]
async fn a_huge_listing_is_refused() {
    let huge = std::sync::Arc::new(vec![b' '; 64 * 1024 * 1024 + 1]);
    let server = hostile::TinyServer::start(move |_| (207, hostile::XML, huge.as_ref().clone())).await;
    let dav = WebDav::new(reqwest::Client::new(), server.url.join("dav/").unwrap(), Auth::Basic { user: "u".into(), password: "p".into() });
    let e = passerelle::drive::Remote::list_tree(&dav).await.expect_err("a huge answer is refused");
    assert_eq!(e.code(), "too_large", "{e}");
}

/// Issue 12, item 15, end to end: a local symbolic link and a remote file of the same name.
/// The link stays a link (its target untouched), the remote file stays on the server and is
/// reported among the items not synced.
#[cfg(unix)]
#[tokio::test]
async fn a_local_link_is_not_replaced_by_a_remote_file() {
    use passerelle::drive::memory::MemoryRemote;
    let outer = tempfile::tempdir().expect("tempdir");
    let root = outer.path().join("root");
    std::fs::create_dir(&root).expect("root");
    let target = outer.path().join("target.txt");
    std::fs::write(&target, b"mine, outside the folder").expect("target");
    std::os::unix::fs::symlink(&target, root.join("notes")).expect("link");
    let remote = MemoryRemote::new();
    remote.write("notes", b"the server's notes");
    remote.write("other.txt", b"other");
    let data = tempfile::tempdir().expect("data");
    let folder = FolderPaths::new(data.path(), &root, "memory");
    let outcome = sync_once(&folder, &remote, &RunOptions::default(), None).await.expect("sync runs");
    let Outcome::Done(summary) = outcome else { panic!("unexpected outcome {outcome:?}") };
    assert!(std::fs::symlink_metadata(root.join("notes")).expect("notes").file_type().is_symlink());
    assert_eq!(std::fs::read(&target).expect("target"), b"mine, outside the folder");
    assert_eq!(std::fs::read(root.join("other.txt")).expect("other"), b"other");
    assert!(summary.refused.iter().any(|r| r.path == "notes" && r.reason.contains("stays on the server")), "{:?}", summary.refused);
    assert_eq!(remote.snapshot().len(), 2, "nothing uploaded or deleted on the server");
}
