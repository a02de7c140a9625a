//! Nextcloud extras over plain WebDAV, each kept behind what the server actually advertises, so
//! that any other WebDAV server keeps working with the generic engine unchanged.
//!
//! # Public API (stable; the CLI and the desktop shell build on it)
//! ```ignore
//! // Is it a Nextcloud, and what does it offer? (status.php + OCS capabilities; None otherwise)
//! let info: Option<ServerInfo> = nextcloud::detect(&http, &base).await?;
//! // Access with the one login: bearer from the Session, else Login Flow v2 (browser, poll 2 s,
//! // 10 min, cancellable), the app password in the keychain, the mode remembered per server.
//! let nc = nextcloud::account(&http, &profile, &store, session.as_ref(), &ConnectOptions::default()).await?;
//! let q: QuotaReport = nextcloud::quota_report(&http, &profile, &store, session.as_ref()).await?; // status --json
//! let nc: Nextcloud = nextcloud::connect(&http, &base, Some(&session), &store, &ConnectOptions::default()).await?;
//! nextcloud::logout(&http, &base, &store).await?;        // revokes the app password
//! let q: Quota = nc.quota().await?;                      // q.warning(), q.fits(size)
//! let report = nextcloud::bulk::upload(&nc, files, &BulkOptions::default()).await;
//! let done = nextcloud::chunked::upload(&nc, &local, "dir/big.iso", mtime, None, &ChunkOptions::default()).await?;
//! let items = nextcloud::trash(&nc).await?;  nextcloud::restore(&nc, "dir/x.txt").await?;
//! let vs = nextcloud::versions(&nc, "x.txt").await?;  nextcloud::restore_version(&nc, "x.txt", &vs[0].id).await?;
//! let copy = nextcloud::fetch_version(&nc, "x.txt", &vs[0].id, &temp_dir).await?; // read-only copy
//! let path = nextcloud::place::server_path(&folder, remote_root, &local)?;  // and place::local_path
//! let feed = nextcloud::feed::Feed::start(nc.clone(), FeedConfig::default()); // Récemment + notifications
//! nextcloud::feed::recent(&nc, 5, None).await?;  nextcloud::feed::notifications(&nc, None).await?;
//! let walk = nextcloud::walk::walk(&nc, "", &mut cache).await?; // folder-ETag skipping listing
//! let remote = NextcloudRemote::new(nc, "", Some(cache_file));  // a drive::Remote
//! let shared = nextcloud::share::share(&nc, "Devis/devis.pdf", &ShareOptions::default()).await?; // a public link
//! ```
//! Errors: [`NextcloudError`], each with a stable [`NextcloudError::code`].
//!
//! The module knows nothing of the planner: it talks HTTP to one server. The one thing it keeps
//! in the folder's journal is the ids of its unfinished chunked uploads (`with_journal`).

mod account;
pub mod bulk;
pub mod chunked;
mod client;
mod dav;
pub mod feed;
mod login;
pub mod place;
mod quota;
pub mod remote;
pub mod share;
pub mod tar;
mod trash;
pub mod walk;

use thiserror::Error;

pub use account::{account, quota_report, QuotaReport, SpaceChoice};
pub use client::{detect, server_info, Credentials, Nextcloud, ServerInfo};
pub use login::{
    connect, forget_facts, login_flow, logout, saved_mode, AppPassword, Cancel, ConnectOptions, Mode, DEFAULT_POLL_EVERY,
    DEFAULT_FLOW_TIMEOUT, FACTS_MAX_AGE,
};
pub use quota::{not_enough_space, Quota, WARN_AT_PERCENT};
pub use remote::NextcloudRemote;
pub use trash::{fetch_version, restore, restore_version, trash, versions, TrashItem, Version};

/// Why a Nextcloud operation failed, in plain words.
#[derive(Debug, Error, Clone)]
pub enum NextcloudError {
    #[error("no Nextcloud server is configured for this organisation")]
    NotConfigured,
    #[error("{0} does not look like a Nextcloud server")]
    NotNextcloud(String),
    #[error("the file server cannot be reached: {0}")]
    Offline(String),
    #[error("the file server refused the credentials: please log in again")]
    Unauthorized,
    /// The session could not be renewed: the login server cannot be reached. Wait, do not
    /// log in again.
    #[error("the login server cannot be reached to renew the login: {0}")]
    LoginUnreachable(String),
    #[error("you are not logged in to the file server yet: run “passerelle sync” in a terminal to log in")]
    NotLoggedIn,
    #[error("the Nextcloud login was cancelled")]
    LoginCancelled,
    #[error("the Nextcloud login was not approved in the browser in time")]
    LoginExpired,
    #[error("could not open the browser: {0}")]
    Browser(String),
    #[error("{0}")]
    UnsafeLink(String),
    #[error("the keychain could not be used: {0}")]
    Secrets(String),
    /// `free` only when known: a 507's body has no figures ("Insufficient space in /name").
    #[error("not enough space on the server{}", match free { Some(f) => format!(" ({} MB free)", f / (1024 * 1024)), None => String::new() })]
    InsufficientStorage { free: Option<u64> },
    #[error("{0} is in a read-only share")]
    ReadOnly(String),
    #[error("{0} is not on the server")]
    NotFound(String),
    #[error("{0} changed on the server meanwhile")]
    Changed(String),
    /// 423 Locked (files_lock: the file is open in an online editor, or locked by a user).
    /// The 423 itself does not name the holder (observed on 34.0.1); `by` comes from the
    /// file's `nc:lock-owner-displayname` when it could be read.
    #[error("{path} is being edited online{}", by.as_deref().filter(|b| !b.is_empty()).map(|b| format!(" (by {b})")).unwrap_or_default())]
    Locked { path: String, by: Option<String> },
    #[error("the server refused the request ({status}): {message}")]
    Http { status: u16, message: String },
    #[error("the server's answer could not be understood: {0}")]
    Protocol(String),
    /// An answer over its size cap, or a tree deeper or bigger than the walk accepts.
    #[error("the server's listing is too large: {0}")]
    TooLarge(String),
    #[error("local file: {0}")]
    Io(String),
    /// A local path that is not in the synced folder (or leaves it through `..` or a link).
    #[error("{0} is not in the synced folder")]
    OutsideFolder(String),
}

impl NextcloudError {
    /// A stable code for scripts and the IPC boundary.
    pub fn code(&self) -> &'static str {
        match self {
            NextcloudError::NotConfigured => "not_configured",
            NextcloudError::NotNextcloud(_) => "not_nextcloud",
            NextcloudError::Offline(_) => "offline",
            NextcloudError::Unauthorized => "login_required",
            NextcloudError::LoginUnreachable(_) => "login_unreachable",
            NextcloudError::NotLoggedIn => "not_logged_in",
            NextcloudError::LoginCancelled => "login_cancelled",
            NextcloudError::LoginExpired => "login_expired",
            NextcloudError::Browser(_) => "browser",
            NextcloudError::UnsafeLink(_) => "url_refused",
            NextcloudError::Secrets(_) => "secrets",
            NextcloudError::InsufficientStorage { .. } => "quota_exceeded",
            NextcloudError::ReadOnly(_) => "read_only_share",
            NextcloudError::NotFound(_) => "not_found",
            NextcloudError::Changed(_) => "changed_meanwhile",
            NextcloudError::Locked { .. } => "locked",
            NextcloudError::Http { .. } => "refused",
            NextcloudError::Protocol(_) => "protocol",
            NextcloudError::TooLarge(_) => "too_large",
            NextcloudError::Io(_) => "local_io",
            NextcloudError::OutsideFolder(_) => "outside_folder",
        }
    }
}

/// A session that could not give a token: "log in again" only when the login server ended it.
pub(crate) fn auth_failure(e: crate::auth::AuthError) -> NextcloudError {
    if e.needs_login() {
        NextcloudError::Unauthorized
    } else {
        NextcloudError::LoginUnreachable(e.to_string())
    }
}

impl From<NextcloudError> for super::RemoteError {
    fn from(e: NextcloudError) -> Self {
        use super::RemoteError as R;
        match e {
            NextcloudError::Offline(m) => R::Offline(m),
            NextcloudError::LoginUnreachable(m) => R::LoginUnreachable(m),
            NextcloudError::Unauthorized
            | NextcloudError::NotLoggedIn
            | NextcloudError::LoginCancelled
            | NextcloudError::LoginExpired => {
                R::Unauthorized
            }
            NextcloudError::InsufficientStorage { .. } => R::InsufficientStorage,
            NextcloudError::ReadOnly(p) => R::Forbidden(format!("{p} is in a read-only share")),
            NextcloudError::NotFound(p) => R::NotFound(p),
            NextcloudError::Changed(p) => R::Changed(p),
            NextcloudError::Locked { path, by } => R::Locked { path, by },
            NextcloudError::Http { status, .. } if status >= 500 => R::Server { status },
            NextcloudError::Http { status: 403, message } => R::Forbidden(message),
            NextcloudError::Http { status, message } => R::Refused { status, message },
            NextcloudError::Io(m) => R::Io(m),
            NextcloudError::TooLarge(m) => R::TooLarge(m),
            other => R::Protocol(other.to_string()),
        }
    }
}

/// A body read with a cap (`crate::http::read_limited`) that could not be read whole.
fn body_error(e: crate::http::BodyError) -> NextcloudError {
    match e {
        e @ crate::http::BodyError::TooLarge { .. } => NextcloudError::TooLarge(e.to_string()),
        crate::http::BodyError::Transport(m) => NextcloudError::Offline(m),
        crate::http::BodyError::Json(m) => NextcloudError::Protocol(m),
    }
}

fn reqwest_error(e: reqwest::Error) -> NextcloudError {
    NextcloudError::Offline(crate::config::plain_reqwest(&e))
}
