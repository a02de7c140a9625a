//! Large files: Nextcloud's chunked upload v2 (capability `dav.chunking` = "1.0"). MKCOL an
//! upload folder with `Destination` and `OC-Total-Length`, PUT numbered chunks, MOVE `.file`
//! with `X-OC-Mtime`. The upload id is derived from (path, size, mtime), so after a crash or a
//! cut the next attempt finds the same folder, lists the chunks already there and sends only the
//! missing ones. Bodies are streamed from the file: memory stays flat whatever the size.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use bytes::Bytes;
use futures_util::{stream, StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use reqwest::{header, Method};

use super::{
    bulk::{uploaded_from_headers, Uploaded},
    client::{failure, Nextcloud},
    dav::{self, bare_etag},
    NextcloudError,
};
use crate::drive::remote::Precondition;

pub const MIB: u64 = 1 << 20;
/// Nextcloud refuses chunks under 5 MiB on some storages (all but the last).
pub const MIN_CHUNK: u64 = 5 * MIB;

#[derive(Debug, Clone)]
pub struct ChunkOptions {
    /// Chunk size (at least 5 MiB; 10 MiB by default).
    pub chunk_size: u64,
    /// Files above this size go chunked (10 MiB by default).
    pub threshold: u64,
    /// Chunk PUTs in flight at once.
    pub parallel: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions { chunk_size: 10 * MIB, threshold: 10 * MIB, parallel: 3 }
    }
}

impl ChunkOptions {
    fn effective_chunk(&self) -> u64 {
        self.chunk_size.max(MIN_CHUNK)
    }
}

/// The stable upload id of one version of one file: the same after a restart, different when
/// the file changed (then the old upload is abandoned and cleaned up later).
pub fn upload_id(path: &str, len: u64, mtime: i64) -> String {
    let digest = Md5::digest(format!("{path}\n{len}\n{mtime}").as_bytes());
    format!("passerelle-{digest:x}")
}

/// A body streaming `len` bytes of a file from `offset`, read in 256 KiB pieces.
pub fn file_body(path: PathBuf, offset: u64, len: u64) -> reqwest::Body {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let s = stream::once(async move {
        let mut f = tokio::fs::File::open(&path).await?;
        f.seek(std::io::SeekFrom::Start(offset)).await?;
        Ok::<_, std::io::Error>(f.take(len))
    })
    .map_ok(|reader| {
        stream::unfold(reader, |mut r| async move {
            let mut buf = vec![0u8; 256 * 1024];
            match r.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), r))
                }
                Err(e) => Some((Err(e), r)),
            }
        })
    })
    .try_flatten();
    reqwest::Body::wrap_stream(s)
}

/// Uploads a local file with chunking v2, resuming an interrupted upload of the same version.
#[tracing::instrument(skip_all, fields(path = %path))]
pub async fn upload(
    nc: &Nextcloud,
    source: &Path,
    path: &str,
    mtime: i64,
    pre: Option<Precondition>,
    options: &ChunkOptions,
) -> Result<Uploaded, NextcloudError> {
    let len = tokio::fs::metadata(source).await.map_err(|e| NextcloudError::Io(format!("{}: {e}", source.display())))?.len();
    let chunk = options.effective_chunk();
    let id = upload_id(path, len, mtime);
    let destination = nc.files_url(path);

    let present = start_or_resume(nc, &id, &destination, len).await?;
    let count = len.div_ceil(chunk).max(1);
    let missing: Vec<u64> = (1..=count)
        .filter(|n| {
            let expected = chunk.min(len - (n - 1) * chunk);
            present.get(n) != Some(&expected)
        })
        .collect();
    tracing::info!(chunks = count, missing = missing.len(), "chunked upload");

    let results: Vec<Result<(), NextcloudError>> = stream::iter(missing)
        .map(|n| {
            let url = nc.dav_url("uploads", &format!("{id}/{n:05}"));
            let offset = (n - 1) * chunk;
            let size = chunk.min(len - offset);
            let source = source.to_path_buf();
            let destination = destination.clone();
            async move {
                let b = nc
                    .request(Method::PUT, url)
                    .await?
                    .header(header::CONTENT_LENGTH, size)
                    .header("Destination", destination.as_str())
                    .header("OC-Total-Length", len)
                    .body(file_body(source, offset, size));
                let answer = nc.send_once(b).await?;
                match answer.status().as_u16() {
                    201 | 204 => Ok(()),
                    _ => Err(failure(answer, path).await),
                }
            }
        })
        .buffer_unordered(options.parallel.max(1))
        .collect()
        .await;
    for r in results {
        if let Err(e) = r {
            if matches!(e, NextcloudError::InsufficientStorage { .. }) {
                // Over quota, the first chunk is refused: the upload can never finish.
                let _ = delete_upload(nc, &id).await;
            }
            return Err(e);
        }
    }
    finish(nc, &id, &destination, path, len, mtime, pre).await
}

/// Lists the chunks of an existing upload folder (n -> size), or creates the folder.
pub(crate) async fn start_or_resume(
    nc: &Nextcloud,
    id: &str,
    destination: &url::Url,
    len: u64,
) -> Result<BTreeMap<u64, u64>, NextcloudError> {
    let folder = nc.dav_url("uploads", id);
    if let Some(items) = nc.propfind(folder.clone(), 1, dav::VERSION_PROPS).await? {
        let present: BTreeMap<u64, u64> = items
            .iter()
            .filter(|i| !i.is_dir)
            .filter_map(|i| Some((i.name().parse::<u64>().ok()?, i.size?)))
            .collect();
        tracing::info!(chunks = present.len(), "resuming an interrupted upload");
        return Ok(present);
    }
    let method = Method::from_bytes(b"MKCOL").map_err(|e| NextcloudError::Protocol(e.to_string()))?;
    let answer = nc
        .send(method, folder, |b| b.header("Destination", destination.as_str()).header("OC-Total-Length", len))
        .await?;
    match answer.status().as_u16() {
        201 => Ok(BTreeMap::new()),
        _ => Err(failure(answer, id).await),
    }
}

pub(crate) async fn finish(
    nc: &Nextcloud,
    id: &str,
    destination: &url::Url,
    path: &str,
    len: u64,
    mtime: i64,
    pre: Option<Precondition>,
) -> Result<Uploaded, NextcloudError> {
    let method = Method::from_bytes(b"MOVE").map_err(|e| NextcloudError::Protocol(e.to_string()))?;
    let url = nc.dav_url("uploads", &format!("{id}/.file"));
    let answer = nc
        .send(method, url, |b| {
            let b = b
                .header("Destination", destination.as_str())
                .header("OC-Total-Length", len)
                .header("X-OC-Mtime", mtime.to_string());
            // If-Match / If-None-Match would be checked against the source `.file` (observed:
            // always 412). What Sabre evaluates on the destination, before the chunking
            // plugin's beforeMove (CorePlugin::httpMove): `Overwrite: F` (Server::
            // getCopyAndMoveInfo, 412 when something is there) and the RFC 4918 `If:` header's
            // tagged list (Server::checkPreconditions: the ETag of the node at that URI).
            match &pre {
                Some(Precondition::Create) => b.header("Overwrite", "F"),
                Some(Precondition::Replace(e)) => {
                    b.header("If", format!("<{}> ([\"{}\"])", destination.as_str(), bare_etag(e)))
                }
                _ => b,
            }
        })
        .await?;
    match answer.status().as_u16() {
        201 | 204 => Ok(uploaded_from_headers(path, answer.headers())),
        // The file we meant to replace is gone (the tagged URI has no node): changed meanwhile.
        404 if matches!(pre, Some(Precondition::Replace(_))) => Err(NextcloudError::Changed(path.to_string())),
        400 => {
            // Wrong total: the chunks on the server do not make this file; start over next time.
            let e = failure(answer, path).await;
            let _ = delete_upload(nc, id).await;
            Err(e)
        }
        403 => Err(NextcloudError::ReadOnly(path.to_string())),
        _ => Err(failure(answer, path).await),
    }
}

/// Deletes an upload folder and its chunks.
pub async fn delete_upload(nc: &Nextcloud, id: &str) -> Result<(), NextcloudError> {
    let answer = nc.send(Method::DELETE, nc.dav_url("uploads", id), |b| b).await?;
    match answer.status().as_u16() {
        200 | 204 | 404 => Ok(()),
        _ => Err(failure(answer, id).await),
    }
}
