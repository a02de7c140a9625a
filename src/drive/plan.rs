//! The planner: a pure function from (journal, local listing, remote listing, options) to a
//! [`Plan`], a printable list of actions. No I/O, no clock (the time for conflict names comes in
//! the options), no async: every decision can be tested as a table.
//!
//! # Decision table
//! Each side's state of a path is computed against the journal `J` (what both sides agreed on
//! at the last sync): **absent**, **new** (not in `J`), **same**, **changed** (file: local
//! size/mtime/inode or remote ETag differ; any item: its type differs), **deleted**.
//!
//! | local \ remote | absent        | new                 | same          | changed          | deleted        |
//! |----------------|---------------|---------------------|---------------|------------------|----------------|
//! | absent         | –             | download / mkdir    |               |                  |                |
//! | new            | upload/mkcol  | conflict (¹)        |               |                  |                |
//! | same           |               |                     | nothing       | download         | delete local   |
//! | changed        |               |                     | upload        | conflict         | upload (²)     |
//! | deleted        |               |                     | delete remote | download (²)     | forget         |
//!
//! 1. Two new folders are simply recorded. Two new files become a conflict, which the executor
//!    resolves by content: identical files are just recorded.
//! 2. Delete against edit: the edit wins.
//!
//! - **Conflict**: the remote version keeps the name; the local version is renamed
//!   `NAME (conflit YYYY-MM-DD HHMMSS).EXT` and uploaded in the next pass, so both sides keep
//!   both versions.
//! - **Type change** (file ↔ folder) on one side while the other is unchanged: this pass
//!   deletes the old item on the other side, the next pass brings the new one. On both sides,
//!   or when the other side added or edited something inside the old folder: conflict.
//! - **Folder deletion** happens only when every item below it would be deleted too; otherwise
//!   the folder is re-created on the side that deleted it (an edit below it wins).
//! - **Renames**: a journal item gone locally whose inode reappears under a new name is a local
//!   rename, done on the server as a MOVE; a journal item gone remotely whose file id reappears
//!   is a remote rename, done locally as a rename. The rest of the table then runs as if the
//!   move had happened, so a renamed and edited file is a move plus an upload.
//!
//! - **Links**: a local symbolic link or special file ([`Kind::Link`]) is never synced and its
//!   name is never taken: a remote item of the same name (and all below it) is left on the
//!   server and reported in [`Plan::kept_by_links`], and a journal entry under that name is
//!   left as it is (no deletion on either side).
//!
//! - **Sending files back** ([`sent_back`]): after a safety stop, the member may answer "the
//!   server lost them, send mine again" instead of "delete mine too". The journal then forgets
//!   what the server no longer lists (except items renamed there, found by file id), so those
//!   rows read *new / absent*: uploaded, never deleted.
//! - **Locked files** (someone edits the file online: Nextcloud's files_lock, given in
//!   [`Options::locked`]): nothing is written to the server's file while the lock lasts (an
//!   upload, a conflict, a delete or a rename would get 423). The local change stays as it is,
//!   untouched, and the path is listed in [`Plan::locked`]. Reading goes on: a server edit of a
//!   locked file is downloaded when the local copy is unchanged. Taking or releasing a lock
//!   changes the file's ETag but not its size or date (observed on Nextcloud 34.0.1), so for a
//!   path that waited on a lock ([`Options::lock_waits`]) an ETag change with the size and
//!   date the journal knows is not read as a server edit: the upload then goes, guarded by the
//!   new ETag (a real edit meanwhile still turns into a conflict), instead of a conflict copy
//!   made of nothing but a lock.
//!
//! Invariant: the plan never deletes or overwrites a version that the journal does not
//! describe (every overwrite and delete is guarded by the known version: `If-Match`, or a
//! re-check of the local stat by the executor).
use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    fmt,
};

use serde::Serialize;

use super::{
    journal::Record,
    local::LocalEntry,
    names,
    remote::{join, Precondition, RemoteEntry},
    Kind,
};

/// What the planner needs besides the three listings.
#[derive(Debug, Clone)]
pub struct Options {
    /// The time written into conflict copy names.
    pub now: time::PrimitiveDateTime,
    /// Paths that failed recently and wait for their back-off: left alone this time.
    pub skip: BTreeSet<String>,
    /// The share of one side's files a plan may delete before it stops to ask.
    pub max_delete_percent: u32,
    /// Fewer deletions than this never stop (deleting one file of two is not a mass deletion).
    pub min_deletes_to_ask: usize,
    /// Server files someone holds a lock on, by key, with who holds it ("" when unnamed).
    pub locked: BTreeMap<String, String>,
    /// Paths whose last run waited on a lock (the journal's `locked` failures).
    pub lock_waits: BTreeSet<String>,
}

impl Options {
    pub fn new(now: time::PrimitiveDateTime) -> Options {
        Options {
            now,
            skip: BTreeSet::new(),
            max_delete_percent: 50,
            min_deletes_to_ask: 3,
            locked: BTreeMap::new(),
            lock_waits: BTreeSet::new(),
        }
    }
}

/// The journal keys the server no longer lists, which [`Plan`]s would delete locally: what
/// "send my files back to the server" forgets, so that the next plan uploads them. An item
/// whose file id the server still lists elsewhere was renamed there, not lost: it is kept.
pub fn sent_back(journal: &BTreeMap<String, Record>, remote: &BTreeMap<String, RemoteEntry>) -> Vec<String> {
    let ids: BTreeSet<&str> = remote.values().filter_map(|e| e.file_id.as_deref()).collect();
    journal
        .iter()
        .filter(|(key, record)| !remote.contains_key(*key) && !record.file_id.as_deref().is_some_and(|id| ids.contains(id)))
        .map(|(key, _)| key.clone())
        .collect()
}

/// The local stat an action expects to still find (else the item changed meanwhile: skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Expect {
    pub size: u64,
    pub mtime: i64,
    pub inode: u64,
}

impl From<&LocalEntry> for Expect {
    fn from(l: &LocalEntry) -> Expect {
        Expect { size: l.size, mtime: l.mtime, inode: l.inode }
    }
}

/// One step. `path` is always the key (NFC); `disk`/`server` are the spellings to act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    MoveRemote { from: String, to: String, server_from: String, server_to: String },
    MoveLocal { from: String, to: String, disk_from: String, disk_to: String },
    /// Both sides changed. The local item is renamed to `copy`; for two files the remote one
    /// is then downloaded in its place (after a content comparison).
    Conflict {
        path: String,
        copy: String,
        disk: String,
        disk_copy: String,
        server: String,
        local_kind: Kind,
        remote_kind: Kind,
        remote: Option<Fetch>,
        expect: Expect,
    },
    MkdirLocal { path: String, disk: String, remote: RemoteEntry },
    MkdirRemote { path: String, server: String, local: LocalEntry },
    Upload { path: String, disk: String, server: String, local: LocalEntry, #[serde(skip)] pre: Precondition },
    Download { path: String, disk: String, fetch: Fetch, expect: Option<Expect> },
    DeleteRemote { path: String, server: String, kind: Kind, if_match: Option<String> },
    DeleteLocal { path: String, disk: String, kind: Kind, expect: Expect },
    /// Both sides already hold the same: write it down.
    Record { path: String, record: Record },
    /// Gone on both sides: forget it.
    Forget { path: String },
}

/// What to download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fetch {
    pub server: String,
    pub size: u64,
    pub version: Option<String>,
    pub mtime: Option<i64>,
    pub file_id: Option<String>,
}

impl Fetch {
    fn of(r: &RemoteEntry) -> Fetch {
        Fetch { server: r.server_path.clone(), size: r.size, version: r.version(), mtime: r.mtime, file_id: r.file_id.clone() }
    }
}

impl Action {
    pub fn path(&self) -> &str {
        match self {
            Action::MoveRemote { to, .. } | Action::MoveLocal { to, .. } => to,
            Action::Conflict { path, .. }
            | Action::MkdirLocal { path, .. }
            | Action::MkdirRemote { path, .. }
            | Action::Upload { path, .. }
            | Action::Download { path, .. }
            | Action::DeleteRemote { path, .. }
            | Action::DeleteLocal { path, .. }
            | Action::Record { path, .. }
            | Action::Forget { path } => path,
        }
    }

    /// Order of execution: renames, conflicts, folders (parents first), transfers, deletions
    /// (children first), bookkeeping.
    pub fn phase(&self) -> u8 {
        match self {
            Action::MoveRemote { .. } | Action::MoveLocal { .. } => 0,
            Action::Conflict { .. } => 1,
            Action::MkdirLocal { .. } | Action::MkdirRemote { .. } => 2,
            Action::Upload { .. } | Action::Download { .. } => 3,
            Action::DeleteLocal { .. } | Action::DeleteRemote { .. } => 4,
            Action::Record { .. } | Action::Forget { .. } => 5,
        }
    }

    /// A short, stable, human line: `upload a/b.txt`.
    pub fn summary(&self) -> String {
        match self {
            Action::MoveRemote { from, to, .. } => format!("move remote {from} -> {to}"),
            Action::MoveLocal { from, to, .. } => format!("move local {from} -> {to}"),
            Action::Conflict { path, copy, .. } => format!("conflict {path} (local copy -> {copy})"),
            Action::MkdirLocal { path, .. } => format!("mkdir local {path}"),
            Action::MkdirRemote { path, .. } => format!("mkdir remote {path}"),
            Action::Upload { path, pre, .. } => match pre {
                Precondition::Create => format!("upload new {path}"),
                _ => format!("upload {path}"),
            },
            Action::Download { path, .. } => format!("download {path}"),
            Action::DeleteRemote { path, kind, .. } => {
                format!("delete remote {path}{}", if *kind == Kind::Dir { "/" } else { "" })
            }
            Action::DeleteLocal { path, kind, .. } => {
                format!("delete local {path}{}", if *kind == Kind::Dir { "/" } else { "" })
            }
            Action::Record { path, .. } => format!("record {path}"),
            Action::Forget { path } => format!("forget {path}"),
        }
    }
}

/// Which side of the sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Local,
    Remote,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Local => "on this computer",
            Side::Remote => "on the server",
        })
    }
}

/// Why a plan must not run without the member's say-so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "stop", rename_all = "snake_case")]
pub enum SafetyStop {
    /// The plan deletes more than the allowed share of one side's files.
    MassDelete { side: Side, deletes: usize, files: usize },
    /// The server lists nothing while the journal knows files: a wiped or wrong server?
    RemoteEmpty { known: usize },
    /// The local folder is empty while the journal knows files: an unmounted disk?
    LocalEmpty { known: usize },
}

impl fmt::Display for SafetyStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SafetyStop::MassDelete { side, deletes, files } => {
                write!(f, "this sync would delete {deletes} of {files} files {side}")
            }
            SafetyStop::RemoteEmpty { known } => {
                write!(f, "the server shows an empty folder, but {known} items were synced before")
            }
            SafetyStop::LocalEmpty { known } => write!(
                f,
                "the local folder is empty (is a disk unplugged?), but {known} items were synced before"
            ),
        }
    }
}

/// Counts the safety stops look at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub journal_items: usize,
    pub journal_files: usize,
    pub local_items: usize,
    pub remote_items: usize,
    /// Files the plan deletes on each side.
    pub local_deletes: usize,
    pub remote_deletes: usize,
}

/// The planner's answer: a value to print, check and execute.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub counts: Counts,
    /// Something was deferred (type change, conflict copy to upload): plan again after this one.
    pub another_pass: bool,
    /// Remote items left on the server because a local link or special file has their name.
    pub kept_by_links: Vec<names::Refusal>,
    /// Local changes waiting because someone edits the server's file online.
    pub locked: Vec<LockWait>,
}

/// A local change that waits for a lock on the server's file to end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockWait {
    pub path: String,
    /// Who holds the lock, as the server names them ("" when it does not).
    pub by: String,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The safety stops this plan triggers (empty: safe to run without asking).
    pub fn safety_stops(&self, options: &Options) -> Vec<SafetyStop> {
        let mut stops = Vec::new();
        let c = &self.counts;
        if c.journal_items > 0 && c.remote_items == 0 {
            stops.push(SafetyStop::RemoteEmpty { known: c.journal_items });
        }
        if c.journal_items > 0 && c.local_items == 0 {
            stops.push(SafetyStop::LocalEmpty { known: c.journal_items });
        }
        for (side, deletes) in [(Side::Local, c.local_deletes), (Side::Remote, c.remote_deletes)] {
            let over = deletes as u64 * 100 > c.journal_files as u64 * options.max_delete_percent as u64;
            if deletes >= options.min_deletes_to_ask && over {
                stops.push(SafetyStop::MassDelete { side, deletes, files: c.journal_files });
            }
        }
        stops
    }

    /// Whether the plan deletes anything.
    pub fn deletes(&self) -> bool {
        self.actions.iter().any(|a| matches!(a, Action::DeleteLocal { .. } | Action::DeleteRemote { .. }))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.actions {
            writeln!(f, "{}", a.summary())?;
        }
        for w in &self.locked {
            match w.by.as_str() {
                "" => writeln!(f, "wait {} (being edited online)", w.path)?,
                by => writeln!(f, "wait {} (being edited online by {by})", w.path)?,
            }
        }
        Ok(())
    }
}

/// A side's state of one path against the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Absent,
    New,
    Same,
    Changed,
    Deleted,
}

fn local_state(j: Option<&Record>, l: Option<&LocalEntry>) -> State {
    match (j, l) {
        (None, None) => State::Absent,
        (None, Some(_)) => State::New,
        (Some(_), None) => State::Deleted,
        (Some(j), Some(l)) if j.kind != l.kind => State::Changed,
        (Some(_), Some(l)) if l.kind == Kind::Dir => State::Same,
        (Some(j), Some(l)) => {
            if j.size == l.size && j.mtime == l.mtime && j.inode == l.inode {
                State::Same
            } else {
                State::Changed
            }
        }
    }
}

fn remote_state(j: Option<&Record>, r: Option<&RemoteEntry>) -> State {
    match (j, r) {
        (None, None) => State::Absent,
        (None, Some(_)) => State::New,
        (Some(_), None) => State::Deleted,
        (Some(j), Some(r)) if j.kind != r.kind => State::Changed,
        (Some(_), Some(r)) if r.kind == Kind::Dir => State::Same,
        (Some(j), Some(r)) => {
            // `j.etag == r.version()`, without building the version when the server gave an ETag.
            let same = match &r.etag {
                Some(e) => j.etag.as_deref() == Some(e.as_str()),
                None => j.etag == r.version(),
            };
            if same {
                State::Same
            } else {
                State::Changed
            }
        }
    }
}

/// Whether a server file whose ETag differs from the journal's still has the size and date the
/// journal knows (the journal's mtime is the local one, in nanoseconds; uploads and downloads
/// give both sides the same second).
fn lock_only_change(j: &Record, r: &RemoteEntry) -> bool {
    r.size == j.size && r.mtime == Some(j.mtime.div_euclid(1_000_000_000))
}

/// The record written when both sides hold the same item.
pub fn record_of(l: &LocalEntry, r: &RemoteEntry) -> Record {
    Record {
        kind: l.kind,
        size: l.size,
        mtime: l.mtime,
        inode: l.inode,
        etag: r.version(),
        file_id: r.file_id.clone(),
        checksum: None,
    }
}

/// Plans one pass. The three maps are keyed by NFC path; ignored and refused items must already
/// be out of them.
pub fn plan(
    journal: &BTreeMap<String, Record>,
    local: &BTreeMap<String, LocalEntry>,
    remote: &BTreeMap<String, RemoteEntry>,
    options: &Options,
) -> Plan {
    // Copied only when a link, a rename or a type change rewrites them (a no-op plan copies
    // nothing).
    let mut j = Cow::Borrowed(journal);
    let mut l = Cow::Borrowed(local);
    let mut r = Cow::Borrowed(remote);
    let mut actions = Vec::new();
    let mut another_pass = false;

    // Links and special files are not synced, and nothing takes their place: everything at and
    // below their names is out of this plan, on all three sides.
    let links: Vec<String> = l.iter().filter(|(_, e)| e.kind == Kind::Link).map(|(k, _)| k.clone()).collect();
    let mut kept_by_links = Vec::new();
    for k in &links {
        if let Some(rr) = r.get(k) {
            kept_by_links.push(names::Refusal {
                path: rr.server_path.clone(),
                reason: "a symbolic link on this computer has this name: the server's item stays on the server".into(),
            });
        }
        hide_subtree(l.to_mut(), k);
        hide_subtree(r.to_mut(), k);
        hide_subtree(j.to_mut(), k);
    }

    // A lock taken or released while a local change waited: the ETag moved, the content did
    // not (same size, same date). Read the server's file as the one the journal knows.
    let mut lock_records = Vec::new();
    for k in &options.lock_waits {
        let (Some(jj), Some(rr)) = (j.get(k), r.get(k)) else { continue };
        if jj.kind == Kind::File && rr.kind == Kind::File && lock_only_change(jj, rr) {
            let mut rec = jj.clone();
            rec.etag = rr.version();
            j.to_mut().insert(k.clone(), rec.clone());
            lock_records.push((k.clone(), rec));
        }
    }

    let counts = Counts {
        journal_items: j.len(),
        journal_files: j.values().filter(|x| x.kind == Kind::File).count(),
        local_items: l.len(),
        remote_items: r.len(),
        ..Counts::default()
    };

    detect_local_renames(&mut j, &mut l, &mut r, &mut actions, options);
    detect_remote_renames(&mut j, &mut l, &mut r, &mut actions, options);

    // A type change on one side with the other unchanged: this pass only deletes the old item
    // on the other side (the changed side's new item is hidden until the next pass).
    // A folder counts as unchanged only if nothing below it was added or edited: a folder that
    // became a file on one side while the other side edited inside it is a conflict (deleting
    // the folder would fail on its new content, and re-creating it fails on the file).
    // Only `l` and `r` change in this loop, so the journal is walked in place.
    let mut type_conflicts: BTreeSet<String> = BTreeSet::new();
    for (k, jj) in j.iter() {
        let (jj, ll, rr) = (Some(jj), l.get(k), r.get(k));
        let (Some(jj), ls, rs) = (jj, local_state(jj, ll), remote_state(jj, rr)) else { continue };
        let local_type_changed = ll.is_some_and(|x| x.kind != jj.kind);
        let remote_type_changed = rr.is_some_and(|x| x.kind != jj.kind);
        if local_type_changed && rs == State::Same {
            if changed_below(&r, k, |c, e| remote_state(j.get(c), Some(e))) {
                type_conflicts.insert(k.clone());
            } else {
                hide_subtree(l.to_mut(), k);
            }
            another_pass = true;
        } else if remote_type_changed && ls == State::Same {
            if changed_below(&l, k, |c, e| local_state(j.get(c), Some(e))) {
                type_conflicts.insert(k.clone());
            } else {
                hide_subtree(r.to_mut(), k);
            }
            another_pass = true;
        }
    }

    // Paths under a folder that is itself in conflict wait for the next pass.
    let mut conflicted_dirs: Vec<String> = Vec::new();
    let mut locked: Vec<LockWait> = Vec::new();
    // Every path of the three maps in key order, each with its three sides: one walk of the
    // sorted maps instead of a union set and three lookups per path.
    for (k, jj, ll, rr) in Union::new(&j, &l, &r) {
        if options.skip.contains(k) || conflicted_dirs.iter().any(|d| names::is_within(k, d)) {
            continue;
        }
        let k: &String = k;
        use State::*;
        let (ls, rs) =
            if type_conflicts.contains(k) { (Changed, Changed) } else { (local_state(jj, ll), remote_state(jj, rr)) };
        // Someone edits the server's file online: whatever would write to it waits.
        if let (Some(by), Some(rr)) = (options.locked.get(k), rr) {
            let writes = matches!((ls, rs), (New, New) | (Changed, Same) | (Changed, Changed) | (Deleted, Same));
            if rr.kind == Kind::File && writes {
                locked.push(LockWait { path: k.clone(), by: by.clone() });
                continue;
            }
        }
        // The ETag absorbed above, nothing else to do: write the new one down.
        if (ls, rs) == (Same, Same) {
            if let Some((_, rec)) = lock_records.iter().find(|(p, _)| p == k) {
                actions.push(Action::Record { path: k.clone(), record: rec.clone() });
            }
        }
        let action = match (ls, rs) {
            (Absent, Absent) | (Same, Same) => None,
            (New, Absent) | (Changed, Same) | (Changed, Deleted) => {
                let Some(ll) = ll else { continue };
                push(k, ll, jj, rr, &l, &r)
            }
            (Absent, New) | (Same, Changed) | (Deleted, Changed) => {
                let Some(rr) = rr else { continue };
                pull(k, rr, ll, &l)
            }
            (New, New) | (Changed, Changed) => {
                let (Some(ll), Some(rr)) = (ll, rr) else { continue };
                if ll.kind == Kind::Dir && rr.kind == Kind::Dir {
                    Some(Action::Record { path: k.clone(), record: record_of(ll, rr) })
                } else {
                    another_pass = true;
                    if ll.kind == Kind::Dir || rr.kind == Kind::Dir {
                        conflicted_dirs.push(k.clone());
                    }
                    let copy = (1..)
                        .map(|n| names::conflict_name_nth(k, options.now, n))
                        .find(|c| !l.contains_key(c) && !r.contains_key(c) && !j.contains_key(c))
                        .unwrap_or_default();
                    let disk = ll.disk_path.clone();
                    let disk_copy = join(
                        names::parent(&disk),
                        copy.rsplit('/').next().unwrap_or(&copy),
                    );
                    Some(Action::Conflict {
                        path: k.clone(),
                        copy,
                        disk,
                        disk_copy,
                        server: rr.server_path.clone(),
                        local_kind: ll.kind,
                        remote_kind: rr.kind,
                        remote: (rr.kind == Kind::File).then(|| Fetch::of(rr)),
                        expect: ll.into(),
                    })
                }
            }
            (Deleted, Same) => {
                let (Some(jj), Some(rr)) = (jj, rr) else { continue };
                Some(Action::DeleteRemote {
                    path: k.clone(),
                    server: rr.server_path.clone(),
                    kind: rr.kind,
                    if_match: if jj.kind == Kind::File { rr.etag.clone() } else { None },
                })
            }
            (Same, Deleted) => {
                let Some(ll) = ll else { continue };
                Some(Action::DeleteLocal { path: k.clone(), disk: ll.disk_path.clone(), kind: ll.kind, expect: ll.into() })
            }
            (Deleted, Deleted) => Some(Action::Forget { path: k.clone() }),
            // Unreachable combinations (a journal entry makes a side same/changed/deleted).
            _ => None,
        };
        actions.extend(action);
    }

    let mut plan = Plan { actions, counts, another_pass, kept_by_links, locked };
    settle_folder_deletions(&mut plan, &l, &r);
    plan.counts.local_deletes = plan
        .actions
        .iter()
        .filter(|a| matches!(a, Action::DeleteLocal { kind: Kind::File, .. }))
        .count();
    plan.counts.remote_deletes = plan
        .actions
        .iter()
        .map(|a| match a {
            Action::DeleteRemote { kind: Kind::File, .. } => 1,
            Action::DeleteRemote { path, kind: Kind::Dir, .. } => journal
                .iter()
                .filter(|(p, rec)| rec.kind == Kind::File && names::is_within(p, path))
                .count(),
            _ => 0,
        })
        .sum();
    // Stable execution order (phase, then parents first; deletions children first).
    plan.actions.sort_by(|a, b| {
        a.phase().cmp(&b.phase()).then_with(|| {
            if a.phase() == 4 {
                b.path().cmp(a.path())
            } else if a.phase() == 0 {
                std::cmp::Ordering::Equal
            } else {
                a.path().cmp(b.path())
            }
        })
    });
    plan
}

/// The union of three key-sorted maps, in key order, with each key's entry on every side: a
/// merge of the three sorted iterators.
struct Union<'a, A, B, C> {
    a: std::iter::Peekable<std::collections::btree_map::Iter<'a, String, A>>,
    b: std::iter::Peekable<std::collections::btree_map::Iter<'a, String, B>>,
    c: std::iter::Peekable<std::collections::btree_map::Iter<'a, String, C>>,
}

impl<'a, A, B, C> Union<'a, A, B, C> {
    fn new(a: &'a BTreeMap<String, A>, b: &'a BTreeMap<String, B>, c: &'a BTreeMap<String, C>) -> Self {
        Union { a: a.iter().peekable(), b: b.iter().peekable(), c: c.iter().peekable() }
    }
}

impl<'a, A, B, C> Iterator for Union<'a, A, B, C> {
    type Item = (&'a String, Option<&'a A>, Option<&'a B>, Option<&'a C>);

    fn next(&mut self) -> Option<Self::Item> {
        let key = [self.a.peek().map(|x| x.0), self.b.peek().map(|x| x.0), self.c.peek().map(|x| x.0)]
            .into_iter()
            .flatten()
            .min()?;
        let a = self.a.next_if(|x| x.0 == key).map(|x| x.1);
        let b = self.b.next_if(|x| x.0 == key).map(|x| x.1);
        let c = self.c.next_if(|x| x.0 == key).map(|x| x.1);
        Some((key, a, b, c))
    }
}

/// Sends the local item to the server (links never: they are out of the plan by then).
fn push(
    k: &str,
    ll: &LocalEntry,
    jj: Option<&Record>,
    rr: Option<&RemoteEntry>,
    _l: &BTreeMap<String, LocalEntry>,
    r: &BTreeMap<String, RemoteEntry>,
) -> Option<Action> {
    let server = rr.map(|x| x.server_path.clone()).unwrap_or_else(|| server_path(k, r));
    Some(match ll.kind {
        Kind::Link => return None,
        Kind::Dir => Action::MkdirRemote { path: k.into(), server, local: ll.clone() },
        Kind::File => {
            let pre = match (rr, jj) {
                (None, _) => Precondition::Create,
                (Some(rr), _) => match &rr.etag {
                    Some(e) => Precondition::Replace(e.clone()),
                    None => Precondition::Any,
                },
            };
            Action::Upload { path: k.into(), disk: ll.disk_path.clone(), server, local: ll.clone(), pre }
        }
    })
}

/// Brings the remote item here (a server never lists links).
fn pull(k: &str, rr: &RemoteEntry, ll: Option<&LocalEntry>, l: &BTreeMap<String, LocalEntry>) -> Option<Action> {
    let disk = ll.map(|x| x.disk_path.clone()).unwrap_or_else(|| disk_path(k, l));
    Some(match rr.kind {
        Kind::Link => return None,
        Kind::Dir => Action::MkdirLocal { path: k.into(), disk, remote: rr.clone() },
        Kind::File => Action::Download { path: k.into(), disk, fetch: Fetch::of(rr), expect: ll.map(Expect::from) },
    })
}

/// The server spelling of a key: the existing parent's spelling plus the key's last name.
fn server_path(k: &str, r: &BTreeMap<String, RemoteEntry>) -> String {
    match r.get(k) {
        Some(e) => e.server_path.clone(),
        None if k.is_empty() => String::new(),
        None => join(&server_path(names::parent(k), r), last(k)),
    }
}

fn disk_path(k: &str, l: &BTreeMap<String, LocalEntry>) -> String {
    match l.get(k) {
        Some(e) => e.disk_path.clone(),
        None if k.is_empty() => String::new(),
        None => join(&disk_path(names::parent(k), l), last(k)),
    }
}

fn last(k: &str) -> &str {
    k.rsplit('/').next().unwrap_or(k)
}

/// Whether an item strictly below `dir` is new or edited on that side.
fn changed_below<V>(map: &BTreeMap<String, V>, dir: &str, state: impl Fn(&str, &V) -> State) -> bool {
    let prefix = format!("{dir}/");
    map.range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
        .any(|(p, e)| matches!(state(p, e), State::New | State::Changed))
}

fn hide_subtree<V>(map: &mut BTreeMap<String, V>, k: &str) {
    let doomed: Vec<String> = map.range(k.to_string()..).map(|(p, _)| p).take_while(|p| p.starts_with(k)).filter(|p| names::is_within(p, k)).cloned().collect();
    for p in doomed {
        map.remove(&p);
    }
}

/// Moves the entries at `from` and below to `to`, fixing up spellings with `fix`.
fn move_subtree<V: Clone>(map: &mut BTreeMap<String, V>, from: &str, to: &str, mut fix: impl FnMut(&mut V, &str)) {
    let moved: Vec<(String, V)> = map
        .range(from.to_string()..)
        .take_while(|(p, _)| p.starts_with(from))
        .filter(|(p, _)| names::is_within(p, from))
        .map(|(p, v)| (p.clone(), v.clone()))
        .collect();
    for (p, mut v) in moved {
        map.remove(&p);
        let suffix = &p[from.len()..];
        fix(&mut v, suffix);
        map.insert(format!("{to}{suffix}"), v);
    }
}

/// Local renames: a journal item missing locally whose inode shows up under a new, unknown name,
/// with the server still holding the known version at the old name.
fn detect_local_renames(
    j: &mut Cow<'_, BTreeMap<String, Record>>,
    l: &mut Cow<'_, BTreeMap<String, LocalEntry>>,
    r: &mut Cow<'_, BTreeMap<String, RemoteEntry>>,
    actions: &mut Vec<Action>,
    options: &Options,
) {
    let mut by_inode: HashMap<u64, String> = HashMap::new();
    for (k, e) in l.iter() {
        if e.inode != 0 && !j.contains_key(k) {
            by_inode.insert(e.inode, k.clone());
        }
    }
    if by_inode.is_empty() {
        return;
    }
    let mut work: VecDeque<String> = j.keys().cloned().collect();
    while let Some(from) = work.pop_front() {
        let Some(rec) = j.get(&from).cloned() else { continue };
        if rec.inode == 0 || l.contains_key(&from) || options.skip.contains(&from) {
            continue;
        }
        let Some(to) = by_inode.get(&rec.inode).cloned() else { continue };
        // Renaming a file someone edits online would get 423: the new name waits unseen (not
        // uploaded as a second copy), the old one is reported as waiting by the main loop.
        if options.locked.contains_key(&from) && r.get(&from).is_some_and(|e| e.kind == Kind::File) {
            by_inode.remove(&rec.inode);
            l.to_mut().remove(&to);
            continue;
        }
        let (Some(le), Some(re)) = (l.get(&to), r.get(&from)) else { continue };
        let parent = names::parent(&to);
        let parent_ok = parent.is_empty() || r.get(parent).is_some_and(|p| p.kind == Kind::Dir);
        if le.kind != rec.kind
            || re.kind != rec.kind
            || j.contains_key(&to)
            || r.contains_key(&to)
            || !parent_ok
            || remote_state(Some(&rec), Some(re)) != State::Same
            || names::is_within(&to, &from)
        {
            continue;
        }
        let server_from = re.server_path.clone();
        let server_to = join(&server_path(parent, r), last(&to));
        actions.push(Action::MoveRemote { from: from.clone(), to: to.clone(), server_from, server_to: server_to.clone() });
        by_inode.remove(&rec.inode);
        move_subtree(j.to_mut(), &from, &to, |_, _| {});
        move_subtree(r.to_mut(), &from, &to, |e, suffix| e.server_path = format!("{server_to}{suffix}"));
        if rec.kind == Kind::Dir {
            work.extend(j.range(to.clone()..).take_while(|(p, _)| p.starts_with(&to)).map(|(p, _)| p.clone()).filter(|p| p != &to));
        }
    }
}

/// Remote renames, by file id (servers that give one), with the local item unchanged.
fn detect_remote_renames(
    j: &mut Cow<'_, BTreeMap<String, Record>>,
    l: &mut Cow<'_, BTreeMap<String, LocalEntry>>,
    r: &mut Cow<'_, BTreeMap<String, RemoteEntry>>,
    actions: &mut Vec<Action>,
    options: &Options,
) {
    let mut by_id: HashMap<String, String> = HashMap::new();
    for (k, e) in r.iter() {
        if let Some(id) = &e.file_id {
            if !j.contains_key(k) {
                by_id.insert(id.clone(), k.clone());
            }
        }
    }
    if by_id.is_empty() {
        return;
    }
    let mut work: VecDeque<String> = j.keys().cloned().collect();
    while let Some(from) = work.pop_front() {
        let Some(rec) = j.get(&from).cloned() else { continue };
        let Some(id) = rec.file_id.clone() else { continue };
        if r.contains_key(&from) || options.skip.contains(&from) {
            continue;
        }
        let Some(to) = by_id.get(&id).cloned() else { continue };
        let (Some(re), Some(le)) = (r.get(&to), l.get(&from)) else { continue };
        let parent = names::parent(&to);
        let parent_ok = parent.is_empty() || l.get(parent).is_some_and(|p| p.kind == Kind::Dir);
        if re.kind != rec.kind
            || le.kind != rec.kind
            || j.contains_key(&to)
            || l.contains_key(&to)
            || !parent_ok
            || local_state(Some(&rec), Some(le)) != State::Same
            || names::is_within(&to, &from)
        {
            continue;
        }
        let disk_from = le.disk_path.clone();
        let disk_to = join(&disk_path(parent, l), last(&to));
        actions.push(Action::MoveLocal { from: from.clone(), to: to.clone(), disk_from, disk_to: disk_to.clone() });
        by_id.remove(&id);
        move_subtree(j.to_mut(), &from, &to, |_, _| {});
        move_subtree(l.to_mut(), &from, &to, |e, suffix| e.disk_path = format!("{disk_to}{suffix}"));
        if rec.kind == Kind::Dir {
            work.extend(j.range(to.clone()..).take_while(|(p, _)| p.starts_with(&to)).map(|(p, _)| p.clone()).filter(|p| p != &to));
        }
    }
}

/// A folder is deleted only when everything below it is deleted too; otherwise it is re-created
/// on the side that deleted it. Remote folder deletions are merged into one recursive DELETE.
fn settle_folder_deletions(plan: &mut Plan, l: &BTreeMap<String, LocalEntry>, r: &BTreeMap<String, RemoteEntry>) {
    let mut by_path: BTreeMap<String, usize> = BTreeMap::new();
    for (i, a) in plan.actions.iter().enumerate() {
        by_path.insert(a.path().to_string(), i);
    }
    // Deepest folders first, so a re-created child keeps its parent.
    let mut dirs: Vec<(String, usize)> = plan
        .actions
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a, Action::DeleteRemote { kind: Kind::Dir, .. } | Action::DeleteLocal { kind: Kind::Dir, .. }))
        .map(|(i, a)| (a.path().to_string(), i))
        .collect();
    dirs.sort_by(|a, b| b.0.cmp(&a.0));
    let mut drop: BTreeSet<usize> = BTreeSet::new();
    for (dir, i) in dirs {
        let remote_side = matches!(plan.actions[i], Action::DeleteRemote { .. });
        let children: Vec<&String> = if remote_side {
            r.range(format!("{dir}/")..).take_while(|(p, _)| p.starts_with(&format!("{dir}/"))).map(|(p, _)| p).collect()
        } else {
            l.range(format!("{dir}/")..).take_while(|(p, _)| p.starts_with(&format!("{dir}/"))).map(|(p, _)| p).collect()
        };
        let all_deleted = children.iter().all(|c| {
            by_path.get(*c).is_some_and(|&ci| match &plan.actions[ci] {
                Action::DeleteRemote { .. } => remote_side,
                Action::DeleteLocal { .. } => !remote_side,
                _ => false,
            })
        });
        if all_deleted {
            if remote_side {
                for c in children {
                    if let Some(&ci) = by_path.get(c) {
                        drop.insert(ci);
                    }
                }
            }
        } else {
            plan.actions[i] = match &plan.actions[i] {
                Action::DeleteRemote { path, .. } => match r.get(path) {
                    Some(re) => Action::MkdirLocal { path: path.clone(), disk: disk_path(path, l), remote: re.clone() },
                    None => continue,
                },
                Action::DeleteLocal { path, .. } => match l.get(path) {
                    Some(le) => Action::MkdirRemote { path: path.clone(), server: server_path(path, r), local: le.clone() },
                    None => continue,
                },
                _ => continue,
            };
        }
    }
    if !drop.is_empty() {
        let mut i = 0;
        plan.actions.retain(|_| {
            i += 1;
            !drop.contains(&(i - 1))
        });
    }
}
