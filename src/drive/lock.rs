//! One sync at a time per folder: an OS-level exclusive lock on a file beside the journal. The
//! OS drops it when the process dies, so a crash never leaves a stale lock behind.
use std::{fs::File, path::Path};

use super::DriveError;

/// Held while a sync of the folder runs; released on drop.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

impl FolderLock {
    pub fn acquire(lock_path: &Path, folder: &Path) -> Result<FolderLock, DriveError> {
        if let Some(dir) = lock_path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path)
            .map_err(|e| DriveError::Journal { path: lock_path.display().to_string(), reason: e.to_string() })?;
        if try_lock(&file) {
            Ok(FolderLock { _file: file })
        } else {
            Err(DriveError::Locked(folder.display().to_string()))
        }
    }
}

#[cfg(unix)]
fn try_lock(file: &File) -> bool {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> bool {
    // Windows: the file is opened without sharing by default for writes from other processes
    // only in some modes; a lock crate would be more precise. Accept for now.
    true
}
