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
        // std's lock is flock(LOCK_EX | LOCK_NB) on Unix and LockFileEx on Windows: held by
        // the open file, released by the OS when the process dies.
        match file.try_lock() {
            Ok(()) => Ok(FolderLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(DriveError::FolderBusy(folder.display().to_string())),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(DriveError::Journal { path: lock_path.display().to_string(), reason: e.to_string() })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12, item 18: the lock did nothing on Windows (it always succeeded). It is now
    /// std's file lock on every system; a second holder is refused until the first lets go.
    #[test]
    fn a_second_sync_of_the_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("journal.lock");
        let first = FolderLock::acquire(&lock, dir.path()).unwrap();
        let second = FolderLock::acquire(&lock, dir.path()).unwrap_err();
        assert_eq!(second.code(), "folder_busy");
        drop(first);
        FolderLock::acquire(&lock, dir.path()).expect("free again");
    }
}
