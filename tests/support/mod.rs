//! Shared support for the integration tests: the test stack's addresses, throwaway
//! installations, a real browser login through Chromium against the real Keycloak, and the CLI.
//!
//! The stack must be up (`eval "$(scripts/stack up)"`, which `scripts/test` does).
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use passerelle::{
    auth::{self, LoginOptions, SecretStore, Session},
    browser::Opener,
    config::{Link, Profile, Settings, TeamRoom},
    paths::Dirs,
};
use serde_json::{json, Value};

/// A stack address from the environment, or a panic that says how to get it.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the test stack with `eval \"$(scripts/stack up)\"` (scripts/test does it)")
    })
}

/// The stack's calendar (Radicale) password of `user`.
pub fn caldav_password(user: &str) -> String {
    let users = env("PASSERELLE_TEST_CALDAV_USERS");
    users
        .split(',')
        .find_map(|pair| pair.split_once(':').filter(|(u, _)| *u == user).map(|(_, p)| p.to_string()))
        .unwrap_or_else(|| panic!("no CalDAV test user {user} in {users}"))
}

fn env_url(name: &str) -> Option<url::Url> {
    std::env::var(name).ok().and_then(|v| url::Url::parse(&v).ok())
}

/// A throwaway installation: its own config, data and logs folders.
pub struct Home {
    dir: tempfile::TempDir,
}

pub fn home() -> Home {
    Home { dir: tempfile::Builder::new().prefix("passerelle-test-").tempdir().expect("temp dir") }
}

impl Home {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn dirs(&self) -> Dirs {
        let home = self.dir.path();
        Dirs { config: home.join("config"), data: home.join("data"), logs: home.join("logs") }
    }

    /// The file secret store of this installation (what `cli()` uses too).
    pub fn secrets(&self) -> SecretStore {
        SecretStore::file(self.dirs().data.join("secrets.json"))
    }

    /// Saves `profile` as this installation's organisation.
    pub fn save_profile(&self, profile: &Profile) {
        let dirs = self.dirs();
        let mut settings = Settings::load(&dirs).expect("settings");
        settings.profile = Some(profile.clone());
        settings.save(&dirs).expect("save settings");
    }

    pub fn folder(&self) -> PathBuf {
        self.dir.path().join("Passerelle")
    }
}

/// The organisation profile of the local test stack.
pub fn profile() -> Profile {
    Profile {
        name: "Coopérative de test".into(),
        issuer: url::Url::parse(&env("PASSERELLE_TEST_ISSUER")).expect("issuer URL"),
        client_id: "passerelle".into(),
        nextcloud: env_url("PASSERELLE_TEST_NEXTCLOUD"),
        webdav: None,
        rocketchat: env_url("PASSERELLE_TEST_ROCKETCHAT"),
        chat_service: "keycloak".into(),
        jitsi: Some(url::Url::parse("https://visio.example.coop").expect("jitsi URL")),
        caldav: env_url("PASSERELLE_TEST_CALDAV"),
        links: vec![Link { name: "Wiki".into(), url: url::Url::parse("https://wiki.example.coop").expect("url") }],
        teams: vec![TeamRoom { name: "Pôle Tech".into(), room: "pole-tech".into() }],
        folder_name: "Passerelle".into(),
    }
}

/// The `passerelle` binary with this installation's environment. Secrets go to the home's
/// file store so that a library login and the CLI share them.
pub fn cli(home: &Home) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_passerelle"));
    cmd.env("PASSERELLE_HOME", home.path()).env("PASSERELLE_SECRETS", "file").env_remove("PASSERELLE_BROWSER");
    cmd
}

/// A real login: the library's login flow, with Chromium filling Keycloak's own form. The
/// profile is saved in `home`, the secrets in its file store.
pub async fn login(user: &str, password: &str, home: &Home) -> Session {
    login_with(user, password, home, &profile()).await.expect("login")
}

pub async fn login_with(user: &str, password: &str, home: &Home, profile: &Profile) -> Result<Session, auth::AuthError> {
    home.save_profile(profile);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let opener = Opener::hook(move |url| {
        let _ = tx.send(url.to_string());
        Ok(())
    });
    let http = passerelle::http::client();
    let store = home.secrets();
    let options = LoginOptions { opener, timeout: Duration::from_secs(90), ..LoginOptions::default() };
    let profile = profile.clone();
    let task = tokio::spawn(async move { auth::login(&http, &profile, &store, &options).await });
    let url = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the login opened no URL in time")
        .expect("the login ended before opening the browser");
    let browser = Browser::start().await;
    browser.fill_keycloak_login(&url, user, password).await;
    let result = tokio::time::timeout(Duration::from_secs(60), task).await.expect("login did not finish").expect("join");
    browser.quit().await;
    result
}

/// A headless Chromium driven over the WebDriver protocol (chromedriver from the stack).
pub struct Browser {
    http: reqwest::Client,
    base: String,
    _profile_dir: tempfile::TempDir,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    pub async fn start() -> Browser {
        Browser::start_in("fr").await
    }

    /// A browser whose preferred language (its `Accept-Language`) is `lang`.
    pub async fn start_in(lang: &str) -> Browser {
        let webdriver = env("PASSERELLE_TEST_WEBDRIVER");
        let http = reqwest::Client::new();
        let profile_dir = tempfile::tempdir().expect("browser profile dir");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": std::env::var("PASSERELLE_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", format!("--lang={lang}"),
                         format!("--accept-lang={lang}"),
                         format!("--user-data-dir={}", profile_dir.path().display())],
                "prefs": {"intl.accept_languages": lang}
            }
        }}});
        let answer: Value = http
            .post(format!("{webdriver}/session"))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("chromedriver JSON");
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_string();
        Browser { http, base: format!("{webdriver}/session/{id}"), _profile_dir: profile_dir }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let answer: Value = req.send().await.expect("chromedriver answers").json().await.expect("JSON");
        if answer["value"].get("error").is_some() {
            panic!("WebDriver {path}: {answer}");
        }
        answer["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    pub async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or_default().to_string()
    }

    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None).await.as_str().unwrap_or_default().to_string()
    }

    /// Finds an element by CSS selector, polling until it appears (pages load asynchronously).
    pub async fn find(&self, css: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let answer: Value = self
                .http
                .post(format!("{}/element", self.base))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .expect("chromedriver answers")
                .json()
                .await
                .expect("JSON");
            if let Some(id) = answer["value"][ELEMENT].as_str() {
                return id.to_string();
            }
            assert!(tokio::time::Instant::now() < deadline, "no element {css} on {}: {answer}\n{}", self.current_url().await, self.source().await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{id}/value"), Some(json!({"text": text}))).await;
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{id}/click"), Some(json!({}))).await;
    }

    /// Opens the login URL and fills Keycloak's own form.
    pub async fn fill_keycloak_login(&self, url: &str, user: &str, password: &str) {
        self.goto(url).await;
        self.type_into("#username", user).await;
        self.type_into("#password", password).await;
        self.click("#kc-login").await;
    }

    pub async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

/// Keycloak's admin API, for tests that act as the administrator.
pub struct KeycloakAdmin {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl KeycloakAdmin {
    pub async fn connect() -> KeycloakAdmin {
        let base = env("PASSERELLE_TEST_KEYCLOAK");
        let creds = env("PASSERELLE_TEST_KC_ADMIN");
        let (user, password) = creds.split_once(':').expect("user:password");
        let http = reqwest::Client::new();
        let answer: Value = http
            .post(format!("{base}/realms/master/protocol/openid-connect/token"))
            .form(&[("grant_type", "password"), ("client_id", "admin-cli"), ("username", user), ("password", password)])
            .send()
            .await
            .expect("keycloak answers")
            .json()
            .await
            .expect("JSON");
        let token = answer["access_token"].as_str().unwrap_or_else(|| panic!("admin token: {answer}")).to_string();
        KeycloakAdmin { http, base: format!("{base}/admin/realms/passerelle"), token }
    }

    pub async fn user_id(&self, username: &str) -> String {
        let users: Value = self
            .http
            .get(format!("{}/users?exact=true&username={username}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("admin API")
            .json()
            .await
            .expect("JSON");
        users[0]["id"].as_str().unwrap_or_else(|| panic!("no user {username}: {users}")).to_string()
    }

    /// Ends every session of the user, offline ones included (what an administrator does when
    /// a laptop is stolen).
    pub async fn revoke_sessions(&self, username: &str) {
        let id = self.user_id(username).await;
        let r = self
            .http
            .delete(format!("{}/users/{id}/consents/passerelle", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("admin API");
        assert!(r.status().is_success() || r.status() == 404, "revoke consents: {}", r.status());
        let r = self
            .http
            .post(format!("{}/users/{id}/logout", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("admin API");
        assert!(r.status().is_success(), "logout user: {}", r.status());
    }
}
