//! Many small files in few requests: Nextcloud's bulk upload (`POST /remote.php/dav/bulk`,
//! `multipart/related`, one part per file with its md5), used when the server advertises
//! `dav.bulkupload` = "1.0", else one PUT per file. A file that fails inside a batch is retried
//! alone with a PUT and, if it still fails, reported by name; the rest of the batch stands.
use std::{collections::BTreeSet, path::PathBuf};

use futures_util::{stream, StreamExt};
use md5::{Digest, Md5};
use reqwest::{header, Method};
use serde::Deserialize;

use super::{
    chunked::file_body,
    client::{failure, Nextcloud},
    dav::bare_etag,
    NextcloudError,
};
use crate::drive::remote::Precondition;

/// One local file to send to `path` (relative to the user's files root).
#[derive(Debug, Clone)]
pub struct BulkFile {
    pub path: String,
    pub source: PathBuf,
    /// Unix seconds, sent as `X-OC-Mtime`.
    pub mtime: i64,
}

#[derive(Debug, Clone)]
pub struct BulkOptions {
    /// At most this many files per request.
    pub max_files: usize,
    /// At most about this many bytes per request (a file larger than this goes alone).
    pub max_bytes: u64,
    /// Requests in flight at once.
    pub parallel: usize,
    /// MKCOL the parent folders first (skip when the caller made them).
    pub create_parents: bool,
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions { max_files: 100, max_bytes: 4 << 20, parallel: 3, create_parents: true }
    }
}

/// What the server recorded for an uploaded file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Uploaded {
    pub path: String,
    pub etag: Option<String>,
    pub file_id: Option<String>,
    pub permissions: Option<String>,
    /// The server confirmed the modification time (`X-OC-MTime: accepted`, or bulk success).
    pub mtime_accepted: bool,
}

#[derive(Debug, Default)]
pub struct BulkReport {
    pub uploaded: Vec<Uploaded>,
    /// Files that could not be sent, by path, with why.
    pub failed: Vec<(String, NextcloudError)>,
    /// Files that failed inside a batch and were sent again alone.
    pub retried_alone: Vec<String>,
    /// Bulk POSTs made.
    pub bulk_requests: u64,
}

#[derive(Deserialize)]
struct PartAnswer {
    error: bool,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    fileid: Option<serde_json::Value>,
    #[serde(default)]
    permissions: Option<String>,
}

/// Uploads `files`, in bulk where the server can, else one PUT each.
#[tracing::instrument(skip_all, fields(files = files.len()))]
pub async fn upload(nc: &Nextcloud, files: Vec<BulkFile>, options: &BulkOptions) -> BulkReport {
    let mut report = BulkReport::default();
    if options.create_parents {
        let parents: BTreeSet<String> = files
            .iter()
            .filter_map(|f| f.path.trim_matches('/').rsplit_once('/').map(|(p, _)| p.to_string()))
            .collect();
        // Every ancestor once, parents before children (BTreeSet order puts "a" before "a/b").
        let mut all = BTreeSet::new();
        for p in parents {
            let mut sofar = String::new();
            for seg in p.split('/') {
                if !sofar.is_empty() {
                    sofar.push('/');
                }
                sofar.push_str(seg);
                all.insert(sofar.clone());
            }
        }
        for dir in all {
            if let Err(e) = nc.mkcol(&dir).await {
                tracing::warn!(%dir, error = %e, "could not create a folder");
            }
        }
    }

    if !nc.info().bulk_upload {
        let results: Vec<_> = stream::iter(files)
            .map(|f| async move { (f.path.clone(), put_file(nc, &f.path, &f.source, f.mtime, Precondition::Any).await) })
            .buffer_unordered(options.parallel.max(1) + 1)
            .collect()
            .await;
        for (path, r) in results {
            match r {
                Ok(u) => report.uploaded.push(u),
                Err(e) => report.failed.push((path, e)),
            }
        }
        return report;
    }

    // Batches by count and size.
    let mut batches: Vec<Vec<BulkFile>> = Vec::new();
    let mut current: Vec<BulkFile> = Vec::new();
    let mut bytes = 0u64;
    for f in files {
        let len = std::fs::metadata(&f.source).map(|m| m.len()).unwrap_or(0);
        if !current.is_empty() && (current.len() >= options.max_files || bytes + len > options.max_bytes) {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += len;
        current.push(f);
    }
    if !current.is_empty() {
        batches.push(current);
    }

    let outcomes: Vec<_> = stream::iter(batches)
        .map(|batch| async move {
            let mut parts = Vec::with_capacity(batch.len());
            for f in &batch {
                match tokio::fs::read(&f.source).await {
                    Ok(content) => parts.push((f.path.clone(), bytes::Bytes::from(content), f.mtime)),
                    Err(e) => return (batch.clone(), Err(NextcloudError::Io(format!("{}: {e}", f.source.display())))),
                }
            }
            let answer = send_batch(nc, &parts).await;
            (batch, answer)
        })
        .buffer_unordered(options.parallel.max(1))
        .collect()
        .await;

    let mut retry = Vec::new();
    for (batch, answer) in outcomes {
        report.bulk_requests += 1;
        match answer {
            Ok(done) => {
                for f in batch {
                    match done.iter().find(|(p, _)| p.trim_start_matches('/') == f.path.trim_start_matches('/')) {
                        Some((_, Ok(u))) => report.uploaded.push(u.clone()),
                        Some((_, Err(message))) => {
                            tracing::info!(path = %f.path, %message, "failed inside a batch; retrying it alone");
                            retry.push(f);
                        }
                        // Not in the answer: the server stopped before it (bad checksum, malformed
                        // part); it was not written, so send it again alone.
                        None => retry.push(f),
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "a bulk request failed; sending its files one by one");
                retry.extend(batch);
            }
        }
    }
    for f in retry {
        report.retried_alone.push(f.path.clone());
        match put_file(nc, &f.path, &f.source, f.mtime, Precondition::Any).await {
            Ok(u) => report.uploaded.push(u),
            Err(e) => report.failed.push((f.path, e)),
        }
    }
    report
}

pub(crate) type PartResult = (String, Result<Uploaded, String>);

/// One bulk POST of `(path from the files root, content, mtime)` parts. `Ok` holds the
/// per-file answers (also on a 400, which lists the files written before the server stopped;
/// Nextcloud 34 sends them as text/html, `[]` when none: observed).
pub(crate) async fn send_batch(nc: &Nextcloud, batch: &[(String, bytes::Bytes, i64)]) -> Result<Vec<PartResult>, NextcloudError> {
    let boundary = format!("passerelle-{:032x}", rand::random::<u128>());
    let mut body = Vec::new();
    for (path, content, mtime) in batch {
        let md5 = Md5::digest(content);
        let path = format!("/{}", path.trim_start_matches('/'));
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!(
                "X-File-Path: {path}\r\nX-File-MD5: {md5:x}\r\nOC-Checksum: md5:{md5:x}\r\nX-OC-Mtime: {mtime}\r\nContent-Length: {}\r\n\r\n",
                content.len()
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let url = nc.base().join("remote.php/dav/bulk").map_err(|e| NextcloudError::Protocol(e.to_string()))?;
    let body = bytes::Bytes::from(body);
    let answer = nc
        .send(Method::POST, url, |b| {
            b.header(header::CONTENT_TYPE, format!("multipart/related; boundary={boundary}")).body(body.clone())
        })
        .await?;
    let status = answer.status().as_u16();
    if !matches!(status, 200 | 400 | 411) {
        return Err(failure(answer, "bulk upload").await);
    }
    let text = crate::http::text_limited(answer, crate::http::JSON_ANSWER_LIMIT).await.map_err(super::body_error)?;
    // Nothing written is `[]` (PHP's empty array), not `{}` (observed on Nextcloud 34.0.1).
    let map: std::collections::BTreeMap<String, PartAnswer> = match serde_json::from_str(&text) {
        Ok(m) => m,
        Err(_) if text.trim() == "[]" => Default::default(),
        // A 400 whose body is not the map: nothing is known to be written.
        Err(_) if status != 200 => Default::default(),
        Err(e) => return Err(NextcloudError::Protocol(format!("bulk answer: {e}"))),
    };
    Ok(map
        .into_iter()
        .map(|(path, a)| {
            let rel = path.trim_start_matches('/').to_string();
            let r = if a.error {
                Err(a.message.unwrap_or_else(|| "the server refused this file".into()))
            } else {
                Ok(Uploaded {
                    path: rel.clone(),
                    etag: a.etag.map(|e| bare_etag(&e)),
                    file_id: a.fileid.map(|v| match v {
                        serde_json::Value::String(s) => numeric_file_id(&s),
                        other => other.to_string(),
                    }),
                    permissions: a.permissions,
                    mtime_accepted: true,
                })
            };
            (rel, r)
        })
        .collect())
}

/// One PUT of a local file, with `Content-Length` (never chunked encoding: that would slip past
/// the quota check), `X-OC-Mtime` and the precondition.
pub async fn put_file(
    nc: &Nextcloud,
    path: &str,
    source: &std::path::Path,
    mtime: i64,
    pre: Precondition,
) -> Result<Uploaded, NextcloudError> {
    let len = tokio::fs::metadata(source).await.map_err(|e| NextcloudError::Io(format!("{}: {e}", source.display())))?.len();
    let body = file_body(source.to_path_buf(), 0, len);
    put_body(nc, path, body, len, mtime, pre).await
}

/// One PUT of a body of exactly `len` bytes.
pub async fn put_body(
    nc: &Nextcloud,
    path: &str,
    body: reqwest::Body,
    len: u64,
    mtime: i64,
    pre: Precondition,
) -> Result<Uploaded, NextcloudError> {
    let mut b = nc
        .request(Method::PUT, nc.files_url(path))
        .await?
        .header(header::CONTENT_LENGTH, len)
        .header("X-OC-Mtime", mtime.to_string())
        .body(body);
    b = match &pre {
        Precondition::Create => b.header(header::IF_NONE_MATCH, "*"),
        Precondition::Replace(etag) => b.header(header::IF_MATCH, format!("\"{}\"", bare_etag(etag))),
        Precondition::Any => b,
    };
    let answer = nc.send_once(b).await?;
    match answer.status().as_u16() {
        201 | 204 => Ok(uploaded_from_headers(path, answer.headers())),
        403 => Err(NextcloudError::ReadOnly(path.to_string())),
        _ => Err(failure(answer, path).await),
    }
}

/// Reads ETag, OC-FileId and X-OC-MTime from a PUT or MOVE answer (no re-listing needed).
pub(crate) fn uploaded_from_headers(path: &str, h: &reqwest::header::HeaderMap) -> Uploaded {
    let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    Uploaded {
        path: path.to_string(),
        etag: get("OC-ETag").or_else(|| get("ETag")).map(|e| bare_etag(&e)),
        file_id: get("OC-FileId").map(|v| numeric_file_id(&v)),
        permissions: None,
        mtime_accepted: get("X-OC-MTime").is_some_and(|v| v.eq_ignore_ascii_case("accepted")),
    }
}

/// `OC-FileId` is the file id on 8 digits followed by the instance id ("00000042oc1a2b3c");
/// PROPFIND's `oc:fileid` is the bare number ("42"). Both become the bare number.
pub fn numeric_file_id(value: &str) -> String {
    let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
    match digits.parse::<u64>() {
        Ok(n) => n.to_string(),
        Err(_) => value.to_string(),
    }
}
