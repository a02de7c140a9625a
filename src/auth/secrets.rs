//! Where secrets live: the OS keychain (Secret Service on Linux, Keychain on macOS, Credential
//! Manager on Windows) through `keyring`, or, where no keychain exists (a headless Linux without
//! a Secret Service), a file readable only by the member, with a warning saying so.
//!
//! The choice is made once per installation, at the first start, and written down
//! (`secrets-store` in the data dir): a keychain that fails later is reported as an error, never
//! silently replaced by the file for one process, so that the tray and the CLI always share one
//! store. An installation that already has a secrets file keeps it.
//!
//! The file store is written under an exclusive lock (two processes, many threads), through a
//! fresh temporary file created exclusively, never through a symbolic link, with mode 0600
//! forced, synced, then renamed into place.
//!
//! Each entry is a string under a short key ("oidc", "chat", "webdav", ...). Callers store JSON
//! when they need several fields.
//!
//! Every entry but the login itself belongs to the account that was logged in when it was
//! saved ([`SecretStore::set_owned`]), and is only given back while that account is logged in
//! ([`SecretStore::get_owned`]): two members sharing a computer never send each other's app
//! password, chat token or calendar password. A login as another account drops the previous
//! account's entries at once ([`SecretStore::forget_other_accounts`]).
use std::{
    collections::BTreeMap,
    fs::File,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use url::Url;

use crate::paths::Dirs;

/// The chat's login token or personal access token.
pub const CHAT_KEY: &str = "chat";
/// The calendar server's own password.
pub const CALENDAR_KEY: &str = "caldav";
/// A generic WebDAV server's password.
pub const WEBDAV_KEY: &str = "webdav";
/// Nextcloud's mode and app password, one entry per server.
pub const NEXTCLOUD_PREFIX: &str = "nextcloud:";

/// The entry of the Nextcloud at `base`.
pub fn nextcloud_key(base: &Url) -> String {
    format!("{NEXTCLOUD_PREFIX}{}", base.as_str().trim_end_matches('/'))
}

/// Every entry that belongs to an account, for an organisation whose Nextcloud is `nextcloud`:
/// named here once for the logout and a login as another account, since the keychain cannot
/// list its entries.
pub fn account_keys(nextcloud: Option<&Url>) -> Vec<String> {
    let mut keys: Vec<String> = [CHAT_KEY, CALENDAR_KEY, WEBDAV_KEY].map(str::to_string).into();
    keys.extend(nextcloud.map(nextcloud_key));
    keys
}

/// An entry as [`SecretStore::set_owned`] saves it: the secret and the account it was saved
/// for (`None`: nobody was logged in, as with a Nextcloud reached by Login Flow v2 alone).
/// An entry that does not read as one was saved by an earlier version, before entries carried
/// their account.
#[derive(Serialize, Deserialize)]
struct Owned {
    account: Option<String>,
    secret: String,
}

/// Whether an entry is `account`'s; one without its account (an earlier version's) is when
/// `untagged_belongs`.
fn belongs(text: &str, account: &str, untagged_belongs: bool) -> bool {
    match serde_json::from_str::<Owned>(text) {
        Ok(owned) => owned.account.as_deref() == Some(account),
        Err(_) => untagged_belongs,
    }
}

const SERVICE: &str = "passerelle";
/// Where the installation's choice of store is written, in the data dir.
const CHOICE_FILE: &str = "secrets-store";

#[derive(Debug, Error)]
pub enum SecretError {
    #[error("the keychain refused access: {0}")]
    Keychain(String),
    #[error("the secrets file {path} could not be used: {reason}")]
    File { path: String, reason: String },
}

/// A handle on the secret store chosen for this installation. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SecretStore {
    backend: Arc<Backend>,
    /// Where lock files go (the data dir): one process at a time refreshes the session.
    dir: PathBuf,
}

#[derive(Debug)]
enum Backend {
    /// `scope` keeps separate installations (`PASSERELLE_HOME`) apart in one keychain.
    Keychain { scope: Option<String> },
    File { path: PathBuf },
    /// Entries held in this process only: the previous account's secrets set aside when
    /// another account logs in, so that they can still be revoked on their servers
    /// ([`SecretStore::set_aside`]). Never written anywhere.
    Memory { entries: std::sync::Mutex<BTreeMap<String, String>> },
}

/// Which store an installation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Keychain,
    File,
}

/// The installation's store: the recorded choice if there is one; else the file when a secrets
/// file already exists (an installation that used it before); else the keychain when it
/// answers, else the file.
pub fn decide(recorded: Option<&str>, file_exists: bool, probe: impl FnOnce() -> Result<(), String>) -> (Choice, bool) {
    match recorded.map(str::trim) {
        Some("keychain") => return (Choice::Keychain, false),
        Some("file") => return (Choice::File, false),
        _ => {}
    }
    if file_exists {
        return (Choice::File, true);
    }
    match probe() {
        Ok(()) => (Choice::Keychain, true),
        Err(reason) => {
            tracing::warn!(%reason, "no keychain is available");
            (Choice::File, true)
        }
    }
}

impl SecretStore {
    /// The store of this installation (see [`decide`]). `PASSERELLE_SECRETS=file` forces the
    /// file for this process (tests, machines whose keychain prompts on every access).
    pub fn open(dirs: &Dirs) -> SecretStore {
        let file_path = dirs.data.join("secrets.json");
        let file = || SecretStore { backend: Arc::new(Backend::File { path: file_path.clone() }), dir: dirs.data.clone() };
        if std::env::var("PASSERELLE_SECRETS").is_ok_and(|v| v == "file") {
            return file();
        }
        let scope = std::env::var_os("PASSERELLE_HOME").map(|_| dirs.data.display().to_string());
        let keychain = SecretStore { backend: Arc::new(Backend::Keychain { scope }), dir: dirs.data.clone() };
        let choice_path = dirs.data.join(CHOICE_FILE);
        let recorded = std::fs::read_to_string(&choice_path).ok();
        let (choice, new) = decide(recorded.as_deref(), file_path.exists(), || keychain.probe());
        if new {
            let word = match choice {
                Choice::Keychain => "keychain",
                Choice::File => "file",
            };
            if let Err(e) = crate::paths::private_dir(&dirs.data).and_then(|()| crate::paths::write_private(&choice_path, word.as_bytes())) {
                tracing::warn!(error = %e, "could not record the choice of secret store");
            }
            if choice == Choice::File {
                tracing::warn!(
                    "secrets are kept in a file readable only by you ({}), for this installation",
                    file_path.display()
                );
            }
        }
        match choice {
            Choice::Keychain => keychain,
            Choice::File => file(),
        }
    }

    /// A store in a given file, for tests and tools.
    pub fn file(path: PathBuf) -> SecretStore {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        SecretStore { backend: Arc::new(Backend::File { path }), dir }
    }

    /// A copy, in this process's memory only, of the entries `keys` and the login: what a logout
    /// needs to end this account's access on its servers once the store itself has moved on
    /// to another account.
    pub fn set_aside(&self, keys: &[String]) -> Result<SecretStore, SecretError> {
        let mut entries = BTreeMap::new();
        for key in keys.iter().map(String::as_str).chain([super::SESSION_KEY]) {
            if let Some(text) = self.get(key)? {
                entries.insert(key.to_string(), text);
            }
        }
        Ok(SecretStore { backend: Arc::new(Backend::Memory { entries: std::sync::Mutex::new(entries) }), dir: self.dir.clone() })
    }

    /// Applies `change` to the entries of a memory store.
    fn in_memory(entries: &std::sync::Mutex<BTreeMap<String, String>>, change: impl FnOnce(&mut BTreeMap<String, String>)) {
        change(&mut entries.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Says where secrets are kept, in words for `whoami`.
    pub fn location(&self) -> String {
        match &*self.backend {
            Backend::Keychain { .. } => "OS keychain".to_string(),
            Backend::File { path } => format!("file {} (no keychain available)", path.display()),
            Backend::Memory { .. } => "memory".to_string(),
        }
    }

    pub fn is_keychain(&self) -> bool {
        matches!(&*self.backend, Backend::Keychain { .. })
    }

    /// The file of the file store.
    pub fn file_path(&self) -> Option<&Path> {
        match &*self.backend {
            Backend::File { path } => Some(path),
            Backend::Keychain { .. } | Backend::Memory { .. } => None,
        }
    }

    /// An exclusive lock named `name` beside the store, shared by every process of this
    /// installation, held until the returned file is dropped. Blocks until it is free, on a
    /// blocking thread.
    pub async fn lock(&self, name: &str) -> Result<File, SecretError> {
        let path = self.dir.join(format!("{name}.lock"));
        tokio::task::spawn_blocking(move || lock_file(&path))
            .await
            .map_err(|e| SecretError::File { path: "lock".into(), reason: e.to_string() })?
    }

    fn probe(&self) -> Result<(), String> {
        let entry = self.entry("probe").map_err(|e| e.to_string())?;
        match entry.get_password() {
            Ok(_) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn entry(&self, key: &str) -> Result<keyring::Entry, SecretError> {
        let user = match &*self.backend {
            Backend::Keychain { scope: Some(scope) } => format!("{key}@{scope}"),
            _ => key.to_string(),
        };
        keyring::Entry::new(SERVICE, &user).map_err(|e| SecretError::Keychain(e.to_string()))
    }

    pub fn get(&self, key: &str) -> Result<Option<String>, SecretError> {
        match &*self.backend {
            Backend::Keychain { .. } => match self.entry(key)?.get_password() {
                Ok(v) => Ok(Some(v)),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(SecretError::Keychain(e.to_string())),
            },
            Backend::File { path } => Ok(read_file(path)?.remove(key)),
            Backend::Memory { entries } => Ok(entries.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned()),
        }
    }

    pub fn set(&self, key: &str, value: &str) -> Result<(), SecretError> {
        match &*self.backend {
            Backend::Keychain { .. } => {
                self.entry(key)?.set_password(value).map_err(|e| SecretError::Keychain(e.to_string()))
            }
            Backend::File { path } => update_file(path, |all| {
                all.insert(key.to_string(), value.to_string());
                true
            }),
            Backend::Memory { entries } => {
                SecretStore::in_memory(entries, |all| {
                    all.insert(key.to_string(), value.to_string());
                });
                Ok(())
            }
        }
    }

    pub fn delete(&self, key: &str) -> Result<(), SecretError> {
        match &*self.backend {
            Backend::Keychain { .. } => match self.entry(key)?.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                Err(e) => Err(SecretError::Keychain(e.to_string())),
            },
            Backend::File { path } => update_file(path, |all| all.remove(key).is_some()),
            Backend::Memory { entries } => {
                SecretStore::in_memory(entries, |all| {
                    all.remove(key);
                });
                Ok(())
            }
        }
    }

    /// The account of the login saved in this store, also once the server ended it; `None`
    /// when nobody is logged in.
    pub fn account(&self) -> Result<Option<String>, SecretError> {
        Ok(self.get(super::SESSION_KEY)?.and_then(|text| super::session::account_of_saved(&text)))
    }

    /// The entry `key` if it belongs to the account logged in now ([`SecretStore::account`]).
    /// An entry of another account is never given back. An entry from before entries carried
    /// their account is taken as the current account's: a login as another account has
    /// dropped it ([`SecretStore::forget_other_accounts`]).
    pub fn get_owned(&self, key: &str) -> Result<Option<String>, SecretError> {
        let account = self.account()?;
        self.get_for(account.as_deref(), key)
    }

    /// The entry `key` if it belongs to `account` (a session's, [`super::Session::account`]:
    /// a process still holding an earlier login keeps to its own secrets). An entry of an
    /// account no longer logged in here is deleted: nobody may use it any more.
    pub fn get_for(&self, account: Option<&str>, key: &str) -> Result<Option<String>, SecretError> {
        let Some(text) = self.get(key)? else { return Ok(None) };
        let Ok(owned) = serde_json::from_str::<Owned>(&text) else { return Ok(Some(text)) };
        if owned.account.as_deref() == account {
            return Ok(Some(owned.secret));
        }
        if owned.account != self.account()? {
            tracing::warn!(key, "a secret saved for another account was dropped");
            self.delete(key)?;
        }
        Ok(None)
    }

    /// Saves `value` under `key` for the account logged in now.
    pub fn set_owned(&self, key: &str, value: &str) -> Result<(), SecretError> {
        let account = self.account()?;
        self.set_for(account.as_deref(), key, value)
    }

    /// Saves `value` under `key` for `account`: the session's that obtained it, whoever logs
    /// in meanwhile.
    pub fn set_for(&self, account: Option<&str>, key: &str, value: &str) -> Result<(), SecretError> {
        let owned = Owned { account: account.map(str::to_string), secret: value.to_string() };
        let text = serde_json::to_string(&owned).map_err(|e| SecretError::Keychain(e.to_string()))?;
        self.set(key, &text)
    }

    /// The entry `key` whichever account it belongs to: only to revoke it on its server at
    /// logout.
    pub fn get_any(&self, key: &str) -> Result<Option<String>, SecretError> {
        Ok(self.get(key)?.map(|text| match serde_json::from_str::<Owned>(&text) {
            Ok(owned) => owned.secret,
            Err(_) => text,
        }))
    }

    /// After a login as `account`: deletes every entry of another account, and the entries
    /// from before entries carried their account unless the login before was this same
    /// account's (`previous`). The file store looks at all its entries; the keychain at
    /// `keys` ([`account_keys`]).
    pub fn forget_other_accounts(&self, account: &str, previous: Option<&str>, keys: &[String]) -> Result<(), SecretError> {
        let untagged_belongs = previous == Some(account);
        let keep = |key: &str, text: &str| key == super::SESSION_KEY || belongs(text, account, untagged_belongs);
        match &*self.backend {
            Backend::File { path } => update_file(path, |all| {
                let before = all.len();
                all.retain(|k, v| keep(k, v));
                all.len() != before
            }),
            Backend::Memory { entries } => {
                SecretStore::in_memory(entries, |all| all.retain(|k, v| keep(k, v)));
                Ok(())
            }
            Backend::Keychain { .. } => {
                for key in keys {
                    if let Some(text) = self.get(key)? {
                        if !keep(key, &text) {
                            self.delete(key)?;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Deletes every entry whose key is in `keys` or starts with one of `prefixes`. The file
    /// store knows its keys and deletes them all at once; the keychain cannot list ours, so
    /// there only the named keys go (callers name every key they use).
    pub fn delete_all(&self, keys: &[&str], prefixes: &[&str]) -> Result<(), SecretError> {
        match &*self.backend {
            Backend::File { path } => update_file(path, |all| {
                let before = all.len();
                all.retain(|k, _| !(keys.contains(&k.as_str()) || prefixes.iter().any(|p| k.starts_with(p))));
                all.len() != before
            }),
            Backend::Memory { entries } => {
                SecretStore::in_memory(entries, |all| all.retain(|k, _| !(keys.contains(&k.as_str()) || prefixes.iter().any(|p| k.starts_with(p)))));
                Ok(())
            }
            Backend::Keychain { .. } => {
                let mut first_error = None;
                for key in keys {
                    if let Err(e) = self.delete(key) {
                        first_error.get_or_insert(e);
                    }
                }
                first_error.map_or(Ok(()), Err)
            }
        }
    }
}

fn file_error(path: &Path, reason: impl ToString) -> SecretError {
    SecretError::File { path: path.display().to_string(), reason: reason.to_string() }
}

/// Opens (creating it 0600, never through a link) and locks a lock file.
fn lock_file(path: &Path) -> Result<File, SecretError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    if let Some(dir) = path.parent() {
        create_private_dirs(dir).map_err(|e| file_error(path, e))?;
    }
    let file = options.open(path).map_err(|e| file_error(path, e))?;
    file.lock().map_err(|e| file_error(path, e))?;
    Ok(file)
}

/// Creates missing folders 0700 (an existing folder is left as it is: it may be shared).
fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

fn read_file(path: &Path) -> Result<BTreeMap<String, String>, SecretError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            // An older version may have left it readable by others: narrow it now.
            crate::paths::make_private(path).map_err(|e| file_error(path, e))?;
            serde_json::from_str(&text).map_err(|e| file_error(path, e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(file_error(path, e)),
    }
}

/// Read-modify-write under the file's lock, so that concurrent writers (threads or processes)
/// never lose each other's entries; written only when `change` says something changed.
fn update_file(path: &Path, change: impl FnOnce(&mut BTreeMap<String, String>) -> bool) -> Result<(), SecretError> {
    use std::io::Write;
    let dir = path.parent().ok_or_else(|| file_error(path, "no parent folder"))?;
    create_private_dirs(dir).map_err(|e| file_error(path, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("secrets.json");
    let _lock = lock_file(&dir.join(format!("{name}.lock")))?;
    let mut all = read_file(path)?;
    if !change(&mut all) {
        return Ok(());
    }
    let text = serde_json::to_vec(&all).map_err(|e| file_error(path, e))?;
    let (mut file, tmp) = crate::paths::private_file(dir, name).map_err(|e| file_error(path, e))?;
    let written = file
        .write_all(&text)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(file_error(path, e));
    }
    // The rename itself must reach the disk before we say it is saved.
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_store_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::file(dir.path().join("s/secrets.json"));
        assert_eq!(store.get("oidc").unwrap(), None);
        store.set("oidc", "value-1").unwrap();
        store.set("chat", "value-2").unwrap();
        assert_eq!(store.get("oidc").unwrap().as_deref(), Some("value-1"));
        store.delete("oidc").unwrap();
        assert_eq!(store.get("oidc").unwrap(), None);
        assert_eq!(store.get("chat").unwrap().as_deref(), Some("value-2"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("s/secrets.json")).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "secrets file must not be readable by others: {mode:o}");
        }
    }

    /// A login saved in `store` for `subject`, as the session keeps it.
    fn log_in(store: &SecretStore, subject: &str) {
        let stored = serde_json::json!({"issuer": "https://id.example", "client_id": "c",
            "identity": {"subject": subject, "name": subject, "email": null, "username": null},
            "access_token": "a", "access_issued_at": 0, "access_expires_at": 1, "refresh_token": "r"});
        store.set(crate::auth::SESSION_KEY, &stored.to_string()).unwrap();
    }

    #[test]
    fn an_entry_is_only_given_to_the_account_it_was_saved_for() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::file(dir.path().join("secrets.json"));
        log_in(&store, "alice");
        store.set_owned(CHAT_KEY, "alice-token").unwrap();
        assert_eq!(store.get_owned(CHAT_KEY).unwrap().as_deref(), Some("alice-token"));
        // Bob's login written by any means (another version, another process): alice's entry
        // is not given to him, and is gone.
        log_in(&store, "bob");
        assert_eq!(store.get_owned(CHAT_KEY).unwrap(), None);
        assert_eq!(store.get(CHAT_KEY).unwrap(), None);
        assert_eq!(store.get_any(CALENDAR_KEY).unwrap(), None);
    }

    /// A process still running alice's session (the tray) after bob logged in (the CLI): what
    /// it saves is alice's, never given to bob; and it does not delete bob's.
    #[test]
    fn a_process_of_an_earlier_login_keeps_to_its_own_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::file(dir.path().join("secrets.json"));
        log_in(&store, "alice");
        let alice = store.account().unwrap();
        log_in(&store, "bob");
        store.set_owned(CALENDAR_KEY, "bob-password").unwrap();
        assert_eq!(store.get_for(alice.as_deref(), CALENDAR_KEY).unwrap(), None);
        assert_eq!(store.get_owned(CALENDAR_KEY).unwrap().as_deref(), Some("bob-password"), "bob's entry stays");
        store.set_for(alice.as_deref(), CHAT_KEY, "alice-token").unwrap();
        assert_eq!(store.get_owned(CHAT_KEY).unwrap(), None, "alice's token is not given to bob");
        assert_eq!(store.get(CHAT_KEY).unwrap(), None, "and is gone");
    }

    #[test]
    fn a_login_as_another_account_drops_the_previous_accounts_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::file(dir.path().join("secrets.json"));
        log_in(&store, "alice");
        let alice = store.account().unwrap().expect("alice is logged in");
        store.set_owned(CALENDAR_KEY, "alice-password").unwrap();
        // Saved by an earlier version, without its account.
        store.set(WEBDAV_KEY, r#"{"user":"alice"}"#).unwrap();
        // Alice again: both stay, the old entry taken as hers.
        store.forget_other_accounts(&alice, Some(&alice), &[]).unwrap();
        assert_eq!(store.get_owned(CALENDAR_KEY).unwrap().as_deref(), Some("alice-password"));
        assert_eq!(store.get_owned(WEBDAV_KEY).unwrap().as_deref(), Some(r#"{"user":"alice"}"#));
        log_in(&store, "bob");
        let bob = store.account().unwrap().expect("bob is logged in");
        assert_ne!(alice, bob);
        store.forget_other_accounts(&bob, Some(&alice), &[]).unwrap();
        assert_eq!(store.get(CALENDAR_KEY).unwrap(), None);
        assert_eq!(store.get(WEBDAV_KEY).unwrap(), None);
        assert!(store.get(crate::auth::SESSION_KEY).unwrap().is_some(), "bob's login stays");
    }

    #[test]
    fn the_store_is_chosen_once() {
        let refuse = || -> Result<(), String> { Err("no Secret Service".into()) };
        let answer = || -> Result<(), String> { Ok(()) };
        assert_eq!(decide(Some("keychain"), false, || panic!("a recorded choice is not probed")), (Choice::Keychain, false));
        assert_eq!(decide(Some("file\n"), false, || panic!("a recorded choice is not probed")), (Choice::File, false));
        assert_eq!(decide(None, false, answer), (Choice::Keychain, true));
        assert_eq!(decide(None, false, refuse), (Choice::File, true));
        assert_eq!(decide(None, true, answer), (Choice::File, true), "an existing secrets file is kept");
    }
}
