//! The journal: what both sides agreed on after the last successful step, one SQLite database
//! per sync folder, in the app's data dir (never inside the synced folder). WAL mode, and one
//! small transaction per item, so a crash at any point leaves a consistent state.
//!
//! Schema version 1: `items` (one row per synced path), `failures` (items that failed, with a
//! retry count and the earliest next try), `meta` (last sync, last error, ...).
//! Version 2 adds `failures.detail` (who holds the lock of a `locked` item) and `uploads` (the
//! Nextcloud chunked uploads started and not finished, issue 11 defect 5: the server's uploads
//! root cannot be listed, so what is not remembered here cannot be cleaned).
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{DriveError, Kind};

const SCHEMA_VERSION: i64 = 2;

/// What the journal knows of one item: the local stat and the remote version that were
/// identical in content at the last sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    pub kind: Kind,
    pub size: u64,
    /// Local mtime, nanoseconds.
    pub mtime: i64,
    pub inode: u64,
    /// The remote version ([`super::remote::RemoteEntry::version`]), files only.
    pub etag: Option<String>,
    pub file_id: Option<String>,
    pub checksum: Option<String>,
}

/// An item that failed, and when to try again.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub path: String,
    pub code: String,
    pub reason: String,
    pub retries: u32,
    /// Unix seconds.
    pub next_try: i64,
    /// For `locked`: who holds the lock ("" when the server does not say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

pub struct Journal {
    conn: Connection,
    path: PathBuf,
}

impl Journal {
    /// Where the journal of a sync folder lives: `DATA/drive/<hash of folder and server>.sqlite`.
    pub fn path_for(data_dir: &Path, folder: &Path, remote_id: &str) -> PathBuf {
        let id = format!("{}\n{remote_id}", folder.display());
        data_dir.join("drive").join(format!("{:016x}.sqlite", fnv1a(id.as_bytes())))
    }

    pub fn open(path: &Path) -> Result<Journal, DriveError> {
        let fail = |reason: String| DriveError::Journal { path: path.display().to_string(), reason };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        // The journal lists the member's file names: 0600, before WAL mode creates its -wal and
        // -shm files, which SQLite gives the main file's mode.
        crate::paths::make_private(path).map_err(|e| fail(e.to_string()))?;
        let journal = Journal { conn, path: path.to_path_buf() };
        journal.init().map_err(|e| fail(e.to_string()))?;
        Ok(journal)
    }

    fn init(&self) -> rusqlite::Result<()> {
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL is durable across process crashes in WAL mode (only a power cut may lose the
        // last transactions, which a rescan then redoes).
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        self.conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = self.conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "journal schema {version} is newer than this Passerelle understands ({SCHEMA_VERSION})"
            )));
        }
        if version < 1 {
            self.conn.execute_batch(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS items (
                    path TEXT PRIMARY KEY, kind INTEGER NOT NULL, size INTEGER NOT NULL,
                    mtime INTEGER NOT NULL, inode INTEGER NOT NULL, etag TEXT, file_id TEXT, checksum TEXT);
                 CREATE TABLE IF NOT EXISTS failures (
                    path TEXT PRIMARY KEY, code TEXT NOT NULL, reason TEXT NOT NULL,
                    retries INTEGER NOT NULL, next_try INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 PRAGMA user_version = 1;
                 COMMIT;",
            )?;
        }
        if version < 2 {
            self.conn.execute_batch(
                "BEGIN;
                 ALTER TABLE failures ADD COLUMN detail TEXT;
                 CREATE TABLE IF NOT EXISTS uploads (id TEXT PRIMARY KEY, started INTEGER NOT NULL);
                 PRAGMA user_version = 2;
                 COMMIT;",
            )?;
        }
        Ok(())
    }

    fn err(&self, e: rusqlite::Error) -> DriveError {
        DriveError::Journal { path: self.path.display().to_string(), reason: e.to_string() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every record, by key.
    pub fn records(&self) -> Result<BTreeMap<String, Record>, DriveError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path, kind, size, mtime, inode, etag, file_id, checksum FROM items")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Record {
                        kind: if r.get::<_, i64>(1)? == 1 { Kind::Dir } else { Kind::File },
                        size: r.get::<_, i64>(2)? as u64,
                        mtime: r.get(3)?,
                        inode: r.get::<_, i64>(4)? as u64,
                        etag: r.get(5)?,
                        file_id: r.get(6)?,
                        checksum: r.get(7)?,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    pub fn put(&self, path: &str, r: &Record) -> Result<(), DriveError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO items (path, kind, size, mtime, inode, etag, file_id, checksum)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    path,
                    if r.kind == Kind::Dir { 1 } else { 0 },
                    r.size as i64,
                    r.mtime,
                    r.inode as i64,
                    r.etag,
                    r.file_id,
                    r.checksum
                ])
            })
            .map_err(|e| self.err(e))?;
        self.clear_failure(path)
    }

    /// Forgets a path and everything below it.
    pub fn remove_tree(&self, path: &str) -> Result<(), DriveError> {
        self.conn
            .execute("DELETE FROM items WHERE path = ?1 OR substr(path, 1, length(?1) + 1) = ?1 || '/'", [path])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets these paths (not what is below them), in one transaction.
    pub fn forget(&mut self, paths: &[String]) -> Result<(), DriveError> {
        let tx = self.conn.transaction().map_err(|e| DriveError::Journal { path: self.path.display().to_string(), reason: e.to_string() })?;
        for p in paths {
            tx.execute("DELETE FROM items WHERE path = ?1", [p])
                .map_err(|e| DriveError::Journal { path: self.path.display().to_string(), reason: e.to_string() })?;
        }
        tx.commit().map_err(|e| DriveError::Journal { path: self.path.display().to_string(), reason: e.to_string() })
    }

    /// Moves a path and everything below it to a new path.
    pub fn rename_tree(&self, from: &str, to: &str) -> Result<(), DriveError> {
        self.conn
            .execute(
                "UPDATE items SET path = ?2 || substr(path, length(?1) + 1)
                 WHERE path = ?1 OR substr(path, 1, length(?1) + 1) = ?1 || '/'",
                [from, to],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn failures(&self) -> Result<Vec<Failure>, DriveError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path, code, reason, retries, next_try, detail FROM failures ORDER BY path")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Failure {
                    path: r.get(0)?,
                    code: r.get(1)?,
                    reason: r.get(2)?,
                    retries: r.get(3)?,
                    next_try: r.get(4)?,
                    detail: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Records a failure; the next try waits 1 min, 2, 4, ... up to 1 h.
    pub fn record_failure(&self, path: &str, code: &str, reason: &str, now: i64) -> Result<(), DriveError> {
        let retries: u32 = self
            .conn
            .query_row("SELECT retries FROM failures WHERE path = ?1", [path], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?
            .unwrap_or(0);
        let delay = (60i64 << retries.min(6)).min(3600);
        self.conn
            .execute(
                "INSERT OR REPLACE INTO failures (path, code, reason, retries, next_try) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![path, code, reason, retries + 1, now + delay],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records an item that waits for a lock on the server's file to end, with who holds it.
    /// No back-off: each run's listing says whether the lock is still there (and a locked
    /// file costs no request), so the item goes as soon as a run finds it unlocked.
    pub fn record_lock_wait(&self, path: &str, reason: &str, by: &str, now: i64) -> Result<(), DriveError> {
        self.conn
            .execute(
                "INSERT INTO failures (path, code, reason, retries, next_try, detail) VALUES (?1, 'locked', ?2, 1, ?3, ?4)
                 ON CONFLICT(path) DO UPDATE SET code = 'locked', reason = ?2, retries = retries + 1, next_try = ?3, detail = ?4",
                params![path, reason, now, by],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets the `locked` items not in `still`: their lock ended, or the change that waited
    /// is gone.
    pub fn clear_lock_waits_except(&self, still: &std::collections::BTreeSet<String>) -> Result<(), DriveError> {
        let waiting: Vec<String> = self.failures()?.into_iter().filter(|f| f.code == "locked").map(|f| f.path).collect();
        for p in waiting.iter().filter(|p| !still.contains(*p)) {
            self.clear_failure(p)?;
        }
        Ok(())
    }

    /// The chunked uploads started and not yet finished or deleted: id -> unix seconds started.
    pub fn uploads(&self) -> Result<BTreeMap<String, i64>, DriveError> {
        let mut stmt = self.conn.prepare_cached("SELECT id, started FROM uploads").map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Remembers an upload (keeps the first start time of one already known).
    pub fn add_upload(&self, id: &str, started: i64) -> Result<(), DriveError> {
        self.conn
            .execute("INSERT OR IGNORE INTO uploads (id, started) VALUES (?1, ?2)", params![id, started])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn remove_upload(&self, id: &str) -> Result<(), DriveError> {
        self.conn.execute("DELETE FROM uploads WHERE id = ?1", [id]).map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn clear_failure(&self, path: &str) -> Result<(), DriveError> {
        self.conn.execute("DELETE FROM failures WHERE path = ?1", [path]).map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn clear_failures(&self) -> Result<(), DriveError> {
        self.conn.execute("DELETE FROM failures", []).map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, DriveError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), DriveError> {
        self.conn
            .execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", [key, value])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn delete_meta(&self, key: &str) -> Result<(), DriveError> {
        self.conn.execute("DELETE FROM meta WHERE key = ?1", [key]).map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// FNV-1a: a stable hash for file names (std's hasher may change between Rust versions).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_trees() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let r = Record { kind: Kind::File, size: 3, mtime: 7, inode: 9, etag: Some("e".into()), file_id: None, checksum: None };
        for p in ["a", "a/b", "a/b/c", "ab", "z"] {
            j.put(p, &r).unwrap();
        }
        j.rename_tree("a", "x").unwrap();
        let keys: Vec<_> = j.records().unwrap().into_keys().collect();
        assert_eq!(keys, ["ab", "x", "x/b", "x/b/c", "z"]);
        j.remove_tree("x/b").unwrap();
        let keys: Vec<_> = j.records().unwrap().into_keys().collect();
        assert_eq!(keys, ["ab", "x", "z"]);
        j.record_failure("z", "server_error", "boom", 100).unwrap();
        j.record_failure("z", "server_error", "boom", 100).unwrap();
        let f = &j.failures().unwrap()[0];
        assert_eq!((f.retries, f.next_try), (2, 220));
        j.record_lock_wait("z", "z is being edited online", "Bob", 300).unwrap();
        let f = &j.failures().unwrap()[0];
        assert_eq!((f.code.as_str(), f.retries, f.next_try, f.detail.as_deref()), ("locked", 3, 300, Some("Bob")));
        j.clear_lock_waits_except(&Default::default()).unwrap();
        assert!(j.failures().unwrap().is_empty());
        j.add_upload("u1", 5).unwrap();
        j.add_upload("u1", 9).unwrap();
        j.add_upload("u2", 7).unwrap();
        j.remove_upload("u2").unwrap();
        assert_eq!(j.uploads().unwrap().into_iter().collect::<Vec<_>>(), [("u1".to_string(), 5)]);
        drop(j);
        let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        assert_eq!(j.records().unwrap().len(), 3);
    }

    /// A journal written by schema 1 opens as schema 2: its failures keep their rows (no
    /// detail) and the uploads table exists.
    #[test]
    fn schema_1_journals_are_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE items (path TEXT PRIMARY KEY, kind INTEGER NOT NULL, size INTEGER NOT NULL,
                    mtime INTEGER NOT NULL, inode INTEGER NOT NULL, etag TEXT, file_id TEXT, checksum TEXT);
                 CREATE TABLE failures (path TEXT PRIMARY KEY, code TEXT NOT NULL, reason TEXT NOT NULL,
                    retries INTEGER NOT NULL, next_try INTEGER NOT NULL);
                 CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 INSERT INTO failures VALUES ('a.txt', 'quota_exceeded', 'full', 2, 99);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let j = Journal::open(&path).unwrap();
        let f = &j.failures().unwrap()[0];
        assert_eq!((f.path.as_str(), f.retries, f.detail.clone()), ("a.txt", 2, None));
        j.add_upload("u", 1).unwrap();
        assert_eq!(j.uploads().unwrap().len(), 1);
        let version: i64 = j.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, 2);
        drop(j);
        // Opening again does not migrate twice.
        assert_eq!(Journal::open(&path).unwrap().uploads().unwrap().len(), 1);
    }
}
