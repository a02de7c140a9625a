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
    remote::{self, Capabilities, Download, Precondition, Remote, RemoteEntry, RemoteError, RemoteListing, Stored, Upload},
    Kind,
};

/// An upload folder untouched this long was abandoned (a crash, or the file changed since).
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A Nextcloud folder as a sync remote. Paths are relative to `root` (below the files root).
pub struct NextcloudRemote {
    nc: Nextcloud,
    root: String,
    cache_file: Option<PathBuf>,
    pub chunking: ChunkOptions,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    cache: TreeCache,
    /// The last walk, for permission checks before uploading.
    last: Option<Walk>,
    quota: Option<Quota>,
    /// Abandoned chunk uploads were looked for (once per process, after a real change).
    cleaned: bool,
}

impl NextcloudRemote {
    /// `cache_file`: where to keep the folder listings between runs (next to the journal), so
    /// that the first poll after a restart is also one request.
    pub fn new(nc: Nextcloud, root: &str, cache_file: Option<PathBuf>) -> NextcloudRemote {
        let cache = cache_file.as_deref().map(TreeCache::load).unwrap_or_default();
        NextcloudRemote {
            nc,
            root: root.trim_matches('/').to_string(),
            cache_file,
            chunking: ChunkOptions::default(),
            state: Mutex::new(State { cache, ..State::default() }),
        }
    }

    pub fn nextcloud(&self) -> &Nextcloud {
        &self.nc
    }

    /// The quota seen by the last listing.
    pub fn quota(&self) -> Option<Quota> {
        self.state.lock().map(|s| s.quota).unwrap_or(None)
    }

    fn full(&self, path: &str) -> String {
        remote::join(&self.root, path.trim_matches('/'))
    }

    /// Lists with folder-ETag skipping; also returns the raw walk.
    pub async fn walk(&self) -> Result<Walk, NextcloudError> {
        // The cache is taken out while the walk runs: a std Mutex is never held across `.await`.
        let mut cache = self.state.lock().map(|mut s| std::mem::take(&mut s.cache)).unwrap_or_default();
        let result = walk::walk(&self.nc, &self.root, &mut cache).await;
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
                s.quota = w.quota;
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
        if let Some(q) = s.quota {
            if !q.fits(len) {
                return Err(NextcloudError::InsufficientStorage { free: q.free.unwrap_or(0) });
            }
        }
        Ok(())
    }

    fn took(&self, len: u64) {
        if let Ok(mut s) = self.state.lock() {
            if let Some(q) = s.quota.as_mut() {
                q.take(len);
            }
        }
    }
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

impl Remote for NextcloudRemote {
    fn capabilities(&self) -> Capabilities {
        Capabilities { folder_etags: true, file_ids: true, sets_mtime: true }
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
                    let e = Entry {
                        is_dir: i.is_dir,
                        size: i.size.unwrap_or(0),
                        mtime: i.mtime,
                        etag: i.etag.as_deref().map(dav::bare_etag),
                        file_id: i.file_id.clone(),
                        permissions: i.permissions.clone(),
                    };
                    let entry = to_remote_entry(&e, remote::join(&dir, &name));
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
                match chunked::clean_abandoned(&self.nc, ABANDONED_AFTER).await {
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
            Ok(listing)
        })
    }

    fn stat(&self, path: &str) -> BoxFuture<'_, Result<Option<RemoteEntry>, RemoteError>> {
        let path = path.trim_matches('/').to_string();
        Box::pin(async move {
            let Some(items) = self.nc.propfind(self.nc.files_url(&self.full(&path)), 0, dav::FILE_PROPS).await? else {
                return Ok(None);
            };
            Ok(items.first().map(|i| {
                let e = Entry {
                    is_dir: i.is_dir,
                    size: i.size.unwrap_or(0),
                    mtime: i.mtime,
                    etag: i.etag.as_deref().map(dav::bare_etag),
                    file_id: i.file_id.clone(),
                    permissions: i.permissions.clone(),
                };
                to_remote_entry(&e, path.clone())
            }))
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
                chunked_from_stream(&self.nc, upload, &full, pre, &self.chunking).await
            } else {
                let len = upload.len;
                let body = reqwest::Body::wrap_stream(upload.body);
                bulk::put_body(&self.nc, &full, body, len, upload.mtime, pre).await
            };
            let done = match done {
                Err(NextcloudError::ReadOnly(_)) => return Err(NextcloudError::ReadOnly(path).into()),
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
