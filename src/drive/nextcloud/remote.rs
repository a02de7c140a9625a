//! The sync engine's [`Remote`] for a Nextcloud: the generic operations over Nextcloud's DAV
//! paths, plus folder-ETag skipping in `list_tree` (a no-op poll is one request), file ids for
//! rename detection, `X-OC-Mtime`, chunked upload v2 above the threshold, a quota check before
//! sending, and read-only shares refused before sending (so the engine keeps a conflict copy).
use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::Mutex,
};

use bytes::{Bytes, BytesMut};
use futures_util::{future::BoxFuture, StreamExt, TryStreamExt};
use reqwest::{header, Method};

use super::{
    bulk,
    chunked::{self, ChunkOptions},
    client::{failure, Nextcloud},
    dav,
    quota::Quota,
    walk::{self, Entry, TreeCache, Walk},
    NextcloudError,
};
use crate::drive::{
    remote::{self, BulkLimits, Capabilities, Download, Precondition, Remote, RemoteEntry, RemoteError, RemoteListing, Stored, Upload},
    Kind,
};

/// An upload folder untouched this long was abandoned (a crash, or the file changed since).
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// How long the server may keep serving an old quota figure: `quota-used-bytes` still said 0
/// used after a 100 MiB upload for up to about 5 minutes (observed on Nextcloud 34.0.1).
pub const QUOTA_FIGURE_LAG: std::time::Duration = std::time::Duration::from_secs(300);

/// A Nextcloud folder as a sync remote. Paths are relative to `root` (below the files root).
pub struct NextcloudRemote {
    nc: Nextcloud,
    root: String,
    cache_file: Option<PathBuf>,
    /// Our chunked uploads still open on the server (id -> unix seconds started) are kept in
    /// the folder's journal (`uploads` table) when [`NextcloudRemote::with_journal`] gave it:
    /// the uploads root refuses listing (405 "Listing members of this collection is disabled",
    /// observed on Nextcloud 34.0.1), so what we do not remember we cannot clean. Without a
    /// journal they are kept in this file beside the tree cache (what earlier versions did
    /// always; `with_journal` moves such a file's ids into the journal).
    uploads_file: Option<PathBuf>,
    journal: Option<Mutex<crate::drive::journal::Journal>>,
    /// The server facts kept by [`super::connect`], forgotten on an error so that the next
    /// run reads them again (the server may have changed, or the credentials).
    facts_file: Option<PathBuf>,
    pub chunking: ChunkOptions,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    cache: TreeCache,
    /// The last walk, for permission checks before uploading.
    last: Option<Walk>,
    /// The server's quota figure, and when we first saw this very figure.
    quota: Option<(Quota, std::time::Instant)>,
    /// What we uploaded, when: counted against a figure that may predate it.
    uploaded: Vec<(std::time::Instant, u64)>,
    /// Abandoned chunk uploads were looked for (once per process, after a real change).
    cleaned: bool,
    /// Chunked uploads we started and did not finish or delete: id -> unix seconds started.
    open_uploads: BTreeMap<String, i64>,
    /// Uploads running in this process (never cleaned from under them).
    running: std::collections::BTreeSet<String>,
}

impl State {
    /// The server's figure minus what we uploaded since it may have been computed: uploads
    /// from up to [`QUOTA_FIGURE_LAG`] before we first saw it (the server may have kept it
    /// that long). Errs on the side of "does not fit": an upload already counted by the
    /// server may be counted twice for a few minutes, never an upload forgotten.
    fn effective_quota(&self) -> Option<Quota> {
        let (mut q, seen) = self.quota?;
        // A fresh count already holds everything uploaded before it was read.
        let since = if q.fresh { seen } else { seen.checked_sub(QUOTA_FIGURE_LAG).unwrap_or(seen) };
        let recent: u64 = self.uploaded.iter().filter(|(t, _)| *t >= since).map(|(_, n)| n).sum();
        q.take(recent);
        Some(q)
    }

    fn saw_quota(&mut self, figure: Quota) {
        let now = std::time::Instant::now();
        match self.quota {
            // The same figure again: the server is still serving its cached value.
            Some((q, seen)) if q == figure && !figure.fresh => self.quota = Some((q, seen)),
            _ => self.quota = Some((figure, now)),
        }
        let keep_from = self.quota.and_then(|(_, seen)| seen.checked_sub(QUOTA_FIGURE_LAG));
        if let Some(keep_from) = keep_from {
            self.uploaded.retain(|(t, _)| *t >= keep_from);
        }
    }
}

impl NextcloudRemote {
    /// The error for a 423 on `path`: the answer names nobody (observed on 34.0.1), so the
    /// file's lock properties are read once to say who holds it.
    async fn lock_holder(&self, path: &str) -> RemoteError {
        let by = match self.nc.propfind(self.nc.files_url(&self.full(path)), 0, dav::FILE_PROPS).await {
            Ok(Some(items)) => items.first().and_then(dav::Item::lock_holder),
            _ => None,
        };
        RemoteError::Locked { path: path.to_string(), by }
    }

    /// `cache_file`: where to keep the folder listings between runs (next to the journal), so
    /// that the first poll after a restart is also one request.
    pub fn new(nc: Nextcloud, root: &str, cache_file: Option<PathBuf>) -> NextcloudRemote {
        let cache = cache_file.as_deref().map(TreeCache::load).unwrap_or_default();
        let uploads_file = cache_file.as_deref().map(|p| p.with_extension("uploads.json"));
        let open_uploads = uploads_file
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        NextcloudRemote {
            nc,
            root: root.trim_matches('/').to_string(),
            cache_file,
            uploads_file,
            journal: None,
            facts_file: None,
            chunking: ChunkOptions::default(),
            state: Mutex::new(State { cache, open_uploads, ..State::default() }),
        }
    }

    /// Keeps the open chunked uploads in the sync folder's journal at `path` (issue 11, defect
    /// 5), moving there the ids of an earlier side file (`<cache>.uploads.json`), which is then
    /// deleted. If the journal cannot be opened, the side file stays in use.
    pub fn with_journal(mut self, path: &std::path::Path) -> NextcloudRemote {
        let journal = match crate::drive::journal::Journal::open(path) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "the journal cannot hold the open uploads; keeping them beside the cache");
                return self;
            }
        };
        let known = self.state.get_mut().map(|s| s.open_uploads.clone()).unwrap_or_default();
        let moved = known.iter().try_for_each(|(id, started)| journal.add_upload(id, *started));
        match (moved, &self.uploads_file) {
            (Ok(()), Some(side)) if side.exists() => {
                if let Err(e) = std::fs::remove_file(side) {
                    tracing::warn!(error = %e, "could not remove the old open-uploads file");
                }
            }
            (Err(e), _) => {
                tracing::warn!(error = %e, "could not move the open uploads into the journal");
                return self;
            }
            _ => {}
        }
        let in_journal = journal.uploads().unwrap_or_default();
        if let Ok(s) = self.state.get_mut() {
            s.open_uploads.extend(in_journal);
        }
        self.journal = Some(Mutex::new(journal));
        self
    }

    /// Forgets the facts kept at `path` when listing fails (see [`super::ConnectOptions::facts`]).
    pub fn with_facts(mut self, path: PathBuf) -> NextcloudRemote {
        self.facts_file = Some(path);
        self
    }

    pub fn nextcloud(&self) -> &Nextcloud {
        &self.nc
    }

    /// The quota as it stands: the server's last figure minus what was uploaded since that
    /// figure may have been computed (the server caches it for minutes).
    pub fn quota(&self) -> Option<Quota> {
        self.state.lock().map(|s| s.effective_quota()).unwrap_or(None)
    }

    fn full(&self, path: &str) -> String {
        remote::join(&self.root, path.trim_matches('/'))
    }

    /// Lists with folder-ETag skipping; also returns the raw walk.
    pub async fn walk(&self) -> Result<Walk, NextcloudError> {
        // The cache is taken out while the walk runs: a std Mutex is never held across `.await`.
        let mut cache = self.state.lock().map(|mut s| std::mem::take(&mut s.cache)).unwrap_or_default();
        let result = walk::walk(&self.nc, &self.root, &mut cache).await;
        if let (Err(e), Some(facts)) = (&result, &self.facts_file) {
            // Not for a server that is merely unreachable: the facts are still right.
            if !matches!(e, NextcloudError::Offline(_)) {
                super::forget_facts(facts);
            }
        }
        if let Some(path) = &self.cache_file {
            if let Ok(w) = &result {
                if !w.unchanged {
                    if let Err(e) = cache.save(path) {
                        tracing::warn!(error = %e, "could not save the folder listing cache");
                    }
                }
            }
        }
        if let Ok(mut s) = self.state.lock() {
            s.cache = cache;
            if let Ok(w) = &result {
                if let Some(q) = w.quota {
                    s.saw_quota(q);
                }
                s.last = Some(w.clone());
            }
        }
        result
    }

    /// Refuses before sending what cannot succeed: a read-only share, a file that cannot fit.
    fn check_upload(&self, path: &str, len: u64, replacing: bool) -> Result<(), NextcloudError> {
        let Ok(s) = self.state.lock() else { return Ok(()) };
        if let Some(last) = &s.last {
            let target = if replacing { last.get(path) } else { parent_entry(last, path) };
            if target.is_some_and(|e| !e.writable()) {
                return Err(NextcloudError::ReadOnly(path.to_string()));
            }
        }
        if let Some(q) = s.effective_quota() {
            if !q.fits(len) {
                return Err(NextcloudError::InsufficientStorage { free: q.free });
            }
        }
        Ok(())
    }

    /// Remembers (or forgets) an upload id, on disk when there is a cache file.
    fn note_upload(&self, id: &str, open: bool) {
        let Ok(mut s) = self.state.lock() else { return };
        if open {
            let now = unix_now();
            s.open_uploads.entry(id.to_string()).or_insert(now);
            s.running.insert(id.to_string());
        } else {
            s.open_uploads.remove(id);
            s.running.remove(id);
        }
        if let Some(journal) = &self.journal {
            let journal = journal.lock().unwrap_or_else(|p| p.into_inner());
            let written = match s.open_uploads.get(id) {
                Some(started) => journal.add_upload(id, *started),
                None => journal.remove_upload(id),
            };
            if let Err(e) = written {
                tracing::warn!(error = %e, "could not remember the open chunked uploads");
            }
        } else if let Some(path) = &self.uploads_file {
            let written = serde_json::to_vec(&s.open_uploads).map_err(std::io::Error::other).and_then(|b| {
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, b).and_then(|()| std::fs::rename(&tmp, path))
            });
            if let Err(e) = written {
                tracing::warn!(error = %e, "could not remember the open chunked uploads");
            }
        }
    }

    /// The upload ids we remember as still open on the server.
    pub fn open_uploads(&self) -> Vec<String> {
        self.state.lock().map(|s| s.open_uploads.keys().cloned().collect()).unwrap_or_default()
    }

    /// Deletes our remembered chunked uploads started longer than `older_than` ago and not
    /// running now (abandoned after a crash, or because the file changed since). Returns how
    /// many were removed.
    pub async fn clean_uploads(&self, older_than: std::time::Duration) -> Result<usize, NextcloudError> {
        let now = unix_now();
        let stale: Vec<String> = self
            .state
            .lock()
            .map(|s| {
                s.open_uploads
                    .iter()
                    .filter(|(id, started)| !s.running.contains(*id) && now - **started >= older_than.as_secs() as i64)
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut removed = 0;
        for id in stale {
            chunked::delete_upload(&self.nc, &id).await?;
            self.note_upload(&id, false);
            removed += 1;
        }
        Ok(removed)
    }

    fn took(&self, len: u64) {
        if let Ok(mut s) = self.state.lock() {
            s.uploaded.push((std::time::Instant::now(), len));
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn parent_entry<'a>(w: &'a Walk, path: &str) -> Option<&'a Entry> {
    match path.rsplit_once('/') {
        Some((dir, _)) => w.get(dir),
        None => w.root.as_ref(),
    }
}

fn quoted(etag: &Option<String>) -> Option<String> {
    etag.as_ref().map(|e| format!("\"{}\"", dav::bare_etag(e)))
}

fn to_remote_entry(e: &Entry, server_path: String) -> RemoteEntry {
    RemoteEntry {
        kind: if e.is_dir { Kind::Dir } else { Kind::File },
        size: if e.is_dir { 0 } else { e.size },
        mtime: e.mtime,
        etag: quoted(&e.etag),
        file_id: e.file_id.clone(),
        server_path,
    }
}

/// A remote answering `list` from a finished walk, so the engine's own name checks apply.
struct Prefetched {
    folders: HashMap<String, Vec<(String, RemoteEntry)>>,
}

impl Remote for Prefetched {
    fn list(&self, dir: &str) -> BoxFuture<'_, Result<Vec<(String, RemoteEntry)>, RemoteError>> {
        let out = self.folders.get(dir).cloned().unwrap_or_default();
        Box::pin(async move { Ok(out) })
    }
    fn stat(&self, _: &str) -> BoxFuture<'_, Result<Option<RemoteEntry>, RemoteError>> {
        Box::pin(async { Err(RemoteError::Protocol("not available on a prefetched listing".into())) })
    }
    fn get(&self, _: &str) -> BoxFuture<'_, Result<Download, RemoteError>> {
        Box::pin(async { Err(RemoteError::Protocol("not available on a prefetched listing".into())) })
    }
    fn put(&self, _: &str, _: Upload, _: Precondition) -> BoxFuture<'_, Result<Stored, RemoteError>> {
        Box::pin(async { Err(RemoteError::Protocol("not available on a prefetched listing".into())) })
    }
    fn mkdir(&self, _: &str) -> BoxFuture<'_, Result<Stored, RemoteError>> {
        Box::pin(async { Err(RemoteError::Protocol("not available on a prefetched listing".into())) })
    }
    fn delete(&self, _: &str, _: Option<&str>) -> BoxFuture<'_, Result<(), RemoteError>> {
        Box::pin(async { Err(RemoteError::Protocol("not available on a prefetched listing".into())) })
    }
    fn rename(&self, _: &str, _: &str) -> BoxFuture<'_, Result<(), RemoteError>> {
        Box::pin(async { Err(RemoteError::Protocol("not available on a prefetched listing".into())) })
    }
}

/// Bulk batches: 100 files (what nextcloudcmd sends per request), about 4 MiB, files up to
/// 1 MiB (larger ones are few, and go as single PUTs or chunked).
pub const BULK_LIMITS: BulkLimits = BulkLimits { max_files: 100, max_bytes: 4 << 20, max_file_size: 1 << 20 };

/// Batched downloads: small files only (like bulk uploads), at most this many per request, and
/// a bounded body read whole into memory.
const TAR_LIMITS: BulkLimits = BulkLimits { max_files: 100, max_bytes: 16 * 1024 * 1024, max_file_size: 1024 * 1024 };

impl NextcloudRemote {
    /// The names present now in the folders that held these files' parents at the last walk
    /// (one Depth-1 PROPFIND per such folder): a bulk request has no precondition, so a file
    /// that appeared there since must not be overwritten. Folders we created in this run were
    /// empty when made.
    async fn present_now(&self, paths: &[String]) -> Result<std::collections::HashSet<String>, NextcloudError> {
        let known: std::collections::BTreeSet<String> = {
            let s = self.state.lock().map_err(|_| NextcloudError::Protocol("state lock".into()))?;
            paths
                .iter()
                .map(|p| p.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default())
                .filter(|dir| s.last.as_ref().is_some_and(|w| w.folders.contains_key(dir)))
                .collect()
        };
        let mut present = std::collections::HashSet::new();
        for dir in known {
            let Some(items) = self.nc.propfind(self.nc.files_url(&self.full(&dir)), 1, dav::ROOT_PROPS).await? else {
                continue;
            };
            for i in items.iter().skip(1) {
                present.insert(remote::join(&dir, i.name()));
            }
        }
        Ok(present)
    }
}

impl Remote for NextcloudRemote {
    fn capabilities(&self) -> Capabilities {
        Capabilities { folder_etags: true, file_ids: true, sets_mtime: true }
    }

    fn account(&self) -> Option<String> {
        Some(self.nc.user().to_string())
    }

    fn bulk_limits(&self) -> Option<BulkLimits> {
        self.nc.info().bulk_upload.then_some(BULK_LIMITS)
    }

    // ---- batched downloads (ZipFolderPlugin's tar) ----
    fn get_many_limits(&self) -> Option<BulkLimits> {
        // Observed on 34.0.1; the plugin's `files` filter is not checked on older versions,
        // which keep one GET per file.
        let major: u32 = self.nc.info().version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
        (major >= 34 && self.nc.info().product == "Nextcloud").then_some(TAR_LIMITS)
    }

    fn get_many(&self, dir: &str, names: Vec<String>) -> BoxFuture<'_, Result<Vec<(String, Bytes)>, RemoteError>> {
        let dir = dir.trim_matches('/').to_string();
        Box::pin(async move {
            let mut url = self.nc.files_url(&self.full(&dir));
            let filter = serde_json::to_string(&names).map_err(|e| RemoteError::Protocol(e.to_string()))?;
            url.query_pairs_mut().append_pair("files", &filter);
            let answer = self.nc.send(Method::GET, url, |b| b.header(header::ACCEPT, "application/x-tar")).await?;
            let is_tar = answer.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("application/x-tar"));
            if !answer.status().is_success() || !is_tar {
                // A file gone meanwhile makes the whole request 404 (observed): one by one then.
                return Err(failure(answer, &dir).await.into());
            }
            let limit = TAR_LIMITS.max_bytes + (names.len() as u64 + 4) * 3 * 512;
            let body = crate::http::read_limited(answer, limit).await.map_err(super::body_error)?;
            let wanted: std::collections::BTreeSet<&String> = names.iter().collect();
            let mut seen = std::collections::BTreeMap::<String, usize>::new();
            let found = super::tar::files(&body);
            for f in &found {
                *seen.entry(f.name.clone()).or_default() += 1;
            }
            // Only names asked for, each once: anything else in the archive is not trusted.
            Ok(found
                .into_iter()
                .filter(|f| wanted.contains(&f.name) && seen.get(&f.name) == Some(&1))
                .map(|f| (f.name, Bytes::from(f.content)))
                .collect())
        })
    }
    // ---- end of batched downloads ----

    fn put_new_many(&self, files: Vec<(String, Bytes, i64)>) -> BoxFuture<'_, Vec<Result<Stored, RemoteError>>> {
        Box::pin(async move {
            let paths: Vec<String> = files.iter().map(|(p, _, _)| p.trim_matches('/').to_string()).collect();
            let mut out: Vec<Option<Result<Stored, RemoteError>>> = vec![None; files.len()];
            let present = match self.present_now(&paths).await {
                Ok(p) => p,
                Err(e) => return files.iter().map(|_| Err(RemoteError::from(e.clone()))).collect(),
            };
            let mut parts = Vec::new();
            let mut index = Vec::new();
            for (i, ((_, content, mtime), path)) in files.into_iter().zip(&paths).enumerate() {
                if present.contains(path) {
                    out[i] = Some(Err(RemoteError::Changed(path.clone())));
                } else if let Err(e) = self.check_upload(path, content.len() as u64, false) {
                    out[i] = Some(Err(e.into()));
                } else {
                    parts.push((self.full(path), content, mtime));
                    index.push(i);
                }
            }
            if !parts.is_empty() {
                match bulk::send_batch(&self.nc, &parts).await {
                    Ok(answers) => {
                        let by_path: HashMap<String, Result<bulk::Uploaded, String>> =
                            answers.into_iter().map(|(p, r)| (p.trim_matches('/').to_string(), r)).collect();
                        for ((full, content, _), i) in parts.iter().zip(index) {
                            out[i] = Some(match by_path.get(full.trim_matches('/')) {
                                Some(Ok(u)) => {
                                    self.took(content.len() as u64);
                                    Ok(Stored { etag: quoted(&u.etag), file_id: u.file_id.clone() })
                                }
                                Some(Err(message)) => Err(RemoteError::Refused { status: 200, message: message.clone() }),
                                None => Err(RemoteError::Refused { status: 400, message: "not written by the bulk request".into() }),
                            });
                        }
                    }
                    Err(e) => {
                        let e = RemoteError::from(e);
                        for i in index {
                            out[i] = Some(Err(e.clone()));
                        }
                    }
                }
            }
            out.into_iter().map(|r| r.unwrap_or_else(|| Err(RemoteError::Protocol("no answer".into())))).collect()
        })
    }

    fn list(&self, dir: &str) -> BoxFuture<'_, Result<Vec<(String, RemoteEntry)>, RemoteError>> {
        let dir = dir.trim_matches('/').to_string();
        Box::pin(async move {
            let items = self
                .nc
                .propfind(self.nc.files_url(&self.full(&dir)), 1, dav::FILE_PROPS)
                .await?
                .ok_or_else(|| RemoteError::NotFound(dir.clone()))?;
            Ok(items
                .iter()
                .skip(1)
                .map(|i| {
                    let name = i.name().to_string();
                    let entry = to_remote_entry(&Entry::from_item(i), remote::join(&dir, &name));
                    (name, entry)
                })
                .collect())
        })
    }

    fn list_tree(&self) -> BoxFuture<'_, Result<RemoteListing, RemoteError>> {
        Box::pin(async move {
            let w = self.walk().await?;
            // Chunk folders left by a crash or by a file changed since: cleaned once, never on
            // a no-op poll (which stays one request).
            let clean = !w.unchanged && self.state.lock().map(|mut s| !std::mem::replace(&mut s.cleaned, true)).unwrap_or(false);
            if clean && self.nc.info().chunking {
                match self.clean_uploads(ABANDONED_AFTER).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "cleaned up abandoned chunked uploads"),
                    Err(e) => tracing::warn!(error = %e, "could not clean up abandoned chunked uploads"),
                }
            }
            let folders = w
                .folders
                .iter()
                .map(|(dir, children)| {
                    let list = children.iter().map(|(name, e)| (name.clone(), to_remote_entry(e, remote::join(dir, name)))).collect();
                    (dir.clone(), list)
                })
                .collect();
            let mut listing = remote::walk(&Prefetched { folders }).await?;
            listing.requests = w.requests;
            let locks: HashMap<String, &String> =
                w.folders.iter().flat_map(|(dir, children)| children.iter().filter_map(move |(name, e)| Some((remote::join(dir, name), e.lock.as_ref()?)))).collect();
            if !locks.is_empty() {
                listing.locks = listing
                    .entries
                    .iter()
                    .filter_map(|(key, e)| Some((key.clone(), (*locks.get(&e.server_path)?).clone())))
                    .collect();
            }
            Ok(listing)
        })
    }

    fn stat(&self, path: &str) -> BoxFuture<'_, Result<Option<RemoteEntry>, RemoteError>> {
        let path = path.trim_matches('/').to_string();
        Box::pin(async move {
            let Some(items) = self.nc.propfind(self.nc.files_url(&self.full(&path)), 0, dav::FILE_PROPS).await? else {
                return Ok(None);
            };
            Ok(items.first().map(|i| to_remote_entry(&Entry::from_item(i), path.clone())))
        })
    }

    fn get(&self, path: &str) -> BoxFuture<'_, Result<Download, RemoteError>> {
        let path = path.trim_matches('/').to_string();
        Box::pin(async move {
            let url = self.nc.files_url(&self.full(&path));
            let answer = self.nc.send(Method::GET, url, |b| b).await?;
            if !answer.status().is_success() {
                return Err(failure(answer, &path).await.into());
            }
            let len = answer.content_length();
            let body = answer
                .bytes_stream()
                .map_err(|e| RemoteError::Truncated(crate::config::plain_reqwest(&e)))
                .boxed();
            Ok(Download { len, body })
        })
    }

    fn put(&self, path: &str, upload: Upload, pre: Precondition) -> BoxFuture<'_, Result<Stored, RemoteError>> {
        let path = path.trim_matches('/').to_string();
        Box::pin(async move {
            let size = upload.len;
            self.check_upload(&path, size, matches!(pre, Precondition::Replace(_)))?;
            let full = self.full(&path);
            let done = if self.nc.info().chunking && upload.len > self.chunking.threshold {
                let id = chunked::upload_id(&full, upload.len, upload.mtime);
                self.note_upload(&id, true);
                let done = chunked_from_stream(&self.nc, upload, &full, pre, &self.chunking).await;
                match &done {
                    // Finished, or deleted by the upload itself (over quota, wrong total).
                    Ok(_) | Err(NextcloudError::InsufficientStorage { .. }) => self.note_upload(&id, false),
                    // Kept for a resume; no longer running in this process.
                    Err(_) => {
                        if let Ok(mut s) = self.state.lock() {
                            s.running.remove(&id);
                        }
                    }
                }
                done
            } else {
                let len = upload.len;
                let body = reqwest::Body::wrap_stream(upload.body);
                bulk::put_body(&self.nc, &full, body, len, upload.mtime, pre).await
            };
            let done = match done {
                Err(NextcloudError::ReadOnly(_)) => return Err(NextcloudError::ReadOnly(path).into()),
                Err(NextcloudError::Locked { .. }) => return Err(self.lock_holder(&path).await),
                other => other?,
            };
            if !done.mtime_accepted {
                tracing::debug!(%path, "the server did not confirm the modification time");
            }
            self.took(size);
            Ok(Stored { etag: quoted(&done.etag), file_id: done.file_id })
        })
    }

    fn mkdir(&self, path: &str) -> BoxFuture<'_, Result<Stored, RemoteError>> {
        let path = path.trim_matches('/').to_string();
        Box::pin(async move {
            let method = Method::from_bytes(b"MKCOL").map_err(|e| RemoteError::Protocol(e.to_string()))?;
            let answer = self.nc.send(method, self.nc.files_url(&self.full(&path)), |b| b).await?;
            match answer.status().as_u16() {
                // FilesPlugin::sendFileIdHeader answers OC-FileId on afterBind (MKCOL included).
                201 => Ok(Stored { etag: None, file_id: bulk::uploaded_from_headers(&path, answer.headers()).file_id }),
                405 => match self.stat(&path).await? {
                    Some(e) if e.kind == Kind::Dir => Ok(Stored { etag: None, file_id: e.file_id }),
                    _ => Err(RemoteError::Refused { status: 405, message: format!("{path} exists and is not a folder") }),
                },
                403 => Err(NextcloudError::ReadOnly(path).into()),
                _ => Err(failure(answer, &path).await.into()),
            }
        })
    }

    fn delete(&self, path: &str, if_match: Option<&str>) -> BoxFuture<'_, Result<(), RemoteError>> {
        let path = path.trim_matches('/').to_string();
        let if_match = if_match.map(|e| format!("\"{}\"", dav::bare_etag(e)));
        Box::pin(async move {
            let answer = self
                .nc
                .send(Method::DELETE, self.nc.files_url(&self.full(&path)), |b| match &if_match {
                    Some(e) => b.header(header::IF_MATCH, e.as_str()),
                    None => b,
                })
                .await?;
            match answer.status().as_u16() {
                200 | 204 | 404 => Ok(()),
                403 => Err(NextcloudError::ReadOnly(path).into()),
                423 => Err(self.lock_holder(&path).await),
                _ => Err(failure(answer, &path).await.into()),
            }
        })
    }

    fn rename(&self, from: &str, to: &str) -> BoxFuture<'_, Result<(), RemoteError>> {
        let from = from.trim_matches('/').to_string();
        let to = to.trim_matches('/').to_string();
        Box::pin(async move {
            let method = Method::from_bytes(b"MOVE").map_err(|e| RemoteError::Protocol(e.to_string()))?;
            let dest = self.nc.files_url(&self.full(&to));
            let answer = self
                .nc
                .send(method, self.nc.files_url(&self.full(&from)), |b| {
                    b.header("Destination", dest.as_str()).header("Overwrite", "F")
                })
                .await?;
            match answer.status().as_u16() {
                201 | 204 => Ok(()),
                403 => Err(NextcloudError::ReadOnly(from).into()),
                423 => Err(self.lock_holder(&from).await),
                _ => Err(failure(answer, &from).await.into()),
            }
        })
    }
}

/// Chunked upload v2 from the engine's body stream: each chunk is gathered in memory (one chunk
/// at most, so memory stays flat) and chunks already on the server are skipped by reading past
/// them, which makes a restarted upload send only what is missing.
async fn chunked_from_stream(
    nc: &Nextcloud,
    upload: Upload,
    path: &str,
    pre: Precondition,
    options: &ChunkOptions,
) -> Result<bulk::Uploaded, NextcloudError> {
    let len = upload.len;
    let chunk = options.chunk_size.max(chunked::MIN_CHUNK);
    let id = chunked::upload_id(path, len, upload.mtime);
    let destination = nc.files_url(path);
    let present: BTreeMap<u64, u64> = chunked::start_or_resume(nc, &id, &destination, len).await?;
    let mut body = upload.body;
    let mut carry = BytesMut::new();
    let count = len.div_ceil(chunk).max(1);
    for n in 1..=count {
        let size = chunk.min(len - (n - 1) * chunk) as usize;
        while carry.len() < size {
            match body.next().await {
                Some(Ok(b)) => carry.extend_from_slice(&b),
                Some(Err(e)) => return Err(NextcloudError::Io(e.to_string())),
                None => return Err(NextcloudError::Io("the local file is shorter than announced".into())),
            }
        }
        let piece: Bytes = carry.split_to(size).freeze();
        if present.get(&n) == Some(&(size as u64)) {
            continue;
        }
        let url = nc.dav_url("uploads", &format!("{id}/{n:05}"));
        let b = nc
            .request(Method::PUT, url)
            .await?
            .header(header::CONTENT_LENGTH, size)
            .header("Destination", destination.as_str())
            .header("OC-Total-Length", len)
            .body(piece);
        let answer = nc.send_once(b).await?;
        match answer.status().as_u16() {
            201 | 204 => {}
            _ => {
                let e = failure(answer, path).await;
                if matches!(e, NextcloudError::InsufficientStorage { .. }) {
                    let _ = chunked::delete_upload(nc, &id).await;
                }
                return Err(e);
            }
        }
    }
    let pre = match pre {
        Precondition::Any => None,
        p => Some(p),
    };
    chunked::finish(nc, &id, &destination, path, len, upload.mtime, pre).await
}
