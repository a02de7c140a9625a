//! Issue 12, trust boundaries: each test plays one attack from the review, with a small hostile
//! server on 127.0.0.1 where a server is needed, and checks that it gets nothing.
//!
//! Items: 1 folders, 2 foreign hosts, 3 redirects, 5 opener, 7 logout, 8 secrets file,
//! 9 refresh race, 11 insecure discovery, 12 private data dir, 20 one store per installation.
//! Item 10 (the loopback listener) is tested next to its code (`src/auth/loopback.rs`).
mod support;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use passerelle::{
    auth::{self, LoginOptions, SecretStore},
    browser::Opener,
    config::{self, Settings},
    drive::nextcloud::{self, ConnectOptions},
};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

// --- a hostile web server ------------------------------------------------------------------

/// One request as the hostile server saw it.
#[derive(Debug, Clone)]
#[allow(dead_code)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    #[allow(dead_code)]
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn answer(status: u16, body: impl Into<String>) -> Answer {
    Answer { status, headers: vec![("Content-Type".into(), "application/json".into())], body: body.into() }
}

fn redirect(status: u16, location: &str) -> Answer {
    Answer { status, headers: vec![("Location".into(), location.into())], body: String::new() }
}

/// A server answering each request with `handler(base, request)` and keeping what it saw.
struct Hostile {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Hostile {
    async fn start(handler: impl Fn(&str, &Seen) -> Answer + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (handler, log, me) = (Arc::new(handler), seen.clone(), base.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let (handler, log, me) = (handler.clone(), log.clone(), me.clone());
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut s).await else { return };
                    log.lock().unwrap().push(request.clone());
                    let a = handler(&me, &request);
                    let mut head = format!("HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n", a.status, a.body.len());
                    for (k, v) in &a.headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(a.body.as_bytes()).await;
                });
            }
        });
        Hostile { base, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn read_request(s: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    Some(Seen { method, target, headers, body })
}

fn recording_opener() -> (Opener, Arc<Mutex<Vec<String>>>) {
    let opened = Arc::new(Mutex::new(Vec::new()));
    let seen = opened.clone();
    (
        Opener::hook(move |url| {
            seen.lock().unwrap().push(url.to_string());
            Ok(())
        }),
        opened,
    )
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path).expect("stat").permissions().mode() & 0o777
}

fn cli_in(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_passerelle"));
    cmd.env("PASSERELLE_HOME", home.join("passerelle"))
        .env("PASSERELLE_SECRETS", "file")
        .env("HOME", home.join("home"))
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("PASSERELLE_BROWSER")
        .stdin(Stdio::null());
    cmd
}

fn save_profile(home: &Path, profile: &Value) {
    let config = home.join("passerelle/config");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(config.join("settings.json"), json!({ "profile": profile }).to_string()).expect("settings");
}

fn plain_profile(issuer: &str) -> Value {
    json!({"name": "Coop", "issuer": issuer, "client_id": "passerelle"})
}

// --- 1. folders ----------------------------------------------------------------------------

/// Item 1: the default folder `~/Passerelle` already holds private files: the first sync must
/// not adopt it without the member's explicit choice; and `.ssh` is never synced.
#[cfg(unix)]
#[test]
fn item1_private_folders_are_never_synced_and_a_full_folder_needs_a_choice() {
    let dir = tempfile::tempdir().expect("dir");
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).expect("ssh");
    std::fs::write(home.join(".ssh/id_ed25519"), "PRIVATE KEY").expect("key");
    std::fs::create_dir_all(home.join("Passerelle")).expect("folder");
    std::fs::write(home.join("Passerelle/notes.txt"), "mine").expect("file");
    save_profile(dir.path(), &plain_profile("https://sso.example.coop/realms/coop"));
    // Nothing listens there: a sync that got past the folder checks would fail offline (4).
    let remote = "http://127.0.0.1:9/dav/";

    let out = cli_in(dir.path()).args(["sync", "--once", "--remote", remote]).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("[folder_not_empty]") && stderr.contains("--folder"), "{stderr}");

    for hostile in [home.join(".ssh"), home.clone(), home.join(".config/autostart"), dir.path().to_path_buf()] {
        let out = cli_in(dir.path()).args(["sync", "--once", "--remote", remote, "--folder"]).arg(&hostile).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", hostile.display());
        assert!(stderr.contains("[folder_sensitive]"), "{}: {stderr}", hostile.display());
    }
    std::os::unix::fs::symlink(home.join(".ssh"), home.join("Keys")).expect("link");
    let out = cli_in(dir.path()).args(["sync", "--once", "--remote", remote, "--folder"]).arg(home.join("Keys")).output().expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("[folder_sensitive]"), "a link to ~/.ssh");

    // Chosen explicitly, the full folder is accepted (and the sync goes on to the server).
    let out = cli_in(dir.path()).args(["sync", "--once", "--remote", remote, "--adopt"]).output().expect("run");
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(home.join(".ssh/id_ed25519")).expect("key"), "PRIVATE KEY");
}

/// Item 1: a published profile naming a hidden or nested folder is refused.
#[tokio::test]
async fn item1_a_profile_cannot_name_a_private_folder() {
    for name in [".ssh", ".config", "/home/alice/.ssh", "Documents/../.gnupg"] {
        let body = json!({"issuer": "https://sso.example.coop/realms/coop", "client_id": "p", "folder_name": name}).to_string();
        let server = Hostile::start(move |_, _| answer(200, body.clone())).await;
        let domain = server.base.trim_start_matches("http://").to_string();
        let err = config::Profile::discover(&passerelle::http::client(), &domain).await.expect_err(name);
        assert_eq!(err.code(), "profile_invalid", "{name}: {err}");
        assert!(err.to_string().contains("folder_name"), "{err}");
    }
}

// --- 2. foreign hosts ----------------------------------------------------------------------

/// Item 2: the domain's published settings send the login and the chat to other hosts: they
/// are named, and used only once the member accepted them.
#[tokio::test(flavor = "multi_thread")]
async fn item2_hosts_outside_the_typed_domain_need_the_members_acceptance() {
    let body = json!({"issuer": "https://sso.attacker.example/realms/x", "client_id": "passerelle",
                      "rocketchat": "https://chat.attacker.example", "jitsi": "https://meet.jit.si"})
    .to_string();
    let server = Hostile::start(move |_, _| answer(200, body.clone())).await;
    let domain = server.base.trim_start_matches("http://").to_string();
    let http = passerelle::http::client();
    let err = config::resolve(&http, &Settings::default(), Some(&domain), None, &[]).await.expect_err("foreign");
    assert_eq!(err.code(), "profile_foreign_hosts");
    match &err {
        config::ConfigError::ForeignHosts { hosts, .. } => {
            assert_eq!(hosts, &vec!["sso.attacker.example".to_string(), "chat.attacker.example".to_string()])
        }
        other => panic!("{other}"),
    }
    let partly = vec!["sso.attacker.example".to_string()];
    let err = config::resolve(&http, &Settings::default(), Some(&domain), None, &partly).await.expect_err("chat not accepted");
    assert!(err.to_string().contains("chat.attacker.example") && !err.to_string().contains("sso.attacker"), "{err}");
    let all = vec!["SSO.attacker.example".to_string(), "chat.attacker.example".to_string()];
    let (profile, _) = config::resolve(&http, &Settings::default(), Some(&domain), None, &all).await.expect("accepted");
    assert_eq!(profile.issuer.host_str(), Some("sso.attacker.example"));

    // The CLI without a terminal: refused, the hosts named, and no browser opened.
    let dir = tempfile::tempdir().expect("dir");
    let marker = dir.path().join("opened");
    let out = cli_in(dir.path())
        .env("PASSERELLE_BROWSER", format!("touch {}", marker.display()))
        .args(["login", "--org", &domain, "--timeout", "5"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("[profile_foreign_hosts]") && stderr.contains("--accept-hosts sso.attacker.example,chat.attacker.example"), "{stderr}");
    assert!(!marker.exists(), "the browser was opened for a foreign login server");
}

// --- 3. redirects --------------------------------------------------------------------------

/// Item 3: a redirect to another origin carried X-Auth-Token/X-User-Id (302) and re-sent the
/// chat login's body with the access token (307). Neither reaches the other origin now.
#[tokio::test]
async fn item3_redirects_never_take_credentials_to_another_origin() {
    let thief = Hostile::start(|_, _| answer(200, "{}")).await;
    let to = thief.base.clone();
    let chat = Hostile::start(move |me, r| match r.target.as_str() {
        "/api/v1/subscriptions.get" => redirect(302, &format!("{to}/steal")),
        "/api/v1/login" => redirect(307, &format!("{to}/steal")),
        "/moved" => redirect(301, &format!("{me}/here")),
        "/here" => answer(200, "same origin"),
        _ => answer(404, ""),
    })
    .await;
    let http = passerelle::http::client();

    let err = http
        .get(format!("{}/api/v1/subscriptions.get", chat.base))
        .header("X-Auth-Token", "chat-secret")
        .header("X-User-Id", "u1")
        .send()
        .await
        .expect_err("a cross-origin redirect is not followed");
    assert!(err.is_redirect(), "{err}");
    assert!(config::plain_reqwest(&err).contains("another site"), "{}", config::plain_reqwest(&err));

    let err = http
        .post(format!("{}/api/v1/login", chat.base))
        .json(&json!({"serviceName": "keycloak", "accessToken": "keycloak-access-token"}))
        .send()
        .await
        .expect_err("307 to another origin");
    assert!(err.is_redirect(), "{err}");
    assert!(thief.seen().is_empty(), "the other origin got: {:?}", thief.seen());

    // On the same origin a redirect is still followed.
    let ok = http.get(format!("{}/moved", chat.base)).send().await.expect("same origin");
    assert_eq!(ok.text().await.expect("body"), "same origin");
}

// --- 5. the opener ---------------------------------------------------------------------------

/// Item 5: Nextcloud's Login Flow v2 `login` URL comes from the server: `file:`, a bare path,
/// `smb:` or another origin never reach the opener; the server's own https page does.
#[tokio::test]
async fn item5_the_opener_gets_only_the_servers_own_web_pages() {
    for login in ["file:///etc/passwd", "/usr/bin/xcalc", "smb://attacker.example/share/x.desktop", "https://attacker.example/login"] {
        let server = Hostile::start(move |me, r| match r.target.as_str() {
            "/index.php/login/v2" => answer(200, json!({"poll": {"token": "t", "endpoint": format!("{me}/index.php/login/v2/poll")}, "login": login}).to_string()),
            _ => answer(404, "[]"),
        })
        .await;
        let (opener, opened) = recording_opener();
        let options = ConnectOptions { opener, timeout: Duration::from_secs(5), ..ConnectOptions::default() };
        let base = url::Url::parse(&format!("{}/", server.base)).expect("url");
        let err = nextcloud::login_flow(&passerelle::http::client(), &base, &options).await.err().expect("refused");
        assert_eq!(err.code(), "url_refused", "{login}: {err}");
        assert!(opened.lock().unwrap().is_empty(), "{login} reached the opener");
    }
    let server = Hostile::start(|me, r| match r.target.as_str() {
        "/index.php/login/v2" => answer(200, json!({"poll": {"token": "t", "endpoint": format!("{me}/index.php/login/v2/poll")}, "login": format!("{me}/index.php/login/v2/flow/abc")}).to_string()),
        "/index.php/login/v2/poll" => answer(200, json!({"server": me, "loginName": "alice", "appPassword": "app-pw"}).to_string()),
        _ => answer(404, "[]"),
    })
    .await;
    let (opener, opened) = recording_opener();
    let options = ConnectOptions { opener, ..ConnectOptions::default() };
    let base = url::Url::parse(&format!("{}/", server.base)).expect("url");
    let granted = nextcloud::login_flow(&passerelle::http::client(), &base, &options).await.expect("granted");
    assert_eq!(granted.login_name, "alice");
    assert_eq!(*opened.lock().unwrap(), vec![format!("{}/index.php/login/v2/flow/abc", server.base)]);
}

// --- 8. the secrets file -------------------------------------------------------------------

const WRITERS_PER_CHILD: usize = 150;

/// A child process of `item8_...`: writes its share of entries, then exits.
#[test]
fn item8_writer_child() {
    let (Ok(path), Ok(id)) = (std::env::var("TRUST_WRITER_FILE"), std::env::var("TRUST_WRITER_ID")) else { return };
    let store = SecretStore::file(path.into());
    for i in 0..WRITERS_PER_CHILD {
        store.set(&format!("p{id}-{i}"), "v").expect("child write");
    }
}

/// Item 8: 600 writes at once from two processes and six threads: none lost, the file valid
/// and private, no temporary file left.
#[cfg(unix)]
#[test]
fn item8_concurrent_writers_across_processes_keep_the_file_whole() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("data/secrets.json");
    let children: Vec<_> = (0..2)
        .map(|id| {
            Command::new(std::env::current_exe().expect("exe"))
                .args(["--exact", "item8_writer_child", "--test-threads", "1"])
                .env("TRUST_WRITER_FILE", &path)
                .env("TRUST_WRITER_ID", id.to_string())
                .stdout(Stdio::null())
                .spawn()
                .expect("child")
        })
        .collect();
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let store = SecretStore::file(path.clone());
            std::thread::spawn(move || {
                for i in 0..50 {
                    store.set(&format!("t{t}-{i}"), "v").expect("thread write");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    for mut c in children {
        assert!(c.wait().expect("child").success(), "a writer process failed");
    }
    let all: BTreeMap<String, String> = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("valid JSON");
    assert_eq!(all.len(), 600, "entries lost");
    assert_eq!(mode(&path), 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Item 8: a symbolic link planted at the temporary name is not followed, and a leftover 0644
/// temporary file does not make the secrets readable by others.
#[cfg(unix)]
#[test]
fn item8_planted_temp_files_neither_leak_nor_redirect_the_secrets() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    let stolen = dir.path().join("stolen");
    std::fs::write(&stolen, "").expect("target");
    std::os::unix::fs::symlink(&stolen, data.join("secrets.tmp")).expect("link");
    let store = SecretStore::file(data.join("secrets.json"));
    store.set("oidc", "refresh-token-value").expect("set");
    assert_eq!(std::fs::read_to_string(&stolen).expect("read"), "", "the secrets went through the link");
    assert_eq!(mode(&data.join("secrets.json")), 0o600);

    let data2 = dir.path().join("data2");
    std::fs::create_dir_all(&data2).expect("data2");
    std::fs::write(data2.join("secrets.tmp"), "").expect("leftover");
    std::fs::write(data2.join("secrets.json"), "{}").expect("old file");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(data2.join("secrets.tmp"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::set_permissions(data2.join("secrets.json"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let store = SecretStore::file(data2.join("secrets.json"));
    store.set("oidc", "refresh-token-value").expect("set");
    assert_eq!(mode(&data2.join("secrets.json")), 0o600, "secrets readable by others");
}

// --- 9. the refresh race -------------------------------------------------------------------

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> String {
    std::env::var("PASSERELLE_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn start_python(script: &str, args: &[&str]) -> (Child, u16) {
    let mut child = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers").join(script))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the test server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port line");
    let port = line.trim().parse().unwrap_or_else(|_| panic!("{script} printed {line:?}"));
    (Child(child), port)
}

fn stored_session(issuer: &str, refresh: &str, expires_at: u64) -> String {
    json!({"issuer": issuer, "client_id": "passerelle",
           "identity": {"subject": "s-1", "name": "Alice Martin", "email": null, "username": "alice"},
           "access_token": "a1", "access_issued_at": 0, "access_expires_at": expires_at, "refresh_token": refresh})
    .to_string()
}

/// Item 9: two processes refresh at once with a rotating refresh token; the loser got
/// `invalid_grant` and wrote "session ended" over the winner's new token.
#[test]
fn item9_two_processes_refreshing_at_once_keep_the_session() {
    let (_server, port) = start_python("rotating_oidc.py", &["--hold", "3"]);
    let issuer = format!("http://127.0.0.1:{port}/realms/rot");
    let dir = tempfile::tempdir().expect("dir");
    save_profile(dir.path(), &plain_profile(&issuer));
    let data = dir.path().join("passerelle/data");
    std::fs::create_dir_all(&data).expect("data");
    std::fs::write(data.join("secrets.json"), json!({"oidc": stored_session(&issuer, "r1", 1)}).to_string()).expect("secrets");
    let a = cli_in(dir.path()).arg("whoami").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("a");
    let b = cli_in(dir.path()).arg("whoami").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("b");
    for out in [a.wait_with_output().expect("a"), b.wait_with_output().expect("b")] {
        assert!(out.status.success(), "a process lost the session: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("Alice Martin"));
    }
    let secrets: Value = serde_json::from_str(&std::fs::read_to_string(data.join("secrets.json")).expect("read")).expect("json");
    let oidc: Value = serde_json::from_str(secrets["oidc"].as_str().expect("oidc")).expect("stored");
    assert_eq!(oidc["refresh_token"], "r2", "the newest refresh token is kept: {oidc}");
}

// --- 11. insecure discovery ----------------------------------------------------------------

/// Item 11: the discovery document names a plain-http token endpoint off loopback: the login
/// stops before the browser opens, so no code or verifier can go there.
#[tokio::test]
async fn item11_discovery_endpoints_must_be_https() {
    let server = Hostile::start(|me, _| {
        let issuer = format!("{me}/realms/x");
        answer(200, json!({"issuer": issuer, "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": "http://sso.example.coop/realms/x/token", "jwks_uri": format!("{issuer}/certs")}).to_string())
    })
    .await;
    let profile = config::Profile::from_json(&plain_profile(&format!("{}/realms/x", server.base)).to_string()).expect("profile");
    let (opener, opened) = recording_opener();
    let dir = tempfile::tempdir().expect("dir");
    let store = SecretStore::file(dir.path().join("secrets.json"));
    let options = LoginOptions { opener, timeout: Duration::from_secs(3), ..LoginOptions::default() };
    let err = auth::login(&passerelle::http::client(), &profile, &store, &options).await.expect_err("refused");
    assert_eq!(err.code(), "provider_insecure", "{err}");
    assert!(err.to_string().contains("token_endpoint"), "{err}");
    assert!(opened.lock().unwrap().is_empty(), "the browser was opened");
}

// --- 12. private data ----------------------------------------------------------------------

/// Item 12: the data dir was 0755 and its files 0644 (journal, tree cache): other local users
/// could read the member's file names.
#[cfg(unix)]
#[test]
fn item12_the_data_dir_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("passerelle/data");
    std::fs::create_dir_all(&data).expect("data");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let _ = cli_in(dir.path()).arg("whoami").output().expect("run");
    for sub in ["data", "config", "logs"] {
        assert_eq!(mode(&dir.path().join("passerelle").join(sub)), 0o700, "{sub}");
    }
    let journal = data.join("drive/j.sqlite");
    drop(passerelle::drive::journal::Journal::open(&journal).expect("journal"));
    assert_eq!(mode(&journal), 0o600, "journal");
    let cache = data.join("drive/j.tree.json");
    passerelle::drive::nextcloud::walk::TreeCache::default().save(&cache).expect("cache");
    assert_eq!(mode(&cache), 0o600, "tree cache");
}

// --- 20. one store per installation ----------------------------------------------------------

/// Item 20: the installation chose the keychain; when the keychain fails, a process must not
/// quietly use the file instead (the tray and the CLI would then see different sessions).
#[test]
fn item20_the_store_is_chosen_once_per_installation() {
    let dir = tempfile::tempdir().expect("dir");
    let issuer = "https://sso.example.coop/realms/coop";
    save_profile(dir.path(), &plain_profile(issuer));
    let data = dir.path().join("passerelle/data");
    std::fs::create_dir_all(&data).expect("data");
    std::fs::write(data.join("secrets.json"), json!({"oidc": stored_session(issuer, "r1", 4_000_000_000)}).to_string()).expect("secrets");

    // A file store in use before: it is kept, and the choice written down.
    let out = cli_in(dir.path()).env_remove("PASSERELLE_SECRETS").arg("whoami").output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(data.join("secrets-store")).expect("choice").trim(), "file");

    // The keychain was chosen: the file is not read behind the member's back.
    std::fs::write(data.join("secrets-store"), "keychain").expect("choice");
    let out = cli_in(dir.path()).env_remove("PASSERELLE_SECRETS").arg("whoami").output().expect("run");
    assert!(!out.status.success(), "whoami used the file although the keychain was chosen");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Alice"), "the file's session was used");
}

// --- 7. logout -----------------------------------------------------------------------------

/// Item 7: logout forgets every secret and revokes what it can, also when the session had
/// already ended; it revokes the chat token on the chat server, and ends the Keycloak session,
/// so that the next login in the same browser asks for the password again.
#[tokio::test(flavor = "multi_thread")]
async fn item7_logout_revokes_everything_and_ends_the_browser_session() {
    let (_chat, chat_port) = start_python(
        "rocketchat.py",
        &["--port", "0", "--issuer", &support::env("PASSERELLE_TEST_ISSUER")],
    );
    let chat_base = format!("http://127.0.0.1:{chat_port}");
    let home = support::home();
    let mut profile = support::profile();
    profile.rocketchat = Some(url::Url::parse(&chat_base).expect("url"));
    profile.nextcloud = None;
    home.save_profile(&profile);
    let http = passerelle::http::client();
    let store = home.secrets();

    // A real login in a browser that stays open.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let opener = Opener::hook(move |url| {
        let _ = tx.send(url.to_string());
        Ok(())
    });
    let options = LoginOptions { opener: opener.clone(), timeout: Duration::from_secs(90), ..LoginOptions::default() };
    let (h, p, s, o) = (http.clone(), profile.clone(), store.clone(), options.clone());
    let task = tokio::spawn(async move { auth::login(&h, &p, &s, &o).await });
    let url = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("url").expect("url");
    let browser = support::Browser::start().await;
    browser.fill_keycloak_login(&url, "alice", "alice-pass-1").await;
    let session = task.await.expect("join").expect("login");
    passerelle::chat::fetch_counts(&session).await.expect("chat login");
    let chat: Value = serde_json::from_str(&store.get_any("chat").expect("get").expect("chat token")).expect("json");
    let me = |creds: Value| {
        let (http, base) = (reqwest::Client::new(), chat_base.clone());
        async move {
            http.get(format!("{base}/api/v1/me"))
                .header("X-Auth-Token", creds["auth_token"].as_str().unwrap_or_default())
                .header("X-User-Id", creds["user_id"].as_str().unwrap_or_default())
                .send()
                .await
                .expect("me")
                .status()
                .as_u16()
        }
    };
    assert_eq!(me(chat.clone()).await, 200);

    passerelle::account::logout(&http, &profile, &store).await.expect("logout");
    assert_eq!(store.get("oidc").expect("get"), None);
    assert_eq!(store.get("chat").expect("get"), None);
    assert_eq!(me(chat).await, 401, "the chat token still works on the server");

    // The same browser, a new login: Keycloak asks for the password again.
    let (h, p, s, o) = (http.clone(), profile.clone(), store.clone(), options.clone());
    let second = tokio::spawn(async move { auth::login(&h, &p, &s, &o).await });
    let url = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("url").expect("url");
    browser.goto(&url).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let asked = loop {
        let page = browser.source().await;
        if page.contains("id=\"kc-login\"") || page.contains("id=\"password\"") {
            break true;
        }
        if browser.current_url().await.contains("/callback") {
            break false;
        }
        assert!(tokio::time::Instant::now() < deadline, "neither the login form nor the callback: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    browser.quit().await;
    second.abort();
    assert!(asked, "after logout the browser was logged in again without a password");

    // An ended session ("please log in again") still logs out fully: the chat token too.
    let session = support::login_with("alice", "alice-pass-1", &home, &profile).await.expect("login again");
    passerelle::chat::fetch_counts(&session).await.expect("chat login");
    let chat: Value = serde_json::from_str(&store.get_any("chat").expect("get").expect("chat token")).expect("json");
    store.set("oidc", &json!({"ended": "your session was ended by the server"}).to_string()).expect("end");
    let out = support::cli(&home).arg("logout").output().expect("logout");
    assert!(out.status.success(), "logout of an ended session: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(store.get("oidc").expect("get"), None);
    assert_eq!(store.get("chat").expect("get"), None);
    assert_eq!(me(chat).await, 401, "the chat token of an ended session still works");
}
