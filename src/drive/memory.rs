//! A [`Remote`] held in memory, for planner, executor and model-based tests (the integration
//! tests use real servers). It behaves like a strict WebDAV server: ETags change on every
//! write, preconditions are enforced, MKCOL needs the parent, MOVE does not overwrite.
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use futures_util::{future::BoxFuture, StreamExt};

use super::{
    names,
    remote::{Capabilities, Download, Precondition, Remote, RemoteEntry, RemoteError, Upload},
    Kind,
};

#[derive(Debug, Clone)]
pub enum Item {
    Dir,
    File { data: Bytes, etag: u64, id: u64 },
}

#[derive(Debug, Default)]
struct State {
    items: BTreeMap<String, Item>,
    next: u64,
}

/// A cheap-to-clone handle on one in-memory tree.
#[derive(Clone, Default)]
pub struct MemoryRemote {
    state: Arc<Mutex<State>>,
    /// Announce file ids (like Nextcloud) so remote renames are detected.
    pub file_ids: bool,
    /// The account it acts as ([`Remote::account`]); handles on one tree may differ here, as
    /// two accounts seeing the same (empty) space.
    pub account: Option<String>,
}

impl MemoryRemote {
    pub fn new() -> MemoryRemote {
        MemoryRemote::default()
    }

    // The lock is never held across an await, so a std mutex is right.
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Test helpers acting "as another client" on the server.
    pub fn write(&self, path: &str, data: &[u8]) {
        self.with(|s| {
            s.next += 1;
            let id = match s.items.get(path) {
                Some(Item::File { id, .. }) => *id,
                _ => s.next,
            };
            s.items.insert(path.to_string(), Item::File { data: Bytes::copy_from_slice(data), etag: s.next, id });
        })
    }

    pub fn mkdir_all(&self, path: &str) {
        self.with(|s| {
            let mut cur = String::new();
            for seg in path.split('/') {
                cur = if cur.is_empty() { seg.to_string() } else { format!("{cur}/{seg}") };
                s.items.entry(cur.clone()).or_insert(Item::Dir);
            }
        })
    }

    pub fn remove(&self, path: &str) {
        self.with(|s| s.items.retain(|p, _| !names::is_within(p, path)))
    }

    pub fn move_item(&self, from: &str, to: &str) -> bool {
        self.with(|s| move_locked(s, from, to))
    }

    /// Every item: path -> `None` for folders, the bytes for files.
    pub fn snapshot(&self) -> BTreeMap<String, Option<Bytes>> {
        self.with(|s| {
            s.items
                .iter()
                .map(|(p, i)| (p.clone(), match i {
                    Item::Dir => None,
                    Item::File { data, .. } => Some(data.clone()),
                }))
                .collect()
        })
    }

    fn entry(path: &str, item: &Item, file_ids: bool) -> RemoteEntry {
        match item {
            Item::Dir => RemoteEntry { kind: Kind::Dir, size: 0, mtime: None, etag: None, file_id: None, server_path: path.into() },
            Item::File { data, etag, id } => RemoteEntry {
                kind: Kind::File,
                size: data.len() as u64,
                mtime: Some(0),
                etag: Some(format!("\"{etag}\"")),
                file_id: file_ids.then(|| id.to_string()),
                server_path: path.into(),
            },
        }
    }
}

fn move_locked(s: &mut State, from: &str, to: &str) -> bool {
    if !s.items.contains_key(from) || s.items.contains_key(to) {
        return false;
    }
    let moved: Vec<(String, Item)> =
        s.items.iter().filter(|(p, _)| names::is_within(p, from)).map(|(p, i)| (p.clone(), i.clone())).collect();
    for (p, item) in moved {
        s.items.remove(&p);
        s.items.insert(format!("{to}{}", &p[from.len()..]), item);
    }
    true
}

fn parent_ok(s: &State, path: &str) -> bool {
    let parent = names::parent(path);
    parent.is_empty() || matches!(s.items.get(parent), Some(Item::Dir))
}

impl Remote for MemoryRemote {
    fn capabilities(&self) -> Capabilities {
        Capabilities { file_ids: self.file_ids, ..Capabilities::default() }
    }

    fn account(&self) -> Option<String> {
        self.account.clone()
    }

    fn list(&self, dir: &str) -> BoxFuture<'_, Result<Vec<(String, RemoteEntry)>, RemoteError>> {
        let dir = dir.to_string();
        let ids = self.file_ids;
        let result = self.with(|s| {
            if !dir.is_empty() && !matches!(s.items.get(&dir), Some(Item::Dir)) {
                return Err(RemoteError::NotFound(dir.clone()));
            }
            Ok(s.items
                .iter()
                .filter(|(p, _)| p.as_str() != dir && names::parent(p) == dir)
                .map(|(p, i)| (p.rsplit('/').next().unwrap_or(p).to_string(), MemoryRemote::entry(p, i, ids)))
                .collect())
        });
        Box::pin(async move { result })
    }

    fn stat(&self, path: &str) -> BoxFuture<'_, Result<Option<RemoteEntry>, RemoteError>> {
        let ids = self.file_ids;
        let r = self.with(|s| s.items.get(path).map(|i| MemoryRemote::entry(path, i, ids)));
        Box::pin(async move { Ok(r) })
    }

    fn get(&self, path: &str) -> BoxFuture<'_, Result<Download, RemoteError>> {
        let r = self.with(|s| match s.items.get(path) {
            Some(Item::File { data, .. }) => Ok(data.clone()),
            _ => Err(RemoteError::NotFound(path.to_string())),
        });
        Box::pin(async move {
            let data = r?;
            let len = Some(data.len() as u64);
            Ok(Download { len, body: futures_util::stream::once(async move { Ok(data) }).boxed() })
        })
    }

    fn put(&self, path: &str, upload: Upload, pre: Precondition) -> BoxFuture<'_, Result<super::remote::Stored, RemoteError>> {
        let path = path.to_string();
        Box::pin(async move {
            let mut body = upload.body;
            let mut data = Vec::with_capacity(upload.len as usize);
            while let Some(chunk) = body.next().await {
                data.extend_from_slice(&chunk.map_err(|e| RemoteError::Io(e.to_string()))?);
            }
            if data.len() as u64 != upload.len {
                return Err(RemoteError::Truncated(format!("{} of {} bytes", data.len(), upload.len)));
            }
            self.with(|s| {
                if !parent_ok(s, &path) {
                    return Err(RemoteError::Refused { status: 409, message: "no parent folder".into() });
                }
                let current = s.items.get(&path);
                let ok = match (&pre, current) {
                    (_, Some(Item::Dir)) => false,
                    (Precondition::Create, Some(_)) => false,
                    (Precondition::Replace(e), Some(Item::File { etag, .. })) => e == &format!("\"{etag}\""),
                    (Precondition::Replace(_), None) => false,
                    _ => true,
                };
                if !ok {
                    return Err(RemoteError::Changed(path.clone()));
                }
                s.next += 1;
                let id = match current {
                    Some(Item::File { id, .. }) => *id,
                    _ => s.next,
                };
                let etag = s.next;
                s.items.insert(path.clone(), Item::File { data: Bytes::from(data), etag, id });
                Ok(Some(format!("\"{etag}\"")).into())
            })
        })
    }

    fn mkdir(&self, path: &str) -> BoxFuture<'_, Result<super::remote::Stored, RemoteError>> {
        let r = self.with(|s| {
            if !parent_ok(s, path) {
                return Err(RemoteError::Refused { status: 409, message: "no parent folder".into() });
            }
            match s.items.get(path) {
                Some(Item::Dir) => Ok(Default::default()),
                Some(_) => Err(RemoteError::Refused { status: 405, message: "a file is there".into() }),
                None => {
                    s.items.insert(path.to_string(), Item::Dir);
                    Ok(Default::default())
                }
            }
        });
        Box::pin(async move { r })
    }

    fn delete(&self, path: &str, if_match: Option<&str>) -> BoxFuture<'_, Result<(), RemoteError>> {
        let r = self.with(|s| {
            if let (Some(want), Some(Item::File { etag, .. })) = (if_match, s.items.get(path)) {
                if want != format!("\"{etag}\"") {
                    return Err(RemoteError::Changed(path.to_string()));
                }
            }
            s.items.retain(|p, _| !names::is_within(p, path));
            Ok(())
        });
        Box::pin(async move { r })
    }

    fn rename(&self, from: &str, to: &str) -> BoxFuture<'_, Result<(), RemoteError>> {
        let r = self.with(|s| {
            if !parent_ok(s, to) {
                return Err(RemoteError::Refused { status: 409, message: "no parent folder".into() });
            }
            if s.items.contains_key(to) {
                return Err(RemoteError::Changed(to.to_string()));
            }
            if move_locked(s, from, to) {
                Ok(())
            } else {
                Err(RemoteError::NotFound(from.to_string()))
            }
        });
        Box::pin(async move { r })
    }
}
