//! Continuous sync: one task per sync folder, fed by a closed set of [`Event`]s and publishing
//! a [`DriveStatus`] stream. File-system events are debounced (0.5 s) so an edit is picked up
//! at once; a periodic poll catches what watchers miss and remote changes.
//!
//! ```ignore
//! let handle = Drive::start(DriveConfig::new(paths, remote));
//! let mut status = handle.status();       // watch::Receiver<DriveStatus>
//! handle.send(Event::Pause);
//! handle.shutdown().await;
//! ```
use std::{collections::HashSet, path::PathBuf, sync::Arc, time::Duration};

use serde::Serialize;
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

use super::{
    execute::Progress,
    journal::Journal,
    names,
    plan::SafetyStop,
    remote::{Remote, RemoteError},
    run::{self, FolderPaths, Outcome, RunOptions},
    DriveError,
};

/// What the sync task reacts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Something changed under the folder (from the watcher; debounced).
    FileChanged(PathBuf),
    /// Time to look at the server again.
    PollDue,
    /// The member asked for a sync now.
    SyncNow,
    Pause,
    Resume,
    /// The login was renewed: retry what failed for lack of it.
    TokenRefreshed,
    /// The answer to a safety stop: `true` runs the held plan's deletions once; `false` keeps
    /// the files and holds the sync ([`DriveStatus::Held`]) until the member resumes.
    ConfirmDeletes(bool),
    /// The third answer to a safety stop: upload again what the server no longer has, instead
    /// of deleting it here ([`RunOptions::send_back`], once).
    SendBack,
    Shutdown,
}

/// The state shown to the member (serializable for the shell's IPC).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DriveStatus {
    Starting,
    /// Done, except `failed` (waiting for a retry, from the journal: also those in back-off)
    /// and `conflicts` (kept twice by the last run that did something).
    Idle { last_sync: Option<String>, failed: Vec<FailedItem>, conflicts: Vec<String> },
    Syncing { done: usize, total: usize, bytes: u64 },
    Paused,
    /// Paused because the member kept the files after a safety stop: nothing was deleted, and
    /// nothing syncs until they resume (the question is asked again) or send the files back.
    Held,
    /// A safety stop: ask "delete anyway?" and answer with [`Event::ConfirmDeletes`].
    NeedsConfirmation { question: String, stops: Vec<SafetyStop> },
    /// The file server cannot be reached. `waiting`: local files changed since the last
    /// successful sync; `last_sync`: when that was.
    Offline { message: String, last_sync: Option<String>, waiting: usize },
    LoginRequired { message: String },
    Error { code: String, message: String },
}

/// An item the last runs could not sync, as the member needs it: which file, why (an error
/// code), and its size here (for "not enough space for this file").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedItem {
    pub path: String,
    pub code: String,
    pub size: Option<u64>,
    /// For `locked`: who edits the server's file online ("" when the server does not say);
    /// worded with `drive.locked_by` / `drive.locked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// Everything the task needs.
pub struct DriveConfig {
    pub folder: FolderPaths,
    pub remote: Arc<dyn Remote>,
    pub options: RunOptions,
    pub poll_every: Duration,
    pub debounce: Duration,
    /// Watch the folder for changes (off in some tests).
    pub watch: bool,
}

impl DriveConfig {
    pub fn new(folder: FolderPaths, remote: Arc<dyn Remote>) -> DriveConfig {
        DriveConfig {
            folder,
            remote,
            options: RunOptions::default(),
            poll_every: Duration::from_secs(30),
            debounce: Duration::from_millis(500),
            watch: true,
        }
    }
}

pub struct Drive;

/// The running task: send it events, watch its status. Dropping the handle stops the task.
pub struct DriveHandle {
    events: mpsc::UnboundedSender<Event>,
    status: watch::Receiver<DriveStatus>,
    task: Option<JoinHandle<()>>,
}

impl Drive {
    /// Starts the task on the current tokio runtime.
    pub fn start(config: DriveConfig) -> DriveHandle {
        let (events, rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(DriveStatus::Starting);
        let task = tokio::spawn(run_loop(config, events.clone(), rx, status_tx));
        DriveHandle { events, status, task: Some(task) }
    }
}

impl DriveHandle {
    pub fn status(&self) -> watch::Receiver<DriveStatus> {
        self.status.clone()
    }

    pub fn send(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Asks the task to stop and waits for it (a running transfer finishes its item first).
    pub async fn shutdown(mut self) {
        let _ = self.events.send(Event::Shutdown);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DriveHandle {
    fn drop(&mut self) {
        let _ = self.events.send(Event::Shutdown);
    }
}

async fn run_loop(
    config: DriveConfig,
    events: mpsc::UnboundedSender<Event>,
    mut rx: mpsc::UnboundedReceiver<Event>,
    status: watch::Sender<DriveStatus>,
) {
    // The watcher lives as long as the loop; its callback only forwards paths.
    let _watcher = if config.watch { watch_folder(&config.folder.root, events.clone()) } else { None };
    let mut paused = false;
    let mut due = true;
    let mut allow_deletes_once = false;
    let mut send_back_once = false;
    let mut debounce_until: Option<Instant> = None;
    let mut next_poll = Instant::now() + config.poll_every;
    // Local paths changed since the last successful run: "files waiting" while offline.
    let mut changed: HashSet<PathBuf> = HashSet::new();
    loop {
        if due && !paused {
            due = false;
            let mut options = config.options.clone();
            options.allow_deletes |= std::mem::take(&mut allow_deletes_once);
            options.send_back |= std::mem::take(&mut send_back_once);
            // No « Synchronisation… » yet: the executor reports progress only once the plan
            // has actions, so a poll that finds nothing leaves the status alone.
            let progress_tx = status.clone();
            let progress = move |p: Progress| {
                let _ = progress_tx.send(DriveStatus::Syncing { done: p.done, total: p.total, bytes: p.bytes });
            };
            let pending = std::mem::take(&mut changed);
            let result = run::sync_once(&config.folder, config.remote.as_ref(), &options, Some(&progress)).await;
            if !matches!(result, Ok(Outcome::Done(_))) {
                changed.extend(pending);
            }
            let next = status_of(result, &config.folder, &changed);
            status.send_if_modified(|current| {
                if quiet_repeat(current, &next) {
                    return false;
                }
                *current = next;
                true
            });
            next_poll = Instant::now() + config.poll_every;
        }
        let debounce = async {
            match debounce_until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = rx.recv() => match event {
                None | Some(Event::Shutdown) => break,
                Some(Event::FileChanged(path)) => {
                    let ours = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(names::TEMP_PREFIX));
                    if !ours {
                        debounce_until = Some(Instant::now() + config.debounce);
                        if !path.is_dir() {
                            changed.insert(path);
                        }
                    }
                }
                Some(Event::PollDue | Event::SyncNow | Event::TokenRefreshed) => due = true,
                Some(Event::Pause) => {
                    paused = true;
                    let _ = status.send(DriveStatus::Paused);
                }
                Some(Event::Resume) => {
                    paused = false;
                    due = true;
                }
                Some(Event::ConfirmDeletes(yes)) => {
                    if yes {
                        allow_deletes_once = true;
                        due = true;
                    } else {
                        // "No": stay paused until the member resumes (after fixing things).
                        paused = true;
                        let _ = status.send(DriveStatus::Held);
                    }
                }
                Some(Event::SendBack) => {
                    send_back_once = true;
                    paused = false;
                    due = true;
                }
            },
            _ = debounce => {
                debounce_until = None;
                due = true;
            }
            _ = tokio::time::sleep_until(next_poll) => {
                next_poll = Instant::now() + config.poll_every;
                due = true;
            }
        }
    }
}

/// A run that did nothing new (same failures, no conflict) after an idle status: keep the
/// status as it is, so the tray neither flickers nor forgets the last run's conflicts.
fn quiet_repeat(current: &DriveStatus, next: &DriveStatus) -> bool {
    matches!(
        (current, next),
        (DriveStatus::Idle { failed: a, .. }, DriveStatus::Idle { failed: b, conflicts, .. }) if a == b && conflicts.is_empty()
    )
}

/// The journal's failed items (with back-off, a run may not even retry them) and last sync.
fn journal_view(folder: &FolderPaths) -> (Vec<FailedItem>, Option<String>) {
    if !folder.journal.exists() {
        return (Vec::new(), None);
    }
    let Ok(journal) = Journal::open(&folder.journal) else { return (Vec::new(), None) };
    let failed = journal
        .failures()
        .unwrap_or_default()
        .into_iter()
        // A file refused for lack of space and since removed here waits for nothing.
        .filter(|f| f.code != "quota_exceeded" || folder.root.join(&f.path).exists())
        .map(|f| {
            let size = std::fs::metadata(folder.root.join(&f.path)).ok().filter(|m| m.is_file()).map(|m| m.len());
            let by = if f.code == "locked" { Some(f.detail.unwrap_or_default()) } else { None };
            FailedItem { path: f.path, code: f.code, size, by }
        })
        .collect();
    (failed, journal.meta("last_sync").ok().flatten())
}

fn status_of(result: Result<Outcome, DriveError>, folder: &FolderPaths, changed: &HashSet<PathBuf>) -> DriveStatus {
    match result {
        Ok(Outcome::Done(summary)) => {
            let (failed, last_sync) = journal_view(folder);
            DriveStatus::Idle { last_sync, failed, conflicts: summary.report.conflicts }
        }
        Ok(Outcome::DryRun { .. }) => DriveStatus::Idle { last_sync: None, failed: Vec::new(), conflicts: Vec::new() },
        Ok(Outcome::NeedsConfirmation { stops, .. }) => DriveStatus::NeedsConfirmation {
            question: stops.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("; ") + ". Delete anyway?",
            stops,
        },
        Err(DriveError::Remote(RemoteError::Unauthorized)) => {
            DriveStatus::LoginRequired { message: RemoteError::Unauthorized.to_string() }
        }
        Err(DriveError::Remote(e @ RemoteError::Offline(_))) => {
            let (_, last_sync) = journal_view(folder);
            DriveStatus::Offline { message: e.to_string(), last_sync, waiting: changed.len() }
        }
        Err(e) => DriveStatus::Error { code: e.code().to_string(), message: e.to_string() },
    }
}

fn watch_folder(root: &std::path::Path, events: mpsc::UnboundedSender<Event>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let handler = move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res {
            // Reading is not changing: our own scan opens every folder, and an access event
            // would start another sync, forever (the tray woke thousands of times a minute).
            if matches!(event.kind, notify::EventKind::Access(_)) {
                return;
            }
            for path in event.paths {
                let _ = events.send(Event::FileChanged(path));
            }
        }
    };
    // Links are not synced (`local::scan` skips them), so they are not watched either: one link
    // to /usr in the folder made the watcher add 17,685 inotify watches, and a link to a
    // parent folder loops.
    let config = notify::Config::default().with_follow_symlinks(false);
    match notify::RecommendedWatcher::new(handler, config) {
        Ok(mut watcher) => match watcher.watch(root, notify::RecursiveMode::Recursive) {
            Ok(()) => Some(watcher),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the folder; relying on periodic scans");
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "no file watcher; relying on periodic scans");
            None
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The inotify watches of this process, per inotify descriptor.
    fn inotify_watches() -> std::collections::HashMap<String, usize> {
        let mut out = std::collections::HashMap::new();
        for fd in std::fs::read_dir("/proc/self/fd").into_iter().flatten().flatten() {
            let is_inotify = std::fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy().contains("inotify"));
            if !is_inotify {
                continue;
            }
            let name = fd.file_name().to_string_lossy().into_owned();
            let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{name}")).unwrap_or_default();
            out.insert(name, info.lines().filter(|l| l.starts_with("inotify wd:")).count());
        }
        out
    }

    /// Issue 12, item 14: the watcher followed links; one link to /usr in the folder made
    /// 17,685 inotify watches. Now a link adds none: the folder and its one real subfolder are
    /// watched, the 40 folders behind the link are not.
    #[tokio::test]
    async fn the_watcher_does_not_follow_links() {
        let outside = tempfile::tempdir().unwrap();
        for i in 0..40 {
            std::fs::create_dir_all(outside.path().join(format!("d{i}/inner"))).unwrap();
        }
        let folder = tempfile::tempdir().unwrap();
        std::fs::create_dir(folder.path().join("real")).unwrap();
        std::os::unix::fs::symlink(outside.path(), folder.path().join("link")).unwrap();

        let before = inotify_watches();
        let (tx, _rx) = mpsc::unbounded_channel();
        let watcher = watch_folder(folder.path(), tx).expect("a watcher");
        let after = inotify_watches();
        let ours: Vec<usize> = after.iter().filter(|(fd, _)| !before.contains_key(*fd)).map(|(_, n)| *n).collect();
        assert_eq!(ours, [2], "watches of the new inotify descriptor (the folder and real/ only)");
        drop(watcher);
    }
}
