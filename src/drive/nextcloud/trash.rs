//! The trash and earlier versions, made visible: list deleted files and restore one; list a
//! file's versions and restore one. Core functions, so the CLI and the tray share them.
use reqwest::Method;
use serde::Serialize;

use super::{
    client::{failure, Nextcloud},
    dav, NextcloudError,
};

/// A deleted file or folder in the trash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrashItem {
    /// The trash's own name for it (`name.d1700000000`), what restore uses.
    pub id: String,
    pub name: String,
    /// Where it was, relative to the files root (`dir/name.txt`).
    pub original_location: String,
    /// Unix seconds.
    pub deleted_at: i64,
    pub size: u64,
    pub is_dir: bool,
    /// Who deleted it (display name, else user id), when the server tells
    /// (`nc:trashbin-deleted-by-*`, observed on Nextcloud 34.0.1).
    pub deleted_by: Option<String>,
}

impl TrashItem {
    /// The folder it was in, relative to the files root ("" for the root).
    pub fn original_folder(&self) -> &str {
        crate::drive::names::parent(&self.original_location)
    }
}

/// An earlier version of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Version {
    /// The version's name on the server (its timestamp), what restore uses.
    pub id: String,
    /// Unix seconds.
    pub mtime: i64,
    pub size: u64,
    /// The user id of whoever wrote this content (`nc:version-author`), when the server tells.
    pub author: Option<String>,
    /// A name the member gave the version on the web (`nc:version-label`).
    pub label: Option<String>,
}

/// The trash, most recently deleted first.
pub async fn trash(nc: &Nextcloud) -> Result<Vec<TrashItem>, NextcloudError> {
    let items = nc.propfind(nc.dav_url("trashbin", "trash"), 1, dav::TRASH_PROPS).await?.unwrap_or_default();
    let mut out: Vec<TrashItem> = items
        .into_iter()
        .skip(1)
        .map(|i| TrashItem {
            id: i.name().to_string(),
            name: i.trash_name.clone().unwrap_or_else(|| i.name().to_string()),
            original_location: i.trash_location.clone().unwrap_or_default().trim_matches('/').to_string(),
            deleted_at: i.trash_deleted.unwrap_or(0),
            size: i.size.unwrap_or(0),
            is_dir: i.is_dir,
            deleted_by: i.trash_deleted_by.clone(),
        })
        .collect();
    out.sort_by(|a, b| b.deleted_at.cmp(&a.deleted_at).then_with(|| a.original_location.cmp(&b.original_location)));
    Ok(out)
}

/// Restores the most recently deleted item that was at `path` (or whose trash id is `path`).
/// Returns what was restored.
pub async fn restore(nc: &Nextcloud, path: &str) -> Result<TrashItem, NextcloudError> {
    let wanted = path.trim_matches('/');
    let items = trash(nc).await?;
    let item = items
        .iter()
        .find(|i| i.original_location == wanted)
        .or_else(|| items.iter().find(|i| i.id == wanted))
        .cloned()
        .ok_or_else(|| NextcloudError::NotFound(format!("{wanted} (in the trash)")))?;
    let method = Method::from_bytes(b"MOVE").map_err(|e| NextcloudError::Protocol(e.to_string()))?;
    let from = nc.dav_url("trashbin", &format!("trash/{}", item.id));
    let to = nc.dav_url("trashbin", &format!("restore/{}", item.id));
    let answer = nc.send(method, from, |b| b.header("Destination", to.as_str())).await?;
    match answer.status().as_u16() {
        201 | 204 => Ok(item),
        _ => Err(failure(answer, wanted).await),
    }
}

async fn file_id(nc: &Nextcloud, path: &str) -> Result<String, NextcloudError> {
    let item = nc.root_item(path).await?;
    if item.is_dir {
        return Err(NextcloudError::Http { status: 400, message: format!("{path} is a folder; folders have no versions") });
    }
    item.file_id.ok_or_else(|| NextcloudError::Protocol("the server gave no file id".into()))
}

/// The earlier versions of a file, newest first.
///
/// The server's versions collection also lists the current content, named by the file's
/// mtime (files_versions' LegacyVersionsBackend::getVersionsForFile puts `$currentVersion`
/// first): it is left out, so what is listed is what restoring would bring back.
pub async fn versions(nc: &Nextcloud, path: &str) -> Result<Vec<Version>, NextcloudError> {
    let item = nc
        .propfind(nc.files_url(path), 0, dav::FILE_PROPS)
        .await?
        .and_then(|items| items.into_iter().next())
        .ok_or_else(|| NextcloudError::NotFound(path.to_string()))?;
    if item.is_dir {
        return Err(NextcloudError::Http { status: 400, message: format!("{path} is a folder; folders have no versions") });
    }
    let id = item.file_id.ok_or_else(|| NextcloudError::Protocol("the server gave no file id".into()))?;
    let current = item.mtime.map(|t| t.to_string());
    let items = nc
        .propfind(nc.dav_url("versions", &format!("versions/{id}")), 1, dav::VERSION_PROPS)
        .await?
        .unwrap_or_default();
    let mut out: Vec<Version> = items
        .into_iter()
        .skip(1)
        .filter(|i| !i.is_dir && Some(i.name().to_string()) != current)
        .map(|i| Version {
            id: i.name().to_string(),
            mtime: i.mtime.unwrap_or(0),
            size: i.size.unwrap_or(0),
            author: i.version_author.clone(),
            label: i.version_label.clone(),
        })
        .collect();
    out.sort_by(|a, b| b.mtime.cmp(&a.mtime));
    Ok(out)
}

/// Writes version `version` of `path` into `dir` as a read-only file named after the file and
/// the version's date (`devis (version du 2026-11-28 14-32).txt`), so the member can look at it
/// before restoring. Nothing on the server changes. Returns the file written.
pub async fn fetch_version(nc: &Nextcloud, path: &str, version: &str, dir: &std::path::Path) -> Result<std::path::PathBuf, NextcloudError> {
    crate::drive::names::check_remote_name(version).map_err(|e| NextcloudError::Protocol(format!("version {version}: {e}")))?;
    let id = file_id(nc, path).await?;
    let answer = nc.send(reqwest::Method::GET, nc.dav_url("versions", &format!("versions/{id}/{version}")), |b| b).await?;
    if answer.status().as_u16() != 200 {
        return Err(failure(answer, &format!("{path} (version {version})")).await);
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    crate::drive::names::check_remote_name(name).map_err(NextcloudError::Protocol)?;
    let when = version
        .parse::<i64>()
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .map(|t| format!("{:04}-{:02}-{:02} {:02}-{:02}-{:02}", t.year(), t.month() as u8, t.day(), t.hour(), t.minute(), t.second()))
        .unwrap_or_else(|| version.to_string());
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
        _ => (name, String::new()),
    };
    std::fs::create_dir_all(dir).map_err(|e| NextcloudError::Io(e.to_string()))?;
    let target = dir.join(format!("{stem} ({when}){ext}"));
    // A copy looked at earlier is replaced: it is read-only, so make it writable first.
    if let Ok(meta) = std::fs::metadata(&target) {
        let mut perms = meta.permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&target, perms).ok();
    }
    // Written under a hidden name, then renamed: a half-written copy is never shown.
    let part = dir.join(format!(".{stem}{ext}.part"));
    let io = |e: std::io::Error| NextcloudError::Io(e.to_string());
    {
        use futures_util::StreamExt;
        use std::io::Write;
        let mut out = std::fs::File::create(&part).map_err(io)?;
        let mut body = answer.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| NextcloudError::Offline(e.to_string()))?;
            out.write_all(&chunk).map_err(io)?;
        }
    }
    std::fs::rename(&part, &target).map_err(io)?;
    let mut perms = std::fs::metadata(&target).map_err(|e| NextcloudError::Io(e.to_string()))?.permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&target, perms).map_err(|e| NextcloudError::Io(e.to_string()))?;
    Ok(target)
}

/// Makes version `version` the current content of `path` (the current one becomes a version).
pub async fn restore_version(nc: &Nextcloud, path: &str, version: &str) -> Result<(), NextcloudError> {
    let id = file_id(nc, path).await?;
    let method = Method::from_bytes(b"MOVE").map_err(|e| NextcloudError::Protocol(e.to_string()))?;
    let from = nc.dav_url("versions", &format!("versions/{id}/{version}"));
    let to = nc.dav_url("versions", "restore/target");
    let answer = nc.send(method, from, |b| b.header("Destination", to.as_str())).await?;
    match answer.status().as_u16() {
        201 | 204 => Ok(()),
        _ => Err(failure(answer, &format!("{path} (version {version})")).await),
    }
}
