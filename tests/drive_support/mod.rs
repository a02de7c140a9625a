//! Shared helpers for the drive tests: the three real WebDAV servers of the stack (each test gets
//! a fresh folder on them), trees of both sides for comparison, and the CLI.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use futures_util::StreamExt;
use passerelle::drive::{
    names::TEMP_PREFIX,
    remote::{Precondition, Upload},
    Auth, Kind, Remote, WebDav,
};
use url::Url;

/// rclone (ignores preconditions), WsgiDAV (honours If-Match on existing names) and Apache mod_dav
/// (honours If-Match, If-None-Match and If: on MOVE): the environment variables of their URLs.
pub const SERVERS: [&str; 3] = ["PASSERELLE_TEST_RCLONE_DAV", "PASSERELLE_TEST_WSGIDAV", "PASSERELLE_TEST_APACHE_DAV"];

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: start the test stack with `eval \"$(scripts/stack up)\"`"))
}

pub fn user() -> (String, String) {
    (env("PASSERELLE_TEST_DAV_USER"), env("PASSERELLE_TEST_DAV_PASSWORD"))
}

/// A fresh, empty folder on the server named by `server_env`, and a client for it (acting as
/// "another device" in tests).
pub async fn fresh(server_env: &str) -> (Url, WebDav) {
    let base = Url::parse(&env(server_env)).expect("server URL");
    let (user, password) = user();
    let root = WebDav::new(reqwest::Client::new(), base.clone(), Auth::Basic { user: user.clone(), password: password.clone() });
    let name = format!("t-{:016x}", rand::random::<u64>());
    root.mkdir(&name).await.expect("mkcol test folder");
    let url = base.join(&format!("{name}/")).expect("url");
    (url.clone(), WebDav::new(reqwest::Client::new(), url, Auth::Basic { user, password }))
}

/// path -> None for folders, the bytes for files.
pub type Tree = BTreeMap<String, Option<Vec<u8>>>;

pub fn local_tree(root: &Path) -> Tree {
    let mut out = Tree::new();
    fn walk(root: &Path, dir: &Path, out: &mut Tree) {
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).expect("prefix").to_string_lossy().replace('\\', "/");
            let t = std::fs::symlink_metadata(&p).expect("stat");
            if t.is_dir() {
                out.insert(rel, None);
                walk(root, &p, out);
            } else {
                out.insert(rel, Some(std::fs::read(&p).expect("read")));
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// The server's tree without the staged uploads a kill may leave (hidden, cleaned up later by
/// age).
pub async fn remote_tree(dav: &WebDav) -> Tree {
    let mut out = server_tree(dav).await;
    out.retain(|k, _| !is_temp(k));
    out
}

/// A staged upload's or probe's name.
pub fn is_temp(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|n| n.starts_with(TEMP_PREFIX))
}

/// The server's whole tree, temporary names included.
pub async fn server_tree(remote: &dyn Remote) -> Tree {
    let listing = remote.list_tree().await.expect("list the server");
    let mut out = Tree::new();
    for (k, e) in listing.entries {
        let data = match e.kind {
            Kind::Dir => None,
            Kind::Link => panic!("a server lists no links: {k}"),
            Kind::File => {
                let d = remote.get(&e.server_path).await.expect("get");
                let mut body = d.body;
                let mut data = Vec::new();
                while let Some(c) = body.next().await {
                    data.extend_from_slice(&c.expect("chunk"));
                }
                Some(data)
            }
        };
        out.insert(k, data);
    }
    out
}

/// A tree in a failure message: folders end with `/`, files show their first two words.
pub fn show(tree: &Tree) -> Vec<String> {
    tree.iter()
        .map(|(k, v)| match v {
            None => format!("{k}/"),
            Some(d) => format!("{k} = {:?}", String::from_utf8_lossy(d).split(' ').take(2).collect::<Vec<_>>().join(" ")),
        })
        .collect()
}

/// In-memory model cases: 200 in CI, 10,000 in the soak, or `PASSERELLE_MODEL_CASES`.
pub fn model_cases() -> u32 {
    if let Some(n) = std::env::var("PASSERELLE_MODEL_CASES").ok().and_then(|v| v.parse().ok()) {
        return n;
    }
    if std::env::var("PASSERELLE_SOAK").is_ok_and(|v| v == "1") {
        10_000
    } else {
        200
    }
}

pub async fn get(dav: &WebDav, path: &str) -> Vec<u8> {
    let d = dav.get(path).await.expect("get");
    let mut body = d.body;
    let mut out = Vec::new();
    while let Some(c) = body.next().await {
        out.extend_from_slice(&c.expect("chunk"));
    }
    out
}

pub async fn put(dav: &WebDav, path: &str, data: &[u8]) {
    let bytes = bytes::Bytes::copy_from_slice(data);
    let upload = Upload { len: data.len() as u64, body: futures_util::stream::once(async move { Ok(bytes) }).boxed(), mtime: 0 };
    dav.put(path, upload, Precondition::Any).await.expect("put");
}

pub fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, data).expect("write");
}

/// Local tree minus the entries a test expects to differ by design (none by default).
pub fn same(local: &Tree, remote: &Tree) {
    if local != remote {
        let l: Vec<_> = local.keys().collect();
        let r: Vec<_> = remote.keys().collect();
        panic!("local and remote differ\nlocal:  {l:?}\nremote: {r:?}");
    }
}

/// A throwaway installation for the CLI.
pub struct Cli {
    pub home: tempfile::TempDir,
    pub folder: PathBuf,
    pub url: Url,
}

impl Cli {
    pub fn new(url: &Url) -> Cli {
        let home = tempfile::Builder::new().prefix("passerelle-drive-").tempdir().expect("tempdir");
        let folder = home.path().join("Passerelle");
        Cli { home, folder, url: url.clone() }
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_passerelle"));
        let (user, password) = user();
        cmd.env("PASSERELLE_HOME", self.home.path())
            .env("PASSERELLE_SECRETS", "file")
            .env("PASSERELLE_WEBDAV_PASSWORD", password)
            .env_remove("PASSERELLE_BROWSER")
            // The tests read the English sentences of the catalog.
            .env("LANG", "en_GB.UTF-8")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .arg("sync")
            .arg("--folder")
            .arg(&self.folder)
            .arg("--remote")
            .arg(self.url.as_str())
            .arg("--webdav-user")
            .arg(user);
        cmd
    }

    pub fn sync(&self, extra: &[&str]) -> Output {
        let out = self.command().arg("--once").args(extra).output().expect("run passerelle");
        eprintln!(
            "sync {extra:?}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn sync_ok(&self) -> String {
        let out = self.sync(&[]);
        assert!(out.status.success(), "sync failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn status_json(&self) -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_passerelle"))
            .env("PASSERELLE_HOME", self.home.path())
            .env("PASSERELLE_SECRETS", "file")
            .args(["status", "--json", "--folder"])
            .arg(&self.folder)
            .arg("--remote")
            .arg(self.url.as_str())
            .output()
            .expect("status");
        assert!(out.status.success(), "status failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("status json")
    }
}
