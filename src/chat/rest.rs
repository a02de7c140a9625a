//! Rocket.Chat's REST API, the two calls Passerelle needs: `POST /api/v1/login` with the
//! Keycloak access token, and `GET /api/v1/subscriptions.get`. Keeps the chat credentials in the
//! secret store under "chat", logs in again on 401 (one login at a time), and refuses to send
//! anything before a 429's `Retry-After` has passed.
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

/// What Rocket.Chat answers when no login handler accepts the options: the server has no
/// access-token login for this service (for example the Passport-based OAuth of 2026 servers).
const NO_HANDLER: &str = "Unrecognized options for login request";

/// When a 429 gives no usable `Retry-After`: Rocket.Chat's default window is a minute.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

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
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Reads `Retry-After` (seconds or an HTTP date), else Rocket.Chat's `X-RateLimit-Reset` (Unix ms).
pub(crate) fn retry_after(headers: &HeaderMap) -> Duration {
    if let Some(value) = headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()) {
        if let Ok(secs) = value.trim().parse::<u64>() {
            return Duration::from_secs(secs);
        }
        if let Ok(date) = time::OffsetDateTime::parse(value.trim(), &time::format_description::well_known::Rfc2822) {
            let wait = date.unix_timestamp() - now_secs() as i64;
            return Duration::from_secs(wait.max(0) as u64);
        }
    }
    if let Some(reset) = headers.get("x-ratelimit-reset").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()) {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        if reset > now_ms {
            return Duration::from_millis(reset - now_ms);
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
        }
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    fn endpoint(&self, path: &str) -> Result<Url, ChatError> {
        self.base.join(path).map_err(|e| ChatError::BadAnswer(e.to_string()))
    }

    fn load_stored(&self) -> Result<Option<Credentials>, ChatError> {
        let Some(text) = self.session.secrets().get(SECRET_KEY)? else { return Ok(None) };
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

    /// `POST /api/v1/login` with the access token; saves the result. Tries a refreshed access
    /// token once when the chat server refuses the first.
    async fn login(&self) -> Result<Credentials, ChatError> {
        let mut token = self.session.access_token().await?;
        for attempt in 0..2 {
            let expires_in = self.session.info().await.access_token_expires_at.saturating_sub(now_secs()).max(1);
            let body = serde_json::json!({
                "serviceName": self.session.profile().chat_service,
                "accessToken": token,
                "expiresIn": expires_in,
            });
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
            match status {
                s if s.is_success() => {
                    let v: Value = serde_json::from_str(&text)
                        .map_err(|_| ChatError::BadAnswer("the chat login answer is not JSON".into()))?;
                    let data = &v["data"];
                    let (Some(user_id), Some(auth_token)) = (data["userId"].as_str(), data["authToken"].as_str()) else {
                        return Err(ChatError::BadAnswer("the chat login answer has no userId or authToken".into()));
                    };
                    let creds = Credentials {
                        server: self.base.to_string(),
                        user_id: user_id.to_string(),
                        auth_token: auth_token.to_string(),
                        kind: CredentialKind::Login,
                    };
                    self.save(&creds)?;
                    tracing::info!(user_id, "logged in to the chat");
                    return Ok(creds);
                }
                StatusCode::TOO_MANY_REQUESTS => return Err(self.rate_limited(&headers)),
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
                    return Err(ChatError::Unavailable("the server has no chat login API".into()))
                }
                StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN => {
                    let message = error_message(&text);
                    if message.contains(NO_HANDLER) {
                        return Err(ChatError::Unavailable(format!(
                            "the chat server does not accept the “{}” login",
                            self.session.profile().chat_service
                        )));
                    }
                    if attempt == 0 {
                        tracing::info!(%message, "the chat refused the access token: trying a fresh one");
                        token = self.session.refresh_after_rejection(&token).await?;
                        continue;
                    }
                    return Err(ChatError::LoginRefused(message));
                }
                s => return Err(ChatError::Server { status: s.as_u16(), message: error_message(&text) }),
            }
        }
        Err(ChatError::LoginRefused("the chat refused the login".into()))
    }

    fn save(&self, creds: &Credentials) -> Result<(), ChatError> {
        let text = serde_json::to_string(creds).map_err(|e| ChatError::BadAnswer(e.to_string()))?;
        self.session.secrets().set(SECRET_KEY, &text)?;
        Ok(())
    }

    /// Uses a personal access token instead of the access-token login; checks it first.
    pub async fn use_personal_token(&self, user_id: &str, token: &str) -> Result<(), ChatError> {
        let creds = Credentials {
            server: self.base.to_string(),
            user_id: user_id.to_string(),
            auth_token: token.to_string(),
            kind: CredentialKind::Personal,
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
        let mut h = HeaderMap::new();
        let reset = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 + 3_000;
        h.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
        let d = retry_after(&h);
        assert!(d > Duration::from_secs(2) && d <= Duration::from_secs(3), "{d:?}");
    }

    #[test]
    fn pages_parse_or_fail_plainly() {
        let page = parse_page(r#"{"update":[{"rid":"a"}],"remove":[],"success":true}"#, None).unwrap();
        assert_eq!(page.update.len(), 1);
        assert!(matches!(parse_page(r#"{"update": [ {"rid""#, None), Err(ChatError::BadAnswer(_))));
        assert!(matches!(parse_page(r#"{"success":true}"#, None), Err(ChatError::BadAnswer(_))));
    }
}
