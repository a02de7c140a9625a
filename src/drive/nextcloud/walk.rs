//! Fast change checks with Nextcloud's folder ETags, which change when anything below changes
//! (observed). One Depth-0 PROPFIND on the root says whether anything changed at all (a no-op
//! poll is one request, whatever the size of the space); when something did, the walk descends
//! only into folders whose ETag differs from the last walk, and reuses the remembered listing
//! of every other subtree.
//!
//! The remembered listings ([`TreeCache`]) are the server's own answers, keyed by folder ETag,
//! so reusing them is exact, not a guess. The cache can be saved next to the sync journal.
use std::{
    collections::BTreeMap,
    path::Path,
};

use futures_util::{stream::FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};

use super::{client::Nextcloud, dav, quota::Quota, NextcloudError};

/// How many folder listings run at once.
const PARALLEL: usize = 8;

/// One item as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub is_dir: bool,
    pub size: u64,
    pub mtime: Option<i64>,
    /// Without quotes.
    pub etag: Option<String>,
    pub file_id: Option<String>,
    /// `oc:permissions` letters (R shareable, G readable, D deletable, N renamable, V movable,
    /// W writable, C/K can create file/folder).
    pub permissions: Option<String>,
    /// Someone holds a files_lock lock on it: who ("" when unnamed). Absent from caches
    /// written before it existed, which is right: taking or releasing a lock changes the
    /// file's and every ancestor's ETag (observed on 34.0.1), so such folders are listed anew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
}

impl Entry {
    pub(crate) fn from_item(i: &dav::Item) -> Entry {
        Entry {
            is_dir: i.is_dir,
            size: i.size.unwrap_or(0),
            mtime: i.mtime,
            etag: i.etag.as_deref().map(dav::bare_etag),
            file_id: i.file_id.clone(),
            permissions: i.permissions.clone(),
            lock: i.lock_holder(),
        }
    }

    /// Whether the member may write this file (or create files in this folder).
    pub fn writable(&self) -> bool {
        match &self.permissions {
            None => true,
            Some(p) if self.is_dir => p.contains('C'),
            Some(p) => p.contains('W'),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Folder {
    etag: String,
    children: BTreeMap<String, Entry>,
}

/// The listings of the last walk, by folder path relative to the walked root ("" = the root).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TreeCache {
    root: String,
    folders: BTreeMap<String, Folder>,
}

impl TreeCache {
    /// Loads a saved cache; a missing or unreadable file is an empty cache (a full walk).
    pub fn load(path: &Path) -> TreeCache {
        std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Saves atomically (write then rename), so a crash never leaves half a cache, and 0600:
    /// the cache lists the member's file names.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::paths::write_private(path, &serde_json::to_vec(self).map_err(std::io::Error::other)?)
    }

    pub fn is_empty(&self) -> bool {
        self.folders.is_empty()
    }

    /// Forgets everything (the next walk lists every folder).
    pub fn clear(&mut self) {
        self.folders.clear();
    }
}

/// The result of a walk.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    /// Each folder's children, by folder path relative to the walked root.
    pub folders: BTreeMap<String, BTreeMap<String, Entry>>,
    /// The root folder itself.
    pub root: Option<Entry>,
    pub quota: Option<Quota>,
    /// Nothing changed since the cached walk (answered with one request).
    pub unchanged: bool,
    /// Folders actually listed (PROPFIND Depth 1), in the order they were.
    pub listed: Vec<String>,
    /// Requests made.
    pub requests: u64,
}

impl Walk {
    /// Every item, by path relative to the walked root.
    pub fn entries(&self) -> BTreeMap<String, Entry> {
        let mut out = BTreeMap::new();
        for (dir, children) in &self.folders {
            for (name, e) in children {
                out.insert(join(dir, name), e.clone());
            }
        }
        out
    }

    /// The entry at `path` (relative to the walked root).
    pub fn get(&self, path: &str) -> Option<&Entry> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        self.folders.get(dir)?.get(name)
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Walks the tree below `root` (relative to the user's files root), skipping every folder whose
/// ETag is the one in `cache`, and updates `cache`.
#[tracing::instrument(skip_all, fields(root = %root))]
pub async fn walk(nc: &Nextcloud, root: &str, cache: &mut TreeCache) -> Result<Walk, NextcloudError> {
    let root = root.trim_matches('/').to_string();
    if cache.root != root {
        cache.root = root.clone();
        cache.folders.clear();
    }
    let mut walk = Walk::default();
    let top = nc.root_item(&root).await?;
    walk.requests += 1;
    // On the account root, oc:size is the space used, counted fresh; a sub-folder's is only its own.
    let size = if root.is_empty() { top.size } else { None };
    walk.quota = Some(Quota::from_root(top.quota_used, top.quota_available, size));
    let top_entry = Entry::from_item(&top);
    let top_etag = top_entry.etag.clone().unwrap_or_default();
    walk.root = Some(top_entry);
    if !top_etag.is_empty() && cache.folders.get("").is_some_and(|f| f.etag == top_etag) {
        walk.unchanged = true;
        walk.folders = cache.folders.iter().map(|(k, f)| (k.clone(), f.children.clone())).collect();
        return Ok(walk);
    }

    let mut fresh: BTreeMap<String, Folder> = BTreeMap::new();
    let mut pending = vec![String::new()];
    let mut running = FuturesUnordered::new();
    let mut listed_items = 0usize;
    loop {
        while running.len() < PARALLEL {
            let Some(dir) = pending.pop() else { break };
            let url = nc.files_url(&join(&root, &dir));
            running.push(async move {
                let items = nc.propfind(url, 1, dav::FILE_PROPS).await;
                (dir, items)
            });
        }
        let Some((dir, items)) = running.next().await else { break };
        walk.requests += 1;
        walk.listed.push(dir.clone());
        let Some(items) = items? else {
            // Deleted while we walked: its parent's listing will say so on the next poll.
            continue;
        };
        // The folder itself comes first; its children are one level deeper.
        if items.len() > 1 {
            let depth = if dir.is_empty() { 1 } else { dir.split('/').count() + 1 };
            listed_items += items.len() - 1;
            crate::drive::remote::check_walk_bounds(depth, listed_items).map_err(|e| NextcloudError::TooLarge(e.to_string()))?;
        }
        let mut it = items.into_iter();
        let own = it.next().ok_or_else(|| NextcloudError::Protocol("an empty folder listing".into()))?;
        let mut folder = Folder { etag: own.etag.as_deref().map(dav::bare_etag).unwrap_or_default(), children: BTreeMap::new() };
        for item in it {
            let name = item.name().to_string();
            if name.is_empty() {
                continue;
            }
            let entry = Entry::from_item(&item);
            // Every name is the server's word. One that is not a plain name (`..` made the walk
            // list the same folder forever) is never descended into; it stays in the listing,
            // where the engine's walk (`remote::walk`) refuses and reports it.
            if entry.is_dir && crate::drive::names::check_remote_name(&name).is_ok() {
                let path = join(&dir, &name);
                let same = match (&entry.etag, cache.folders.get(&path)) {
                    (Some(e), Some(f)) => !e.is_empty() && *e == f.etag,
                    _ => false,
                };
                if same {
                    copy_subtree(&cache.folders, &path, &mut fresh);
                } else {
                    pending.push(path);
                }
            }
            folder.children.insert(name, entry);
        }
        fresh.insert(dir, folder);
    }
    cache.folders = fresh;
    walk.folders = cache.folders.iter().map(|(k, f)| (k.clone(), f.children.clone())).collect();
    Ok(walk)
}

/// Copies the remembered listing of `path` and of every folder below it.
fn copy_subtree(from: &BTreeMap<String, Folder>, path: &str, to: &mut BTreeMap<String, Folder>) {
    if let Some(f) = from.get(path) {
        to.insert(path.to_string(), f.clone());
    }
    let prefix = format!("{path}/");
    for (k, f) in from.range(prefix.clone()..) {
        if !k.starts_with(&prefix) {
            break;
        }
        to.insert(k.clone(), f.clone());
    }
}
