//! Hostile names: a test server (tests/servers/webdav_hostile.py) lists names that try to
//! escape the root (`..%2F..`, backslashes, absolute-looking, other hosts), that no disk can hold
//! (300 bytes, NUL), NFC/NFD twins and case twins. Nothing may be written outside the root, and
//! each refused item is reported with a reason while the rest syncs.
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

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
