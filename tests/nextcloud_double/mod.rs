//! A throwaway Nextcloud test double (tests/servers/nextcloud.py, NOT Nextcloud) for the
//! Nextcloud tests and benchmarks: one copy per test on port 0, killed on drop.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use passerelle::{
    auth::{SecretStore, Session},
    browser::Opener,
    drive::{
        nextcloud::{self, ConnectOptions, Credentials, Nextcloud},
        remote::Upload,
        run::FolderPaths,
    },
};
use serde_json::{json, Value};

pub const USER: &str = "alice";
pub const APP_PASSWORD: &str = "alice-app-test";

/// A throwaway Nextcloud test double, killed on drop.
pub struct Double {
    child: Child,
    pub url: url::Url,
    pub http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Drop for Double {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    std::env::var("PASSERELLE_TEST_PYTHON").unwrap_or_else(|_| {
        format!("{}/.cache/passerelle-dev/venv/bin/python", std::env::var("HOME").unwrap_or_default())
    })
}

impl Double {
    pub fn start(quota: Option<u64>) -> Double {
        let data = tempfile::tempdir().expect("temp dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/nextcloud.py");
        let user = match quota {
            Some(q) => format!("{USER}:{APP_PASSWORD}:{q}"),
            None => format!("{USER}:{APP_PASSWORD}"),
        };
        let mut cmd = Command::new(python());
        cmd.arg(script).arg("--port").arg("0").arg("--data").arg(data.path().join("nc")).arg("--user").arg(user);
        if let Ok(issuer) = std::env::var("PASSERELLE_TEST_ISSUER") {
            cmd.arg("--issuer").arg(issuer);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start the Nextcloud test double");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read the port");
        let port: u16 = line.trim().parse().expect("the double prints its port");
        Double {
            child,
            url: url::Url::parse(&format!("http://127.0.0.1:{port}/")).expect("url"),
            http: reqwest::Client::new(),
            _data: data,
        }
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let r = self.http.post(self.url.join(path).expect("url")).json(&body).send().await.expect("control");
        assert!(r.status().is_success(), "control {path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    pub async fn stats(&self) -> Value {
        self.http.get(self.url.join("_test/stats").expect("url")).send().await.expect("stats").json().await.expect("json")
    }

    pub async fn reset(&self) {
        self.control("_test/stats/reset", json!({})).await;
    }

    pub async fn requests(&self) -> u64 {
        self.stats().await["requests"].as_u64().expect("requests")
    }

    pub async fn connect(&self) -> Nextcloud {
        let creds = Credentials::AppPassword { login: USER.into(), password: APP_PASSWORD.into() };
        // The capabilities as the account sees them (anonymous callers see no dav/files).
        let info = nextcloud::server_info(&passerelle::http::client(), &self.url, &creds)
            .await
            .expect("server info")
            .expect("a Nextcloud");
        Nextcloud::new(passerelle::http::client(), &self.url, USER, creds, info)
    }

    /// A file or folder's properties, straight from the server (PROPFIND Depth 0), raw XML.
    pub async fn propfind(&self, area_path: &str, depth: &str) -> (u16, String) {
        let r = self
            .http
            .request(reqwest::Method::from_bytes(b"PROPFIND").expect("method"), self.url.join(area_path).expect("url"))
            .basic_auth(USER, Some(APP_PASSWORD))
            .header("Depth", depth)
            .send()
            .await
            .expect("PROPFIND");
        (r.status().as_u16(), r.text().await.expect("body"))
    }

    /// The content of a file, straight from the server.
    pub async fn read(&self, path: &str) -> Option<Vec<u8>> {
        let r = self
            .http
            .get(self.url.join(&format!("remote.php/dav/files/{USER}/{path}")).expect("url"))
            .basic_auth(USER, Some(APP_PASSWORD))
            .send()
            .await
            .expect("GET");
        if !r.status().is_success() {
            return None;
        }
        Some(r.bytes().await.expect("body").to_vec())
    }
}

/// A synced folder of a double in a throwaway home: `root` (`Passerelle`, made empty), its
/// journal in `home/data`.
pub struct SyncedFolder {
    pub home: tempfile::TempDir,
    pub root: PathBuf,
    pub paths: FolderPaths,
}

impl Double {
    /// Grants the Login Flow v2 as `user` as soon as the app opens its login page; the
    /// receiver gets each login page's address.
    pub fn granting_opener(&self, user: &'static str) -> (Opener, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let grant = self.url.join("_test/login-flow/grant").expect("url");
        let opener = Opener::hook(move |login_url| {
            let _ = tx.send(login_url.to_string());
            let grant = grant.clone();
            let login = login_url.to_string();
            // The member clicks "grant access" in the browser a little later.
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                let _ = reqwest::Client::new().post(grant).json(&json!({"login": login, "user": user})).send().await;
            });
            Ok(())
        });
        (opener, rx)
    }

    /// Connects with Login Flow v2 (granted as `USER`) into `store`, beside `session` when
    /// there is one, keeping the facts at `facts`.
    pub async fn flow_login(&self, store: &SecretStore, session: Option<&Session>, facts: Option<PathBuf>) -> Nextcloud {
        let (opener, _rx) = self.granting_opener(USER);
        let options = ConnectOptions { opener, poll_every: std::time::Duration::from_millis(100), facts, ..ConnectOptions::default() };
        nextcloud::connect(&passerelle::http::client(), &self.url, session, store, &options).await.expect("login flow connect")
    }

    pub fn folder(&self) -> SyncedFolder {
        let home = tempfile::tempdir().expect("temp dir");
        let root = home.path().join("Passerelle");
        std::fs::create_dir_all(&root).expect("mkdir");
        let paths = FolderPaths::new(&home.path().join("data"), &root, self.url.as_str());
        SyncedFolder { home, root, paths }
    }
}

/// `content` as an upload dated `mtime`.
pub fn upload_of(content: Vec<u8>, mtime: i64) -> Upload {
    let len = content.len() as u64;
    let body = futures_util::stream::iter(vec![Ok(bytes::Bytes::from(content))]);
    Upload { len, body: Box::pin(body), mtime }
}

pub fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, content).expect("write");
    p
}

/// Deterministic pseudo-random bytes (xorshift), so big files do not compress or repeat.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
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

