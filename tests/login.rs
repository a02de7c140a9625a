//! The one login, end to end: the real Keycloak, its real login page in a real Chromium, the
//! real keychain (gnome-keyring under dbus-run-session, when `scripts/test` provides it).
mod support;

use std::{
    io::{BufRead, BufReader, Write},
    process::Stdio,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use passerelle::{
    auth::{self, AuthError, LoginCancel, LoginOptions, Session},
    browser::Opener,
    config::Profile,
    i18n::Lang,
};
use support::{Browser, Home, KeycloakAdmin};

/// Every log line of this test binary, at debug level, to check that no secret is ever logged.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_writer(move || Sink(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        buffer
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);
impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::ErrorKind::Other)?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn stored_tokens(home: &Home) -> serde_json::Value {
    let text = home.secrets().get("oidc").expect("secret store").expect("tokens stored");
    serde_json::from_str(&text).expect("stored JSON")
}

fn write_profile(home: &Home, profile: &Profile) -> std::path::PathBuf {
    let path = home.path().join("profile.json");
    std::fs::write(&path, serde_json::to_string(profile).expect("JSON")).expect("write profile");
    path
}

/// Starts `cmd` (a `passerelle login`) and reads the login address it prints first.
async fn start_cli_login(cmd: &mut std::process::Command) -> (std::process::Child, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn passerelle login");
    let stdout = child.stdout.take().expect("stdout");
    let url = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line.trim().to_string())
    })
    .await
    .expect("join")
    .expect("read the login URL");
    (child, url)
}

/// Alice fills Keycloak's form at `url` in Chromium; the login process's output and the page
/// the browser was left on (the callback's).
async fn finish_cli_login(child: std::process::Child, url: &str) -> (std::process::Output, String) {
    let browser = Browser::start().await;
    browser.fill_keycloak_login(url, "alice", "alice-pass-1").await;
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("wait");
    let page = browser.source().await;
    browser.quit().await;
    (output, page)
}

/// The member runs `passerelle login`, fills Keycloak's form in the browser, and is logged in;
/// a new process (a restart) still knows her, and the secrets are in the keychain.
#[tokio::test(flavor = "multi_thread")]
async fn cli_login_then_whoami_in_a_new_process() {
    let home = support::home();
    let profile_file = write_profile(&home, &support::profile());
    let mut cmd = support::cli(&home);
    // This test uses the real keychain when there is one, like a member's laptop.
    cmd.env_remove("PASSERELLE_SECRETS");
    let (child, url) = start_cli_login(cmd.args(["login", "--profile"]).arg(&profile_file).arg("--no-browser")).await;
    assert!(url.starts_with(&support::env("PASSERELLE_TEST_ISSUER")), "printed URL: {url}");
    for expected in ["code_challenge_method=S256", "code_challenge=", "state=", "nonce=", "offline_access", "redirect_uri=http%3A%2F%2F127.0.0.1%3A"] {
        assert!(url.contains(expected), "{expected} missing from {url}");
    }

    let started = std::time::Instant::now();
    let (output, page) = finish_cli_login(child, &url).await;
    let login_ms = started.elapsed().as_millis();
    assert!(output.status.success(), "login failed: {}", String::from_utf8_lossy(&output.stderr));
    assert!(page.contains("Vous pouvez fermer cet onglet"), "callback page: {page}");
    eprintln!("login (browser start + form + exchange + validation): {login_ms} ms");

    let mut whoami = support::cli(&home);
    whoami.env_remove("PASSERELLE_SECRETS");
    let out = whoami.args(["whoami", "--json"]).output().expect("whoami");
    assert!(out.status.success(), "whoami: {}", String::from_utf8_lossy(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("whoami JSON");
    assert_eq!(info["name"], "Alice Martin");
    assert_eq!(info["email"], "alice@example.coop");
    assert_eq!(info["username"], "alice");
    if std::env::var("PASSERELLE_TEST_KEYCHAIN").is_ok_and(|v| v == "1") {
        assert_eq!(info["secrets_location"], "OS keychain", "a keychain is running: secrets must go there");
        assert!(!home.dirs().data.join("secrets.json").exists(), "no secrets file when a keychain exists");
    }
    // The settings remember the organisation, and hold no secret.
    let settings = std::fs::read_to_string(home.dirs().config.join("settings.json")).expect("settings saved");
    assert!(settings.contains("\"client_id\": \"passerelle\""));
    assert!(!settings.contains("refresh_token") && !settings.contains("eyJ"), "settings must hold no token");

    // Logging out revokes and forgets; the next command says plainly to log in.
    let mut logout = support::cli(&home);
    logout.env_remove("PASSERELLE_SECRETS");
    let out = logout.arg("logout").output().expect("logout");
    assert!(out.status.success(), "logout: {}", String::from_utf8_lossy(&out.stderr));
    let mut whoami = support::cli(&home);
    whoami.env_remove("PASSERELLE_SECRETS");
    let out = whoami.arg("whoami").output().expect("whoami");
    assert_eq!(out.status.code(), Some(3), "whoami after logout must exit 3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failures: Vec<&str> = stderr.lines().filter(|l| l.starts_with("passerelle: ")).collect();
    assert_eq!(failures.len(), 1, "one plain line: {stderr}");
    assert!(failures[0].contains("[not_logged_in]"), "message: {stderr}");
}

/// The access token expires (20 s in the test realm); the session refreshes ahead of expiry,
/// concurrent callers share one refresh, the rotated refresh token is stored, and a restart
/// (a new handle from the store) stays logged in.
#[tokio::test(flavor = "multi_thread")]
async fn refresh_is_single_flight_rotates_and_survives_restart() {
    let home = support::home();
    let session = support::login("alice", "alice-pass-1", &home).await;
    let first = session.access_token().await.expect("token");
    let first_refresh = stored_tokens(&home)["refresh_token"].as_str().expect("refresh").to_string();

    // Wait for the refresh window, polling the stored expiry rather than sleeping blindly.
    let expires = stored_tokens(&home)["access_expires_at"].as_u64().expect("expiry");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while now() + 5 < expires {
        assert!(tokio::time::Instant::now() < deadline, "expiry never came");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Eight callers at once: with rotation, a second refresh with the same refresh token would
    // be refused by Keycloak, so all succeeding with one token proves the single flight.
    let calls = (0..8).map(|_| {
        let s = session.clone();
        tokio::spawn(async move { s.access_token().await })
    });
    let tokens: Vec<String> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("join").expect("refreshed token"))
        .collect();
    assert!(tokens.iter().all(|t| t == &tokens[0]), "all callers share one refresh");
    assert_ne!(tokens[0], first, "the token was refreshed");
    let second_refresh = stored_tokens(&home)["refresh_token"].as_str().expect("refresh").to_string();
    assert_ne!(second_refresh, first_refresh, "the rotated refresh token was stored");

    // Restart: a new handle from the stored secrets works and knows who it is.
    drop(session);
    let restored = Session::restore(passerelle::http::client(), support::profile(), home.secrets()).expect("restore");
    assert_eq!(restored.identity().name, "Alice Martin");
    let token = restored.access_token().await.expect("token after restart");
    assert_eq!(token, tokens[0], "no needless refresh right after a restart");
    let userinfo = reqwest::Client::new()
        .get(format!("{}/protocol/openid-connect/userinfo", support::env("PASSERELLE_TEST_ISSUER")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("userinfo");
    let status = userinfo.status();
    let www = format!("{:?}", userinfo.headers().get("www-authenticate"));
    let userinfo: serde_json::Value = userinfo.json().await.unwrap_or_else(|e| panic!("userinfo {status} {www}: {e}"));
    assert_eq!(userinfo["preferred_username"], "alice");

    // The old refresh token is dead (rotation): prove it against Keycloak directly.
    let token_url = format!("{}/protocol/openid-connect/token", support::env("PASSERELLE_TEST_ISSUER"));
    let old = reqwest::Client::new()
        .post(&token_url)
        .form(&[("grant_type", "refresh_token"), ("client_id", "passerelle"), ("refresh_token", first_refresh.as_str())])
        .send()
        .await
        .expect("keycloak");
    assert_eq!(old.status(), 400, "the previous refresh token must be refused");
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

/// An administrator ends Carole's sessions (a stolen laptop): the app says "log in again".
#[tokio::test(flavor = "multi_thread")]
async fn revoked_by_the_administrator_means_log_in_again() {
    let home = support::home();
    let session = support::login("carol", "carol-pass-1", &home).await;
    let token = session.access_token().await.expect("token");
    assert!(!session.has_ended());
    KeycloakAdmin::connect().await.revoke_sessions("carol").await;
    let err = session.refresh_after_rejection(&token).await.expect_err("the refresh must be refused");
    assert_eq!(err.code(), "login_required", "{err}");
    // Issue 14, item 10: the desktop asks this before skipping the login step.
    assert!(session.has_ended(), "a session whose refresh was refused has ended");
    let restored = Session::restore(passerelle::http::client(), support::profile(), home.secrets());
    assert_eq!(restored.map(drop).map_err(|e| e.code()), Err("login_required"));
    assert!(err.to_string().starts_with("please log in again"), "{err}");
    // The dead tokens were forgotten, and the CLI says so in one plain line.
    let left = home.secrets().get("oidc").expect("store").expect("a note is left");
    assert!(!left.contains(&token) && !left.contains("refresh_token"), "no token is kept: {left}");
    let out = support::cli(&home).arg("whoami").output().expect("whoami");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[login_required]"), "{stderr}");
}

/// Starts a login whose browser step is played by the test: returns the authorization URL and
/// the pending login.
async fn start_login(
    profile: Profile,
    timeout: Duration,
) -> (String, tokio::task::JoinHandle<Result<Session, AuthError>>) {
    start_login_with(profile, LoginOptions { timeout, ..LoginOptions::default() }).await
}

/// The same, with the given options (their opener is replaced by the test's).
async fn start_login_with(
    profile: Profile,
    options: LoginOptions,
) -> (String, tokio::task::JoinHandle<Result<Session, AuthError>>) {
    let home = support::home();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let options = LoginOptions {
        opener: Opener::hook(move |url| {
            let _ = tx.send(url.to_string());
            Ok(())
        }),
        ..options
    };
    let store = home.secrets();
    let task = tokio::spawn(async move {
        let _home = home;
        auth::login(&passerelle::http::client(), &profile, &store, &options).await
    });
    let url = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("URL in time").expect("URL");
    (url, task)
}

fn query(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .expect("URL")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn outcome(task: tokio::task::JoinHandle<Result<Session, AuthError>>) -> Result<Session, AuthError> {
    tokio::time::timeout(Duration::from_secs(60), task).await.expect("login ends").expect("join")
}

/// The language Keycloak's page was served in (`<html lang="…">`).
fn page_language(source: &str) -> String {
    let html = source.split("<html").nth(1).unwrap_or_default();
    html.split("lang=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default().to_string()
}

fn without_param(url: &str, name: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("URL");
    let kept: Vec<(String, String)> = parsed.query_pairs().filter(|(k, _)| k != name).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    parsed.query_pairs_mut().clear().extend_pairs(kept);
    parsed.to_string()
}

/// Issue 14, item 8: Keycloak's login page followed the browser's languages, so a French
/// member with an English browser got an English page. The app's language goes as
/// `ui_locales`: the page is in French in an English browser, and in English in a French one
/// when the member chose English. Without the parameter (the control) the same browser gets
/// its own language, so the check can fail.
#[tokio::test(flavor = "multi_thread")]
async fn the_login_page_speaks_the_apps_language() {
    for (app, browser_lang) in [(Lang::Fr, "en-US"), (Lang::En, "fr")] {
        let options = LoginOptions { language: Some(app), timeout: Duration::from_secs(90), ..LoginOptions::default() };
        let (url, task) = start_login_with(support::profile(), options).await;
        assert_eq!(query(&url, "ui_locales"), app.tag(), "{url}");
        let browser = Browser::start_in(browser_lang).await;
        browser.goto(&without_param(&url, "ui_locales")).await;
        browser.find("#username").await;
        let control = page_language(&browser.source().await);
        assert_eq!(&control[..2], &browser_lang[..2], "without ui_locales the page follows the browser");
        browser.goto(&url).await;
        browser.find("#username").await;
        let shown = page_language(&browser.source().await);
        browser.type_into("#username", "alice").await;
        browser.type_into("#password", "alice-pass-1").await;
        browser.click("#kc-login").await;
        let session = outcome(task).await.expect("logged in");
        browser.quit().await;
        assert_eq!(session.identity().username.as_deref(), Some("alice"));
        assert_eq!(shown, app.tag(), "the login page is in the app's language");
    }
}

/// Issue 14, item 12: the member can stop waiting for the browser. The wait ends at once with
/// `login_stopped`, and the loopback listener is closed (nothing answers on its port).
#[tokio::test(flavor = "multi_thread")]
async fn a_login_waiting_for_the_browser_can_be_stopped() {
    let cancel = LoginCancel::default();
    let options = LoginOptions { cancel: cancel.clone(), ..LoginOptions::default() };
    let (url, task) = start_login_with(support::profile(), options).await;
    let redirect = query(&url, "redirect_uri");
    let answer = reqwest::get(format!("{redirect}?code=x&state=not-ours")).await.expect("listening");
    assert_eq!(answer.status(), 400);
    assert!(!task.is_finished());
    cancel.cancel();
    let err = outcome(task).await.expect_err("stopped");
    assert_eq!(err.code(), "login_stopped", "{err}");
    assert!(reqwest::get(&redirect).await.is_err(), "the listener must be closed once the login is stopped");
}

/// Issue 14, item 11: no browser could be opened; the member pastes the address into one. The
/// first half of the login gives the address without opening anything, and the second half
/// logs in when that address is used.
#[tokio::test(flavor = "multi_thread")]
async fn a_login_completes_from_the_pasted_address() {
    let home = support::home();
    let http = passerelle::http::client();
    let options = LoginOptions { language: Some(Lang::Fr), timeout: Duration::from_secs(90), ..LoginOptions::default() };
    let pending = auth::begin(&http, &support::profile(), &home.secrets(), &options).await.expect("begin");
    let url = pending.url().to_string();
    let task = tokio::spawn(pending.finish());
    let browser = Browser::start().await;
    browser.fill_keycloak_login(&url, "alice", "alice-pass-1").await;
    let session = outcome(task).await.expect("logged in from the pasted address");
    browser.quit().await;
    assert_eq!(session.identity().username.as_deref(), Some("alice"));
    assert!(!session.has_ended());

    // What Keycloak puts in the access token's audience, for ARCHITECTURE.md's trust rules:
    // `azp` is our client; `aud` names Keycloak clients (here only "account", Keycloak's own
    // account console), never the file, chat or calendar servers that receive the token.
    let token = session.access_token().await.expect("token");
    let claims = jwt_claims(&token);
    assert_eq!(claims["azp"], "passerelle", "{claims}");
    let aud: Vec<String> = match &claims["aud"] {
        serde_json::Value::String(one) => vec![one.clone()],
        serde_json::Value::Array(many) => many.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        _ => vec![],
    };
    eprintln!("access token: azp={} aud={aud:?}", claims["azp"]);
    assert!(aud.iter().all(|a| !a.contains("127.0.0.1") && !a.starts_with("http")), "aud names no server: {aud:?}");
}

/// Issue 14, item 11, for the CLI: no browser can start; `login` prints the address instead of
/// failing, and pasting it into a browser logs in.
#[tokio::test(flavor = "multi_thread")]
async fn cli_login_without_a_browser_prints_the_address() {
    let home = support::home();
    let profile_file = write_profile(&home, &support::profile());
    let mut cmd = support::cli(&home);
    cmd.env("PASSERELLE_BROWSER", home.path().join("no-such-browser")).args(["login", "--profile"]).arg(&profile_file);
    let (child, url) = start_cli_login(&mut cmd).await;
    assert!(url.starts_with(&support::env("PASSERELLE_TEST_ISSUER")) && url.contains("state="), "printed: {url}");
    let (output, _) = finish_cli_login(child, &url).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "login failed: {stderr}");
    assert!(stderr.contains("No browser could be opened") && stderr.contains("Logged in as Alice Martin"), "{stderr}");
}

/// The claims of a JWT, unverified (for looking only).
fn jwt_claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in payload.bytes() {
        let Some(v) = ALPHABET.iter().position(|&a| a == c) else { continue };
        bits = (bits << 6) | v as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_callback_with_the_wrong_state_is_refused() {
    let (url, task) = start_login(support::profile(), Duration::from_secs(60)).await;
    let redirect = query(&url, "redirect_uri");
    let answer = reqwest::get(format!("{redirect}?code=stolen&state=not-the-one")).await.expect("callback");
    assert_eq!(answer.status(), 400);
    // Not an answer to this login, so it neither ends it nor is used (issue 12, item 10): the
    // listener is still there for the real callback.
    let answer = reqwest::get(format!("{redirect}?error=server_error&error_description=forged")).await.expect("still listening");
    assert_eq!(answer.status(), 400);
    assert!(!task.is_finished(), "a forged callback ended the login");
    task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn access_denied_in_the_browser_is_a_cancel() {
    let (url, task) = start_login(support::profile(), Duration::from_secs(60)).await;
    let redirect = query(&url, "redirect_uri");
    let state = query(&url, "state");
    let page = reqwest::get(format!("{redirect}?error=access_denied&state={state}")).await.expect("callback");
    assert!(page.text().await.expect("page").contains("n'a pas abouti"));
    let err = outcome(task).await.expect_err("refused");
    assert_eq!(err.code(), "cancelled", "{err}");
    assert_eq!(err.to_string(), "the login was cancelled in the browser");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_callback_is_single_use() {
    let (url, task) = start_login(support::profile(), Duration::from_secs(90)).await;
    let redirect = query(&url, "redirect_uri");
    let browser = Browser::start().await;
    browser.fill_keycloak_login(&url, "alice", "alice-pass-1").await;
    let session = outcome(task).await.expect("the first callback logs in");
    browser.quit().await;
    assert_eq!(session.identity().name, "Alice Martin");
    // A replay of the callback finds nobody listening.
    let state = query(&url, "state");
    let replay = reqwest::get(format!("{redirect}?code=again&state={state}")).await;
    assert!(replay.is_err(), "the listener must be closed after one callback");
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_coming_back_times_out() {
    let (_url, task) = start_login(support::profile(), Duration::from_millis(1500)).await;
    let err = outcome(task).await.expect_err("timeout");
    assert_eq!(err.code(), "timeout", "{err}");
}

/// A proxy in front of the real Keycloak, spoiling one thing (see tests/servers/oidc_proxy.py).
struct Proxy {
    child: std::process::Child,
    issuer: String,
}

impl Proxy {
    fn start(mode: &str) -> Proxy {
        let python = format!("{}/.cache/passerelle-dev/venv/bin/python", std::env::var("HOME").expect("HOME"));
        let python = std::env::var("PASSERELLE_TEST_PYTHON").unwrap_or(python);
        let mut child = std::process::Command::new(python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/servers/oidc_proxy.py"))
            .args(["--upstream", &support::env("PASSERELLE_TEST_KEYCLOAK"), "--mode", mode])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the proxy");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port");
        let port: u16 = line.trim().parse().expect("the proxy prints its port");
        Proxy { child, issuer: format!("http://127.0.0.1:{port}/realms/passerelle") }
    }

    fn profile(&self) -> Profile {
        let mut profile = support::profile();
        profile.issuer = url::Url::parse(&self.issuer).expect("URL");
        profile
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    let proxy = Proxy::start("wrong-issuer");
    let home = support::home();
    let err = auth::login(&passerelle::http::client(), &proxy.profile(), &home.secrets(), &LoginOptions::default())
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "wrong_issuer", "{err}");
    assert!(err.to_string().contains("sso.attacker.example"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_id_token_is_refused_and_nothing_is_stored() {
    let proxy = Proxy::start("tamper-id-token");
    let home = support::home();
    let err = support::login_with("alice", "alice-pass-1", &home, &proxy.profile()).await.expect_err("refused");
    assert_eq!(err.code(), "invalid_id_token", "{err}");
    assert!(home.secrets().get("oidc").expect("store").is_none(), "nothing stored from a forged login");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_login_server_is_reported_as_such() {
    let mut profile = support::profile();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    profile.issuer = url::Url::parse(&format!("http://127.0.0.1:{port}/realms/passerelle")).expect("URL");
    let home = support::home();
    let err = auth::login(&passerelle::http::client(), &profile, &home.secrets(), &LoginOptions::default())
        .await
        .expect_err("unreachable");
    assert_eq!(err.code(), "discovery_unreachable", "{err}");
    assert!(err.to_string().contains("cannot be reached"), "{err}");
}

/// Debug logs of a login and a refresh hold none of the secrets.
#[tokio::test(flavor = "multi_thread")]
async fn no_token_ever_appears_in_the_logs() {
    let logs = captured_logs();
    let home = support::home();
    let session = support::login("alice", "alice-pass-1", &home).await;
    let access = session.access_token().await.expect("token");
    let refreshed = session.refresh_after_rejection(&access).await.expect("refresh");
    let stored = stored_tokens(&home);
    let text = String::from_utf8(logs.lock().expect("logs").clone()).expect("UTF-8 logs");
    assert!(text.contains("exchanging it"), "debug logs were captured: {text}");
    assert!(text.contains("access token refreshed"), "the refresh was logged");
    for secret in [access.as_str(), refreshed.as_str(), stored["refresh_token"].as_str().expect("refresh token")] {
        assert!(!text.contains(secret), "a token leaked into the logs");
        // Not even a recognisable piece of it.
        assert!(!text.contains(&secret[secret.len() - 24..]), "a token's tail leaked into the logs");
    }
}
