//! One complete sync run of a folder: lock, read the journal, discover both sides, plan, check
//! the safety stops, execute, and plan again while something was deferred (conflict copies to
//! upload, type changes, items that changed meanwhile), at most a few passes.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, Instant},
};

use serde::Serialize;

use super::{
    execute::{Executor, Progress, Report},
    journal::Journal,
    local::{self, LocalListing},
    lock::FolderLock,
    names::{self, Ignore, Refusal},
    plan::{self, Plan, SafetyStop},
    remote::{Remote, RemoteListing},
    DriveError,
};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Plan only: nothing is changed anywhere.
    pub dry_run: bool,
    /// The member answered "delete anyway" to the safety stops.
    pub allow_deletes: bool,
    pub max_delete_percent: u32,
    pub transfers: usize,
    pub max_passes: usize,
    pub attempts: u32,
    pub backoff: Duration,
    /// Test hook: stop as if killed after this many actions.
    pub stop_after: Option<usize>,
    /// Retry failed items now instead of waiting for their back-off (a manual sync).
    pub retry_failed: bool,
    /// The answer "send my files back" to a safety stop: what the server no longer has is
    /// uploaded again instead of deleted here ([`plan::sent_back`]).
    pub send_back: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            dry_run: false,
            allow_deletes: false,
            max_delete_percent: 50,
            transfers: 4,
            max_passes: 4,
            attempts: 4,
            backoff: Duration::from_millis(500),
            stop_after: None,
            retry_failed: false,
            send_back: false,
        }
    }
}

/// Where a sync folder's things are.
#[derive(Debug, Clone)]
pub struct FolderPaths {
    pub root: PathBuf,
    pub journal: PathBuf,
    /// The server (folder) this folder syncs with: the `remote_id` given to [`FolderPaths::new`].
    pub server: String,
    /// Where the folder's owner is recorded (see [`crate::folder::Owner`]).
    pub owner: PathBuf,
}

impl FolderPaths {
    /// The folder and its journal in the app's data dir. `remote_id` tells servers apart (the
    /// server URL), so one folder synced to another server starts a fresh journal.
    pub fn new(data_dir: &Path, root: &Path, remote_id: &str) -> FolderPaths {
        FolderPaths {
            root: root.to_path_buf(),
            journal: Journal::path_for(data_dir, root, remote_id),
            server: remote_id.to_string(),
            owner: crate::folder::owner_record(data_dir, root),
        }
    }

    /// A Nextcloud folder: the server folder synced (`Team/Projects`, or "" for the whole space)
    /// is part of what the journal describes, so another server folder gets another journal.
    pub fn nextcloud(data_dir: &Path, root: &Path, server: &url::Url, server_folder: &str) -> FolderPaths {
        let id = if server_folder.is_empty() { server.to_string() } else { format!("{server}#{server_folder}") };
        FolderPaths::new(data_dir, root, &id)
    }

    /// The owner this folder gets when synced by `account` (see [`Remote::account`]).
    pub fn owner_for(&self, account: Option<&str>) -> crate::folder::Owner {
        crate::folder::Owner { server: self.server.clone(), account: account.unwrap_or_default().to_string() }
    }

    pub fn lock(&self) -> PathBuf {
        self.journal.with_extension("lock")
    }
}

/// What a run ended with.
#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Done(Summary),
    DryRun { plan: Plan, refused: Vec<Refusal>, warnings: Vec<Refusal> },
    /// Stopped before deleting: the member must confirm (`allow_deletes`). Nothing was done.
    NeedsConfirmation { stops: Vec<SafetyStop>, plan: Plan },
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub passes: usize,
    pub report: Report,
    /// Items not synced, with the reason (names refused, links, ...).
    pub refused: Vec<Refusal>,
    /// Names that would not work on Windows.
    pub warnings: Vec<Refusal>,
    /// Remote requests made to list the server (last pass).
    pub list_requests: u64,
    /// Where the run's time went.
    pub timings: Timings,
}

/// Where one run's wall time went, in milliseconds, summed over its passes. Taken here with
/// `Instant`, around the calls (the planner itself has no clock). `local_ms` is what this
/// computer spent on its own: everything but waiting for the server's listing and executing
/// the plan, so it is the cost of a run that finds nothing to do, apart from the network.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Timings {
    /// Opening the journal and reading its records and failures.
    pub journal_ms: f64,
    /// Walking the local folder (and removing our stale temporary files).
    pub scan_ms: f64,
    /// Listing the server (network included).
    pub remote_list_ms: f64,
    /// Filtering the remote listing, planning, and the safety stops.
    pub plan_ms: f64,
    /// Executing the plans (zero when there is nothing to do).
    pub execute_ms: f64,
    /// The whole run: lock, journal, every pass, and the bookkeeping written at the end.
    pub total_ms: f64,
    /// `total_ms` minus `remote_list_ms` and `execute_ms`.
    pub local_ms: f64,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Runs one sync of the folder.
pub async fn sync_once(
    folder: &FolderPaths,
    remote: &dyn Remote,
    options: &RunOptions,
    progress: Option<&(dyn Fn(Progress) + Send + Sync)>,
) -> Result<Outcome, DriveError> {
    let started = Instant::now();
    // Whoever chose the folder, a private place is never synced (see crate::folder).
    crate::folder::check(&folder.root)?;
    let _lock = FolderLock::acquire(&folder.lock(), &folder.root)?;
    // One account on one server (issue 14, item 13): another account's journal would read
    // every file as deleted on the server.
    let owner = folder.owner_for(remote.account().as_deref());
    match crate::folder::check_owner(&folder.owner, &folder.root, &owner)? {
        crate::folder::Ownership::Same => {}
        _ if options.dry_run => {}
        crate::folder::Ownership::Unclaimed => crate::folder::claim(&folder.owner, &owner)?,
        crate::folder::Ownership::Vacant => {
            // Nothing of the first owner is left here: their journal must not speak for it.
            tracing::info!(folder = %folder.root.display(), "an empty folder changes owner: starting a fresh journal");
            for suffix in ["", "-wal", "-shm"] {
                let mut name = folder.journal.clone().into_os_string();
                name.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(name));
            }
            let _ = std::fs::remove_file(folder.journal.with_extension("tree.json"));
            crate::folder::claim(&folder.owner, &owner)?;
        }
    }
    let mut timings = Timings::default();
    let t = Instant::now();
    // A std mutex: the executor locks it briefly per item, never across an await.
    let journal = Mutex::new(Journal::open(&folder.journal)?);
    timings.journal_ms += ms(t);
    let mut result = run_locked(folder, remote, options, progress, &journal, &mut timings).await;
    let journal = lock(&journal);
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    // Bookkeeping for `status`; failing to write it must not hide the run's own result.
    let _ = match &result {
        Ok(Outcome::Done(_)) => journal
            .set_meta("last_sync", &now)
            .and_then(|_| journal.set_meta("state", "idle"))
            .and_then(|_| journal.delete_meta("last_error"))
            .and_then(|_| journal.delete_meta("question")),
        Ok(Outcome::NeedsConfirmation { stops, .. }) => journal.set_meta("state", "needs_confirmation").and_then(|_| {
            journal.set_meta("question", &stops.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("; "))
        }),
        Ok(Outcome::DryRun { .. }) => Ok(()),
        Err(e) => journal
            .set_meta("state", "error")
            .and_then(|_| journal.set_meta("last_error", &format!("{e} [{}]", e.code()))),
    };
    timings.total_ms = ms(started);
    timings.local_ms = (timings.total_ms - timings.remote_list_ms - timings.execute_ms).max(0.0);
    tracing::debug!(
        journal_ms = timings.journal_ms,
        scan_ms = timings.scan_ms,
        remote_list_ms = timings.remote_list_ms,
        plan_ms = timings.plan_ms,
        execute_ms = timings.execute_ms,
        local_ms = timings.local_ms,
        total_ms = timings.total_ms,
        "run timings"
    );
    if let Ok(Outcome::Done(summary)) = &mut result {
        summary.timings = timings;
    }
    result
}

async fn run_locked(
    folder: &FolderPaths,
    remote: &dyn Remote,
    options: &RunOptions,
    progress: Option<&(dyn Fn(Progress) + Send + Sync)>,
    journal: &Mutex<Journal>,
    timings: &mut Timings,
) -> Result<Outcome, DriveError> {
    let t = Instant::now();
    let mut records = lock(journal).records()?;
    timings.journal_ms += ms(t);
    if !folder.root.is_dir() {
        if records.is_empty() && !folder.root.exists() {
            std::fs::create_dir_all(&folder.root).map_err(|e| DriveError::LocalIo {
                path: folder.root.display().to_string(),
                reason: e.to_string(),
            })?;
        } else {
            // Safety stop: a synced folder vanished (unplugged disk, renamed folder).
            return Err(DriveError::FolderMissing(folder.root.display().to_string()));
        }
    }
    let case_insensitive = local::case_insensitive(&folder.root);
    let mut summary = Summary::default();
    // Items still changing when the passes ran out.
    let mut unsettled: Vec<String> = Vec::new();
    // Local changes waiting for a lock on the server's file (the last pass's).
    let mut waits: BTreeMap<String, String> = BTreeMap::new();
    for pass in 0..options.max_passes.max(1) {
        unsettled.clear();
        let t = Instant::now();
        let ignore = Ignore::load(&folder.root);
        let root = folder.root.clone();
        let scan_ignore = ignore.clone();
        let local = tokio::task::spawn_blocking(move || local::scan(&root, &scan_ignore))
            .await
            .map_err(|e| DriveError::LocalIo { path: folder.root.display().to_string(), reason: e.to_string() })??;
        if !options.dry_run {
            for temp in &local.temps {
                let _ = std::fs::remove_file(temp);
            }
        }
        timings.scan_ms += ms(t);
        let t = Instant::now();
        let mut listing = remote.list_tree().await?;
        if !options.dry_run && pass == 0 {
            remove_stale_remote_temps(remote, &listing).await;
        }
        timings.remote_list_ms += ms(t);
        let t = Instant::now();
        let now = now_unix();
        let failures = lock(journal).failures()?;
        let lock_waits: BTreeSet<String> = failures.iter().filter(|f| f.code == "locked").map(|f| f.path.clone()).collect();
        let skip: BTreeSet<String> = failures
            .into_iter()
            .filter(|f| !options.retry_failed && f.next_try > now)
            .map(|f| f.path)
            .collect();
        timings.journal_ms += ms(t);
        let t = Instant::now();
        filter_remote(&mut listing, &ignore, case_insensitive);
        if options.send_back && !options.dry_run && pass == 0 {
            let forget = plan::sent_back(&records, &listing.entries);
            tracing::info!(items = forget.len(), "sending back what the server no longer has");
            let mut j = lock(journal);
            j.forget(&forget)?;
            records = j.records()?;
        }
        // UTC: the local offset cannot be read soundly in a multi-threaded process on Linux.
        let local_now = time::OffsetDateTime::now_utc();
        let mut plan_options = plan::Options::new(time::PrimitiveDateTime::new(local_now.date(), local_now.time()));
        plan_options.skip = skip;
        plan_options.max_delete_percent = options.max_delete_percent;
        plan_options.locked = std::mem::take(&mut listing.locks);
        plan_options.lock_waits = lock_waits;
        let LocalListing { entries: local_entries, refused: local_refused, .. } = local;
        let plan = plan::plan(&records, &local_entries, &listing.entries, &plan_options);
        waits = plan.locked.iter().map(|w| (w.path.clone(), w.by.clone())).collect();
        summary.passes = pass + 1;
        summary.list_requests = listing.requests;
        summary.refused = local_refused.into_iter().chain(listing.refused).chain(plan.kept_by_links.iter().cloned()).collect();
        summary.warnings = listing.warnings;
        tracing::debug!(pass, actions = plan.actions.len(), "planned");
        let stops = plan.safety_stops(&plan_options);
        timings.plan_ms += ms(t);
        if !stops.is_empty() && !options.allow_deletes {
            tracing::warn!(?stops, "safety stop: asking before deleting");
            return Ok(Outcome::NeedsConfirmation { stops, plan });
        }
        if options.dry_run {
            return Ok(Outcome::DryRun { plan, refused: summary.refused, warnings: summary.warnings });
        }
        if plan.is_empty() {
            break;
        }
        let mut executor = Executor::new(&folder.root, remote, journal);
        executor.transfers = options.transfers;
        executor.attempts = options.attempts;
        executor.backoff = options.backoff;
        executor.stop_after = options.stop_after;
        executor.progress = progress;
        let t = Instant::now();
        let report = executor.execute(&plan).await?;
        timings.execute_ms += ms(t);
        unsettled = report.deferred.clone();
        merge(&mut summary.report, report.clone());
        if !(plan.another_pass || report.changed_meanwhile > 0) {
            break;
        }
        let t = Instant::now();
        records = lock(journal).records()?;
        timings.journal_ms += ms(t);
    }
    // A precondition refused on every pass (e.g. a server that answers 412 whatever we do)
    // must not end as "0 done, 0 failed": it is a failure, reported and retried later.
    for path in unsettled {
        let reason = format!("{path} kept changing on the server while being synced; it will be tried again");
        lock(journal).record_failure(&path, "changed_meanwhile", &reason, now_unix())?;
        summary.report.failed.push(super::execute::ItemError { path, code: "changed_meanwhile".into(), reason, by: None });
    }
    // Local changes held back because someone edits the server's file online: reported like a
    // failed item ("being edited online (by X)"), kept in the journal without back-off, and
    // forgotten once no pass waited on them.
    let now = now_unix();
    let journal = lock(journal);
    let executor_waits: BTreeSet<String> =
        summary.report.failed.iter().filter(|f| f.code == "locked").map(|f| f.path.clone()).collect();
    for (path, by) in &waits {
        if executor_waits.contains(path) {
            continue;
        }
        let reason = super::remote::RemoteError::Locked { path: path.clone(), by: Some(by.clone()) }.to_string();
        journal.record_lock_wait(path, &reason, by, now)?;
        summary.report.failed.push(super::execute::ItemError { path: path.clone(), code: "locked".into(), reason, by: Some(by.clone()) });
    }
    let still: BTreeSet<String> = waits.keys().cloned().chain(executor_waits).collect();
    journal.clear_lock_waits_except(&still)?;
    Ok(Outcome::Done(summary))
}

fn lock(j: &Mutex<Journal>) -> std::sync::MutexGuard<'_, Journal> {
    j.lock().unwrap_or_else(|p| p.into_inner())
}

fn merge(into: &mut Report, r: Report) {
    into.done += r.done;
    into.failed.extend(r.failed);
    into.changed_meanwhile += r.changed_meanwhile;
    into.deferred.extend(r.deferred);
    into.bytes_up += r.bytes_up;
    into.bytes_down += r.bytes_down;
    into.conflicts.extend(r.conflicts);
}

/// Staged uploads left by an interrupted run (ours or another device's) older than an hour.
async fn remove_stale_remote_temps(remote: &dyn Remote, listing: &RemoteListing) {
    let now = now_unix();
    for (key, entry) in &listing.entries {
        let name = key.rsplit('/').next().unwrap_or(key);
        let stale = entry.mtime.is_some_and(|m| now - m > 3600);
        if name.starts_with(names::TEMP_PREFIX) && stale {
            if let Err(e) = remote.delete(&entry.server_path, None).await {
                tracing::debug!(path = %key, error = %e, "could not remove a stale temporary upload");
            }
        }
    }
}

/// Drops ignored remote items, and on a case-insensitive disk the second of two names that
/// differ only by case (reported).
pub fn filter_remote(listing: &mut RemoteListing, ignore: &Ignore, case_insensitive: bool) {
    let ignored: Vec<String> = listing.entries.keys().filter(|k| ignore.is_ignored(k)).cloned().collect();
    for k in ignored {
        listing.entries.retain(|p, _| !names::is_within(p, &k));
    }
    if case_insensitive {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut twins: Vec<(String, String)> = Vec::new();
        for k in listing.entries.keys() {
            // A child of a refused twin goes with it.
            if twins.iter().any(|(t, _)| names::is_within(k, t)) {
                continue;
            }
            let folded = k.to_lowercase();
            match seen.get(&folded) {
                Some(first) => twins.push((k.clone(), first.clone())),
                None => {
                    seen.insert(folded, k.clone());
                }
            }
        }
        for (twin, first) in twins {
            listing.refused.push(Refusal {
                path: twin.clone(),
                reason: format!("differs only by case from “{first}”, which this disk cannot tell apart"),
            });
            listing.entries.retain(|p, _| !names::is_within(p, &twin));
        }
    }
}
