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
}

/// An earlier version of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Version {
    /// The version's name on the server (its timestamp), what restore uses.
    pub id: String,
    /// Unix seconds.
    pub mtime: i64,
    pub size: u64,
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
        .map(|i| Version { id: i.name().to_string(), mtime: i.mtime.unwrap_or(0), size: i.size.unwrap_or(0) })
        .collect();
    out.sort_by(|a, b| b.mtime.cmp(&a.mtime));
    Ok(out)
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
