//! Access with the one login: the session's bearer token first (Nextcloud with user_oidc and
//! bearer checking), else Login Flow v2 (the member approves in the browser, where their
//! Keycloak session makes it one click) giving an app password kept in the keychain. The mode
//! that worked is remembered per server, so the next start goes straight to it.
use std::time::Duration;

use reqwest::{header, Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use url::Url;

use super::{
    client::{self, normalise_base, Credentials, Nextcloud},
    reqwest_error, NextcloudError,
};
use crate::{
    auth::{SecretStore, Session},
    browser::Opener,
};

/// Poll the login endpoint this often.
pub const DEFAULT_POLL_EVERY: Duration = Duration::from_secs(2);
/// Give up on a login nobody approved after this long.
pub const DEFAULT_FLOW_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Which way of logging in worked for a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Bearer,
    AppPassword,
}

/// An app password from Login Flow v2. Not `Debug`: it is a secret.
#[derive(Clone, Serialize, Deserialize)]
pub struct AppPassword {
    pub server: String,
    #[serde(rename = "loginName")]
    pub login_name: String,
    #[serde(rename = "appPassword")]
    pub app_password: String,
}

/// A cancel switch for a login in progress: `cancel()` from anywhere (the tray's "Cancel").
#[derive(Clone, Debug)]
pub struct Cancel {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel { tx: std::sync::Arc::new(watch::channel(false).0) }
    }
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }
    pub fn is_cancelled(&self) -> bool {
        *self.tx.borrow()
    }
    async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        // Only fails when the sender is gone, which cannot happen while `self` holds it.
        let _ = rx.wait_for(|c| *c).await;
    }
}

/// How to run the interactive part.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub opener: Opener,
    pub poll_every: Duration,
    pub timeout: Duration,
    pub cancel: Cancel,
    /// Never open the browser: fail with `Unauthorized` (or `NotLoggedIn` when nothing is
    /// saved) instead (background sync).
    pub non_interactive: bool,
    /// Where to keep what connecting learnt (server facts, user id), beside the folder's tree
    /// cache: while fresh (a day), connecting sends no request at all.
    pub facts: Option<std::path::PathBuf>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            opener: Opener::System,
            poll_every: DEFAULT_POLL_EVERY,
            timeout: DEFAULT_FLOW_TIMEOUT,
            cancel: Cancel::new(),
            non_interactive: false,
            facts: None,
        }
    }
}

/// What is kept per server in the secret store.
#[derive(Clone, Serialize, Deserialize)]
struct Saved {
    mode: Mode,
    #[serde(default)]
    login: Option<String>,
    #[serde(default)]
    app_password: Option<String>,
}

fn key(base: &Url) -> String {
    crate::auth::secrets::nextcloud_key(&normalise_base(base))
}

/// The account the entry is kept for: the session's when there is one (a process still
/// holding an earlier login keeps to its own), else the login saved in the store, if any.
fn owner(store: &SecretStore, session: Option<&Session>) -> Result<Option<String>, NextcloudError> {
    match session {
        Some(session) => Ok(Some(session.account())),
        None => store.account().map_err(|e| NextcloudError::Secrets(e.to_string())),
    }
}

fn load(store: &SecretStore, base: &Url, session: Option<&Session>) -> Result<Option<Saved>, NextcloudError> {
    let owner = owner(store, session)?;
    let text = store.get_for(owner.as_deref(), &key(base)).map_err(|e| NextcloudError::Secrets(e.to_string()))?;
    // An unreadable entry is as good as none: the member logs in again.
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

fn save(store: &SecretStore, base: &Url, session: Option<&Session>, saved: &Saved) -> Result<(), NextcloudError> {
    let text = serde_json::to_string(saved).map_err(|e| NextcloudError::Secrets(e.to_string()))?;
    let owner = owner(store, session)?;
    store.set_for(owner.as_deref(), &key(base), &text).map_err(|e| NextcloudError::Secrets(e.to_string()))
}

/// The mode remembered for this server, if any.
pub fn saved_mode(store: &SecretStore, base: &Url) -> Option<Mode> {
    load(store, base, None).ok().flatten().map(|s| s.mode)
}

/// Asks `cloud/user` who we are with these credentials: the user id, or `Unauthorized`.
async fn whoami(http: &reqwest::Client, base: &Url, creds: &Credentials) -> Result<String, NextcloudError> {
    let url = base.join("ocs/v2.php/cloud/user?format=json").map_err(|e| NextcloudError::Protocol(e.to_string()))?;
    let b = http.get(url).header("OCS-APIRequest", "true").header(header::ACCEPT, "application/json");
    let b = match creds {
        Credentials::Bearer(session) => {
            let token = session.access_token().await.map_err(super::auth_failure)?;
            b.bearer_auth(token)
        }
        Credentials::AppPassword { login, password } => b.basic_auth(login, Some(password)),
    };
    let answer = b.send().await.map_err(reqwest_error)?;
    match answer.status() {
        StatusCode::OK => {
            let doc: Value = crate::http::json_limited(answer, crate::http::JSON_ANSWER_LIMIT).await.map_err(super::body_error)?;
            doc["ocs"]["data"]["id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| NextcloudError::Protocol("cloud/user gave no user id".into()))
        }
        StatusCode::UNAUTHORIZED => Err(NextcloudError::Unauthorized),
        _ => Err(client::failure(answer, "cloud/user").await),
    }
}

/// Server facts are read again after this long, or at once after an error.
pub const FACTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// What connecting learnt: kept beside the tree cache so that a no-op `sync --once` costs its
/// one PROPFIND and nothing else (no status.php, capabilities or cloud/user).
#[derive(Serialize, Deserialize)]
struct Facts {
    base: String,
    user: String,
    mode: Mode,
    login: Option<String>,
    info: client::ServerInfo,
    /// Unix seconds.
    read_at: i64,
    /// The login the facts were read with (bearer mode): another login, another account, so
    /// another user id (issue 14, item 13: a folder belongs to the account the server names).
    #[serde(default)]
    subject: Option<String>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Forgets the kept server facts, so the next connection reads them again (after an error).
pub fn forget_facts(path: &std::path::Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(error = %e, "could not remove the kept server facts");
        }
    }
}

fn from_facts(
    http: &reqwest::Client,
    base: &Url,
    path: &std::path::Path,
    saved: Option<&Saved>,
    session: Option<&Session>,
) -> Option<Nextcloud> {
    let facts: Facts = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let age = unix_now() - facts.read_at;
    if facts.base != base.as_str() || !(0..FACTS_MAX_AGE.as_secs() as i64).contains(&age) {
        return None;
    }
    // Only with the very credentials the facts were read with.
    let creds = match (saved?, facts.mode) {
        (Saved { mode: Mode::AppPassword, login: Some(login), app_password: Some(password) }, Mode::AppPassword)
            if facts.login.as_deref() == Some(login.as_str()) =>
        {
            Credentials::AppPassword { login: login.clone(), password: password.clone() }
        }
        (Saved { mode: Mode::Bearer, .. }, Mode::Bearer)
            if session.is_some_and(|s| facts.subject.as_deref() == Some(s.identity().subject.as_str())) =>
        {
            Credentials::Bearer(session?.clone())
        }
        _ => return None,
    };
    tracing::debug!(age, "using the kept server facts");
    Some(Nextcloud::new(http.clone(), base, &facts.user, creds, facts.info))
}

fn keep_facts(path: &std::path::Path, nc: &Nextcloud) {
    let (mode, login, subject) = match nc.credentials() {
        Credentials::Bearer(session) => (Mode::Bearer, None, Some(session.identity().subject.clone())),
        Credentials::AppPassword { login, .. } => (Mode::AppPassword, Some(login.clone()), None),
    };
    let facts = Facts {
        base: nc.base().to_string(),
        user: nc.user().to_string(),
        mode,
        login,
        info: nc.info().clone(),
        read_at: unix_now(),
        subject,
    };
    let tmp = path.with_extension("tmp");
    if let Some(dir) = path.parent() {
        // The folder's data dir may not exist yet on a first sync (the journal makes it later).
        let _ = std::fs::create_dir_all(dir);
    }
    let written = serde_json::to_vec(&facts)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        tracing::warn!(error = %e, "could not keep the server facts");
    }
}

/// Connects to the Nextcloud at `base`: the remembered app password, else the session's bearer
/// token, else Login Flow v2 in the browser. The mode that worked is remembered. With
/// `options.facts`, facts read less than a day ago are used without asking the server.
#[tracing::instrument(skip_all, fields(server = %base))]
pub async fn connect(
    http: &reqwest::Client,
    base: &Url,
    session: Option<&Session>,
    store: &SecretStore,
    options: &ConnectOptions,
) -> Result<Nextcloud, NextcloudError> {
    let base = normalise_base(base);
    let saved = load(store, &base, session)?;
    if let Some(path) = &options.facts {
        if let Some(nc) = from_facts(http, &base, path, saved.as_ref(), session) {
            return Ok(nc);
        }
    }
    let nc = connect_fresh(http, &base, session, store, options, saved).await?;
    if let Some(path) = &options.facts {
        keep_facts(path, &nc);
    }
    Ok(nc)
}

/// The capabilities as this account sees them (anonymous callers are shown almost nothing),
/// with what `status.php` said at the start of the connection (not asked twice).
async fn account_info(http: &reqwest::Client, base: &Url, creds: &Credentials, status: &client::Status) -> Result<client::ServerInfo, NextcloudError> {
    client::info_after_status(http, base, Some(creds), status.clone()).await
}

async fn connect_fresh(
    http: &reqwest::Client,
    base: &Url,
    session: Option<&Session>,
    store: &SecretStore,
    options: &ConnectOptions,
    saved: Option<Saved>,
) -> Result<Nextcloud, NextcloudError> {
    let base = base.clone();
    // Is it a Nextcloud at all (status.php)? A plain sentence if not. The capabilities are read
    // once the credentials are known (anonymous callers are shown almost nothing).
    let Some(status) = client::status(http, &base).await? else {
        return Err(NextcloudError::NotNextcloud(base.to_string()));
    };
    let nothing_saved = saved.is_none();

    if let Some(Saved { mode: Mode::AppPassword, login: Some(login), app_password: Some(password) }) = saved.clone() {
        let creds = Credentials::AppPassword { login, password };
        match whoami(http, &base, &creds).await {
            Ok(user) => {
                let info = account_info(http, &base, &creds, &status).await?;
                return Ok(Nextcloud::new(http.clone(), &base, &user, creds, info));
            }
            Err(NextcloudError::Unauthorized) => {
                tracing::info!("the saved app password was refused (revoked?); logging in again");
            }
            Err(e) => return Err(e),
        }
    }

    if let Some(session) = session {
        let creds = Credentials::Bearer(session.clone());
        match whoami(http, &base, &creds).await {
            Ok(user) => {
                save(store, &base, Some(session), &Saved { mode: Mode::Bearer, login: None, app_password: None })?;
                tracing::info!("the server accepts the session's bearer token");
                let info = account_info(http, &base, &creds, &status).await?;
                return Ok(Nextcloud::new(http.clone(), &base, &user, creds, info));
            }
            Err(NextcloudError::Unauthorized) => {
                tracing::info!("the server does not accept bearer tokens: using Login Flow v2");
            }
            Err(e) => return Err(e),
        }
    }

    if options.non_interactive {
        // Nothing was refused when nothing was sent: say to log in, not "refused".
        return Err(if nothing_saved && session.is_none() { NextcloudError::NotLoggedIn } else { NextcloudError::Unauthorized });
    }
    let granted = login_flow(http, &base, options).await?;
    let creds = Credentials::AppPassword { login: granted.login_name.clone(), password: granted.app_password.clone() };
    let user = whoami(http, &base, &creds).await?;
    let info = account_info(http, &base, &creds, &status).await?;
    save(
        store,
        &base,
        session,
        &Saved { mode: Mode::AppPassword, login: Some(granted.login_name), app_password: Some(granted.app_password) },
    )?;
    Ok(Nextcloud::new(http.clone(), &base, &user, creds, info))
}

/// Login Flow v2: start, open the login page, poll until approved, cancelled or timed out.
#[tracing::instrument(skip_all)]
pub async fn login_flow(http: &reqwest::Client, base: &Url, options: &ConnectOptions) -> Result<AppPassword, NextcloudError> {
    #[derive(Deserialize)]
    struct Poll {
        token: String,
        endpoint: String,
    }
    #[derive(Deserialize)]
    struct Start {
        poll: Poll,
        login: String,
    }
    let base = normalise_base(base);
    let start_url = base.join("index.php/login/v2").map_err(|e| NextcloudError::Protocol(e.to_string()))?;
    let answer = http.post(start_url).send().await.map_err(reqwest_error)?;
    if !answer.status().is_success() {
        return Err(client::failure(answer, "login/v2").await);
    }
    let start: Start = crate::http::json_limited(answer, crate::http::JSON_ANSWER_LIMIT).await.map_err(super::body_error)?;
    let endpoint = Url::parse(&start.poll.endpoint).map_err(|e| NextcloudError::Protocol(e.to_string()))?;
    // The poll token is a bearer secret for the app password: only ever send it to the server
    // we started with.
    if endpoint.origin() != base.origin() {
        return Err(NextcloudError::Protocol("the login poll endpoint is on another server".into()));
    }
    tracing::info!("opening the browser for the Nextcloud login");
    // The login page comes from the server: only an https page of this same server is opened
    // (a `file:` or `smb:` URL would reach the OS's "open").
    options.opener.open_on(&start.login, &base).map_err(|e| match e {
        crate::browser::OpenError::Refused(_) => NextcloudError::UnsafeLink(e.to_string()),
        other => NextcloudError::Browser(other.to_string()),
    })?;

    let deadline = tokio::time::Instant::now() + options.timeout;
    loop {
        if options.cancel.is_cancelled() {
            return Err(NextcloudError::LoginCancelled);
        }
        let answer = http
            .post(endpoint.clone())
            .form(&[("token", start.poll.token.as_str())])
            .send()
            .await
            .map_err(reqwest_error)?;
        match answer.status().as_u16() {
            200 => {
                let granted: AppPassword =
                    crate::http::json_limited(answer, crate::http::JSON_ANSWER_LIMIT).await.map_err(super::body_error)?;
                tracing::info!(login = %granted.login_name, "the Nextcloud login was approved");
                return Ok(granted);
            }
            404 => {}
            _ => return Err(client::failure(answer, "login/v2/poll").await),
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(NextcloudError::LoginExpired);
        }
        let wake = (now + options.poll_every).min(deadline);
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = options.cancel.cancelled() => return Err(NextcloudError::LoginCancelled),
        }
    }
}

/// Forgets this server's access: revokes the app password on the server (when there is one and
/// the server answers), then deletes it locally whatever happened, so logout always works.
#[tracing::instrument(skip_all, fields(server = %base))]
pub async fn logout(http: &reqwest::Client, base: &Url, store: &SecretStore) -> Result<bool, NextcloudError> {
    let base = normalise_base(base);
    // Revoked whoever it was saved for: logging out leaves no live app password behind.
    let saved = store
        .get_any(&key(&base))
        .map_err(|e| NextcloudError::Secrets(e.to_string()))?
        .and_then(|t| serde_json::from_str::<Saved>(&t).ok());
    let mut revoked = false;
    if let Some(Saved { login: Some(login), app_password: Some(password), .. }) = saved {
        let url = base.join("ocs/v2.php/core/apppassword").map_err(|e| NextcloudError::Protocol(e.to_string()))?;
        match http
            .request(Method::DELETE, url)
            .basic_auth(&login, Some(&password))
            .header("OCS-APIRequest", "true")
            .send()
            .await
        {
            Ok(a) if a.status().is_success() => revoked = true,
            Ok(a) => tracing::warn!(status = a.status().as_u16(), "the server did not revoke the app password"),
            Err(e) => tracing::warn!(error = %crate::config::plain_reqwest(&e), "the server could not be told"),
        }
    }
    store.delete(&key(&base)).map_err(|e| NextcloudError::Secrets(e.to_string()))?;
    Ok(revoked)
}
