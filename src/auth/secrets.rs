//! Where secrets live: the OS keychain (Secret Service on Linux, Keychain on macOS, Credential
//! Manager on Windows) through `keyring`, or, where no keychain exists (a headless Linux without
//! a Secret Service), a file readable only by the member, with a warning saying so.
//!
//! Each entry is a string under a short key ("oidc", "chat", "webdav", ...). Callers store JSON
//! when they need several fields.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use thiserror::Error;

use crate::paths::Dirs;

const SERVICE: &str = "passerelle";

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
}

#[derive(Debug)]
enum Backend {
    /// `scope` keeps separate installations (`PASSERELLE_HOME`) apart in one keychain.
    Keychain { scope: Option<String> },
    File { path: PathBuf },
}

impl SecretStore {
    /// Picks the keychain when one answers, else the private file. `PASSERELLE_SECRETS=file`
    /// forces the file (for machines whose keychain prompts on every access).
    pub fn open(dirs: &Dirs) -> SecretStore {
        let file = || SecretStore { backend: Arc::new(Backend::File { path: dirs.data.join("secrets.json") }) };
        if std::env::var("PASSERELLE_SECRETS").is_ok_and(|v| v == "file") {
            return file();
        }
        let scope = std::env::var_os("PASSERELLE_HOME").map(|_| dirs.data.display().to_string());
        let store = SecretStore { backend: Arc::new(Backend::Keychain { scope }) };
        match store.probe() {
            Ok(()) => store,
            Err(reason) => {
                tracing::warn!(
                    %reason,
                    "no keychain is available: secrets are kept in a file readable only by you ({})",
                    dirs.data.join("secrets.json").display()
                );
                file()
            }
        }
    }

    /// A store in a given file, for tests and tools.
    pub fn file(path: PathBuf) -> SecretStore {
        SecretStore { backend: Arc::new(Backend::File { path }) }
    }

    /// Says where secrets are kept, in words for `whoami`.
    pub fn location(&self) -> String {
        match &*self.backend {
            Backend::Keychain { .. } => "OS keychain".to_string(),
            Backend::File { path } => format!("file {} (no keychain available)", path.display()),
        }
    }

    pub fn is_keychain(&self) -> bool {
        matches!(&*self.backend, Backend::Keychain { .. })
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
        }
    }

    pub fn set(&self, key: &str, value: &str) -> Result<(), SecretError> {
        match &*self.backend {
            Backend::Keychain { .. } => {
                self.entry(key)?.set_password(value).map_err(|e| SecretError::Keychain(e.to_string()))
            }
            Backend::File { path } => {
                let mut all = read_file(path)?;
                all.insert(key.to_string(), value.to_string());
                write_file(path, &all)
            }
        }
    }

    pub fn delete(&self, key: &str) -> Result<(), SecretError> {
        match &*self.backend {
            Backend::Keychain { .. } => match self.entry(key)?.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                Err(e) => Err(SecretError::Keychain(e.to_string())),
            },
            Backend::File { path } => {
                let mut all = read_file(path)?;
                if all.remove(key).is_some() {
                    write_file(path, &all)?;
                }
                Ok(())
            }
        }
    }
}

fn file_error(path: &Path, reason: impl ToString) -> SecretError {
    SecretError::File { path: path.display().to_string(), reason: reason.to_string() }
}

fn read_file(path: &Path) -> Result<BTreeMap<String, String>, SecretError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| file_error(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(file_error(path, e)),
    }
}

/// Writes through a temporary file created with mode 0600, so the secrets are never readable by
/// others, not even for an instant, and a crash never leaves a half-written file.
fn write_file(path: &Path, all: &BTreeMap<String, String>) -> Result<(), SecretError> {
    use std::io::Write;
    let dir = path.parent().ok_or_else(|| file_error(path, "no parent folder"))?;
    std::fs::create_dir_all(dir).map_err(|e| file_error(path, e))?;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp).map_err(|e| file_error(path, e))?;
    let text = serde_json::to_vec(all).map_err(|e| file_error(path, e))?;
    f.write_all(&text).and_then(|()| f.sync_all()).map_err(|e| file_error(path, e))?;
    std::fs::rename(&tmp, path).map_err(|e| file_error(path, e))
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
}
