//! The connection to one Nextcloud: its address, the user, how requests are authenticated, what
//! the server advertises, and the small request helpers every other part uses.
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use reqwest::{header, Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use url::Url;

use super::{body_error, dav, reqwest_error, NextcloudError};
use crate::http::{json_limited, text_limited, DAV_ANSWER_LIMIT, JSON_ANSWER_LIMIT};
use crate::auth::Session;

/// What `status.php` and the capabilities say.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerInfo {
    pub product: String,
    pub version: String,
    /// `dav.chunking` = "1.0": chunked upload v2.
    pub chunking: bool,
    /// `dav.bulkupload` = "1.0".
    pub bulk_upload: bool,
    /// `files.chunked_upload.max_size`, when given.
    pub chunk_max_size: Option<u64>,
    /// Trash (`files.undelete`) and versions (`files.versioning`) are there.
    pub trash: bool,
    pub versions: bool,
    /// What `files_sharing` lets this account do with public links; `None` when not read as
    /// the member (anonymous `detect`, or facts kept by an older version).
    #[serde(default)]
    pub sharing: Option<super::share::LinkPolicy>,
}

/// How requests are authenticated. Not `Debug`-printed with secrets.
#[derive(Clone)]
pub enum Credentials {
    /// `Authorization: Bearer` with the session's access token (user_oidc with bearer checking).
    Bearer(Session),
    /// A Login Flow v2 app password, with Basic auth.
    AppPassword { login: String, password: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(..)"),
            Credentials::AppPassword { login, .. } => write!(f, "AppPassword({login})"),
        }
    }
}

/// Makes sure a base URL ends with `/`, so that joining keeps its path.
pub(crate) fn normalise_base(base: &Url) -> Url {
    let mut b = base.clone();
    if !b.path().ends_with('/') {
        let p = format!("{}/", b.path());
        b.set_path(&p);
    }
    b
}

/// Reads `status.php` and the capabilities an anonymous caller sees. `Ok(None)` when the server
/// is not a Nextcloud (a generic WebDAV server): the engine then uses none of the extras.
///
/// A real Nextcloud shows an anonymous caller only `app_api`, `bruteforce` and `theming`
/// (observed on 34.0.1): chunking, bulk upload, trash and versions read as absent here. Use
/// [`server_info`] with the credentials for what the account can use.
pub async fn detect(http: &reqwest::Client, base: &Url) -> Result<Option<ServerInfo>, NextcloudError> {
    read_info(http, base, None).await
}

/// Like [`detect`], with the capabilities read as the member (the dav and files entries are
/// only given to an authenticated request).
pub async fn server_info(
    http: &reqwest::Client,
    base: &Url,
    creds: &Credentials,
) -> Result<Option<ServerInfo>, NextcloudError> {
    read_info(http, base, Some(creds)).await
}

/// What `status.php` says of an installed Nextcloud at `base`: its product name and version
/// (one request); `None` when no installed Nextcloud answers there.
pub(crate) async fn status(http: &reqwest::Client, base: &Url) -> Result<Option<Status>, NextcloudError> {
    read_status(http, &normalise_base(base)).await
}

/// `status.php`'s product name and version.
pub(crate) type Status = (String, String);

async fn read_status(http: &reqwest::Client, base: &Url) -> Result<Option<Status>, NextcloudError> {
    let status_url = base.join("status.php").map_err(|e| NextcloudError::Protocol(e.to_string()))?;
    let answer = http.get(status_url).send().await.map_err(reqwest_error)?;
    if !answer.status().is_success() {
        return Ok(None);
    }
    let Ok(status) = json_limited::<Value>(answer, JSON_ANSWER_LIMIT).await else { return Ok(None) };
    if status.get("installed").and_then(Value::as_bool) != Some(true) {
        return Ok(None);
    }
    let product = status.get("productname").and_then(Value::as_str).unwrap_or("Nextcloud").to_string();
    let version = status.get("versionstring").and_then(Value::as_str).unwrap_or_default().to_string();
    Ok(Some((product, version)))
}

async fn authorize(b: RequestBuilder, creds: Option<&Credentials>) -> Result<RequestBuilder, NextcloudError> {
    Ok(match creds {
        None => b,
        Some(Credentials::Bearer(session)) => {
            let token = session.access_token().await.map_err(|_| NextcloudError::Unauthorized)?;
            b.bearer_auth(token)
        }
        Some(Credentials::AppPassword { login, password }) => b.basic_auth(login, Some(password)),
    })
}

async fn read_info(http: &reqwest::Client, base: &Url, creds: Option<&Credentials>) -> Result<Option<ServerInfo>, NextcloudError> {
    let base = normalise_base(base);
    let Some(status) = read_status(http, &base).await? else { return Ok(None) };
    info_after_status(http, &base, creds, status).await.map(Some)
}

/// The capabilities (as `creds` sees them) of the Nextcloud whose `status.php` said `status`:
/// one request, for a caller that has just read `status.php` itself.
pub(crate) async fn info_after_status(
    http: &reqwest::Client,
    base: &Url,
    creds: Option<&Credentials>,
    (product, version): Status,
) -> Result<ServerInfo, NextcloudError> {
    let base = normalise_base(base);
    let caps_url = base
        .join("ocs/v2.php/cloud/capabilities?format=json")
        .map_err(|e| NextcloudError::Protocol(e.to_string()))?;
    let caps = http.get(caps_url).header("OCS-APIRequest", "true").header(header::ACCEPT, "application/json");
    let caps = authorize(caps, creds).await?.send().await.map_err(reqwest_error)?;
    if creds.is_some() && caps.status() == StatusCode::UNAUTHORIZED {
        return Err(NextcloudError::Unauthorized);
    }
    let caps: Value = if caps.status().is_success() { json_limited(caps, JSON_ANSWER_LIMIT).await.unwrap_or(Value::Null) } else { Value::Null };
    let c = &caps["ocs"]["data"]["capabilities"];
    let files = &c["files"];
    Ok(ServerInfo {
        product,
        version,
        chunking: c["dav"]["chunking"].as_str() == Some("1.0"),
        bulk_upload: c["dav"]["bulkupload"].as_str() == Some("1.0"),
        chunk_max_size: files["chunked_upload"]["max_size"].as_u64(),
        trash: files["undelete"].as_bool().unwrap_or(false),
        versions: files["versioning"].as_bool().unwrap_or(false),
        // Only an authenticated caller is shown `files_sharing` (observed on 34.0.1).
        sharing: creds.map(|_| super::share::LinkPolicy::from_capabilities(c)),
    })
}

/// A connected Nextcloud account. Cheap to clone (shares the HTTP pool and the counters).
#[derive(Clone, Debug)]
pub struct Nextcloud {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    base: Url,
    user: String,
    creds: Credentials,
    info: ServerInfo,
    requests: AtomicU64,
    /// The session cookies this server set (`name=value` pairs), sent back with every
    /// request but `POST`. With them Nextcloud finds the session already logged in and skips
    /// the app password login it otherwise runs for each request (`Session::logClientIn`:
    /// token lookup, decrypting the token's stored password, a new session): 105 ms → 56 ms a
    /// PROPFIND on 34.0.1 (observed, run "ncperf"). A cookie-authenticated `POST` fails Nextcloud's
    /// CSRF check and logs the session out (`Auth::requiresCSRFCheck`), so the bulk upload goes
    /// without it. Kept in memory only, for this server only (the handle talks to one origin
    /// and redirects never leave it), and only with an app password: a bearer token's session
    /// would outlive the token.
    cookies: std::sync::Mutex<Vec<(String, String)>>,
}

impl Nextcloud {
    /// A handle with known credentials and user id (see [`super::connect`] for the usual way).
    pub fn new(http: reqwest::Client, base: &Url, user: &str, creds: Credentials, info: ServerInfo) -> Nextcloud {
        Nextcloud {
            inner: Arc::new(Inner {
                http,
                base: normalise_base(base),
                user: user.to_string(),
                creds,
                info,
                requests: AtomicU64::new(0),
                cookies: std::sync::Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn user(&self) -> &str {
        &self.inner.user
    }
    pub fn base(&self) -> &Url {
        &self.inner.base
    }
    pub fn info(&self) -> &ServerInfo {
        &self.inner.info
    }
    pub fn credentials(&self) -> &Credentials {
        &self.inner.creds
    }
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// HTTP requests sent through this handle so far (for tests and benchmarks).
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// The URL of a DAV path below `/remote.php/dav/` (each segment percent-encoded).
    pub fn dav_url(&self, area: &str, path: &str) -> Url {
        let mut url = self.inner.base.clone();
        {
            // A base URL always has a path, so this cannot fail; fall back to the base if it did.
            if let Ok(mut segs) = url.path_segments_mut() {
                segs.pop_if_empty();
                segs.extend(["remote.php", "dav", area, &self.inner.user]);
                for s in path.split('/').filter(|s| !s.is_empty()) {
                    segs.push(s);
                }
            }
        }
        url
    }

    /// The URL of a file or folder, `path` relative to the user's files root.
    pub fn files_url(&self, path: &str) -> Url {
        self.dav_url("files", path)
    }

    /// The path of `href` relative to the user's files root, when it is below it.
    pub fn files_path(&self, href: &str) -> Option<String> {
        let root = percent_encoding::percent_decode_str(self.files_url("").path()).decode_utf8_lossy().into_owned();
        let root = root.trim_end_matches('/');
        href.strip_prefix(root).map(|rest| rest.trim_matches('/').to_string())
    }

    pub fn ocs_url(&self, path: &str) -> Url {
        // Joining a relative path on a base ending in `/` cannot fail.
        self.inner.base.join(&format!("ocs/v2.php/{path}")).unwrap_or_else(|_| self.inner.base.clone())
    }

    /// A request with the credentials applied (and the session cookie, see [`Inner::cookies`]).
    pub async fn request(&self, method: Method, url: Url) -> Result<RequestBuilder, NextcloudError> {
        let post = method == Method::POST;
        let b = self.inner.http.request(method, url);
        Ok(match &self.inner.creds {
            Credentials::Bearer(session) => {
                let token = session.access_token().await.map_err(super::auth_failure)?;
                b.bearer_auth(token)
            }
            Credentials::AppPassword { login, password } => {
                let b = b.basic_auth(login, Some(password));
                match self.cookie_header() {
                    Some(c) if !post => b.header(header::COOKIE, c),
                    _ => b,
                }
            }
        })
    }

    /// The `Cookie` header to send back, when the server set any.
    fn cookie_header(&self) -> Option<String> {
        let jar = self.inner.cookies.lock().unwrap_or_else(|p| p.into_inner());
        if jar.is_empty() {
            return None;
        }
        Some(jar.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; "))
    }

    /// Keeps the cookies an answer sets (app password only). A cookie the server deletes
    /// (empty value) is forgotten.
    fn keep_cookies(&self, answer: &Response) {
        if !matches!(self.inner.creds, Credentials::AppPassword { .. }) {
            return;
        }
        let mut set = answer.headers().get_all(header::SET_COOKIE).iter().filter_map(|v| parse_set_cookie(v.as_bytes())).peekable();
        if set.peek().is_none() {
            return;
        }
        let mut jar = self.inner.cookies.lock().unwrap_or_else(|p| p.into_inner());
        for (name, value) in set {
            jar.retain(|(n, _)| *n != name);
            if !value.is_empty() && value != "deleted" && jar.len() < MAX_COOKIES {
                jar.push((name, value));
            }
        }
    }

    /// Sends a request that can be built again; on a 401 with a bearer token, refreshes the
    /// token once and retries (another caller may have rotated it meanwhile).
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, NextcloudError> {
        let first = build(self.request(method.clone(), url.clone()).await?);
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let answer = first.send().await.map_err(reqwest_error)?;
        self.keep_cookies(&answer);
        if answer.status() != StatusCode::UNAUTHORIZED {
            return Ok(answer);
        }
        let Credentials::Bearer(session) = &self.inner.creds else { return Err(NextcloudError::Unauthorized) };
        let rejected = session.access_token().await.map_err(super::auth_failure)?;
        let token = session.refresh_after_rejection(&rejected).await.map_err(super::auth_failure)?;
        let again = build(self.inner.http.request(method, url).bearer_auth(token));
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let answer = again.send().await.map_err(reqwest_error)?;
        if answer.status() == StatusCode::UNAUTHORIZED {
            return Err(NextcloudError::Unauthorized);
        }
        Ok(answer)
    }

    /// Sends a one-shot request (a streamed body cannot be sent twice): no retry on 401.
    pub async fn send_once(&self, builder: RequestBuilder) -> Result<Response, NextcloudError> {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let answer = builder.send().await.map_err(reqwest_error)?;
        self.keep_cookies(&answer);
        if answer.status() == StatusCode::UNAUTHORIZED {
            return Err(NextcloudError::Unauthorized);
        }
        Ok(answer)
    }

    /// PROPFIND with the given body; `Ok(None)` on 404.
    pub async fn propfind(&self, url: Url, depth: u8, body: &'static str) -> Result<Option<Vec<dav::Item>>, NextcloudError> {
        let method = Method::from_bytes(b"PROPFIND").map_err(|e| NextcloudError::Protocol(e.to_string()))?;
        let answer = self
            .send(method, url.clone(), |b| {
                b.header("Depth", depth.to_string())
                    .header(header::CONTENT_TYPE, "application/xml; charset=utf-8")
                    .body(body)
            })
            .await?;
        match answer.status().as_u16() {
            207 => {
                let text = text_limited(answer, DAV_ANSWER_LIMIT).await.map_err(body_error)?;
                Ok(Some(dav::parse_multistatus(&text)?))
            }
            404 => Ok(None),
            _ => Err(failure(answer, url.path()).await),
        }
    }

    /// The user's files root, Depth 0, with the quota.
    pub(crate) async fn root_item(&self, path: &str) -> Result<dav::Item, NextcloudError> {
        let items = self
            .propfind(self.files_url(path), 0, dav::ROOT_PROPS)
            .await?
            .ok_or_else(|| NextcloudError::NotFound(if path.is_empty() { "/".into() } else { path.into() }))?;
        items.into_iter().next().ok_or_else(|| NextcloudError::Protocol("an empty PROPFIND answer".into()))
    }

    /// Creates a folder; an existing one is fine.
    pub async fn mkcol(&self, path: &str) -> Result<(), NextcloudError> {
        let method = Method::from_bytes(b"MKCOL").map_err(|e| NextcloudError::Protocol(e.to_string()))?;
        let answer = self.send(method, self.files_url(path), |b| b).await?;
        match answer.status().as_u16() {
            201 | 405 => Ok(()),
            _ => Err(failure(answer, path).await),
        }
    }

    /// Creates `path` and every missing parent (MKCOL on each, parents first).
    pub async fn mkdirs(&self, path: &str) -> Result<(), NextcloudError> {
        let mut sofar = String::new();
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            if !sofar.is_empty() {
                sofar.push('/');
            }
            sofar.push_str(seg);
            self.mkcol(&sofar).await?;
        }
        Ok(())
    }
}

/// At most this many cookies are kept (Nextcloud 34 sets four).
const MAX_COOKIES: usize = 8;
/// A longer cookie is not kept (Nextcloud's longest, `oc_sessionPassphrase`, is 128 bytes).
const MAX_COOKIE_LEN: usize = 1024;

/// The `name=value` of a `Set-Cookie` header; attributes (path, expiry, ...) are not needed: the
/// cookies go back to this one server for this process's life. Anything that could break the
/// `Cookie` header (separators, control characters) is refused.
fn parse_set_cookie(raw: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(raw).ok()?;
    let pair = text.split(';').next()?.trim();
    let (name, value) = pair.split_once('=')?;
    let (name, value) = (name.trim(), value.trim());
    let token = |s: &str| s.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"' | b'\\'));
    if name.is_empty() || !token(name) || !token(value) || name.len() + value.len() > MAX_COOKIE_LEN {
        return None;
    }
    Some((name.to_string(), value.to_string()))
}

/// Turns an unexpected answer into an error, reading Sabre's message when there is one.
pub(crate) async fn failure(answer: Response, what: &str) -> NextcloudError {
    let status = answer.status().as_u16();
    let body = text_limited(answer, JSON_ANSWER_LIMIT).await.unwrap_or_default();
    let message = sabre_message(&body).unwrap_or_else(|| body.chars().take(200).collect());
    match status {
        401 => NextcloudError::Unauthorized,
        404 => NextcloudError::NotFound(what.to_string()),
        412 => NextcloudError::Changed(what.to_string()),
        // files_lock (observed on 34.0.1): PUT, MOVE onto, MOVE of, DELETE of a locked file
        // and the chunked assembly answer 423 with Sabre's `Locked` body, which names nobody.
        423 => NextcloudError::Locked { path: what.to_string(), by: None },
        // Nextcloud 34's 507 reads "Insufficient space in /name" (observed): no figures, so
        // none is made up.
        507 => NextcloudError::InsufficientStorage { free: free_from_message(&message) },
        _ => NextcloudError::Http { status, message },
    }
}

/// The `s:message` of a Sabre error body.
fn sabre_message(body: &str) -> Option<String> {
    let start = body.find("message>")? + "message>".len();
    let end = body[start..].find("</")? + start;
    Some(body[start..end].trim().to_string())
}

/// Nextcloud says "..., N required, M available": the M.
fn free_from_message(message: &str) -> Option<u64> {
    let before = message.rsplit_once(" available")?.0;
    before.rsplit(' ').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_set_cookie;

    /// The four cookies Nextcloud 34.0.1 sets (observed), and what is refused.
    #[test]
    fn set_cookie_headers_keep_name_and_value_only() {
        let pass = "oc_sessionPassphrase=QVPOyY38LaV%2BFMvhjJ%2BPUZTaJ; path=/; HttpOnly; SameSite=Lax";
        assert_eq!(parse_set_cookie(pass.as_bytes()), Some(("oc_sessionPassphrase".into(), "QVPOyY38LaV%2BFMvhjJ%2BPUZTaJ".into())));
        let lax = "nc_sameSiteCookielax=true; path=/; httponly;expires=Fri, 31-Dec-2100 23:59:59 GMT; SameSite=lax";
        assert_eq!(parse_set_cookie(lax.as_bytes()), Some(("nc_sameSiteCookielax".into(), "true".into())));
        assert_eq!(parse_set_cookie(b"ocw4wrtuh2z8=lpcve15jlgq7rvbdfunubs8taq; path=/"), Some(("ocw4wrtuh2z8".into(), "lpcve15jlgq7rvbdfunubs8taq".into())));
        // Nothing that could break the Cookie header or smuggle another one.
        assert_eq!(parse_set_cookie(b"a=b\r\nX: y"), None);
        assert_eq!(parse_set_cookie(b"a=\"b,c\""), None);
        assert_eq!(parse_set_cookie(b"=nameless"), None);
        assert_eq!(parse_set_cookie(b"novalue"), None);
        assert_eq!(parse_set_cookie(format!("big={}", "x".repeat(2000)).as_bytes()), None);
    }
}
