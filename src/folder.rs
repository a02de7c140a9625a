//! Which local folders may be synced. A sync uploads everything in its folder and writes what
//! the server sends into it, so the folder is a trust decision: a profile (which comes from a
//! server) may only propose a plain name in the member's home, and no folder that is, holds or
//! lies inside a private place (the home itself, its hidden folders, the OS settings and data
//! folders, Passerelle's own folders, the system's folders) is ever synced, whoever chose it.
//! A folder that already holds files is only adopted when the member chose it.
//!
//! Both front ends call [`check`] and [`check_adoption`]; [`crate::drive::run::sync_once`]
//! calls [`check`] again, so no caller can forget it.
//!
//! A folder also belongs to one account on one server (issue 14, item 13): its journal says
//! what that account's space held, so synced against another account's space every file would
//! look deleted there. The first sync records the [`Owner`] beside the journals
//! ([`owner_record`]); [`check_owner`] (called by `sync_once`, and by the front ends before
//! they propose or accept a folder) refuses any other account or server folder, unless the
//! folder is missing or empty (nothing of the first owner is left to lose).
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum FolderError {
    #[error("“{name}” cannot be the synced folder's name: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("the synced folder must be given as a full path: {0}")]
    NotAbsolute(String),
    #[error("{path} cannot be synced: it {relation} {place}, which must stay private")]
    Sensitive { path: String, relation: &'static str, place: String },
    #[error("{path} already holds files that were never synced: choose it explicitly to sync them")]
    NotEmpty { path: String },
    #[error("{path} is synced with another account ({account}): choose another folder for this one")]
    OtherAccount { path: String, account: String },
    #[error("{path} is synced with another server or server folder ({server}): choose another folder for this one")]
    OtherServer { path: String, server: String },
    #[error("the record of who {path} belongs to cannot be read or written: {reason}")]
    OwnerRecord { path: String, reason: String },
}

impl FolderError {
    /// A stable code for scripts and the IPC boundary.
    pub fn code(&self) -> &'static str {
        match self {
            FolderError::BadName { .. } => "folder_name_refused",
            FolderError::NotAbsolute(_) => "folder_not_absolute",
            FolderError::Sensitive { .. } => "folder_sensitive",
            FolderError::NotEmpty { .. } => "folder_not_empty",
            FolderError::OtherAccount { .. } => "folder_other_account",
            FolderError::OtherServer { .. } => "folder_other_server",
            FolderError::OwnerRecord { .. } => "folder_owner_record",
        }
    }
}

/// Checks a folder name proposed by a profile: one plain, visible folder in the home.
pub fn check_name(name: &str) -> Result<(), FolderError> {
    let refuse = |reason| Err(FolderError::BadName { name: name.to_string(), reason });
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return refuse("it is empty");
    }
    if trimmed != name {
        return refuse("it starts or ends with a space");
    }
    if name.contains(['/', '\\']) {
        return refuse("it must be one folder, not a path");
    }
    if name.starts_with('.') {
        return refuse("hidden folders are private");
    }
    if name.starts_with('~') || name.contains(':') {
        return refuse("it must be a plain folder name");
    }
    if name.chars().any(char::is_control) || name.len() > 255 {
        return refuse("it must be a plain folder name");
    }
    Ok(())
}

/// The private places of this computer's user.
#[derive(Debug, Clone, Default)]
pub struct Places {
    /// The member's home: it may hold the synced folder, but is never synced itself, nor
    /// anything holding it, nor its hidden folders.
    pub home: Option<PathBuf>,
    /// Places never synced, nor anything inside or holding them, with what they are.
    pub private: Vec<(PathBuf, &'static str)>,
}

impl Places {
    /// The places of the user running this process, and Passerelle's own folders.
    pub fn of_this_user() -> Places {
        let mut places = Places::default();
        if let Some(base) = directories::BaseDirs::new() {
            let home = base.home_dir().to_path_buf();
            let settings = [
                base.config_dir(),
                base.config_local_dir(),
                base.data_dir(),
                base.data_local_dir(),
                base.cache_dir(),
                base.preference_dir(),
            ];
            for dir in settings {
                places.private.push((dir.to_path_buf(), "the system's settings and data folders"));
            }
            if let Some(state) = base.state_dir() {
                places.private.push((state.to_path_buf(), "the system's settings and data folders"));
            }
            if cfg!(target_os = "macos") {
                places.private.push((home.join("Library"), "the system's settings and data folders"));
            }
            if cfg!(windows) {
                places.private.push((home.join("AppData"), "the system's settings and data folders"));
            }
            places.home = Some(home);
        }
        let dirs = crate::paths::Dirs::locate();
        for dir in [dirs.config, dirs.data, dirs.logs] {
            places.private.push((dir, "Passerelle's own folders"));
        }
        #[cfg(unix)]
        for dir in ["/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/dev", "/proc", "/sys", "/root", "/System", "/Library"] {
            places.private.push((PathBuf::from(dir), "the system's folders"));
        }
        #[cfg(windows)]
        for var in ["SystemRoot", "ProgramFiles", "ProgramFiles(x86)", "ProgramData"] {
            if let Some(dir) = std::env::var_os(var) {
                places.private.push((PathBuf::from(dir), "the system's folders"));
            }
        }
        places
    }
}

/// Checks that `path` may be synced, against this user's private places.
pub fn check(path: &Path) -> Result<(), FolderError> {
    check_in(path, &Places::of_this_user())
}

/// Checks that `path` may be synced: absolute, and neither is, holds nor lies inside a private
/// place. Symbolic links are resolved first, so a link to `~/.ssh` is `~/.ssh`.
pub fn check_in(path: &Path, places: &Places) -> Result<(), FolderError> {
    if !path.is_absolute() {
        return Err(FolderError::NotAbsolute(path.display().to_string()));
    }
    let real_path = real(path);
    let sensitive = |relation, place: &Path| FolderError::Sensitive {
        path: path.display().to_string(),
        relation,
        place: place.display().to_string(),
    };
    if real_path.parent().is_none() {
        return Err(sensitive("is", Path::new("the whole disk")));
    }
    if let Some(home) = &places.home {
        let home = real(home);
        if real_path == home {
            return Err(sensitive("is", &home));
        }
        if home.starts_with(&real_path) {
            return Err(sensitive("holds", &home));
        }
        if let Ok(inside) = real_path.strip_prefix(&home) {
            let hidden = inside.components().find_map(|c| match c {
                Component::Normal(name) if name.to_string_lossy().starts_with('.') => Some(name.to_os_string()),
                _ => None,
            });
            if let Some(hidden) = hidden {
                return Err(sensitive("lies inside", &home.join(hidden)));
            }
        }
    }
    for (place, _what) in &places.private {
        let place = real(place);
        if real_path == place {
            return Err(sensitive("is", &place));
        }
        if real_path.starts_with(&place) {
            return Err(sensitive("lies inside", &place));
        }
        if place.starts_with(&real_path) {
            return Err(sensitive("holds", &place));
        }
    }
    Ok(())
}

/// A folder that already holds files and was never synced is only adopted when the member chose
/// it (`chosen`): otherwise its files would be uploaded, and the server's written among them,
/// on the strength of a name proposed by a server.
pub fn check_adoption(path: &Path, chosen: bool, synced_before: bool) -> Result<(), FolderError> {
    if chosen || synced_before {
        return Ok(());
    }
    let holds_files = std::fs::read_dir(path).map(|mut entries| entries.next().is_some()).unwrap_or(false);
    if holds_files {
        return Err(FolderError::NotEmpty { path: path.display().to_string() });
    }
    Ok(())
}

/// Who a synced folder belongs to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    /// The server folder synced: the server's address, with `#Team/Projects` when only a
    /// folder of the space is synced (the journal's own `remote_id`).
    pub server: String,
    /// The account on that server, as the server knows it (Nextcloud user id, WebDAV user
    /// name, login subject); empty when the server needs no login.
    pub account: String,
}

/// What [`check_owner`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Recorded for this very owner.
    Same,
    /// Nothing recorded yet: the first sync records this owner.
    Unclaimed,
    /// Recorded for another owner, but the folder is missing or empty: nothing of theirs is
    /// left here, so it may start afresh (a fresh journal) for this owner.
    Vacant,
}

/// Where the owner of a local folder is recorded: beside the journals in the app's data dir
/// (never in the folder itself, where it would be synced), one record per local folder
/// whichever server it syncs with.
pub fn owner_record(data_dir: &Path, folder: &Path) -> PathBuf {
    let hash = real(folder).display().to_string().bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    data_dir.join("drive").join(format!("{hash:016x}.owner.json"))
}

/// The recorded owner, if any. A damaged record is an error: guessing could sync the folder
/// against the wrong account.
pub fn owner_of(record: &Path) -> Result<Option<Owner>, FolderError> {
    let fail = |reason: String| FolderError::OwnerRecord { path: record.display().to_string(), reason };
    match std::fs::read(record) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| fail(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(fail(e.to_string())),
    }
}

/// Whether `owner` may sync `folder`: refused when the folder is recorded for another account,
/// or for the same account with another server or server folder, and still holds files.
pub fn check_owner(record: &Path, folder: &Path, owner: &Owner) -> Result<Ownership, FolderError> {
    let Some(recorded) = owner_of(record)? else { return Ok(Ownership::Unclaimed) };
    if recorded == *owner {
        return Ok(Ownership::Same);
    }
    let holds_files = std::fs::read_dir(folder).map(|mut entries| entries.next().is_some()).unwrap_or(false);
    if !holds_files {
        return Ok(Ownership::Vacant);
    }
    let path = folder.display().to_string();
    if recorded.account != owner.account {
        return Err(FolderError::OtherAccount { path, account: recorded.account });
    }
    Err(FolderError::OtherServer { path, server: recorded.server })
}

/// Records `owner` as the folder's owner (0600, written whole then renamed into place).
pub fn claim(record: &Path, owner: &Owner) -> Result<(), FolderError> {
    let fail = |reason: String| FolderError::OwnerRecord { path: record.display().to_string(), reason };
    if let Some(dir) = record.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    }
    let tmp = record.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(owner).map_err(|e| fail(e.to_string()))?;
    std::fs::write(&tmp, bytes).map_err(|e| fail(e.to_string()))?;
    crate::paths::make_private(&tmp).map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, record).map_err(|e| fail(e.to_string()))
}

/// The folder to propose to `owner`: `default` when it is theirs (or nobody's and holds no
/// files of an earlier sync), else `default` suffixed with `label` (the member's name), then
/// numbered, so that another account never gets this one's folder.
pub fn propose(data_dir: &Path, default: &Path, owner: &Owner, label: &str) -> PathBuf {
    let free = |candidate: &Path| match check_owner(&owner_record(data_dir, candidate), candidate, owner) {
        Ok(Ownership::Same | Ownership::Vacant) => true,
        Ok(Ownership::Unclaimed) => true,
        Err(_) => false,
    };
    if free(default) {
        return default.to_path_buf();
    }
    let base = default.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let label: String = label.chars().filter(|c| !c.is_control() && !matches!(c, '/' | '\\' | ':')).collect();
    let label = label.trim().trim_start_matches(['.', '~']);
    let parent = default.parent().unwrap_or(default);
    for n in 1..100 {
        let name = match (label.is_empty(), n) {
            (false, 1) => format!("{base} - {label}"),
            (false, n) => format!("{base} - {label} {n}"),
            (true, n) => format!("{base} {}", n + 1),
        };
        let candidate = parent.join(name);
        if free(&candidate) {
            return candidate;
        }
    }
    default.to_path_buf()
}

/// The path with `.` and `..` folded and symbolic links of its existing part resolved.
fn real(path: &Path) -> PathBuf {
    let mut lexical = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    // Resolve the longest existing prefix, then append the rest as written.
    let mut existing = lexical.clone();
    let mut rest = Vec::new();
    loop {
        if let Ok(resolved) = std::fs::canonicalize(&existing) {
            return rest.iter().rev().fold(resolved, |p: PathBuf, c: &std::ffi::OsString| p.join(c));
        }
        match (existing.file_name().map(|n| n.to_os_string()), existing.parent().map(Path::to_path_buf)) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return lexical,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(home: &Path) -> Places {
        Places {
            home: Some(home.to_path_buf()),
            private: vec![(home.join(".config"), "settings"), (PathBuf::from("/etc"), "system")],
        }
    }

    #[test]
    fn names_from_a_profile_are_plain_and_visible() {
        for bad in [".ssh", ".config", "", "  ", "a/b", "/etc", "..", ".", "C:", "~root", "a\\b", "x\n", " Passerelle"] {
            assert_eq!(check_name(bad).unwrap_err().code(), "folder_name_refused", "{bad:?}");
        }
        for good in ["Passerelle", "Coop Files", "Données"] {
            check_name(good).unwrap();
        }
    }

    #[test]
    fn private_places_are_never_synced() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("alice");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::create_dir_all(home.join("Documents")).unwrap();
        let p = places(&home);
        let code = |path: &Path| check_in(path, &p).map_err(|e| e.code());
        assert_eq!(code(&home), Err("folder_sensitive"), "the home itself");
        assert_eq!(code(dir.path()), Err("folder_sensitive"), "a folder holding the home");
        assert_eq!(code(Path::new("/")), Err("folder_sensitive"));
        assert_eq!(code(&home.join(".ssh")), Err("folder_sensitive"));
        assert_eq!(code(&home.join(".local/share/x")), Err("folder_sensitive"), "inside a hidden folder");
        assert_eq!(code(&home.join("Passerelle/../.ssh")), Err("folder_sensitive"), "dot-dot");
        assert_eq!(code(Path::new("/etc/passerelle")), Err("folder_sensitive"));
        assert_eq!(code(Path::new("Passerelle")), Err("folder_not_absolute"));
        assert_eq!(code(&home.join("Passerelle")), Ok(()));
        assert_eq!(code(&home.join("Documents/Coop")), Ok(()));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(home.join(".ssh"), home.join("Linked")).unwrap();
            assert_eq!(code(&home.join("Linked")), Err("folder_sensitive"), "a link to ~/.ssh is ~/.ssh");
        }
    }

    #[test]
    fn a_folder_with_files_is_adopted_only_when_chosen() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        check_adoption(&empty, false, false).unwrap();
        check_adoption(&dir.path().join("missing"), false, false).unwrap();
        std::fs::write(empty.join("id_ed25519"), "secret").unwrap();
        assert_eq!(check_adoption(&empty, false, false).unwrap_err().code(), "folder_not_empty");
        check_adoption(&empty, true, false).unwrap();
        check_adoption(&empty, false, true).unwrap();
    }
}
