//! Which local folders may be synced. A sync uploads everything in its folder and writes what
//! the server sends into it, so the folder is a trust decision: a profile (which comes from a
//! server) may only propose a plain name in the member's home, and no folder that is, holds or
//! lies inside a private place (the home itself, its hidden folders, the OS settings and data
//! folders, Passerelle's own folders, the system's folders) is ever synced, whoever chose it.
//! A folder that already holds files is only adopted when the member chose it.
//!
//! Both front ends call [`check`] and [`check_adoption`]; [`crate::drive::run::sync_once`]
//! calls [`check`] again, so no caller can forget it.
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
}

impl FolderError {
    /// A stable code for scripts and the IPC boundary.
    pub fn code(&self) -> &'static str {
        match self {
            FolderError::BadName { .. } => "folder_name_refused",
            FolderError::NotAbsolute(_) => "folder_not_absolute",
            FolderError::Sensitive { .. } => "folder_sensitive",
            FolderError::NotEmpty { .. } => "folder_not_empty",
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
