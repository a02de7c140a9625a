//! Public links in one click: a file or folder of the synced folder gets a link (OCS share API,
//! share type 3), the member's existing link when there is one that fits, else a new one made
//! the way the server's sharing settings ask (password, expiry).
//!
//! Cost, with the server facts kept beside the tree cache (`ConnectOptions::facts`): one
//! `GET shares?path=…&reshares=false` when a link exists, that and one `POST shares` when one is
//! made. The capabilities come with the facts; a policy the admin tightened since is learnt from
//! the server's refusal (403 "Passwords are enforced…": one more POST, with a generated password).
//!
//! Answers of a real Nextcloud 34.0.1 this relies on (apps/files_sharing/lib/Controller/
//! ShareAPIController.php; observed on Nextcloud 34.0.1, run "share"): a missing path is 404 with
//! OCS statuscode 404 on GET and POST; a link without password while passwords are enforced is
//! 403; a password the policy refuses is 400 with the policy's reasons; an expiry past the
//! enforced maximum is 404; links disabled is 404; the whole share API disabled is 404 on GET
//! too; creating links is limited to 20 per user in 10 minutes (`#[UserRateLimit(limit: 20,
//! period: 600)]`): 429 with an empty body; an item shared with the member without the right
//! to share it is 404 "You are not allowed to share x". The `password` field of a listed link is the word
//! "redacted" (never the password), `null` when it has none.
use std::{future::Future, path::Path};

use chrono::{Days, NaiveDate};
use reqwest::{header, Method};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use url::Url;

use super::{
    body_error,
    client::Nextcloud,
    place::{Presence, Unmapped},
    NextcloudError,
};
use crate::http::{json_limited, JSON_ANSWER_LIMIT};

/// OCS share type of a public link (`IShare::TYPE_LINK`).
const TYPE_LINK: u64 = 3;
/// OCS permissions that let a link's visitor change things: update, create, delete
/// (`Constants::PERMISSION_*`). A link with any of them is not reused for a plain "share".
const WRITE_PERMISSIONS: u64 = 2 | 4 | 8;
/// Generated passwords are at least this long, more when the server's policy asks.
const GENERATED_LENGTH: usize = 16;

/// What `files_sharing` lets this account do with public links, from the capabilities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkPolicy {
    /// `files_sharing.api_enabled`: false when the admin turned sharing off (or the app is off).
    pub api_enabled: bool,
    /// `files_sharing.public.enabled`.
    pub links_enabled: bool,
    /// `files_sharing.public.password.enforced`.
    pub password_enforced: bool,
    /// `files_sharing.public.expire_date.days`, when `expire_date.enabled`: the server sets this
    /// expiry on a new link that names none (observed on 34.0.1).
    pub default_days: Option<u32>,
    /// `files_sharing.public.expire_date.enforced`: no link without expiry, none further away
    /// than `default_days`.
    pub expiry_enforced: bool,
    /// `password_policy.minLength`, when the password_policy app is on.
    pub password_min_length: Option<u32>,
}

impl LinkPolicy {
    /// Reads the `capabilities` object of an authenticated OCS capabilities answer.
    pub fn from_capabilities(caps: &Value) -> LinkPolicy {
        let sharing = &caps["files_sharing"];
        let public = &sharing["public"];
        let expiry = &public["expire_date"];
        let expiry_enabled = expiry["enabled"].as_bool().unwrap_or(false);
        LinkPolicy {
            api_enabled: sharing["api_enabled"].as_bool().unwrap_or(false),
            links_enabled: public["enabled"].as_bool().unwrap_or(false),
            password_enforced: public["password"]["enforced"].as_bool().unwrap_or(false),
            default_days: if expiry_enabled { expiry["days"].as_u64().map(|d| d as u32) } else { None },
            expiry_enforced: expiry_enabled && expiry["enforced"].as_bool().unwrap_or(false),
            password_min_length: caps["password_policy"]["minLength"].as_u64().map(|n| n as u32),
        }
    }
}

/// Whether the new link gets a password.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Password {
    /// Only if the server enforces one (then generated, and given back to show).
    #[default]
    IfRequired,
    /// This one (the member typed it).
    Given(String),
    /// A generated one, given back to show.
    Generate,
}

/// What the member asked for.
#[derive(Debug, Clone, Default)]
pub struct ShareOptions {
    /// Expire after this many days (the server's default, or none, otherwise).
    pub days: Option<u32>,
    pub password: Password,
    /// The member's today, for `days` (the server reads the date in its own time zone).
    pub today: Option<NaiveDate>,
}

/// A public link, ready to copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedLink {
    pub url: String,
    /// The item's path on the server, relative to the member's files.
    pub path: String,
    /// True when made now, false when the member's existing link was reused.
    pub created: bool,
    /// `YYYY-MM-DD`, the last day the link works.
    pub expires: Option<String>,
    /// Set only when Passerelle chose or was given it now: the member must pass it on.
    pub password: Option<String>,
    /// The link asks for a password (a reused link's password is never known).
    pub has_password: bool,
    /// The file was uploaded first (it was not on the server yet).
    pub uploaded: bool,
    /// Requests this took (capabilities excluded when they came with the kept facts).
    pub requests: u64,
}

/// Why a link could not be made, in plain words.
#[derive(Debug, Error)]
pub enum ShareError {
    #[error("{0} is not in the synced folder")]
    OutsideFolder(String),
    #[error("{0} does not exist")]
    NoSuchFile(String),
    #[error("{0} is not on the server")]
    NotOnServer(String),
    /// A name the server refuses (`names::check_remote_name`): no such item can be on it.
    #[error("the server does not accept the name of {0}")]
    NameRefused(String),
    #[error("the server does not allow sharing")]
    SharingDisabled,
    #[error("the server does not allow public links")]
    LinksDisabled,
    #[error("the server allows links of at most {max_days} days")]
    ExpiryTooFar { max_days: u32 },
    #[error("the server refused the password: {0}")]
    PasswordRefused(String),
    #[error("the server refused to share {path}: {message}")]
    NotAllowed { path: String, message: String },
    #[error("too many links were made in a short time; the server asks to wait a few minutes")]
    RateLimited,
    #[error("the server refused the link ({status}, OCS {statuscode}): {message}")]
    Refused { status: u16, statuscode: i64, message: String },
    #[error("the file could not be uploaded first: {0}")]
    Upload(String),
    #[error(transparent)]
    Server(#[from] NextcloudError),
}

impl ShareError {
    /// A stable code for scripts and the IPC boundary.
    pub fn code(&self) -> &'static str {
        match self {
            ShareError::OutsideFolder(_) => "share_outside_folder",
            ShareError::NoSuchFile(_) => "share_no_such_file",
            ShareError::NotOnServer(_) => "share_not_on_server",
            ShareError::NameRefused(_) => "share_name_refused",
            ShareError::SharingDisabled => "share_disabled",
            ShareError::LinksDisabled => "share_links_disabled",
            ShareError::ExpiryTooFar { .. } => "share_expiry_too_far",
            ShareError::PasswordRefused(_) => "share_password_refused",
            ShareError::NotAllowed { .. } => "share_not_allowed",
            ShareError::RateLimited => "share_rate_limited",
            ShareError::Refused { .. } => "share_refused",
            ShareError::Upload(_) => "share_upload_failed",
            ShareError::Server(e) => e.code(),
        }
    }
}

/// The item's path on the server for a local path in the synced folder `root`, whose server
/// folder is `remote_root` (`Settings::remote_path`, "" for the whole space): `place::map`,
/// with the file there to share (it is uploaded first when the server does not have it).
pub fn server_path(root: &Path, remote_root: &str, local: &Path) -> Result<String, ShareError> {
    let shown = || local.display().to_string();
    super::place::map(root, remote_root, local, Presence::MustExist).map_err(|e| match e {
        Unmapped::NoFolder(_) | Unmapped::Outside => ShareError::OutsideFolder(shown()),
        Unmapped::Missing => ShareError::NoSuchFile(shown()),
        Unmapped::RefusedName => ShareError::NameRefused(shown()),
    })
}

/// A password the server's policy accepts: letters of both cases, digits and a sign, long
/// enough, random (never one of the "common passwords" the policy refuses).
pub fn generate_password(min_length: Option<u32>) -> String {
    use rand::{seq::IndexedRandom, Rng};
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"23456789";
    const SIGNS: &[u8] = b"-_.!+=";
    let length = GENERATED_LENGTH.max(min_length.unwrap_or(0) as usize);
    let mut rng = rand::rng();
    let all: Vec<u8> = [LOWER, UPPER, DIGITS, SIGNS].concat();
    let mut chars: Vec<u8> = [LOWER, UPPER, DIGITS, SIGNS].iter().filter_map(|set| set.choose(&mut rng).copied()).collect();
    while chars.len() < length {
        chars.push(all[rng.random_range(0..all.len())]);
    }
    // The four required kinds are not always first.
    for i in (1..chars.len()).rev() {
        chars.swap(i, rng.random_range(0..=i));
    }
    String::from_utf8_lossy(&chars).into_owned()
}

/// One link as the OCS list or create answer gives it.
#[derive(Debug, Clone)]
struct Link {
    share_type: u64,
    owner: String,
    permissions: u64,
    /// `YYYY-MM-DD`.
    expires: Option<String>,
    has_password: bool,
    url: Option<String>,
    token: Option<String>,
}

impl Link {
    fn from_json(v: &Value) -> Link {
        // Ids and numbers come as strings or numbers depending on the version: read both.
        let num = |v: &Value| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
        Link {
            share_type: num(&v["share_type"]).unwrap_or(0),
            owner: v["uid_owner"].as_str().unwrap_or_default().to_string(),
            permissions: num(&v["permissions"]).unwrap_or(0),
            expires: text(&v["expiration"]).map(|e| e.chars().take(10).collect()),
            has_password: !v["password"].is_null(),
            url: text(&v["url"]),
            token: text(&v["token"]),
        }
    }
}

/// The OCS answer: HTTP status, OCS status code, message, data.
struct Answer {
    status: u16,
    statuscode: i64,
    message: String,
    data: Value,
}

async fn ocs(nc: &Nextcloud, method: Method, url: Url, form: Option<Vec<(&'static str, String)>>) -> Result<Answer, ShareError> {
    let answer = nc
        .send(method, url, |b| {
            let b = b.header("OCS-APIRequest", "true").header(header::ACCEPT, "application/json");
            match &form {
                Some(f) => b.form(f),
                None => b,
            }
        })
        .await?;
    let status = answer.status().as_u16();
    if status == 429 {
        return Err(ShareError::RateLimited);
    }
    // A 429 and some proxies' errors have no OCS body: the status alone then speaks.
    let doc: Value = json_limited(answer, JSON_ANSWER_LIMIT).await.or_else(|e| match status {
        200..=299 => Err(body_error(e)),
        _ => Ok(Value::Null),
    })?;
    let meta = &doc["ocs"]["meta"];
    Ok(Answer {
        status,
        statuscode: meta["statuscode"].as_i64().unwrap_or(status as i64),
        message: meta["message"].as_str().unwrap_or_default().to_string(),
        data: doc["ocs"]["data"].clone(),
    })
}

fn shares_url(nc: &Nextcloud) -> Url {
    nc.ocs_url("apps/files_sharing/api/v1/shares")
}

/// The member's policy: the kept one, else read now (one request).
async fn policy(nc: &Nextcloud) -> Result<(LinkPolicy, u64), ShareError> {
    if let Some(p) = &nc.info().sharing {
        return Ok((p.clone(), 0));
    }
    let info = super::server_info(nc.http(), nc.base(), nc.credentials())
        .await?
        .ok_or_else(|| NextcloudError::NotNextcloud(nc.base().to_string()))?;
    Ok((info.sharing.unwrap_or(LinkPolicy {
        api_enabled: false,
        links_enabled: false,
        password_enforced: false,
        default_days: None,
        expiry_enforced: false,
        password_min_length: None,
    }), 2))
}

/// The last day a link made now for `days` days works.
fn expiry_date(today: NaiveDate, days: u32) -> String {
    today.checked_add_days(Days::new(days.into())).unwrap_or(today).format("%Y-%m-%d").to_string()
}

/// Whether an existing link gives what was asked: read-only, the asked expiry, what the policy
/// requires now, not expired.
fn fits(link: &Link, user: &str, policy: &LinkPolicy, wanted_expiry: Option<&str>, today: &str, options: &ShareOptions) -> bool {
    link.share_type == TYPE_LINK
        && link.owner == user
        && link.permissions & WRITE_PERMISSIONS == 0
        // A password the member wants to pass on must be one we know: a new link.
        && options.password == Password::IfRequired
        && (!policy.password_enforced || link.has_password)
        && (!policy.expiry_enforced || link.expires.is_some())
        && link.expires.as_deref().is_none_or(|e| e >= today)
        && wanted_expiry.is_none_or(|w| link.expires.as_deref() == Some(w))
}

/// The link's address: the server's, if it is a web page of this server; else made from the
/// token (`index.php/s/<token>`, which works with and without pretty URLs).
fn link_url(nc: &Nextcloud, link: &Link) -> Result<String, ShareError> {
    if let Some(url) = &link.url {
        if crate::browser::check_url(url, Some(nc.base())).is_ok() {
            return Ok(url.clone());
        }
        tracing::warn!("the server named a link on another site; using its token on this server");
    }
    let token = link
        .token
        .as_deref()
        .filter(|t| t.chars().all(|c| c.is_ascii_alphanumeric()))
        .ok_or_else(|| NextcloudError::Protocol("the share has no usable address".into()))?;
    Ok(nc.base().join(&format!("index.php/s/{token}")).map_err(|e| NextcloudError::Protocol(e.to_string()))?.to_string())
}

/// A public link for `path` (relative to the member's files): the member's own link when one
/// fits, else a new one. `NotOnServer` when the server has no such item.
#[tracing::instrument(skip_all)]
pub async fn share(nc: &Nextcloud, path: &str, options: &ShareOptions) -> Result<SharedLink, ShareError> {
    let path = path.trim_matches('/').to_string();
    let before = nc.requests();
    let (policy, policy_requests) = policy(nc).await?;
    if !policy.api_enabled {
        return Err(ShareError::SharingDisabled);
    }
    if !policy.links_enabled {
        return Err(ShareError::LinksDisabled);
    }
    let days = match (options.days, policy.expiry_enforced, policy.default_days) {
        (Some(d), true, Some(max)) if d > max => return Err(ShareError::ExpiryTooFar { max_days: max }),
        (d, _, _) => d,
    };
    let today = options.today.unwrap_or_else(|| chrono::Local::now().date_naive());
    let wanted_expiry = days.map(|d| expiry_date(today, d));
    let today_text = today.format("%Y-%m-%d").to_string();

    let mut url = shares_url(nc);
    url.query_pairs_mut()
        .append_pair("format", "json")
        .append_pair("path", &format!("/{path}"))
        .append_pair("reshares", "false");
    let listed = ocs(nc, Method::GET, url, None).await?;
    match (listed.status, listed.statuscode) {
        (200, 100 | 200) => {}
        (404, _) => return Err(ShareError::NotOnServer(path)),
        (403, _) => return Err(ShareError::NotAllowed { path, message: listed.message }),
        _ => return Err(refused(listed)),
    }
    let links: Vec<Link> = listed.data.as_array().map(|a| a.iter().map(Link::from_json).collect()).unwrap_or_default();
    if let Some(link) = links.iter().find(|l| fits(l, nc.user(), &policy, wanted_expiry.as_deref(), &today_text, options)) {
        tracing::debug!("reusing the member's link");
        return Ok(SharedLink {
            url: link_url(nc, link)?,
            path,
            created: false,
            expires: link.expires.clone(),
            password: None,
            has_password: link.has_password,
            uploaded: false,
            requests: nc.requests() - before + policy_requests,
        });
    }

    let mut password = match &options.password {
        Password::Given(p) => Some(p.clone()),
        Password::Generate => Some(generate_password(policy.password_min_length)),
        Password::IfRequired if policy.password_enforced => Some(generate_password(policy.password_min_length)),
        Password::IfRequired => None,
    };
    let mut answer = create(nc, &path, password.as_deref(), wanted_expiry.as_deref()).await?;
    // Passwords enforced since the capabilities were kept: the server says so with a 403.
    if answer.status == 403 && password.is_none() {
        tracing::info!("the server now asks for a password on links; making one");
        password = Some(generate_password(policy.password_min_length));
        answer = create(nc, &path, password.as_deref(), wanted_expiry.as_deref()).await?;
    }
    match answer.status {
        200 => {}
        400 if password.is_some() => return Err(ShareError::PasswordRefused(answer.message)),
        403 => return Err(ShareError::NotAllowed { path, message: answer.message }),
        // 404 says many things (links off, an expiry refused, "You are not allowed to share
        // x" for an item shared with the member without the right to share it; observed on
        // 34.0.1), in the member's language: the item's permissions tell the last one apart.
        404 if !shareable(nc, &path).await => return Err(ShareError::NotAllowed { path, message: answer.message }),
        _ => return Err(refused(answer)),
    }
    let link = Link::from_json(&answer.data);
    Ok(SharedLink {
        url: link_url(nc, &link)?,
        path,
        created: true,
        expires: link.expires.clone(),
        has_password: password.is_some() || link.has_password,
        password,
        uploaded: false,
        requests: nc.requests() - before + policy_requests,
    })
}

/// Whether the member may share the item: `R` in its `oc:permissions` (Nextcloud's "share"
/// permission letter). Unknown counts as yes, so the server's own refusal is shown.
async fn shareable(nc: &Nextcloud, path: &str) -> bool {
    match nc.propfind(nc.files_url(path), 0, super::dav::FILE_PROPS).await {
        Ok(Some(items)) => items.first().and_then(|i| i.permissions.as_deref()).is_none_or(|p| p.contains('R')),
        _ => true,
    }
}

fn refused(a: Answer) -> ShareError {
    ShareError::Refused { status: a.status, statuscode: a.statuscode, message: a.message }
}

async fn create(nc: &Nextcloud, path: &str, password: Option<&str>, expires: Option<&str>) -> Result<Answer, ShareError> {
    let mut form = vec![("path", format!("/{path}")), ("shareType", TYPE_LINK.to_string())];
    if let Some(p) = password {
        form.push(("password", p.to_string()));
    }
    if let Some(e) = expires {
        form.push(("expireDate", e.to_string()));
    }
    let mut url = shares_url(nc);
    url.set_query(Some("format=json"));
    ocs(nc, Method::POST, url, Some(form)).await
}

/// [`share`], and when the item is not on the server yet, `upload` first (the front end's way:
/// a sync of the folder), then [`share`] again.
pub async fn share_or_upload<F, Fut>(nc: &Nextcloud, path: &str, options: &ShareOptions, upload: F) -> Result<SharedLink, ShareError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), ShareError>>,
{
    let before = nc.requests();
    match share(nc, path, options).await {
        Err(ShareError::NotOnServer(_)) => {
            tracing::info!("not on the server yet: uploading it first");
            upload().await?;
            let mut link = share(nc, path, options).await?;
            link.uploaded = true;
            link.requests = nc.requests() - before;
            Ok(link)
        }
        other => other,
    }
}

/// The item's page in Nextcloud's Files app: `index.php/f/<fileid>` (core's
/// `files.viewcontroller.showFile` route, which works with and without pretty URLs). One
/// PROPFIND for the file id.
pub async fn online_url(nc: &Nextcloud, path: &str) -> Result<Url, ShareError> {
    let path = path.trim_matches('/');
    let item = nc
        .propfind(nc.files_url(path), 0, super::dav::FILE_PROPS)
        .await?
        .and_then(|items| items.into_iter().next())
        .ok_or_else(|| ShareError::NotOnServer(path.to_string()))?;
    let id = item.file_id.filter(|id| id.chars().all(|c| c.is_ascii_digit()) && !id.is_empty());
    let id = id.ok_or_else(|| NextcloudError::Protocol("the server gave no file id".into()))?;
    Ok(nc.base().join(&format!("index.php/f/{id}")).map_err(|e| NextcloudError::Protocol(e.to_string()))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LinkPolicy {
        LinkPolicy {
            api_enabled: true,
            links_enabled: true,
            password_enforced: false,
            default_days: None,
            expiry_enforced: false,
            password_min_length: Some(10),
        }
    }

    #[test]
    fn a_local_path_maps_below_the_remote_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Cloud");
        std::fs::create_dir_all(root.join("Devis 2026")).unwrap();
        std::fs::write(root.join("Devis 2026/client é.pdf"), b"x").unwrap();
        std::fs::write(dir.path().join("outside.txt"), b"x").unwrap();
        let local = root.join("Devis 2026/client é.pdf");
        assert_eq!(server_path(&root, "", &local).unwrap(), "Devis 2026/client é.pdf");
        assert_eq!(server_path(&root, "/Team/Projets/", &local).unwrap(), "Team/Projets/Devis 2026/client é.pdf");
        assert_eq!(server_path(&root, "Team", &root).unwrap(), "Team");
        // `..` through the folder and a link out of it both end outside.
        let sneaky = root.join("Devis 2026/../../outside.txt");
        assert_eq!(server_path(&root, "", &sneaky).unwrap_err().code(), "share_outside_folder");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("outside.txt"), root.join("link.txt")).unwrap();
            assert_eq!(server_path(&root, "", &root.join("link.txt")).unwrap_err().code(), "share_outside_folder");
        }
        assert_eq!(server_path(&root, "", &root.join("nope.txt")).unwrap_err().code(), "share_no_such_file");
        // Checks it shares with recovering: names the server refuses, a server folder leaving
        // the space.
        #[cfg(unix)]
        {
            std::fs::write(root.join("a\\b.txt"), b"x").unwrap();
            assert_eq!(server_path(&root, "", &root.join("a\\b.txt")).unwrap_err().code(), "share_name_refused");
        }
        assert_eq!(server_path(&root, "Team/..", &local).unwrap_err().code(), "share_outside_folder");
    }

    #[test]
    fn a_generated_password_has_every_kind_of_character() {
        for _ in 0..50 {
            let p = generate_password(Some(10));
            assert_eq!(p.len(), 16);
            assert!(p.chars().any(|c| c.is_ascii_lowercase()) && p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()) && p.chars().any(|c| "-_.!+=".contains(c)));
        }
        assert_eq!(generate_password(Some(30)).len(), 30);
        assert_ne!(generate_password(None), generate_password(None));
    }

    #[test]
    fn only_a_read_only_link_of_the_member_that_meets_the_policy_is_reused() {
        let link = |owner: &str, perms: u64, expires: Option<&str>, pw: bool| Link {
            share_type: TYPE_LINK,
            owner: owner.into(),
            permissions: perms,
            expires: expires.map(str::to_string),
            has_password: pw,
            url: None,
            token: Some("abc".into()),
        };
        let o = ShareOptions::default();
        let today = "2026-11-29";
        assert!(fits(&link("alice", 17, None, false), "alice", &policy(), None, today, &o));
        assert!(!fits(&link("bob", 17, None, false), "alice", &policy(), None, today, &o));
        assert!(!fits(&link("alice", 31, None, false), "alice", &policy(), None, today, &o), "an editable link");
        assert!(!fits(&link("alice", 17, Some("2026-11-28"), false), "alice", &policy(), None, today, &o), "expired");
        let enforced = LinkPolicy { password_enforced: true, ..policy() };
        assert!(!fits(&link("alice", 17, None, false), "alice", &enforced, None, today, &o));
        assert!(fits(&link("alice", 17, None, true), "alice", &enforced, None, today, &o));
        let expiring = LinkPolicy { expiry_enforced: true, default_days: Some(7), ..policy() };
        assert!(!fits(&link("alice", 17, None, false), "alice", &expiring, None, today, &o));
        assert!(fits(&link("alice", 17, Some("2026-12-01"), false), "alice", &policy(), Some("2026-12-01"), today, &o));
        assert!(!fits(&link("alice", 17, None, false), "alice", &policy(), Some("2026-12-01"), today, &o));
        let with_password = ShareOptions { password: Password::Generate, ..ShareOptions::default() };
        assert!(!fits(&link("alice", 17, None, true), "alice", &policy(), None, today, &with_password));
    }

    #[test]
    fn the_policy_is_read_from_the_capabilities_as_nextcloud_34_gives_them() {
        // Observed on Nextcloud 34.0.1 with expiry default 7 days, enforced, passwords enforced.
        let caps = serde_json::json!({
            "files_sharing": {"api_enabled": true, "public": {"enabled": true,
                "password": {"enforced": true, "askForOptionalPassword": false},
                "expire_date": {"enabled": true, "days": 7, "enforced": true}, "multiple_links": true}},
            "password_policy": {"minLength": 10}
        });
        let p = LinkPolicy::from_capabilities(&caps);
        assert_eq!(p, LinkPolicy { api_enabled: true, links_enabled: true, password_enforced: true, default_days: Some(7), expiry_enforced: true, password_min_length: Some(10) });
        // Links disabled: `public` is only {"enabled": false}.
        let off = LinkPolicy::from_capabilities(&serde_json::json!({"files_sharing": {"api_enabled": true, "public": {"enabled": false}}}));
        assert!(off.api_enabled && !off.links_enabled);
        assert_eq!(expiry_date(NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(), 7), "2026-12-06");
    }
}
