//! A colleague's edit that lands on the server while our upload of the same file is in flight
//! becomes a conflict (both versions kept), never a silent overwrite: against each real WebDAV
//! server of the stack, Apache mod_dav (honours `If-Match` and `If:`), WsgiDAV (honours
//! `If-Match` on existing names, ignores `If:` on MOVE) and rclone (ignores both).
//!
//! Deterministic: a [`Remote`] wrapper hands the engine an upload body that, when the server
//! first pulls it (the staged PUT is under way, after the listing and after any look-first
//! check made before it), performs the colleague's edit through another client and waits for
//! it to finish. No sleeps, no timing.
mod drive_support;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use drive_support::*;
use futures_util::{future::BoxFuture, StreamExt};
use passerelle::drive::{
    remote::{Capabilities, Download, Precondition, RemoteEntry, RemoteError, Stored, Upload},
    run::{sync_once, FolderPaths, Outcome, RunOptions},
    Remote, WebDav,
};

/// The engine's remote, plus a colleague who writes `path` on the server while our upload of
/// it is running (once).
struct EditDuringUpload {
    inner: WebDav,
    colleague: WebDav,
    path: String,
    data: Vec<u8>,
    fired: Arc<AtomicBool>,
}

impl Remote for EditDuringUpload {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    // The same account as the plain client: the folder is the same account's.
    fn account(&self) -> Option<String> {
        self.inner.account()
    }
    fn list(&self, dir: &str) -> BoxFuture<'_, Result<Vec<(String, RemoteEntry)>, RemoteError>> {
        self.inner.list(dir)
    }
    fn stat(&self, path: &str) -> BoxFuture<'_, Result<Option<RemoteEntry>, RemoteError>> {
        self.inner.stat(path)
    }
    fn get(&self, path: &str) -> BoxFuture<'_, Result<Download, RemoteError>> {
        self.inner.get(path)
    }
    fn put(&self, path: &str, upload: Upload, pre: Precondition) -> BoxFuture<'_, Result<Stored, RemoteError>> {
        if path != self.path || self.fired.swap(true, Ordering::SeqCst) {
            return self.inner.put(path, upload, pre);
        }
        let (colleague, target, data) = (self.colleague.clone(), self.path.clone(), self.data.clone());
        let edit = futures_util::stream::once(async move {
            put(&colleague, &target, &data).await;
            None
        });
        let body = edit.chain(upload.body.map(Some)).filter_map(|chunk| async move { chunk }).boxed();
        self.inner.put(path, Upload { body, ..upload }, pre)
    }
    fn mkdir(&self, path: &str) -> BoxFuture<'_, Result<Stored, RemoteError>> {
        self.inner.mkdir(path)
    }
    fn delete(&self, path: &str, if_match: Option<&str>) -> BoxFuture<'_, Result<(), RemoteError>> {
        self.inner.delete(path, if_match)
    }
    fn rename(&self, from: &str, to: &str) -> BoxFuture<'_, Result<(), RemoteError>> {
        self.inner.rename(from, to)
    }
}

async fn sync(folder: &FolderPaths, remote: &dyn Remote) -> usize {
    let options = RunOptions { backoff: Duration::from_millis(10), ..RunOptions::default() };
    match sync_once(folder, remote, &options, None).await {
        Ok(Outcome::Done(s)) => {
            assert!(s.report.failed.is_empty(), "failures: {:?}", s.report.failed);
            s.report.done
        }
        other => panic!("sync: {other:?}"),
    }
}

/// The contents of the file `stem` + `ext` and of its conflict copies, sorted.
fn versions(tree: &Tree, stem: &str, ext: &str) -> Vec<String> {
    let mut out: Vec<String> = tree
        .iter()
        .filter(|(k, _)| **k == format!("{stem}{ext}") || (k.starts_with(&format!("{stem} (conflit ")) && k.ends_with(ext)))
        .filter_map(|(_, v)| v.as_deref().map(|v| String::from_utf8_lossy(v).into_owned()))
        .collect();
    out.sort();
    out
}

/// A synced folder with `report.txt` on both sides, a client for the server and one for the
/// colleague.
async fn synced(server: &str) -> (tempfile::TempDir, FolderPaths, WebDav, WebDav) {
    let (url, dav) = fresh(server).await;
    let (user, password) = user();
    let colleague = WebDav::new(reqwest::Client::new(), url.clone(), passerelle::drive::Auth::Basic { user, password });
    let home = tempfile::tempdir().expect("tempdir");
    let root = home.path().join("folder");
    write(&root, "report.txt", b"v1");
    let folder = FolderPaths::new(&home.path().join("data"), &root, url.as_str());
    sync(&folder, &dav).await;
    assert_eq!(get(&dav, "report.txt").await, b"v1");
    (home, folder, dav, colleague)
}

/// Writes `rel` here, syncs while the colleague writes it on the server during our upload, then
/// checks that both versions are on both sides and that a further sync has nothing to do.
async fn edit_here_and_there(server: &str, rel: &str, here: &str, there: &str) {
    let (_home, folder, dav, colleague) = synced(server).await;
    write(&folder.root, rel, here.as_bytes());
    let hooked = EditDuringUpload {
        inner: dav.clone(),
        colleague,
        path: rel.into(),
        data: there.as_bytes().to_vec(),
        fired: Default::default(),
    };
    sync(&folder, &hooked).await;
    assert!(hooked.fired.load(Ordering::SeqCst), "the colleague's edit happened during our upload");
    sync(&folder, &dav).await;
    let (local, remote) = (local_tree(&folder.root), remote_tree(&dav).await);
    same(&local, &remote);
    let (stem, ext) = rel.rsplit_once('.').map(|(s, e)| (s, format!(".{e}"))).expect("an extension");
    let mut expected = [here, there];
    expected.sort();
    assert_eq!(versions(&remote, stem, &ext), expected, "both versions kept on {server}; remote: {:?}", remote.keys().collect::<Vec<_>>());
    assert_eq!(sync(&folder, &dav).await, 0, "converged");
}

/// Replace: `report.txt` is known on both sides and edited here; during the upload the
/// colleague edits it on the server.
async fn replace(server: &str) {
    edit_here_and_there(server, "report.txt", "v2 written here, longer", "v2 from the colleague").await;
}

/// Create: a new file here; during its upload the colleague creates the same name.
async fn create(server: &str) {
    edit_here_and_there(server, "new.txt", "made here", "made by the colleague, meanwhile").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn edit_during_replace_is_kept_on_apache() {
    replace("PASSERELLE_TEST_APACHE_DAV").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn edit_during_replace_is_kept_on_wsgidav() {
    replace("PASSERELLE_TEST_WSGIDAV").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn edit_during_replace_is_kept_on_rclone() {
    replace("PASSERELLE_TEST_RCLONE_DAV").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn creation_during_create_is_kept_on_apache() {
    create("PASSERELLE_TEST_APACHE_DAV").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn creation_during_create_is_kept_on_wsgidav() {
    create("PASSERELLE_TEST_WSGIDAV").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn creation_during_create_is_kept_on_rclone() {
    create("PASSERELLE_TEST_RCLONE_DAV").await;
}

/// What the probe finds on each server of the stack, so that the tests above are known to take
/// each path: the `If:` on MOVE (Apache) and the look just before the MOVE (the others).
#[tokio::test(flavor = "multi_thread")]
async fn the_probe_tells_which_servers_check_if_on_move() {
    for (server, checks) in [("PASSERELLE_TEST_APACHE_DAV", true), ("PASSERELLE_TEST_WSGIDAV", false), ("PASSERELLE_TEST_RCLONE_DAV", false)] {
        let (_, dav) = fresh(server).await;
        assert_eq!(dav.honours_if_header().await, checks, "{server}");
        assert!(remote_tree(&dav).await.is_empty(), "the probe's files are gone from {server}");
        let listing = dav.list("").await.expect("list");
        assert!(listing.is_empty(), "nothing left, hidden or not, on {server}: {listing:?}");
    }
}
