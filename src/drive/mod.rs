//! The two-way sync of the member's folder with a WebDAV space, built so that nothing the member
//! wrote is ever lost: conflicts become copies, mass deletions stop and ask, a crash anywhere
//! leaves a state from which the next run converges.
//!
//! # Flow
//! discovery ([`local::scan`], [`remote::walk`]) → pure planning ([`plan::plan`], a printable
//! [`plan::Plan`] and its [`plan::SafetyStop`] predicates) → execution ([`execute`]), with the
//! [`journal::Journal`] (SQLite, one per sync folder) recording after each item what both sides
//! agree on. [`run::sync_once`] is one complete run; [`Drive::start`] runs it continuously.
//!
//! # Public API (stable; the desktop shell builds on it)
//! ```ignore
//! let remote: Arc<dyn Remote> = Arc::new(WebDav::new(http, url, Auth::Basic { user, password })?);
//! let handle: DriveHandle = Drive::start(DriveConfig::new(folder, remote, &dirs));
//! let mut status: watch::Receiver<DriveStatus> = handle.status(); // Idle / Syncing / Paused /
//!                                                                  // NeedsConfirmation / Error / Offline
//! handle.send(Event::SyncNow);               // also Pause, Resume, TokenRefreshed, Shutdown
//! handle.send(Event::ConfirmDeletes(true));  // answer a safety stop ("delete anyway?")
//! ```
//! One-shot use (the CLI): [`run::sync_once`] with [`run::RunOptions`] returns a
//! [`run::Outcome`] (done with a report, dry run with the plan, or stopped for confirmation).
//! [`status::read`] gives the last known state of a folder without running anything.
//!
//! Errors: [`DriveError`], each with a stable [`DriveError::code`].
//!
//! # Extending for Nextcloud
//! [`remote::Remote`] is the only transport boundary. Nextcloud specifics (folder ETags to skip
//! unchanged subtrees, file ids for remote renames, bulk and chunked upload, quota) plug in as
//! an implementation that overrides the trait's optional methods and announces them in
//! [`remote::Capabilities`]; see [`nextcloud`].

pub mod crash;
pub mod execute;
pub mod journal;
pub mod local;
pub mod lock;
pub mod memory;
pub mod names;
pub mod nextcloud;
pub mod plan;
pub mod remote;
pub mod run;
pub mod status;
pub mod task;
pub mod webdav;

use thiserror::Error;

pub use remote::{Capabilities, Remote, RemoteEntry, RemoteError};
pub use task::{Drive, DriveConfig, DriveHandle, DriveStatus, Event, FailedItem};
pub use webdav::{Auth, WebDav};

/// Whether an item is a file or a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    File,
    Dir,
    /// Local only: a symbolic link or another special file (FIFO, socket, device). Never
    /// synced, never written into the journal; it is listed so that the planner keeps its name
    /// from being taken by a remote item.
    Link,
}

/// Why a sync could not run or had to stop. Item-level problems (a refused name, one failed
/// upload) are not errors: they are reported and the rest of the sync goes on.
#[derive(Debug, Error)]
pub enum DriveError {
    #[error("the sync journal {path} cannot be used ({reason}); stopping rather than guessing")]
    Journal { path: String, reason: String },
    #[error("the local folder {0} is missing or not mounted")]
    FolderMissing(String),
    #[error("the local folder {path} cannot be read: {reason}")]
    LocalIo { path: String, reason: String },
    #[error("another sync of {0} is already running")]
    FolderBusy(String),
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("the sync was stopped")]
    Interrupted,
    #[error(transparent)]
    Folder(#[from] crate::folder::FolderError),
}

impl DriveError {
    /// A stable code for scripts and the IPC boundary.
    pub fn code(&self) -> &'static str {
        match self {
            DriveError::Journal { .. } => "journal",
            DriveError::FolderMissing(_) => "folder_missing",
            DriveError::LocalIo { .. } => "local_io",
            DriveError::FolderBusy(_) => "folder_busy",
            DriveError::Remote(e) => e.code(),
            DriveError::Interrupted => "interrupted",
            DriveError::Folder(e) => e.code(),
        }
    }
}
