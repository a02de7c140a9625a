//! [`Remote`] for any WebDAV server (RFC 4918), over the process's one reqwest client.
//!
//! PROPFIND asks for exactly the properties the engine uses (never `allprop`), including
//! `oc:fileid` which Nextcloud answers and other servers ignore. The multistatus answer is read
//! with a namespace-aware XML parser, so prefixes do not matter. Hrefs are untrusted: each is
//! split on its encoded `/` before decoding, so `..%2F..` stays one (refused) name.
//!
//! Auth: none, Basic, or the login's bearer token with one refresh on 401 (a second 401 means
//! "log in again").
use std::time::Duration;

use bytes::Bytes;
use futures_util::{future::BoxFuture, StreamExt, TryStreamExt};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use quick_xml::{events::Event, name::ResolveResult, NsReader};
use reqwest::{header, Method, RequestBuilder, Response, StatusCode};
use url::Url;

use super::{
    remote::{Capabilities, Download, Precondition, Remote, RemoteEntry, RemoteError, Upload},
    Kind,
};
use crate::auth::Session;

/// Characters left as is in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

const PROPFIND_BODY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop>
<d:resourcetype/><d:getcontentlength/><d:getlastmodified/><d:getetag/><oc:fileid/>
</d:prop></d:propfind>"#;

/// How to prove who we are to the server.
#[derive(Clone)]
pub enum Auth {
    None,
    Basic { user: String, password: String },
    /// The login's access token (`Authorization: Bearer`), refreshed once on 401.
    Bearer(Session),
}

impl std::fmt::Debug for Auth {
    // Never print the password or the session's tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Basic { user, .. } => write!(f, "Basic({user})"),
            Auth::Bearer(_) => f.write_str("Bearer"),
        }
    }
}

/// A generic WebDAV server rooted at a folder URL.
#[derive(Clone, Debug)]
pub struct WebDav {
    http: reqwest::Client,
    base: Url,
    auth: Auth,
    /// Attempts for requests that can be replayed (listings, MKCOL, MOVE, DELETE).
    pub attempts: u32,
    pub backoff: Duration,
    /// Upload under a hidden temporary name, then MOVE into place: generic servers (rclone,
    /// WsgiDAV) write in place, so an interrupted PUT would leave a partial file under the
    /// real name.
    pub staged_uploads: bool,
    requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Whether the server honours `If-Match`/`If-None-Match` (rclone does not): probed once.
    conditionals: std::sync::Arc<tokio::sync::OnceCell<bool>>,
    /// Whether the server honours an RFC 4918 `If:` header with an entity tag, on the
    /// destination of a MOVE (Apache mod_dav does; WsgiDAV ignores it; rclone refuses every
    /// such header, matching or not): probed once, when first needed.
    if_header: std::sync::Arc<tokio::sync::OnceCell<bool>>,
}

impl WebDav {
    /// `base` is the sync root's URL (a trailing `/` is added when missing).
    pub fn new(http: reqwest::Client, mut base: Url, auth: Auth) -> WebDav {
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        WebDav {
            http,
            base,
            auth,
            attempts: 4,
            backoff: Duration::from_millis(250),
            staged_uploads: true,
            requests: Default::default(),
            conditionals: Default::default(),
            if_header: Default::default(),
        }
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// HTTP requests sent so far (for benchmarks and tests).
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The URL of a server path; folders get a trailing `/`.
    pub fn url(&self, path: &str, dir: bool) -> Url {
        let mut encoded: String = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
            .collect::<Vec<_>>()
            .join("/");
        if dir && !encoded.is_empty() {
            encoded.push('/');
        }
        let mut url = self.base.clone();
        url.set_path(&format!("{}{}", self.base.path(), encoded));
        url
    }

    /// Sends a request built by `build` with auth; on a 401 with a bearer token, refreshes and
    /// tells the caller to try again (`TokenRefreshed`, transient).
    async fn send_once(&self, build: &(dyn Fn() -> RequestBuilder + Send + Sync)) -> Result<Response, RemoteError> {
        let (request, token) = self.authorize(build()).await?;
        self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let response = request.send().await.map_err(transport)?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(self.rejected(token).await);
        }
        Ok(response)
    }

    async fn authorize(&self, request: RequestBuilder) -> Result<(RequestBuilder, Option<String>), RemoteError> {
        Ok(match &self.auth {
            Auth::None => (request, None),
            Auth::Basic { user, password } => (request.basic_auth(user, Some(password)), None),
            Auth::Bearer(session) => {
                let token = session.access_token().await.map_err(auth_error)?;
                (request.bearer_auth(&token), Some(token))
            }
        })
    }

    async fn rejected(&self, token: Option<String>) -> RemoteError {
        match (&self.auth, token) {
            (Auth::Bearer(session), Some(rejected)) => match session.refresh_after_rejection(&rejected).await {
                Ok(fresh) if fresh != rejected => RemoteError::TokenRefreshed,
                Ok(_) => RemoteError::Unauthorized,
                Err(e) => auth_error(e),
            },
            _ => RemoteError::Unauthorized,
        }
    }

    /// [`Self::send_once`] with retries and back-off on transient failures.
    async fn send(&self, build: &(dyn Fn() -> RequestBuilder + Send + Sync)) -> Result<Response, RemoteError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match self.send_once(build).await {
                Ok(r) => check(r).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_transient() && attempt < self.attempts => {
                    tracing::debug!(error = %e, attempt, "retrying");
                    if !matches!(e, RemoteError::TokenRefreshed) {
                        tokio::time::sleep(self.backoff * 2u32.pow(attempt - 1)).await;
                    }
                }
                other => return other,
            }
        }
    }

    /// True when the server enforces `If-Match`. Probed once with a PUT under a temporary
    /// name and an `If-Match` nothing can match: an honest server answers 412 and writes
    /// nothing; one that ignores it writes the probe, which is deleted again.
    async fn honours_conditionals(&self) -> bool {
        *self
            .conditionals
            .get_or_init(|| async {
                let name = format!("{}probe-{:016x}", super::names::TEMP_PREFIX, rand::random::<u64>());
                let url = self.url(&name, false);
                let build = || {
                    self.http
                        .put(url.clone())
                        .header(header::IF_MATCH, "\"passerelle-probe-matches-nothing\"")
                        .header(header::CONTENT_LENGTH, 0)
                        .body(Vec::new())
                };
                match self.send(&build).await {
                    Err(RemoteError::Changed(_)) => true,
                    Ok(_) => {
                        tracing::info!(server = %self.base, "the server ignores If-Match: checking versions before writing");
                        let delete = || self.http.delete(url.clone());
                        let _ = self.send(&delete).await;
                        false
                    }
                    // Unknown: be careful.
                    Err(_) => false,
                }
            })
            .await
    }

    /// True when the server checks an `If: <url> (["etag"])` header against the resource the
    /// URL names, here the destination of a MOVE. Probed once with two temporary files: a MOVE
    /// onto one of them with a tag that matches nothing must get 412 and change nothing (WsgiDAV
    /// ignores the header and moves), and the same MOVE with the right tag must go through
    /// (rclone refuses every `If:` with an entity tag). One probe name has a space and an
    /// accent: Apache compares the tag after decoding it, and a tag that names no resource is
    /// ignored without a word, so the check must hold for encoded names too.
    pub async fn honours_if_header(&self) -> bool {
        *self
            .if_header
            .get_or_init(|| async {
                let id = rand::random::<u64>();
                let dest = format!("{}probe-if é {id:016x}", super::names::TEMP_PREFIX);
                let src = format!("{}probe-if-source-{id:016x}", super::names::TEMP_PREFIX);
                let verdict = self.probe_if_header(&src, &dest).await;
                for name in [&src, &dest] {
                    let url = self.url(name, false);
                    let delete = || self.http.delete(url.clone());
                    let _ = self.send(&delete).await;
                }
                match verdict {
                    Ok(true) => true,
                    Ok(false) => {
                        tracing::info!(server = %self.base, "the server does not check If: on MOVE: looking at the file just before moving into place");
                        false
                    }
                    Err(e) => {
                        // Unknown: be careful.
                        tracing::info!(server = %self.base, error = %e, "could not tell whether the server checks If: on MOVE");
                        false
                    }
                }
            })
            .await
    }

    async fn probe_if_header(&self, src: &str, dest: &str) -> Result<bool, RemoteError> {
        for (name, body) in [(dest, &b"probe"[..]), (src, &b"probe, moved"[..])] {
            let url = self.url(name, false);
            let build = || self.http.put(url.clone()).header(header::CONTENT_LENGTH, body.len()).body(body);
            self.send(&build).await?;
        }
        let Some(etag) = self.propfind(dest, "0", false).await?.pop().and_then(|(_, e)| e.etag) else {
            return Ok(false);
        };
        match self.move_to(src, dest, true, Some("\"passerelle-probe-matches-nothing\"")).await {
            Err(RemoteError::Changed(_)) => {}
            Ok(()) => return Ok(false),
            Err(e) => return Err(e),
        }
        match self.move_to(src, dest, true, Some(&etag)).await {
            Ok(()) => Ok(true),
            Err(RemoteError::Changed(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// MOVE `from` to `to`; `Overwrite: F` unless `overwrite`; with `if_etag`, only if `to` is
    /// still that version (`If:` tagged with the destination, RFC 4918 section 10.4).
    async fn move_to(&self, from: &str, to: &str, overwrite: bool, if_etag: Option<&str>) -> Result<(), RemoteError> {
        let method = Method::from_bytes(b"MOVE").map_err(|e| RemoteError::Protocol(e.to_string()))?;
        let (source, destination) = (self.url(from, false), self.url(to, false));
        let guard = if_etag.map(|etag| tagged_if(&destination, etag));
        let build = || {
            let request = self
                .http
                .request(method.clone(), source.clone())
                .header("Destination", destination.as_str())
                .header("Overwrite", if overwrite { "T" } else { "F" });
            match &guard {
                Some(value) => request.header("If", value.as_str()),
                None => request,
            }
        };
        self.send(&build).await.map(|_| ())
    }

    /// For servers that ignore preconditions: checks them by looking first (a narrow race
    /// remains, which is the best such a server allows).
    async fn check_precondition(&self, path: &str, pre: &Precondition) -> Result<(), RemoteError> {
        if matches!(pre, Precondition::Any) || self.honours_conditionals().await {
            return Ok(());
        }
        self.look(path, pre).await
    }

    /// The `If:` header that keeps `path` at `etag`, where the server checks it: preferred to
    /// `If-Match` there, because Apache compares `If-Match` strongly and calls a tag weak during
    /// the second after each change, which would refuse a version we know.
    async fn guard(&self, path: &str, etag: &str) -> Option<String> {
        (is_entity_tag(etag) && self.honours_if_header().await).then(|| tagged_if(&self.url(path, false), etag))
    }

    /// Checks a precondition by asking for the item's current version.
    async fn look(&self, path: &str, pre: &Precondition) -> Result<(), RemoteError> {
        let current = match self.propfind(path, "0", false).await {
            Ok(mut items) => items.pop().map(|(_, e)| e),
            Err(RemoteError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let ok = match (pre, &current) {
            (Precondition::Create, None) => true,
            (Precondition::Replace(etag), Some(e)) => e.kind == Kind::File && e.version().as_deref() == Some(etag.as_str()),
            (Precondition::Any, _) => true,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(RemoteError::Changed(path.to_string()))
        }
    }

    async fn propfind(&self, path: &str, depth: &'static str, dir: bool) -> Result<Vec<(Vec<String>, RemoteEntry)>, RemoteError> {
        let url = self.url(path, dir);
        let method = Method::from_bytes(b"PROPFIND").map_err(|e| RemoteError::Protocol(e.to_string()))?;
        let build = || {
            self.http
                .request(method.clone(), url.clone())
                .header("Depth", depth)
                .header(header::CONTENT_TYPE, "application/xml; charset=utf-8")
                .body(PROPFIND_BODY)
        };
        let response = self.send(&build).await.map_err(|e| match e {
            RemoteError::NotFound(_) => RemoteError::NotFound(path.to_string()),
            e => e,
        })?;
        if response.status().as_u16() != 207 {
            return Err(RemoteError::Protocol(format!("PROPFIND answered {} instead of 207", response.status())));
        }
        let text = crate::http::text_limited(response, crate::http::DAV_ANSWER_LIMIT).await.map_err(body_error)?;
        let base_segments = segments(self.base.path());
        parse_multistatus(&text)?
            .into_iter()
            .map(|(href, entry)| {
                // Hrefs may be absolute URLs or absolute paths.
                let href_path = match Url::parse(&href) {
                    // Another server's address is never inside our root.
                    Ok(u) if u.origin() != self.base.origin() => {
                        return Ok((vec![format!("{href} (outside the synced folder)")], entry));
                    }
                    Ok(u) => u.path().to_string(),
                    Err(_) => href.split(['?', '#']).next().unwrap_or("").to_string(),
                };
                let segs = segments(&href_path);
                let rel = if segs.len() >= base_segments.len() && segs[..base_segments.len()] == base_segments[..] {
                    segs[base_segments.len()..].to_vec()
                } else {
                    // Outside our root: keep it whole so that the name check refuses it.
                    vec![format!("{href_path} (outside the synced folder)")]
                };
                Ok((rel, entry))
            })
            .collect()
    }
}

/// Splits an encoded path on `/`, then decodes each segment (so `%2F` stays inside a name).
fn segments(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty()).map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned()).collect()
}

fn auth_error(e: crate::auth::AuthError) -> RemoteError {
    if e.needs_login() {
        RemoteError::Unauthorized
    } else {
        // The login server is down or unreachable: wait, never "log in again" (issue 14, 3).
        RemoteError::LoginUnreachable(e.to_string())
    }
}

fn transport(e: reqwest::Error) -> RemoteError {
    if e.is_timeout() {
        RemoteError::Timeout
    } else if e.is_connect() {
        RemoteError::Offline(crate::config::plain_reqwest(&e))
    } else if e.is_body() || e.is_decode() {
        RemoteError::Truncated(crate::config::plain_reqwest(&e))
    } else {
        RemoteError::Network(crate::config::plain_reqwest(&e))
    }
}

fn body_error(e: crate::http::BodyError) -> RemoteError {
    match e {
        e @ crate::http::BodyError::TooLarge { .. } => RemoteError::TooLarge(e.to_string()),
        e => RemoteError::Truncated(e.to_string()),
    }
}

/// Maps an error status to a [`RemoteError`]; passes success through.
async fn check(response: Response) -> Result<Response, RemoteError> {
    let status = response.status();
    if status.is_success() || status.as_u16() == 207 {
        return Ok(response);
    }
    let what = response.url().path().to_string();
    Err(match status.as_u16() {
        401 => RemoteError::Unauthorized,
        403 => RemoteError::Forbidden(what),
        404 => RemoteError::NotFound(what),
        412 => RemoteError::Changed(what),
        // RFC 4918: the resource is locked (a WebDAV LOCK by another client).
        423 => RemoteError::Locked { path: what, by: None },
        507 => RemoteError::InsufficientStorage,
        408 | 429 | 500..=599 => RemoteError::Server { status: status.as_u16() },
        code => {
            let body = crate::http::text_limited(response, crate::http::JSON_ANSWER_LIMIT).await.unwrap_or_default();
            let message: String = body.chars().take(200).collect();
            RemoteError::Refused { status: code, message }
        }
    })
}

/// Reads a multistatus body into (href, entry) pairs, from `propstat`s with a 200 status only.
pub fn parse_multistatus(xml: &str) -> Result<Vec<(String, RemoteEntry)>, RemoteError> {
    let mut reader = NsReader::from_str(xml);
    let mut out = Vec::new();
    let mut stack: Vec<(bool, String)> = Vec::new(); // (is DAV or oc namespace, local name)
    let mut text = String::new();
    let mut href: Option<String> = None;
    let mut entry = empty_entry();
    let mut pending = empty_entry(); // props of the current propstat, kept if its status is 200
    let mut propstat_ok = false;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| RemoteError::Protocol(e.to_string()))?;
        let known = matches!(ns, ResolveResult::Bound(n) if n.0 == "DAV:" || n.0 == "http://owncloud.org/ns");
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                stack.push((known, name.clone()));
                text.clear();
                if known && name == "propstat" {
                    pending = empty_entry();
                    propstat_ok = false;
                }
                if known && name == "response" {
                    href = None;
                    entry = empty_entry();
                }
            }
            Event::Empty(e) => {
                let name = e.local_name().as_ref().to_string();
                let in_resourcetype = stack.last().is_some_and(|(k, n)| *k && n == "resourcetype");
                if known && name == "collection" && in_resourcetype {
                    pending.kind = Kind::Dir;
                }
            }
            Event::Text(t) => {
                let raw: &str = &t;
                text.push_str(&quick_xml::escape::unescape(raw).map_err(|e| RemoteError::Protocol(e.to_string()))?);
            }
            Event::CData(t) => text.push_str(&t.into_inner()),
            Event::GeneralRef(r) => {
                let raw = format!("&{};", &*r);
                text.push_str(&quick_xml::escape::unescape(&raw).map_err(|e| RemoteError::Protocol(e.to_string()))?);
            }
            Event::End(_) => {
                let Some((known, name)) = stack.pop() else { continue };
                let value = text.trim().to_string();
                if known {
                    match name.as_str() {
                        "href" if stack.last().is_some_and(|(_, n)| n == "response") => href = Some(value),
                        "collection" => pending.kind = Kind::Dir,
                        "getcontentlength" => pending.size = value.parse().unwrap_or(0),
                        "getlastmodified" => {
                            pending.mtime = httpdate::parse_http_date(&value)
                                .ok()
                                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                                .map(|d| d.as_secs() as i64)
                        }
                        "getetag" if !value.is_empty() => pending.etag = Some(quoted(&value)),
                        "fileid" if !value.is_empty() => pending.file_id = Some(value),
                        "status" if stack.last().is_some_and(|(_, n)| n == "propstat") => {
                            propstat_ok = value.split_whitespace().nth(1) == Some("200")
                        }
                        "propstat" => {
                            if propstat_ok {
                                merge(&mut entry, &pending);
                            }
                        }
                        "response" => {
                            if let Some(h) = href.take() {
                                out.push((h, std::mem::replace(&mut entry, empty_entry())));
                            }
                        }
                        _ => {}
                    }
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// ETags in their quoted HTTP form (`"x"`): some servers (WsgiDAV) list them bare in PROPFIND
/// but quoted in headers, and the two must compare equal. A weak `W/"x"` is kept as `"x"`:
/// Apache marks a file's tag weak during the second after each change and strong afterwards
/// (same opaque tag), and one version must not look like two.
fn quoted(etag: &str) -> String {
    let etag = etag.trim();
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    if etag.starts_with('"') {
        etag.to_string()
    } else {
        format!("\"{etag}\"")
    }
}

/// An RFC 4918 `If:` header asking that `url` still be at version `etag`: a tagged list,
/// `<url> (["etag"])`, so that on a MOVE it names the destination, not the source. Compared
/// by servers with the weak function (mod_dav), so it still matches during the second in
/// which Apache calls the tag weak.
fn tagged_if(url: &Url, etag: &str) -> String {
    format!("<{}> ([{}])", url.as_str(), etag)
}

/// A version that is an entity tag (`"x"`), not the size-and-date stand-in of servers that give
/// none.
fn is_entity_tag(version: &str) -> bool {
    version.len() >= 2 && version.starts_with('"') && version.ends_with('"')
}

fn empty_entry() -> RemoteEntry {
    RemoteEntry { kind: Kind::File, size: 0, mtime: None, etag: None, file_id: None, server_path: String::new() }
}

fn merge(into: &mut RemoteEntry, from: &RemoteEntry) {
    if from.kind == Kind::Dir {
        into.kind = Kind::Dir;
    }
    if from.size != 0 {
        into.size = from.size;
    }
    into.mtime = into.mtime.or(from.mtime);
    if from.etag.is_some() {
        into.etag = from.etag.clone();
    }
    if from.file_id.is_some() {
        into.file_id = from.file_id.clone();
    }
}

impl Remote for WebDav {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn account(&self) -> Option<String> {
        match &self.auth {
            Auth::None => None,
            Auth::Basic { user, .. } => Some(user.clone()),
            // The login's subject: stable, unlike a display name.
            Auth::Bearer(session) => Some(session.identity().subject.clone()),
        }
    }

    fn list(&self, dir: &str) -> BoxFuture<'_, Result<Vec<(String, RemoteEntry)>, RemoteError>> {
        let dir = dir.to_string();
        Box::pin(async move {
            let own: Vec<String> = dir.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
            let mut children = Vec::new();
            for (rel, mut entry) in self.propfind(&dir, "1", true).await? {
                if rel == own {
                    continue; // the folder itself
                }
                let name = if rel.len() == own.len() + 1 && rel[..own.len()] == own[..] {
                    rel[own.len()].clone()
                } else {
                    // Not a direct child of the folder asked for: keep the whole path, refused.
                    rel.join("/")
                };
                if entry.kind == Kind::Dir {
                    entry.size = 0;
                }
                children.push((name, entry));
            }
            Ok(children)
        })
    }

    fn stat(&self, path: &str) -> BoxFuture<'_, Result<Option<RemoteEntry>, RemoteError>> {
        let path = path.to_string();
        Box::pin(async move {
            match self.propfind(&path, "0", false).await {
                Ok(mut items) => Ok(items.pop().map(|(_, mut e)| {
                    e.server_path = path.clone();
                    e
                })),
                Err(RemoteError::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn get(&self, path: &str) -> BoxFuture<'_, Result<Download, RemoteError>> {
        let url = self.url(path, false);
        Box::pin(async move {
            let build = || self.http.get(url.clone());
            let response = self.send(&build).await?;
            let len = response.content_length();
            let body = response.bytes_stream().map_err(transport).boxed();
            Ok(Download { len, body })
        })
    }

    fn put(&self, path: &str, upload: Upload, pre: Precondition) -> BoxFuture<'_, Result<super::remote::Stored, RemoteError>> {
        let path = path.to_string();
        Box::pin(async move {
            self.check_precondition(&path, &pre).await?;
            let staged = self.staged_uploads.then(|| {
                let name = format!("{}{:016x}", super::names::TEMP_PREFIX, rand::random::<u64>());
                super::remote::join(super::names::parent(&path), &name)
            });
            let url = self.url(staged.as_deref().unwrap_or(&path), false);
            let mut request = self
                .http
                .put(url)
                .header(header::CONTENT_LENGTH, upload.len)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header("X-OC-Mtime", upload.mtime.to_string());
            request = match (&pre, &staged) {
                (_, Some(_)) => request,
                (Precondition::Create, None) => request.header(header::IF_NONE_MATCH, "*"),
                (Precondition::Replace(etag), None) => match self.guard(&path, etag).await {
                    Some(value) => request.header("If", value),
                    None => request.header(header::IF_MATCH, etag.as_str()),
                },
                (Precondition::Any, None) => request,
            };
            // The body stream can be sent only once: no replay here, the executor retries.
            let body = reqwest::Body::wrap_stream(upload.body.map(|r: std::io::Result<Bytes>| r));
            let (request, token) = self.authorize(request.body(body)).await?;
            self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let response = request.send().await.map_err(transport)?;
            if response.status() == StatusCode::UNAUTHORIZED {
                return Err(self.rejected(token).await);
            }
            let response = check(response).await?;
            if let Some(temp) = staged {
                super::crash::point("upload-staged");
                // Into place, never over a version we did not plan to replace (the upload may
                // have taken minutes): when creating, `Overwrite: F` (all servers tried honour
                // it); when replacing, an `If:` naming the destination's version where the
                // server checks it in the MOVE itself, otherwise a look just before the MOVE,
                // which leaves one round trip of window (ARCHITECTURE.md).
                let moved = async {
                    let guard = match &pre {
                        Precondition::Replace(etag) if is_entity_tag(etag) && self.honours_if_header().await => Some(etag.as_str()),
                        Precondition::Replace(_) => {
                            self.look(&path, &pre).await?;
                            None
                        }
                        Precondition::Create | Precondition::Any => None,
                    };
                    self.move_to(&temp, &path, pre != Precondition::Create, guard).await
                };
                if let Err(e) = moved.await {
                    let from = self.url(&temp, false);
                    let delete = || self.http.delete(from.clone());
                    let _ = self.send(&delete).await;
                    return Err(e);
                }
                // The MOVE answer carries no ETag: the caller asks for it.
                return Ok(None.into());
            }
            Ok(response
                .headers()
                .get(header::ETAG)
                .or_else(|| response.headers().get("OC-ETag"))
                .and_then(|v| v.to_str().ok())
                .map(quoted)
                .into())
        })
    }

    fn mkdir(&self, path: &str) -> BoxFuture<'_, Result<super::remote::Stored, RemoteError>> {
        let url = self.url(path, true);
        let path = path.to_string();
        Box::pin(async move {
            let method = Method::from_bytes(b"MKCOL").map_err(|e| RemoteError::Protocol(e.to_string()))?;
            let build = || self.http.request(method.clone(), url.clone());
            match self.send(&build).await {
                Ok(_) => Ok(Default::default()),
                // 405: something is there already; fine if it is a folder.
                Err(RemoteError::Refused { status: 405, .. }) => match self.propfind(&path, "0", true).await {
                    Ok(items) if items.iter().any(|(_, e)| e.kind == Kind::Dir) => Ok(Default::default()),
                    _ => Err(RemoteError::Refused { status: 405, message: format!("{path} exists and is not a folder") }),
                },
                Err(e) => Err(e),
            }
        })
    }

    fn delete(&self, path: &str, if_match: Option<&str>) -> BoxFuture<'_, Result<(), RemoteError>> {
        // No trailing `/`, folder or not: Apache answers 400 to a file's name with one (a file
        // without an ETag comes here without `if_match`), and all three servers of the test
        // stack delete a folder named without it.
        let url = self.url(path, false);
        let if_match = if_match.map(str::to_string);
        let path = path.to_string();
        Box::pin(async move {
            let mut tagged = None;
            if let Some(etag) = &if_match {
                self.check_precondition(&path, &Precondition::Replace(etag.clone())).await?;
                tagged = self.guard(&path, etag).await;
            }
            let build = || {
                let r = self.http.delete(url.clone());
                match (&tagged, &if_match) {
                    (Some(value), _) => r.header("If", value.as_str()),
                    (None, Some(e)) => r.header(header::IF_MATCH, e.as_str()),
                    (None, None) => r,
                }
            };
            match self.send(&build).await {
                Ok(_) | Err(RemoteError::NotFound(_)) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    fn rename(&self, from: &str, to: &str) -> BoxFuture<'_, Result<(), RemoteError>> {
        let (from, to) = (from.to_string(), to.to_string());
        Box::pin(async move { self.move_to(&from, &to, false, None).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixes_and_statuses() {
        let xml = r#"<?xml version="1.0"?>
<D:multistatus xmlns:D="DAV:" xmlns:x="http://owncloud.org/ns">
 <D:response><D:href>/dav/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
 <D:response><D:href>/dav/a%20b%26c.txt</D:href>
  <D:propstat><D:prop><D:getcontentlength>12</D:getcontentlength><D:getetag>"e&amp;1"</D:getetag>
   <D:getlastmodified>Sun, 06 Nov 1994 08:49:37 GMT</D:getlastmodified><D:resourcetype/></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>
  <D:propstat><D:prop><x:fileid/></D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat></D:response>
</D:multistatus>"#;
        let items = parse_multistatus(xml).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].1.kind, Kind::Dir);
        let (href, e) = &items[1];
        assert_eq!(href, "/dav/a%20b%26c.txt");
        assert_eq!((e.kind, e.size, e.mtime), (Kind::File, 12, Some(784111777)));
        assert_eq!(e.etag.as_deref(), Some("\"e&1\""));
        assert_eq!(e.file_id, None);
        assert_eq!(segments("/dav/..%2F..")[1], "../..");
    }

    #[test]
    fn weak_and_bare_tags_are_one_version() {
        assert_eq!(quoted("W/\"4-6616f6b3141ad\""), "\"4-6616f6b3141ad\"");
        assert_eq!(quoted("9986199-1795981101-4"), "\"9986199-1795981101-4\"");
        assert_eq!(quoted(" \"x\" "), "\"x\"");
        assert!(is_entity_tag("\"x\"") && !is_entity_tag("12-1700000000") && !is_entity_tag("\""));
    }

    #[test]
    fn if_header_names_the_encoded_destination() {
        let dav = WebDav::new(reqwest::Client::new(), Url::parse("http://h/dav/").unwrap(), Auth::None);
        assert_eq!(tagged_if(&dav.url("a b/é.txt", false), "\"e1\""), "<http://h/dav/a%20b/%C3%A9.txt> ([\"e1\"])");
    }

    #[test]
    fn urls_encode_each_segment() {
        let dav = WebDav::new(reqwest::Client::new(), Url::parse("http://h/dav").unwrap(), Auth::None);
        assert_eq!(dav.url("a b/c#d?.txt", false).as_str(), "http://h/dav/a%20b/c%23d%3F.txt");
        assert_eq!(dav.url("", true).as_str(), "http://h/dav/");
    }

    /// Issue 14, item 3: a token that cannot be renewed because the login server is down is
    /// "wait", not "log in again"; only a session the server ended is.
    #[test]
    fn an_unreachable_login_server_is_not_a_dead_session() {
        use crate::auth::AuthError;
        let down = auth_error(AuthError::Network("connection refused".into()));
        assert_eq!(down.code(), "login_unreachable");
        assert!(down.is_fatal());
        let down = crate::drive::RemoteError::from(crate::drive::nextcloud::auth_failure(AuthError::Network("refused".into())));
        assert_eq!(down.code(), "login_unreachable");
        assert_eq!(auth_error(AuthError::LoginRequired("ended".into())).code(), "login_required");
        let ended = crate::drive::RemoteError::from(crate::drive::nextcloud::auth_failure(AuthError::LoginRequired("ended".into())));
        assert_eq!(ended.code(), "login_required");
    }
}
