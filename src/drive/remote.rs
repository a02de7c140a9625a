//! The transport boundary: what the engine needs from a file server, as a small object-safe
//! trait. [`crate::drive::webdav::WebDav`] implements it for any WebDAV server;
//! [`crate::drive::memory::MemoryRemote`] for planner and model tests; the Nextcloud extras
//! override the optional methods and announce them in [`Capabilities`].
//!
//! Paths given to a remote are server paths relative to the sync root, `/`-separated, unencoded
//! (the implementation percent-encodes), "" being the root.
use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::{future::BoxFuture, stream::BoxStream, StreamExt};
use serde::Serialize;
use thiserror::Error;

use super::{names, Kind};

/// One item as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteEntry {
    pub kind: Kind,
    pub size: u64,
    /// Last modification, unix seconds, when the server says.
    pub mtime: Option<i64>,
    pub etag: Option<String>,
    /// A server-wide id that survives renames (Nextcloud's `oc:fileid`), when given.
    pub file_id: Option<String>,
    /// The path as the server spells it (may be NFD while the key is NFC).
    pub server_path: String,
}

impl RemoteEntry {
    /// What identifies this version of the item: the ETag, or size and date when the server
    /// gives no ETag. Folders have none (generic servers give no folder ETags).
    pub fn version(&self) -> Option<String> {
        match self.kind {
            Kind::Dir | Kind::Link => None,
            Kind::File => Some(match &self.etag {
                Some(e) => e.clone(),
                None => format!("{}-{}", self.size, self.mtime.unwrap_or(0)),
            }),
        }
    }
}

/// The whole remote tree, by key, plus what was refused while listing it.
#[derive(Debug, Clone, Default)]
pub struct RemoteListing {
    pub entries: BTreeMap<String, RemoteEntry>,
    pub refused: Vec<names::Refusal>,
    /// Names that cannot exist on Windows (a warning elsewhere).
    pub warnings: Vec<names::Refusal>,
    /// HTTP requests made to list it.
    pub requests: u64,
    /// Files someone holds a lock on (Nextcloud's files_lock: a document being edited online),
    /// by key, with who holds it ("" when the server does not say).
    pub locks: BTreeMap<String, String>,
}

/// Optional abilities of a server, so the engine can use them when present.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Capabilities {
    /// Folder ETags change when anything below changes (Nextcloud): unchanged subtrees can be
    /// skipped when listing.
    pub folder_etags: bool,
    /// Items carry a stable file id: remote renames are detected.
    pub file_ids: bool,
    /// The server honours `X-OC-Mtime` on upload.
    pub sets_mtime: bool,
}

/// What must hold on the server for an upload to go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// `If-None-Match: *`: only if nothing is there yet.
    Create,
    /// `If-Match: ETAG`: only if the server still has the version we know.
    Replace(String),
    /// Overwrite whatever is there (only when the server gives no ETag for what we replace).
    Any,
}

/// What the server recorded for an upload or a new folder, as far as its answer says (each
/// field `None` when the server did not say).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// The new version's ETag (quoted, as listed).
    pub etag: Option<String>,
    /// The server-wide id (Nextcloud's `OC-FileId`, as the bare number `oc:fileid` lists).
    pub file_id: Option<String>,
}

impl From<Option<String>> for Stored {
    fn from(etag: Option<String>) -> Self {
        Stored { etag, file_id: None }
    }
}

/// How a server takes many small new files in one request (Nextcloud's bulk upload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkLimits {
    /// At most this many files per request.
    pub max_files: usize,
    /// At most about this many bytes per request.
    pub max_bytes: u64,
    /// Only files up to this size go in bulk.
    pub max_file_size: u64,
}

/// A body to upload: a stream of exactly `len` bytes (sent with `Content-Length`).
pub struct Upload {
    pub len: u64,
    pub body: BoxStream<'static, std::io::Result<Bytes>>,
    /// The local modification time, unix seconds (servers that can keep it will).
    pub mtime: i64,
}

/// A body being downloaded; `len` when the server announced it.
pub struct Download {
    pub len: Option<u64>,
    pub body: BoxStream<'static, Result<Bytes, RemoteError>>,
}

#[derive(Debug, Error, Clone)]
pub enum RemoteError {
    #[error("the server cannot be reached: {0}")]
    Offline(String),
    #[error("the connection failed: {0}")]
    Network(String),
    #[error("the login was refreshed; the request must be sent again")]
    TokenRefreshed,
    #[error("the server did not answer in time")]
    Timeout,
    #[error("the server had a problem ({status}); it will be retried")]
    Server { status: u16 },
    #[error("the server refused the credentials: please log in again")]
    Unauthorized,
    /// The login could not be renewed because the login server cannot be reached: not a reason
    /// to log in again, only to wait.
    #[error("the login server cannot be reached to renew the login: {0}")]
    LoginUnreachable(String),
    #[error("not allowed by the server ({0})")]
    Forbidden(String),
    #[error("{0} is not on the server")]
    NotFound(String),
    #[error("{0} changed on the server meanwhile")]
    Changed(String),
    #[error("the server has no space left for this file")]
    InsufficientStorage,
    /// 423 Locked: someone holds a lock on the file (a document open in Collabora or
    /// OnlyOffice, a WebDAV lock). Not retried at once and never a conflict: the local change
    /// waits until the lock ends. `by`: who holds it, when the server says.
    #[error("{path} is being edited online{}", by.as_deref().filter(|b| !b.is_empty()).map(|b| format!(" (by {b})")).unwrap_or_default())]
    Locked { path: String, by: Option<String> },
    #[error("the transfer was cut short: {0}")]
    Truncated(String),
    #[error("the server's answer could not be understood: {0}")]
    Protocol(String),
    /// An answer over its size cap, or a tree deeper or bigger than the walk accepts: a broken
    /// or hostile server, not something to retry.
    #[error("the server's listing is too large: {0}")]
    TooLarge(String),
    #[error("the server refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("local file: {0}")]
    Io(String),
}

impl RemoteError {
    pub fn code(&self) -> &'static str {
        match self {
            RemoteError::Offline(_) => "offline",
            RemoteError::Timeout => "timeout",
            RemoteError::Network(_) => "network",
            RemoteError::TokenRefreshed => "token_refreshed",
            RemoteError::Server { .. } => "server_error",
            RemoteError::Unauthorized => "login_required",
            RemoteError::LoginUnreachable(_) => "login_unreachable",
            RemoteError::Forbidden(_) => "forbidden",
            RemoteError::NotFound(_) => "not_found",
            RemoteError::Changed(_) => "changed_meanwhile",
            RemoteError::InsufficientStorage => "quota_exceeded",
            RemoteError::Locked { .. } => "locked",
            RemoteError::Truncated(_) => "truncated",
            RemoteError::Protocol(_) => "protocol",
            RemoteError::TooLarge(_) => "too_large",
            RemoteError::Refused { .. } => "refused",
            RemoteError::Io(_) => "local_io",
        }
    }

    /// Worth retrying after a pause: the same request may well succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RemoteError::Offline(_)
                | RemoteError::Network(_)
                | RemoteError::TokenRefreshed
                | RemoteError::Timeout
                | RemoteError::Server { .. }
                | RemoteError::Truncated(_)
        )
    }

    /// The whole run must stop (nothing else can succeed).
    pub fn is_fatal(&self) -> bool {
        matches!(self, RemoteError::Unauthorized | RemoteError::Offline(_) | RemoteError::LoginUnreachable(_))
    }
}

/// A file server. All methods take server paths (see the module doc).
pub trait Remote: Send + Sync {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// The account this remote acts as, as its server knows it (a local folder belongs to one,
    /// see [`crate::folder::Owner`]); `None` when the server needs no login.
    fn account(&self) -> Option<String> {
        None
    }

    /// The direct children of a folder (PROPFIND Depth 1), as `(name, entry)` with the raw,
    /// decoded name; names are checked by the caller.
    fn list(&self, dir: &str) -> BoxFuture<'_, Result<Vec<(String, RemoteEntry)>, RemoteError>>;

    /// The whole tree. The default walks folder by folder; a server with folder ETags may
    /// override it to skip unchanged subtrees.
    fn list_tree(&self) -> BoxFuture<'_, Result<RemoteListing, RemoteError>> {
        Box::pin(walk(self))
    }

    /// One item's current entry (PROPFIND Depth 0), `None` when absent.
    fn stat(&self, path: &str) -> BoxFuture<'_, Result<Option<RemoteEntry>, RemoteError>>;

    fn get(&self, path: &str) -> BoxFuture<'_, Result<Download, RemoteError>>;

    /// Uploads a file; returns its new ETag and file id when the server says.
    fn put(&self, path: &str, upload: Upload, pre: Precondition) -> BoxFuture<'_, Result<Stored, RemoteError>>;

    /// Creates a folder (an existing folder is fine); returns its file id when the server says.
    fn mkdir(&self, path: &str) -> BoxFuture<'_, Result<Stored, RemoteError>>;

    /// Whether [`Remote::put_new_many`] can be used, and within which limits.
    fn bulk_limits(&self) -> Option<BulkLimits> {
        None
    }

    /// Uploads several small *new* files (`(path, content, mtime)`) in one request, one result
    /// per file in the same order. Only for files that were absent from the listing: a bulk
    /// request carries no precondition, so the implementation must refuse (`Changed`) any file
    /// it finds present meanwhile. A file that fails here is sent again alone by the caller.
    fn put_new_many(&self, files: Vec<(String, Bytes, i64)>) -> BoxFuture<'_, Vec<Result<Stored, RemoteError>>> {
        let n = files.len();
        Box::pin(async move { (0..n).map(|_| Err(RemoteError::Protocol("bulk upload is not available".into()))).collect() })
    }

    /// Whether [`Remote::get_many`] can be used, and within which limits.
    fn get_many_limits(&self) -> Option<BulkLimits> {
        None
    }

    /// Downloads several small files of one folder in one request (`names`: direct children of
    /// `dir`, as the server spells them). Returns the files the answer held whole, by name; the
    /// caller checks each size against the listing and fetches whatever is missing or odd one
    /// by one.
    fn get_many(&self, dir: &str, names: Vec<String>) -> BoxFuture<'_, Result<Vec<(String, Bytes)>, RemoteError>> {
        let _ = (dir, names);
        Box::pin(async { Err(RemoteError::Protocol("batched download is not available".into())) })
    }

    /// Deletes a file or a whole folder. `if_match` guards a file against a concurrent change.
    fn delete(&self, path: &str, if_match: Option<&str>) -> BoxFuture<'_, Result<(), RemoteError>>;

    /// Renames without overwriting.
    fn rename(&self, from: &str, to: &str) -> BoxFuture<'_, Result<(), RemoteError>>;
}

/// How many folder listings run at once while walking.
const WALK_PARALLELISM: usize = 8;
/// The deepest folder a walk descends to: no file system holds paths much deeper (Linux's
/// PATH_MAX of 4096 bytes allows about 2,000 one-letter levels, Windows far fewer), and a server
/// inventing ever deeper folders would otherwise be walked forever.
pub const MAX_DEPTH: usize = 256;
/// The most items a walk accepts: far above a member's space (the Nextcloud benchmark's 10,000
/// files), below what would exhaust memory.
pub const MAX_ITEMS: usize = 1_000_000;

/// The walk's bounds, checked for each folder listed.
pub fn check_walk_bounds(depth: usize, items: usize) -> Result<(), RemoteError> {
    if depth > MAX_DEPTH {
        return Err(RemoteError::TooLarge(format!("folders are nested more than {MAX_DEPTH} levels deep")));
    }
    if items > MAX_ITEMS {
        return Err(RemoteError::TooLarge(format!("more than {MAX_ITEMS} items")));
    }
    Ok(())
}

/// Lists the whole tree folder by folder, several folders at a time, checking every name by
/// this system's rules.
pub async fn walk<R: Remote + ?Sized>(remote: &R) -> Result<RemoteListing, RemoteError> {
    walk_on(remote, names::Platform::current()).await
}

/// [`walk`] with the naming rules of `platform` (tests run the Windows rules anywhere).
pub async fn walk_on<R: Remote + ?Sized>(remote: &R, platform: names::Platform) -> Result<RemoteListing, RemoteError> {
    let mut listing = RemoteListing::default();
    // (server path, key) of folders still to list.
    let mut pending: Vec<(String, String)> = vec![(String::new(), String::new())];
    let mut running = futures_util::stream::FuturesUnordered::new();
    loop {
        while running.len() < WALK_PARALLELISM {
            let Some((server, key)) = pending.pop() else { break };
            running.push(async move {
                let children = remote.list(&server).await;
                (server, key, children)
            });
        }
        let Some((server_dir, key_dir, children)) = running.next().await else { break };
        listing.requests += 1;
        let children = children?;
        if !children.is_empty() {
            let depth = if key_dir.is_empty() { 0 } else { key_dir.split('/').count() };
            check_walk_bounds(depth + 1, listing.entries.len() + children.len())?;
        }
        // Twins (NFC/NFD spellings, or later case twins) keep the first name in sorted order.
        let mut children = children;
        children.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mut entry) in children {
            let server_path = join(&server_dir, &name);
            let warning = match names::judge_remote_name(&name, platform) {
                Ok(warning) => warning,
                Err(reason) => {
                    listing.refused.push(names::Refusal { path: server_path, reason });
                    continue;
                }
            };
            let key = join(&key_dir, &names::key(&name));
            if let Some(problem) = warning {
                listing.warnings.push(names::Refusal { path: key.clone(), reason: problem });
            }
            if let Some(existing) = listing.entries.get(&key) {
                listing.refused.push(names::Refusal {
                    path: server_path,
                    reason: format!("same name as “{}” in another Unicode form", existing.server_path),
                });
                continue;
            }
            entry.server_path = server_path.clone();
            if entry.kind == Kind::Dir {
                pending.push((server_path, key.clone()));
            }
            listing.entries.insert(key, entry);
        }
    }
    Ok(listing)
}

/// Joins a folder path and a name ("" is the root).
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drive::memory::MemoryRemote;

    /// Issue 12, item 18: on Windows a name it cannot hold is refused (and not descended
    /// into), not merely warned about; elsewhere it syncs with a warning.
    #[tokio::test]
    async fn windows_invalid_names_are_refused_by_the_windows_walk() {
        let remote = MemoryRemote::new();
        remote.write("ok.txt", b"ok");
        remote.write("a:b", b"stream");
        remote.write("CON", b"console");
        remote.mkdir_all("dossier.");
        remote.write("dossier./x.txt", b"under a trailing dot");
        let windows = walk_on(&remote, names::Platform::Windows).await.unwrap();
        assert_eq!(windows.entries.keys().collect::<Vec<_>>(), ["ok.txt"]);
        let mut refused: Vec<&str> = windows.refused.iter().map(|r| r.path.as_str()).collect();
        refused.sort();
        assert_eq!(refused, ["CON", "a:b", "dossier."]);

        let unix = walk_on(&remote, names::Platform::Unix).await.unwrap();
        assert_eq!(unix.entries.len(), 5);
        assert_eq!(unix.warnings.len(), 3);
        assert!(unix.refused.is_empty());
    }
}
