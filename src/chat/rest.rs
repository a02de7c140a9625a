//! Rocket.Chat's REST API, the two calls Passerelle needs: `POST /api/v1/login` with the
//! Keycloak access token, and `GET /api/v1/subscriptions.get`. Keeps the chat credentials in the
//! secret store under "chat", logs in again on 401 (one login at a time), and sends nothing
//! before a 429's reset time has passed.
//!
//! A failed login is read by [`classify_login_failure`], from what the two API generations
//! answer (RocketChat/Rocket.Chat `apps/meteor/app/api/server/api.ts` for 6.x Restivus,
//! `ApiClass.ts` for the 7.x Express API): 6.x answers every failure 401 `{status:"error",
//! error, message}`; 7.x answers a `Meteor.Error` 401 `{success:false, status:"error", error,
//! message}` and anything else (an expired token, an unknown service, a `Match` failure) 500
//! `{success:false, error:"Internal server error"}`.
use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex as StdMutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use reqwest::{header::HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::{sync::Mutex, time::Instant};
use url::Url;

use super::ChatError;
use crate::{auth::Session, config::plain_reqwest};

/// The secret store key.
pub(crate) const SECRET_KEY: &str = super::SECRET_KEY;

/// What the server says when it has no access-token login for the service: the login handler
/// knows no such service (`apps/meteor/app/lib/server/oauth/oauth.ts`: "Unexpected AccessToken
/// service NAME", or "No registered oauth service found for: NAME"), or the service has no
/// configuration (meteor `service-configuration`: "Service not configured"). 6.x shows these
/// words; 7.x hides the first and the last behind its 500.
const NO_ACCESS_TOKEN_LOGIN: [&str; 3] =
    ["Unexpected AccessToken service", "No registered oauth service found", "not configured"];

/// When a 429 gives no usable reset time: Rocket.Chat's default window is a minute.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What a failed `POST /api/v1/login` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoginFailure {
    /// The token or the service's check of it failed (6.x: any 401 but the ones below; 7.x:
    /// a 401, or its bare 500 that hides the reason): a refreshed token may do, once.
    Rejected(String),
    /// The server has no access-token login for this service.
    NoAccessTokenLogin(String),
    /// The account has two-factor login (`totp-required`, `apps/meteor/app/2fa/server/
    /// loginHandler.ts`): no access token will do.
    TwoFactor,
    /// 429 (`ApiClass.ts` `enforceRateLimit`).
    RateLimited,
    /// Something else went wrong on the server: like being offline, try again later.
    Server(String),
}

/// Reads a failed login answer. Pure: the table of cases is in the tests.
pub(crate) fn classify_login_failure(status: u16, body: &str) -> LoginFailure {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let error = v.get("error").and_then(Value::as_str).unwrap_or_default();
    let message = error_message(body);
    if status == 429 {
        return LoginFailure::RateLimited;
    }
    if status == 404 || status == 405 {
        return LoginFailure::NoAccessTokenLogin("the server has no chat login API".into());
    }
    if error == "totp-required" {
        return LoginFailure::TwoFactor;
    }
    if NO_ACCESS_TOKEN_LOGIN.iter().any(|m| message.contains(m)) {
        return LoginFailure::NoAccessTokenLogin(message);
    }
    // 7.x (`ApiClass.ts`): the login threw something that is not a Meteor.Error. Its body is
    // exactly this; a proxy's or a crash's 500 is not.
    if status == 500 && v.get("success") == Some(&Value::Bool(false)) && error == "Internal server error" {
        return LoginFailure::Rejected("the chat server hid the reason (500 Internal server error)".into());
    }
    match status {
        400 | 401 | 403 => LoginFailure::Rejected(message),
        _ => LoginFailure::Server(format!("{status} {message}").trim().to_string()),
    }
}

/// How the credentials were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// From `POST /api/v1/login` with the Keycloak access token: renewed silently.
    Login,
    /// A personal access token the member pasted: cannot be renewed by us.
    Personal,
}

/// The chat's login token. Not `Debug`: it holds a secret.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Credentials {
    /// The chat server they belong to.
    pub server: String,
    pub user_id: String,
    pub auth_token: String,
    pub kind: CredentialKind,
    /// The member's chat user name, when the login told it.
    #[serde(default)]
    pub username: Option<String>,
    /// The member's `unreadAlert` preference, from the login answer (absent: the server's
    /// default, true).
    #[serde(default)]
    pub unread_alert: Option<bool>,
}

impl Credentials {
    pub fn preferences(&self) -> super::counts::Preferences {
        super::counts::Preferences { unread_alert: self.unread_alert.unwrap_or(true) }
    }
}

/// An answer of `subscriptions.get`.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub update: Vec<Value>,
    pub remove: Vec<Value>,
    /// The server's clock at the answer (`Date`), in Unix ms.
    pub server_time: Option<i64>,
}

pub(crate) struct Rest {
    http: reqwest::Client,
    base: Url,
    session: Session,
    /// Held across a login, so that concurrent 401s give one login (single flight).
    creds: Mutex<Option<Credentials>>,
    /// No request before this instant (a 429's Retry-After). A std mutex: never held across
    /// an `.await`.
    not_before: StdMutex<Option<Instant>>,
    requests: Arc<AtomicU64>,
    /// True once a refreshed access token was tried after a refusal, until a login succeeds:
    /// a server that keeps refusing does not cost a Keycloak refresh on every retry.
    refresh_spent: std::sync::atomic::AtomicBool,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Reads Rocket.Chat's `X-RateLimit-Reset` (Unix ms; it sends no `Retry-After`), else a
/// `Retry-After` a proxy may add (seconds or an HTTP date).
pub(crate) fn retry_after(headers: &HeaderMap) -> Duration {
    if let Some(reset) = headers.get("x-ratelimit-reset").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()) {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        // A reset in the past (clocks apart): the window is over, wait a little anyway.
        return Duration::from_millis(reset.saturating_sub(now_ms).max(1000));
    }
    if let Some(value) = headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()) {
        if let Ok(secs) = value.trim().parse::<u64>() {
            return Duration::from_secs(secs);
        }
        if let Ok(date) = time::OffsetDateTime::parse(value.trim(), &time::format_description::well_known::Rfc2822) {
            let wait = date.unix_timestamp() - now_secs() as i64;
            return Duration::from_secs(wait.max(0) as u64);
        }
    }
    DEFAULT_RETRY_AFTER
}

fn server_time(headers: &HeaderMap) -> Option<i64> {
    let date = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    let t = time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc2822).ok()?;
    Some(t.unix_timestamp() * 1000)
}

/// The error body's `message` (or `error`), for plain words in logs and errors.
fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message").and_then(Value::as_str).or_else(|| v.get("error").and_then(Value::as_str)).map(str::to_string)
        })
        .unwrap_or_default()
}

impl Rest {
    pub fn new(session: Session, base: Url, requests: Arc<AtomicU64>) -> Rest {
        Rest {
            http: session.http().clone(),
            base,
            session,
            creds: Mutex::new(None),
            not_before: StdMutex::new(None),
            requests,
            refresh_spent: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    fn endpoint(&self, path: &str) -> Result<Url, ChatError> {
        self.base.join(path).map_err(|e| ChatError::BadAnswer(e.to_string()))
    }

    fn load_stored(&self) -> Result<Option<Credentials>, ChatError> {
        let Some(text) = self.session.secrets().get_for(Some(&self.session.account()), SECRET_KEY)? else { return Ok(None) };
        match serde_json::from_str::<Credentials>(&text) {
            Ok(c) if c.server == self.base.as_str() => Ok(Some(c)),
            Ok(_) => Ok(None),
            Err(_) => {
                tracing::warn!("the saved chat login is unreadable: logging in again");
                Ok(None)
            }
        }
    }

    /// The credentials to use: in memory, else saved, else a fresh login.
    pub async fn credentials(&self) -> Result<Credentials, ChatError> {
        let mut creds = self.creds.lock().await;
        if let Some(c) = creds.as_ref() {
            return Ok(c.clone());
        }
        let fresh = match self.load_stored()? {
            Some(c) => c,
            None => self.login().await?,
        };
        *creds = Some(fresh.clone());
        Ok(fresh)
    }

    /// The credentials in use, if any (no login, no I/O).
    pub async fn known_credentials(&self) -> Option<Credentials> {
        self.creds.lock().await.clone()
    }

    /// Call after the server refused `rejected`: logs in again unless another caller already did.
    pub async fn relogin_after(&self, rejected: &str) -> Result<Credentials, ChatError> {
        let mut creds = self.creds.lock().await;
        if let Some(c) = creds.as_ref() {
            if c.auth_token != rejected {
                return Ok(c.clone());
            }
            if c.kind == CredentialKind::Personal {
                return Err(ChatError::PersonalTokenRefused);
            }
        }
        tracing::info!("the chat server no longer accepts our login token: logging in again");
        let fresh = self.login().await?;
        *creds = Some(fresh.clone());
        Ok(fresh)
    }

    /// Waits out a 429's Retry-After, then counts the request.
    async fn before_request(&self) {
        let until = self.not_before.lock().ok().and_then(|g| *g);
        if let Some(until) = until {
            if until > Instant::now() {
                tracing::debug!(wait_ms = (until - Instant::now()).as_millis() as u64, "waiting for the chat server's rate limit");
                tokio::time::sleep_until(until).await;
            }
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn rate_limited(&self, headers: &HeaderMap) -> ChatError {
        let wait = retry_after(headers);
        if let Ok(mut g) = self.not_before.lock() {
            *g = Some(Instant::now() + wait);
        }
        tracing::warn!(retry_after_s = wait.as_secs_f64(), "the chat server asks to slow down (429)");
        ChatError::RateLimited { retry_after: wait }
    }

    /// `POST /api/v1/login` with the access token; saves the result. When the server rejects
    /// the token, tries a refreshed one once (not again until a login succeeded).
    async fn login(&self) -> Result<Credentials, ChatError> {
        let mut token = self.session.access_token().await?;
        let service = self.session.profile().chat_service.clone();
        loop {
            let expires_in = self.session.info().await.access_token_expires_at.saturating_sub(now_secs()).max(1);
            // `expiresIn` must be an integer (`custom_oauth_server.ts`: `Match.Integer`).
            let body = serde_json::json!({"serviceName": service, "accessToken": token, "expiresIn": expires_in});
            self.before_request().await;
            let response = self
                .http
                .post(self.endpoint("api/v1/login")?)
                .json(&body)
                .send()
                .await
                .map_err(|e| ChatError::Network(plain_reqwest(&e)))?;
            let status = response.status();
            let headers = response.headers().clone();
            let text = crate::http::text_limited(response, crate::http::JSON_ANSWER_LIMIT).await.map_err(body_error)?;
            if status.is_success() {
                let creds = self.read_login(&text)?;
                self.refresh_spent.store(false, Ordering::Relaxed);
                self.save(&creds)?;
                tracing::info!(user_id = %creds.user_id, "logged in to the chat");
                return Ok(creds);
            }
            match classify_login_failure(status.as_u16(), &text) {
                LoginFailure::RateLimited => return Err(self.rate_limited(&headers)),
                LoginFailure::NoAccessTokenLogin(detail) => {
                    tracing::warn!(%detail, %service, "the chat server has no access-token login for this service");
                    return Err(ChatError::Unavailable(format!("the chat server does not accept the “{service}” login")));
                }
                LoginFailure::TwoFactor => {
                    tracing::warn!("the chat account asks for a second factor: the access-token login cannot give one");
                    return Err(ChatError::TwoFactorRequired);
                }
                LoginFailure::Server(detail) => {
                    return Err(ChatError::Server { status: status.as_u16(), message: detail });
                }
                LoginFailure::Rejected(detail) => {
                    if !self.refresh_spent.swap(true, Ordering::Relaxed) {
                        tracing::info!(%detail, "the chat refused the access token: trying a fresh one");
                        token = self.session.refresh_after_rejection(&token).await?;
                        continue;
                    }
                    tracing::warn!(%detail, %service, "the chat refused the login again");
                    return Err(ChatError::LoginRefused(detail));
                }
            }
        }
    }

    /// Reads `{status:"success", data:{userId, authToken, me}}`.
    fn read_login(&self, text: &str) -> Result<Credentials, ChatError> {
        let v: Value =
            serde_json::from_str(text).map_err(|_| ChatError::BadAnswer("the chat login answer is not JSON".into()))?;
        let data = &v["data"];
        let (Some(user_id), Some(auth_token)) = (data["userId"].as_str(), data["authToken"].as_str()) else {
            return Err(ChatError::BadAnswer("the chat login answer has no userId or authToken".into()));
        };
        let me = &data["me"];
        Ok(Credentials {
            server: self.base.to_string(),
            user_id: user_id.to_string(),
            auth_token: auth_token.to_string(),
            kind: CredentialKind::Login,
            username: me["username"].as_str().map(str::to_string),
            unread_alert: me["settings"]["preferences"]["unreadAlert"].as_bool(),
        })
    }

    fn save(&self, creds: &Credentials) -> Result<(), ChatError> {
        let text = serde_json::to_string(creds).map_err(|e| ChatError::BadAnswer(e.to_string()))?;
        self.session.secrets().set_for(Some(&self.session.account()), SECRET_KEY, &text)?;
        Ok(())
    }

    /// Uses a personal access token instead of the access-token login; checks it first.
    pub async fn use_personal_token(&self, user_id: &str, token: &str) -> Result<(), ChatError> {
        let creds = Credentials {
            server: self.base.to_string(),
            user_id: user_id.to_string(),
            auth_token: token.to_string(),
            kind: CredentialKind::Personal,
            username: None,
            unread_alert: None,
        };
        *self.creds.lock().await = Some(creds.clone());
        match self.subscriptions(None).await {
            Ok(_) => self.save(&creds),
            Err(e) => {
                *self.creds.lock().await = None;
                Err(e)
            }
        }
    }

    /// `GET /api/v1/subscriptions.get`, with `updatedSince` when `since` is given. Logs in
    /// again once on 401.
    pub async fn subscriptions(&self, since: Option<i64>) -> Result<Page, ChatError> {
        let mut url = self.endpoint("api/v1/subscriptions.get")?;
        if let Some(ms) = since {
            url.query_pairs_mut().append_pair("updatedSince", &super::counts::iso_ms(ms));
        }
        let mut creds = self.credentials().await?;
        for attempt in 0..2 {
            self.before_request().await;
            let response = self
                .http
                .get(url.clone())
                .header("X-Auth-Token", &creds.auth_token)
                .header("X-User-Id", &creds.user_id)
                .send()
                .await
                .map_err(|e| ChatError::Network(plain_reqwest(&e)))?;
            let status = response.status();
            let headers = response.headers().clone();
            let text = crate::http::text_limited(response, crate::http::JSON_ANSWER_LIMIT).await.map_err(body_error)?;
            match status {
                s if s.is_success() => return parse_page(&text, server_time(&headers)),
                StatusCode::UNAUTHORIZED if attempt == 0 => {
                    creds = self.relogin_after(&creds.auth_token).await?;
                }
                StatusCode::UNAUTHORIZED if creds.kind == CredentialKind::Personal => return Err(ChatError::PersonalTokenRefused),
                StatusCode::UNAUTHORIZED => return Err(ChatError::LoginRefused(error_message(&text))),
                StatusCode::TOO_MANY_REQUESTS => return Err(self.rate_limited(&headers)),
                s => return Err(ChatError::Server { status: s.as_u16(), message: error_message(&text) }),
            }
        }
        Err(ChatError::LoginRefused("the chat refused the login".into()))
    }
}

/// `POST /api/v1/logout` with the login token: Rocket.Chat removes it from the user's resume
/// tokens (its REST API's `logout` route). True when the server said so.
pub(crate) async fn logout(http: &reqwest::Client, base: &Url, creds: &Credentials) -> bool {
    let Ok(url) = base.join("api/v1/logout") else { return false };
    match http
        .post(url)
        .header("X-Auth-Token", &creds.auth_token)
        .header("X-User-Id", &creds.user_id)
        .timeout(Duration::from_secs(15))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => true,
        Ok(r) => {
            tracing::warn!(status = r.status().as_u16(), "the chat server did not revoke the login token");
            false
        }
        Err(e) => {
            tracing::warn!(error = %plain_reqwest(&e), "the chat server could not be told about the logout");
            false
        }
    }
}

/// Reads `{update: [...], remove: [...]}`; a body that is not that shape is a bad answer.
fn parse_page(text: &str, server_time: Option<i64>) -> Result<Page, ChatError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ChatError::BadAnswer(format!("the chat's subscriptions are not valid JSON ({e})")))?;
    let list = |key: &str| v.get(key).and_then(Value::as_array).cloned();
    match (list("update"), list("remove")) {
        (Some(update), remove) => Ok(Page { update, remove: remove.unwrap_or_default(), server_time }),
        (None, _) => Err(ChatError::BadAnswer("the chat's subscriptions answer has no “update” list".into())),
    }
}

/// A capped body read that failed (`crate::http::read_limited`).
fn body_error(e: crate::http::BodyError) -> ChatError {
    match e {
        e @ crate::http::BodyError::TooLarge { .. } => ChatError::TooLarge(e.to_string()),
        e => ChatError::Network(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), DEFAULT_RETRY_AFTER);
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Duration::from_secs(7));
        // What Rocket.Chat sends: X-RateLimit-* and no Retry-After; Reset is in Unix ms.
        let mut h = HeaderMap::new();
        let reset = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 + 3_000;
        h.insert("x-ratelimit-limit", "10".parse().unwrap());
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        h.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
        let d = retry_after(&h);
        assert!(d > Duration::from_secs(2) && d <= Duration::from_secs(3), "{d:?}");
    }

    /// What 6.x (Restivus, `api.ts`) and 7.x (Express, `ApiClass.ts`) answer to a failed
    /// access-token login, and what it means.
    #[test]
    fn login_failures_by_version_and_body() {
        use LoginFailure::*;
        let cases: Vec<(&str, u16, &str, LoginFailure)> = vec![
            (
                "6.x expired token (custom_oauth_server.ts getIdentity)",
                401,
                r#"{"status":"error","message":"Failed to fetch identity from keycloak at https://id/userinfo. Unauthorized"}"#,
                Rejected("Failed to fetch identity from keycloak at https://id/userinfo. Unauthorized".into()),
            ),
            (
                "7.x expired token: a plain Error behind a 500",
                500,
                r#"{"success":false,"error":"Internal server error"}"#,
                Rejected("the chat server hid the reason (500 Internal server error)".into()),
            ),
            (
                "6.x unknown service (oauth.ts)",
                401,
                r#"{"status":"error","message":"Unexpected AccessToken service keycloak"}"#,
                NoAccessTokenLogin("Unexpected AccessToken service keycloak".into()),
            ),
            (
                "7.x unknown service: the same 500 as an expired token",
                500,
                r#"{"success":false,"error":"Internal server error"}"#,
                Rejected("the chat server hid the reason (500 Internal server error)".into()),
            ),
            (
                "7.x service removed from the oauth list (a Meteor.Error)",
                401,
                r#"{"success":false,"status":"error","error":145546287,"message":"No registered oauth service found for: keycloak"}"#,
                NoAccessTokenLogin("No registered oauth service found for: keycloak".into()),
            ),
            (
                "6.x two-factor",
                401,
                r#"{"status":"error","error":"totp-required","details":{"method":"totp"},"message":"TOTP Required"}"#,
                TwoFactor,
            ),
            (
                "7.x two-factor",
                401,
                r#"{"success":false,"status":"error","error":"totp-required","details":{"method":"totp"},"message":"TOTP Required"}"#,
                TwoFactor,
            ),
            ("no login route", 404, "Not Found", NoAccessTokenLogin("the server has no chat login API".into())),
            (
                "429 (ApiClass.ts enforceRateLimit)",
                429,
                r#"{"success":false,"error":"Error, too many requests. Please slow down. You must wait 41 seconds before trying this endpoint again. [error-too-many-requests]"}"#,
                RateLimited,
            ),
            ("a proxy's 502", 502, "<html>Bad Gateway</html>", Server("502".into())),
            ("a crash's 500 with another body", 500, "oops", Server("500".into())),
        ];
        for (case, status, body, expected) in cases {
            assert_eq!(classify_login_failure(status, body), expected, "{case}");
        }
        // The message the old code looked for is Meteor's answer to a body without accessToken,
        // never to ours: it is a plain rejection now.
        assert!(matches!(
            classify_login_failure(401, r#"{"status":"error","error":400,"message":"Unrecognized options for login request"}"#),
            Rejected(_)
        ));
    }

    #[test]
    fn pages_parse_or_fail_plainly() {
        let page = parse_page(r#"{"update":[{"rid":"a"}],"remove":[],"success":true}"#, None).unwrap();
        assert_eq!(page.update.len(), 1);
        assert!(matches!(parse_page(r#"{"update": [ {"rid""#, None), Err(ChatError::BadAnswer(_))));
        assert!(matches!(parse_page(r#"{"success":true}"#, None), Err(ChatError::BadAnswer(_))));
    }
}
