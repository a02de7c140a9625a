//! The local side: walking the sync folder into a listing keyed like the remote one (NFC keys),
//! without ever following a symbolic link, and the stat the planner compares with the journal.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

use super::{names, remote::join, DriveError, Kind};

/// One local item as found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalEntry {
    pub kind: Kind,
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime: i64,
    pub inode: u64,
    /// The path as the disk spells it (may be NFD while the key is NFC).
    pub disk_path: String,
}

#[derive(Debug, Clone, Default)]
pub struct LocalListing {
    pub entries: BTreeMap<String, LocalEntry>,
    pub refused: Vec<names::Refusal>,
    /// Our own temporary files left by an interrupted run (to remove).
    pub temps: Vec<PathBuf>,
}

/// Walks the folder. Ignored names are skipped; symbolic links and special files are reported
/// and listed as [`Kind::Link`], never followed.
pub fn scan(root: &Path, ignore: &names::Ignore) -> Result<LocalListing, DriveError> {
    let meta = std::fs::metadata(root).map_err(|_| DriveError::FolderMissing(root.display().to_string()))?;
    if !meta.is_dir() {
        return Err(DriveError::FolderMissing(root.display().to_string()));
    }
    let mut listing = LocalListing::default();
    let mut pending: Vec<(PathBuf, String, String)> = vec![(root.to_path_buf(), String::new(), String::new())];
    while let Some((dir, disk_dir, key_dir)) = pending.pop() {
        let read = std::fs::read_dir(&dir).map_err(|e| DriveError::LocalIo {
            path: dir.display().to_string(),
            reason: e.to_string(),
        });
        let read = match read {
            Ok(r) => r,
            // The root itself must be readable; a subfolder that is not is reported and skipped.
            Err(e) if key_dir.is_empty() => return Err(e),
            Err(e) => {
                listing.refused.push(names::Refusal { path: key_dir.clone(), reason: e.to_string() });
                continue;
            }
        };
        for item in read {
            let Ok(item) = item else { continue };
            let Some(name) = item.file_name().to_str().map(str::to_string) else {
                listing.refused.push(names::Refusal {
                    path: join(&disk_dir, &item.file_name().to_string_lossy()),
                    reason: "the name is not valid Unicode".into(),
                });
                continue;
            };
            let disk_path = join(&disk_dir, &name);
            if name.starts_with(names::TEMP_PREFIX) {
                listing.temps.push(item.path());
                continue;
            }
            let key = join(&key_dir, &names::key(&name));
            if ignore.is_ignored(&key) {
                continue;
            }
            // The entry's own stat, relative to the open folder (no walk of the whole path again).
            let entry = match stat_entry(&item, disk_path.clone())? {
                Some(entry) => entry,
                None => {
                    listing.refused.push(names::Refusal {
                        path: disk_path.clone(),
                        reason: "symbolic links and special files are not synced".into(),
                    });
                    // Still listed (as a link), so that the planner never puts a remote item
                    // in its place.
                    match special(&item.path(), disk_path.clone()) {
                        Some(entry) => entry,
                        None => continue,
                    }
                }
            };
            if listing.entries.contains_key(&key) {
                listing.refused.push(names::Refusal {
                    path: disk_path,
                    reason: "another item has the same name in another Unicode form".into(),
                });
                continue;
            }
            if entry.kind == Kind::Dir {
                pending.push((item.path(), disk_path, key.clone()));
            }
            listing.entries.insert(key, entry);
        }
    }
    Ok(listing)
}

/// [`stat_path`] for an item of a folder being read: the same answer, from the entry's stat.
fn stat_entry(item: &std::fs::DirEntry, disk_path: String) -> Result<Option<LocalEntry>, DriveError> {
    match item.metadata() {
        Ok(meta) => Ok(entry_of(&meta, disk_path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DriveError::LocalIo { path: item.path().display().to_string(), reason: e.to_string() }),
    }
}

/// Stats one path without following links. `None` for links and special files; a vanished
/// path is also `None`.
pub fn stat_path(path: &Path, disk_path: String) -> Result<Option<LocalEntry>, DriveError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DriveError::LocalIo { path: path.display().to_string(), reason: e.to_string() }),
    };
    Ok(entry_of(&meta, disk_path))
}

/// `None` for links and special files.
fn entry_of(meta: &std::fs::Metadata, disk_path: String) -> Option<LocalEntry> {
    let kind = if meta.file_type().is_dir() {
        Kind::Dir
    } else if meta.file_type().is_file() {
        Kind::File
    } else {
        return None;
    };
    Some(LocalEntry {
        kind,
        size: if kind == Kind::File { meta.len() } else { 0 },
        mtime: meta.modified().map(nanos).unwrap_or(0),
        inode: inode(meta),
        disk_path,
    })
}

/// A link or special file as a [`Kind::Link`] entry (`None` when it vanished).
fn special(path: &Path, disk_path: String) -> Option<LocalEntry> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    Some(LocalEntry {
        kind: Kind::Link,
        size: 0,
        mtime: meta.modified().map(nanos).unwrap_or(0),
        inode: inode(&meta),
        disk_path,
    })
}

pub fn nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i64,
        Err(e) => -(e.duration().as_nanos() as i64),
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino()
}

#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> u64 {
    // No stable file index through std on this platform: renames degrade to delete + upload.
    0
}

/// True when the folder's file system ignores case (probed, not guessed from the OS).
pub fn case_insensitive(root: &Path) -> bool {
    let probe = root.join(format!("{}CASE-probe", names::TEMP_PREFIX));
    if std::fs::write(&probe, b"").is_err() {
        return cfg!(any(target_os = "macos", target_os = "windows"));
    }
    let lower = root.join(format!("{}case-probe", names::TEMP_PREFIX));
    let insensitive = std::fs::symlink_metadata(&lower).is_ok();
    let _ = std::fs::remove_file(&probe);
    insensitive
}
