//! The executor: carries out a [`Plan`] against the local folder and a [`Remote`], writing the
//! journal after each item so that a crash at any point leaves a state the next run converges
//! from.
//!
//! Safety rules it enforces on its own (the plan may be stale by the time an action runs):
//! - a local file is overwritten or deleted only if its stat still matches what was planned;
//! - downloads go to a hidden temporary file in the same folder, are checked for size, then
//!   renamed over the real name: a partial file is never visible under a real name;
//! - uploads are guarded by the remote (`If-None-Match: *` or `Overwrite: F` for a new file,
//!   `If-Match`, a tagged `If:` or a last look for a replacement: see ARCHITECTURE.md), so a
//!   concurrent remote change becomes a conflict, not a loss;
//! - every local path is built from checked names under the root, never through a link.
use std::{
    path::{Component, Path, PathBuf},
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Mutex,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use futures_util::{stream, StreamExt};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    crash,
    journal::{Journal, Record},
    local::{stat_path, LocalEntry},
    names,
    plan::{Action, Expect, Fetch, Plan},
    remote::{Remote, RemoteError, Stored, Upload},
    DriveError, Kind,
};

/// Progress of a running plan, for status displays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub bytes: u64,
}

/// How to execute.
pub struct Executor<'a> {
    pub root: &'a Path,
    pub remote: &'a dyn Remote,
    pub journal: &'a Mutex<Journal>,
    /// Transfers at once (default 4).
    pub transfers: usize,
    /// Tries per transfer on transient failures, with exponential back-off from `backoff`.
    pub attempts: u32,
    pub backoff: Duration,
    /// Test hook: stop (as if killed) after this many completed actions.
    pub stop_after: Option<usize>,
    /// Unix seconds, for the failed items' back-off.
    pub now: i64,
    pub progress: Option<&'a (dyn Fn(Progress) + Send + Sync)>,
}

/// An item that could not be synced this time.
#[derive(Debug, Clone, Serialize)]
pub struct ItemError {
    pub path: String,
    pub code: String,
    pub reason: String,
    /// For `locked`: who holds the lock on the server's file ("" when unnamed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// What a plan's execution did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub done: usize,
    pub failed: Vec<ItemError>,
    /// Items that changed between planning and acting: left for the next pass.
    pub changed_meanwhile: usize,
    /// Their paths (the run reports those still changing after its last pass as failed, so a
    /// refused upload never ends as a silent success).
    #[serde(skip)]
    pub deferred: Vec<String>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Paths that were changed on both sides and kept twice (the tray lists them).
    pub conflicts: Vec<String>,
}

enum Outcome {
    Done,
    ChangedMeanwhile,
}

#[derive(Debug)]
enum ItemFail {
    Remote(RemoteError),
    Local(String),
    /// The journal failed: the run must stop.
    Critical(DriveError),
}

impl From<RemoteError> for ItemFail {
    fn from(e: RemoteError) -> Self {
        ItemFail::Remote(e)
    }
}

impl From<DriveError> for ItemFail {
    fn from(e: DriveError) -> Self {
        ItemFail::Critical(e)
    }
}

fn io(e: std::io::Error) -> ItemFail {
    ItemFail::Local(e.to_string())
}

/// Packs `items` (each with its size), in order, into groups of at most `max_files` items and
/// `max_bytes` bytes; an item larger than `max_bytes` goes alone. Bulk uploads and batched
/// downloads both fill their requests this way.
fn pack<T>(items: impl IntoIterator<Item = (u64, T)>, max_files: usize, max_bytes: u64) -> Vec<Vec<T>> {
    let mut groups: Vec<Vec<T>> = Vec::new();
    let mut size = 0u64;
    for (item_size, item) in items {
        match groups.last_mut() {
            Some(g) if g.len() < max_files && size + item_size <= max_bytes => g.push(item),
            _ => {
                groups.push(vec![item]);
                size = 0;
            }
        }
        size += item_size;
    }
    groups
}

impl<'a> Executor<'a> {
    pub fn new(root: &'a Path, remote: &'a dyn Remote, journal: &'a Mutex<Journal>) -> Executor<'a> {
        Executor {
            root,
            remote,
            journal,
            transfers: 4,
            attempts: 4,
            backoff: Duration::from_millis(500),
            stop_after: None,
            now: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0),
            progress: None,
        }
    }

    /// Runs the plan, phase by phase; transfers run in parallel. Returns early only on a
    /// run-wide failure (login needed, server unreachable, journal broken) or the test hook.
    pub async fn execute(&self, plan: &Plan) -> Result<Report, DriveError> {
        let total = plan.actions.len();
        let done = AtomicUsize::new(0);
        let bytes_up = AtomicU64::new(0);
        let bytes_down = AtomicU64::new(0);
        let report = Mutex::new(Report::default());
        // "There is something to do": the tray shows « Synchronisation… » from here, not for a
        // poll that finds nothing.
        if let (Some(progress), true) = (self.progress, total > 0) {
            progress(Progress { done: 0, total, bytes: 0 });
        }
        let mut i = 0;
        while i < plan.actions.len() {
            let phase = plan.actions[i].phase();
            let end = plan.actions[i..].iter().position(|a| a.phase() != phase).map_or(plan.actions.len(), |p| i + p);
            let batch = &plan.actions[i..end];
            i = end;
            // Folders are made level by level, the folders of one level at once (their
            // parents exist by then): on a server that takes a full request per MKCOL, ten
            // folders one after another cost ten round trips of server time.
            if phase == 2 {
                let mut by_depth: Vec<&Action> = batch.iter().collect();
                by_depth.sort_by_key(|a| a.path().matches('/').count());
                for level in by_depth.chunk_by(|a, b| a.path().matches('/').count() == b.path().matches('/').count()) {
                    self.run_queue(level.to_vec(), self.transfers.max(1), total, &done, &bytes_up, &bytes_down, &report).await?;
                }
                continue;
            }
            let parallel = if phase == 3 { self.transfers.max(1) } else { 1 };
            // Small new files go in bulk requests where the server offers it (issue 11, defect
            // 4), alongside the other transfers; what the bulk requests did not take runs one
            // by one afterwards.
            let (bulk, singles) = if phase == 3 { self.bulk_candidates(batch) } else { (Vec::new(), batch.iter().collect()) };
            // Likewise small downloads of one folder go in one request where the server can.
            let (tars, singles) = if phase == 3 { self.batch_download_candidates(singles) } else { (Vec::new(), singles) };
            let (fallback, tar_fallback, singles_done) = futures_util::future::join3(
                self.bulk_uploads(bulk, total, &done, &bytes_up, &report),
                self.batch_downloads(tars, total, &done, &bytes_down, &report),
                self.run_queue(singles, parallel, total, &done, &bytes_up, &bytes_down, &report),
            )
            .await;
            singles_done?;
            let mut rest = fallback?;
            rest.extend(tar_fallback?);
            self.run_queue(rest, parallel, total, &done, &bytes_up, &bytes_down, &report).await?;
        }
        let mut report = report.into_inner().unwrap_or_else(|p| p.into_inner());
        report.done = done.load(Ordering::SeqCst) - report.failed.len() - report.changed_meanwhile;
        report.bytes_up = bytes_up.load(Ordering::Relaxed);
        report.bytes_down = bytes_down.load(Ordering::Relaxed);
        Ok(report)
    }

    /// Runs actions with at most `parallel` in flight.
    #[allow(clippy::too_many_arguments)]
    async fn run_queue(
        &self,
        actions: Vec<&Action>,
        parallel: usize,
        total: usize,
        done: &AtomicUsize,
        bytes_up: &AtomicU64,
        bytes_down: &AtomicU64,
        report: &Mutex<Report>,
    ) -> Result<(), DriveError> {
        let mut queue = actions.into_iter();
        let mut running = futures_util::stream::FuturesUnordered::new();
        loop {
            // A bounded queue: at most `parallel` items in flight.
            while running.len() < parallel {
                let Some(action) = queue.next() else { break };
                running.push(self.step(action, total, done, bytes_up, bytes_down, report));
            }
            match running.next().await {
                Some(r) => r?,
                None => break,
            }
        }
        Ok(())
    }

    async fn step(
        &self,
        action: &Action,
        total: usize,
        done: &AtomicUsize,
        bytes_up: &AtomicU64,
        bytes_down: &AtomicU64,
        report: &Mutex<Report>,
    ) -> Result<(), DriveError> {
        if self.stop_after.is_some_and(|n| done.load(Ordering::SeqCst) >= n) {
            return Err(DriveError::Interrupted);
        }
        let result = self.run_item(action, bytes_up, bytes_down).await;
        let n = done.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(progress) = self.progress {
            progress(Progress { done: n, total, bytes: bytes_up.load(Ordering::Relaxed) + bytes_down.load(Ordering::Relaxed) });
        }
        self.settle(action, result, report)
    }

    // ---- Bulk upload (issue 11, defect 4): the one place the executor knows of it. ----

    /// Splits a transfer phase into small new-file uploads (for bulk) and the rest.
    fn bulk_candidates<'p>(&self, batch: &'p [Action]) -> (Vec<&'p Action>, Vec<&'p Action>) {
        let Some(limits) = self.remote.bulk_limits().filter(|_| self.stop_after.is_none()) else {
            return (Vec::new(), batch.iter().collect());
        };
        batch.iter().partition(|a| {
            matches!(a, Action::Upload { local, pre: super::remote::Precondition::Create, .. } if local.size <= limits.max_file_size)
        })
    }

    /// Sends small new-file uploads with [`Remote::put_new_many`], several batches at once;
    /// returns the actions still to run one by one (any file the bulk requests did not take).
    async fn bulk_uploads<'p>(
        &self,
        batch: Vec<&'p Action>,
        total: usize,
        done: &AtomicUsize,
        bytes_up: &AtomicU64,
        report: &Mutex<Report>,
    ) -> Result<Vec<&'p Action>, DriveError> {
        let Some(limits) = self.remote.bulk_limits() else { return Ok(batch) };
        if batch.is_empty() {
            return Ok(batch);
        }
        let mut singles = Vec::new();
        // (action, local stat at reading time, content)
        let mut ready: Vec<(&'p Action, LocalEntry, Bytes)> = Vec::new();
        for action in batch {
            let Action::Upload { disk, local, .. } = action else {
                singles.push(action);
                continue;
            };
            let Ok(file) = self.local(disk) else {
                singles.push(action);
                continue;
            };
            let content = match stat_path(&file, disk.clone()) {
                Ok(Some(now)) if now.kind == Kind::File && Expect::from(&now) == Expect::from(local) => {
                    match tokio::fs::read(&file).await {
                        Ok(bytes) if bytes.len() as u64 == now.size => Some((now, Bytes::from(bytes))),
                        _ => None,
                    }
                }
                _ => None,
            };
            match content {
                Some((now, bytes)) => ready.push((action, now, bytes)),
                // Changed since planning, or unreadable: the single path decides.
                None => singles.push(action),
            }
        }
        // Spread over as many requests as transfers run at once (the server has several
        // workers), within the server's limits: 300 files with 4 transfers go as 4 x 75.
        let per = limits.max_files.min(ready.len().div_ceil(self.transfers.max(1))).max(1);
        let groups = pack(ready.into_iter().map(|item| (item.1.size, item)), per, limits.max_bytes);
        // Several batches in flight (the server has several workers), bounded like transfers.
        let remote = self.remote;
        let mut pending = groups.into_iter();
        let mut running = futures_util::stream::FuturesUnordered::new();
        let mut sent = Vec::new();
        loop {
            while running.len() < self.transfers.max(1) {
                let Some(group) = pending.next() else { break };
                let files: Vec<(String, Bytes, i64)> = group
                    .iter()
                    .filter_map(|(a, now, bytes)| match a {
                        Action::Upload { server, .. } => Some((server.clone(), bytes.clone(), now.mtime.div_euclid(1_000_000_000))),
                        _ => None,
                    })
                    .collect();
                running.push(async move {
                    let results = remote.put_new_many(files).await;
                    (group, results)
                });
            }
            match running.next().await {
                Some(x) => sent.push(x),
                None => break,
            }
        }
        for (group, results) in sent {
            for ((action, now, _), result) in group.into_iter().zip(results) {
                let Action::Upload { path, server, .. } = action else { continue };
                let stored = match result {
                    Ok(stored) => stored,
                    Err(e) if e.is_fatal() => return Err(DriveError::Remote(e)),
                    Err(RemoteError::Changed(_)) => {
                        self.settle(action, Ok(Outcome::ChangedMeanwhile), report)?;
                        done.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    Err(e) => {
                        tracing::info!(%path, error = %e, "not taken by the bulk upload; sending it alone");
                        singles.push(action);
                        continue;
                    }
                };
                crash::point("bulk-uploaded");
                bytes_up.fetch_add(now.size, Ordering::Relaxed);
                let (etag, file_id) = match stored {
                    Stored { etag: Some(e), file_id } => (Some(e), file_id),
                    Stored { etag: None, .. } => match self.remote.stat(server).await {
                        Ok(Some(entry)) => (entry.version(), entry.file_id),
                        _ => (None, None),
                    },
                };
                let rec = Record { kind: Kind::File, size: now.size, mtime: now.mtime, inode: now.inode, etag, file_id, checksum: None };
                self.lock_journal().put(path, &rec)?;
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some(progress) = self.progress {
                    progress(Progress { done: n, total, bytes: bytes_up.load(Ordering::Relaxed) });
                }
            }
        }
        Ok(singles)
    }

    // ---- end of bulk upload ----

    // ---- Batched downloads (issue 11, performance): small files of one folder in one request ----

    /// Splits downloads into small files (for [`Remote::get_many`]) and the rest.
    fn batch_download_candidates<'p>(&self, actions: Vec<&'p Action>) -> (Vec<&'p Action>, Vec<&'p Action>) {
        let Some(limits) = self.remote.get_many_limits().filter(|_| self.stop_after.is_none()) else {
            return (Vec::new(), actions);
        };
        actions.into_iter().partition(|a| matches!(a, Action::Download { fetch, .. } if fetch.size <= limits.max_file_size))
    }

    /// Downloads small files folder by folder, several requests at once; returns the actions
    /// still to run one by one (a folder with one file, anything the answer did not hold whole
    /// at the listed size, a request that failed).
    async fn batch_downloads<'p>(
        &self,
        actions: Vec<&'p Action>,
        total: usize,
        done: &AtomicUsize,
        bytes_down: &AtomicU64,
        report: &Mutex<Report>,
    ) -> Result<Vec<&'p Action>, DriveError> {
        let Some(limits) = self.remote.get_many_limits() else { return Ok(actions) };
        let mut singles = Vec::new();
        // By server folder, in plan order.
        let mut folders: Vec<(String, Vec<&'p Action>)> = Vec::new();
        for action in actions {
            let Action::Download { fetch, .. } = action else {
                singles.push(action);
                continue;
            };
            let dir = fetch.server.rsplit_once('/').map_or("", |(d, _)| d).to_string();
            match folders.iter_mut().find(|(d, _)| *d == dir) {
                Some((_, list)) => list.push(action),
                None => folders.push((dir, vec![action])),
            }
        }
        let mut groups: Vec<(String, Vec<&'p Action>)> = Vec::new();
        for (dir, list) in folders {
            if list.len() < 2 {
                singles.extend(list);
                continue;
            }
            let sized = list.into_iter().filter_map(|a| match a {
                Action::Download { fetch, .. } => Some((fetch.size, a)),
                _ => None,
            });
            groups.extend(pack(sized, limits.max_files, limits.max_bytes).into_iter().map(|g| (dir.clone(), g)));
        }
        let remote = self.remote;
        let mut pending = groups.into_iter();
        let mut running = futures_util::stream::FuturesUnordered::new();
        loop {
            while running.len() < self.transfers.max(1) {
                let Some((dir, group)) = pending.next() else { break };
                let names: Vec<String> = group
                    .iter()
                    .filter_map(|a| match a {
                        Action::Download { fetch, .. } => Some(fetch.server.rsplit('/').next().unwrap_or(&fetch.server).to_string()),
                        _ => None,
                    })
                    .collect();
                running.push(async move {
                    let result = remote.get_many(&dir, names).await;
                    (group, result)
                });
            }
            let Some((group, result)) = running.next().await else { break };
            let mut files: std::collections::HashMap<String, Bytes> = match result {
                Ok(files) => files.into_iter().collect(),
                Err(e) if e.is_fatal() => return Err(DriveError::Remote(e)),
                Err(e) => {
                    tracing::info!(error = %e, files = group.len(), "batched download refused; fetching the files one by one");
                    singles.extend(group);
                    continue;
                }
            };
            for action in group {
                let Action::Download { path, disk, fetch, expect } = action else { continue };
                let name = fetch.server.rsplit('/').next().unwrap_or(&fetch.server);
                let Some(content) = files.remove(name).filter(|c| c.len() as u64 == fetch.size) else {
                    singles.push(action);
                    continue;
                };
                let result = match self.local(disk) {
                    Ok(target) => match self.bytes_to_temp(fetch, &target, &content).await {
                        Ok(temp) => self.place_download(path, disk, fetch, *expect, &target, temp),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                };
                if matches!(result, Ok(Outcome::Done)) {
                    bytes_down.fetch_add(fetch.size, Ordering::Relaxed);
                }
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some(progress) = self.progress {
                    progress(Progress { done: n, total, bytes: bytes_down.load(Ordering::Relaxed) });
                }
                self.settle(action, result, report)?;
            }
        }
        Ok(singles)
    }

    // ---- end of batched downloads ----

    /// Books an item's result; run-wide failures come back as `Err`.
    fn settle(&self, action: &Action, result: Result<Outcome, ItemFail>, report: &Mutex<Report>) -> Result<(), DriveError> {
        let mut report = report.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(Outcome::Done) => {
                if let Action::Conflict { path, .. } = action {
                    report.conflicts.push(path.clone());
                }
                Ok(())
            }
            Ok(Outcome::ChangedMeanwhile) | Err(ItemFail::Remote(RemoteError::Changed(_))) => {
                tracing::info!(path = action.path(), "changed while syncing; will look again");
                report.changed_meanwhile += 1;
                report.deferred.push(action.path().to_string());
                Ok(())
            }
            Err(ItemFail::Critical(e)) => Err(e),
            Err(ItemFail::Remote(e)) if e.is_fatal() => Err(DriveError::Remote(e)),
            // Locked after the listing (the listing would have said so): the local change
            // stays, and waits like one the planner held back.
            Err(ItemFail::Remote(RemoteError::Locked { by, .. })) => {
                let by = by.unwrap_or_default();
                let reason = RemoteError::Locked { path: action.path().to_string(), by: Some(by.clone()) }.to_string();
                tracing::info!(path = action.path(), "locked on the server; the local change waits");
                self.lock_journal().record_lock_wait(action.path(), &reason, &by, self.now)?;
                report.failed.push(ItemError { path: action.path().to_string(), code: "locked".into(), reason, by: Some(by) });
                Ok(())
            }
            Err(fail) => {
                let (code, reason) = match &fail {
                    ItemFail::Remote(e) => (e.code().to_string(), e.to_string()),
                    ItemFail::Local(r) => ("local_io".to_string(), r.clone()),
                    ItemFail::Critical(_) => unreachable!("handled above"),
                };
                tracing::warn!(path = action.path(), %code, %reason, "item failed");
                self.lock_journal().record_failure(action.path(), &code, &reason, self.now)?;
                report.failed.push(ItemError { path: action.path().to_string(), code, reason, by: None });
                Ok(())
            }
        }
    }

    // A std mutex: the guard is never held across an await.
    fn lock_journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run_item(&self, action: &Action, up: &AtomicU64, down: &AtomicU64) -> Result<Outcome, ItemFail> {
        let retried = matches!(action, Action::Upload { .. } | Action::Download { .. } | Action::Conflict { .. });
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.run_once(action, up, down).await {
                Err(ItemFail::Remote(e)) if retried && e.is_transient() && attempt < self.attempts => {
                    tracing::debug!(path = action.path(), error = %e, attempt, "retrying");
                    if !matches!(e, RemoteError::TokenRefreshed) {
                        tokio::time::sleep(self.backoff * 2u32.pow(attempt - 1)).await;
                    }
                }
                other => return other,
            }
        }
    }

    async fn run_once(&self, action: &Action, up: &AtomicU64, down: &AtomicU64) -> Result<Outcome, ItemFail> {
        tracing::debug!(action = %action.summary(), "executing");
        match action {
            Action::MoveRemote { from, to, server_from, server_to } => {
                self.remote.rename(server_from, server_to).await?;
                crash::point("moved-remote");
                self.lock_journal().rename_tree(from, to)?;
            }
            Action::MoveLocal { from, to, disk_from, disk_to } => {
                let (src, dst) = (self.local(disk_from)?, self.local(disk_to)?);
                if exists(&dst) {
                    return Ok(Outcome::ChangedMeanwhile);
                }
                std::fs::rename(&src, &dst).map_err(io)?;
                crash::point("moved-local");
                self.lock_journal().rename_tree(from, to)?;
            }
            Action::Conflict { path, disk, disk_copy, local_kind, remote_kind, remote, expect, .. } => {
                let (here, copy) = (self.local(disk)?, self.local(disk_copy)?);
                let Some(now) = stat_path(&here, disk.clone())? else { return Ok(Outcome::ChangedMeanwhile) };
                if now.kind != *local_kind || (now.kind == Kind::File && Expect::from(&now) != *expect) || exists(&copy) {
                    return Ok(Outcome::ChangedMeanwhile);
                }
                match (local_kind, remote_kind, remote) {
                    (Kind::File, Kind::File, Some(fetch)) => {
                        let Some(temp) = self.fetch_to_temp(fetch, &here, down).await? else {
                            return Ok(Outcome::ChangedMeanwhile);
                        };
                        if same_content(temp.path(), &here).await.map_err(io)? {
                            // Identical: nothing to keep twice, just remember they agree.
                            self.lock_journal().put(path, &record(&now, fetch))?;
                            return Ok(Outcome::Done);
                        }
                        std::fs::rename(&here, &copy).map_err(io)?;
                        crash::point("conflict-copied");
                        let placed = temp.place(&here).map_err(io)?;
                        crash::point("conflict-placed");
                        let Some(now) = stat_path(&placed, disk.clone())? else { return Ok(Outcome::ChangedMeanwhile) };
                        self.lock_journal().put(path, &record(&now, fetch))?;
                    }
                    _ => {
                        std::fs::rename(&here, &copy).map_err(io)?;
                        self.lock_journal().remove_tree(path)?;
                    }
                }
            }
            Action::MkdirLocal { path, disk, remote } => {
                let target = self.local(disk)?;
                match std::fs::create_dir(&target) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && target.is_dir() => {}
                    Err(e) => return Err(io(e)),
                }
                let Some(now) = stat_path(&target, disk.clone())? else { return Ok(Outcome::ChangedMeanwhile) };
                let rec = Record { kind: Kind::Dir, size: 0, mtime: now.mtime, inode: now.inode, etag: None, file_id: remote.file_id.clone(), checksum: None };
                self.lock_journal().put(path, &rec)?;
            }
            Action::MkdirRemote { path, server, local } => {
                let made = self.remote.mkdir(server).await?;
                crash::point("mkdir-remote");
                let rec = Record { kind: Kind::Dir, size: 0, mtime: local.mtime, inode: local.inode, etag: None, file_id: made.file_id, checksum: None };
                self.lock_journal().put(path, &rec)?;
            }
            Action::Upload { path, disk, server, local, pre } => {
                let file = self.local(disk)?;
                let Some(now) = stat_path(&file, disk.clone())? else { return Ok(Outcome::ChangedMeanwhile) };
                if now.kind != Kind::File || Expect::from(&now) != Expect::from(local) {
                    return Ok(Outcome::ChangedMeanwhile);
                }
                let opened = tokio::fs::File::open(&file).await.map_err(io)?;
                let upload = Upload { len: now.size, body: read_stream(opened, now.size), mtime: now.mtime.div_euclid(1_000_000_000) };
                let stored = self.remote.put(server, upload, pre.clone()).await?;
                crash::point("uploaded");
                up.fetch_add(now.size, Ordering::Relaxed);
                let (etag, file_id) = match stored {
                    Stored { etag: Some(e), file_id } => (Some(e), file_id),
                    Stored { etag: None, .. } => match self.remote.stat(server).await? {
                        Some(entry) => (entry.version(), entry.file_id),
                        None => return Err(ItemFail::Remote(RemoteError::NotFound(server.clone()))),
                    },
                };
                let rec = Record { kind: Kind::File, size: now.size, mtime: now.mtime, inode: now.inode, etag, file_id, checksum: None };
                self.lock_journal().put(path, &rec)?;
            }
            Action::Download { path, disk, fetch, expect } => {
                let target = self.local(disk)?;
                let Some(temp) = self.fetch_to_temp(fetch, &target, down).await? else {
                    return Ok(Outcome::ChangedMeanwhile);
                };
                return self.place_download(path, disk, fetch, *expect, &target, temp);
            }
            Action::DeleteRemote { path, server, if_match, kind } => {
                // A folder goes in one recursive DELETE, which no precondition guards: look
                // first that everything in it is still the version the journal knows.
                if *kind == Kind::Dir && !self.remote_folder_is_known(path, server).await? {
                    return Ok(Outcome::ChangedMeanwhile);
                }
                self.remote.delete(server, if_match.as_deref()).await?;
                crash::point("deleted-remote");
                self.lock_journal().remove_tree(path)?;
            }
            Action::DeleteLocal { path, disk, kind, expect } => {
                let target = self.local(disk)?;
                match stat_path(&target, disk.clone())? {
                    None => {}
                    Some(now) if now.kind != *kind => return Ok(Outcome::ChangedMeanwhile),
                    Some(now) if *kind == Kind::File => {
                        if Expect::from(&now) != *expect {
                            return Ok(Outcome::ChangedMeanwhile);
                        }
                        std::fs::remove_file(&target).map_err(io)?;
                    }
                    Some(_) => {
                        // Only an empty folder goes: whatever is left inside was not planned.
                        if let Err(e) = std::fs::remove_dir(&target) {
                            return Err(ItemFail::Local(format!("the folder was kept because it is not empty ({e})")));
                        }
                    }
                }
                crash::point("deleted-local");
                self.lock_journal().remove_tree(path)?;
            }
            Action::Record { path, record } => self.lock_journal().put(path, record)?,
            Action::Forget { path } => self.lock_journal().remove_tree(path)?,
        }
        Ok(Outcome::Done)
    }

    /// Whether everything below a remote folder is an item the journal knows, in the version it
    /// knows (a narrow window remains between this look and the DELETE).
    async fn remote_folder_is_known(&self, path: &str, server: &str) -> Result<bool, ItemFail> {
        let records = self.lock_journal().records()?;
        let mut pending = vec![(path.to_string(), server.to_string())];
        while let Some((key_dir, server_dir)) = pending.pop() {
            let children = match self.remote.list(&server_dir).await {
                Ok(c) => c,
                Err(RemoteError::NotFound(_)) => continue,
                Err(e) => return Err(ItemFail::Remote(e)),
            };
            for (name, entry) in children {
                let key = super::remote::join(&key_dir, &names::key(&name));
                let known = records.get(&key).is_some_and(|r| r.kind == entry.kind && (entry.kind == Kind::Dir || r.etag == entry.version()));
                if !known {
                    return Ok(false);
                }
                if entry.kind == Kind::Dir {
                    pending.push((key, super::remote::join(&server_dir, &name)));
                }
            }
        }
        Ok(true)
    }

    /// The absolute path of a disk path, refusing anything that could leave the root or go
    /// through a link.
    fn local(&self, rel: &str) -> Result<PathBuf, ItemFail> {
        let mut path = self.root.to_path_buf();
        let segments: Vec<&str> = rel.split('/').collect();
        for (i, seg) in segments.iter().enumerate() {
            if names::check_remote_name(seg).is_err() || Path::new(seg).components().count() != 1 || !matches!(Path::new(seg).components().next(), Some(Component::Normal(_))) {
                return Err(ItemFail::Local(format!("refused unsafe path {rel:?}")));
            }
            path.push(seg);
            if i + 1 < segments.len() {
                if let Ok(meta) = std::fs::symlink_metadata(&path) {
                    if !meta.is_dir() {
                        return Err(ItemFail::Local(format!("{} is not a real folder (a link?)", path.display())));
                    }
                }
            }
        }
        Ok(path)
    }

    /// Puts a downloaded temporary file in place, after a last look at the local file (the
    /// member may have edited it meanwhile), and writes the journal.
    fn place_download(&self, path: &str, disk: &str, fetch: &Fetch, expect: Option<Expect>, target: &Path, temp: Temp) -> Result<Outcome, ItemFail> {
        let current = stat_path(target, disk.to_string())?;
        let unchanged = match (&current, expect) {
            // Nothing there, not even a link or a special file (which stat_path skips).
            (None, None) => !exists(target),
            (Some(c), Some(e)) => c.kind == Kind::File && Expect::from(c) == e,
            _ => false,
        };
        if !unchanged {
            return Ok(Outcome::ChangedMeanwhile);
        }
        crash::point("downloaded-to-temp");
        let placed = temp.place(target).map_err(io)?;
        crash::point("download-placed");
        let Some(now) = stat_path(&placed, disk.to_string())? else { return Ok(Outcome::ChangedMeanwhile) };
        self.lock_journal().put(path, &record(&now, fetch))?;
        Ok(Outcome::Done)
    }

    /// Writes bytes received whole (a batched download) to a temporary file beside `target`,
    /// with the server's date.
    async fn bytes_to_temp(&self, fetch: &Fetch, target: &Path, content: &[u8]) -> Result<Temp, ItemFail> {
        let dir = target.parent().ok_or_else(|| ItemFail::Local("no parent folder".into()))?;
        let temp = Temp::new(dir);
        tokio::fs::write(&temp.0, content).await.map_err(io)?;
        if let Some(secs) = fetch.mtime.filter(|s| *s > 0) {
            let file = std::fs::OpenOptions::new().write(true).open(&temp.0).map_err(io)?;
            let _ = file.set_modified(UNIX_EPOCH + Duration::from_secs(secs as u64));
        }
        Ok(temp)
    }

    /// Downloads into a temporary file beside `target`. `None` when the server's file is no
    /// longer the planned one (its size changed).
    async fn fetch_to_temp(&self, fetch: &Fetch, target: &Path, down: &AtomicU64) -> Result<Option<Temp>, ItemFail> {
        let dir = target.parent().ok_or_else(|| ItemFail::Local("no parent folder".into()))?;
        let temp = Temp::new(dir);
        let mut file = tokio::fs::File::create(&temp.0).await.map_err(io)?;
        let download = self.remote.get(&fetch.server).await?;
        let mut body = download.body;
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            file.write_all(&chunk).await.map_err(io)?;
            crash::point("download-partial");
            written += chunk.len() as u64;
            down.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        file.flush().await.map_err(io)?;
        if download.len.is_some_and(|l| l != written) {
            return Err(ItemFail::Remote(RemoteError::Truncated(format!("{written} of {} bytes", download.len.unwrap_or(0)))));
        }
        if written != fetch.size {
            return Ok(None);
        }
        let file = file.into_std().await;
        if let Some(secs) = fetch.mtime.filter(|s| *s > 0) {
            let _ = file.set_modified(UNIX_EPOCH + Duration::from_secs(secs as u64));
        }
        drop(file);
        Ok(Some(temp))
    }
}

/// The record of a just-downloaded (or found identical) file.
fn record(local: &LocalEntry, fetch: &Fetch) -> Record {
    Record {
        kind: Kind::File,
        size: local.size,
        mtime: local.mtime,
        inode: local.inode,
        etag: fetch.version.clone(),
        file_id: fetch.file_id.clone(),
        checksum: None,
    }
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// A temporary download, removed on drop unless placed.
struct Temp(PathBuf, bool);

impl Temp {
    fn new(dir: &Path) -> Temp {
        Temp(dir.join(format!("{}{:016x}", names::TEMP_PREFIX, rand::random::<u64>())), false)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Renames over `target` (atomic on one file system).
    fn place(mut self, target: &Path) -> std::io::Result<PathBuf> {
        std::fs::rename(&self.0, target)?;
        self.1 = true;
        Ok(target.to_path_buf())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.1 {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Exactly `len` bytes of a file, in chunks (an error if the file is shorter now).
fn read_stream(file: tokio::fs::File, len: u64) -> futures_util::stream::BoxStream<'static, std::io::Result<Bytes>> {
    stream::unfold((file, len), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; left.min(256 * 1024) as usize];
        match file.read(&mut buf).await {
            Ok(0) => Some((Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file got shorter while uploading")), (file, 0))),
            Ok(n) => {
                // Mid-body: the server holds a partial upload when the process dies here.
                super::crash::point("upload-partial");
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    })
    .boxed()
}

async fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (mut fa, mut fb) = (tokio::fs::File::open(a).await?, tokio::fs::File::open(b).await?);
    if fa.metadata().await?.len() != fb.metadata().await?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let na = fa.read(&mut ba).await?;
        if na == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..na]).await?;
        if ba[..na] != bb[..na] {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pack;

    #[test]
    fn requests_are_filled_by_count_and_bytes_in_order() {
        let sizes = |groups: Vec<Vec<u64>>| groups.iter().map(|g| g.len()).collect::<Vec<_>>();
        // 300 small files, 75 a request: four full requests.
        assert_eq!(sizes(pack((0..300).map(|_| (10_240, 10_240)), 75, 4 << 20)), [75, 75, 75, 75]);
        // The byte bound closes a request first; a file over it goes alone.
        let items = [3u64, 3, 3, 10, 1].map(|s| (s, s));
        assert_eq!(pack(items, 100, 6), [vec![3, 3], vec![3], vec![10], vec![1]]);
        assert!(pack(std::iter::empty::<(u64, ())>(), 5, 5).is_empty());
    }
}
