//! The last known state of a sync folder, read from its journal without syncing: what
//! `passerelle status` and a freshly started tray show.
use serde::Serialize;

use super::{journal::Journal, lock::FolderLock, run::FolderPaths, DriveError};

#[derive(Debug, Clone, Serialize)]
pub struct FolderStatus {
    pub folder: String,
    /// `never_synced`, `idle`, `syncing` (another process holds the lock), `needs_confirmation`,
    /// `error`.
    pub state: String,
    pub items: usize,
    /// Items that failed and wait for a retry.
    pub pending: usize,
    pub failures: Vec<super::journal::Failure>,
    pub last_sync: Option<String>,
    pub last_error: Option<String>,
    /// The safety stop's question, when one waits for an answer.
    pub question: Option<String>,
}

pub fn read(folder: &FolderPaths) -> Result<FolderStatus, DriveError> {
    let display = folder.root.display().to_string();
    if !folder.journal.exists() {
        return Ok(FolderStatus {
            folder: display,
            state: "never_synced".into(),
            items: 0,
            pending: 0,
            failures: vec![],
            last_sync: None,
            last_error: None,
            question: None,
        });
    }
    let syncing = FolderLock::acquire(&folder.lock(), &folder.root).is_err();
    let journal = Journal::open(&folder.journal)?;
    let failures = journal.failures()?;
    let state = if syncing { "syncing".to_string() } else { journal.meta("state")?.unwrap_or_else(|| "idle".into()) };
    Ok(FolderStatus {
        folder: display,
        state,
        items: journal.records()?.len(),
        pending: failures.len(),
        failures,
        last_sync: journal.meta("last_sync")?,
        last_error: journal.meta("last_error")?,
        question: journal.meta("question")?,
    })
}
