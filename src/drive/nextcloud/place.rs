//! Where a file of the synced folder is on the server, and back: the one place both front ends
//! turn a local path into a server path (`--recover PATH`, `passerelle versions PATH`, `share`,
//! `open-online`) and a server path into a local one ("Récemment"). A path that leaves the
//! folder, through `..` or a symbolic link, or a name the server refuses, is refused.
use std::path::{Component, Path, PathBuf};

use super::NextcloudError;
use crate::drive::names;

/// Why a local path has no server path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmapped {
    /// The synced folder itself cannot be read (the reason).
    NoFolder(String),
    /// Outside the synced folder: another folder, `..` out of it, a symbolic link leading out
    /// of it, or a server folder setting (`--remote-path`) that would leave the space.
    Outside,
    /// Not there, and the caller needs it to be (a file to upload before sharing it).
    Missing,
    /// A name the server refuses (a backslash, a control character, too long): no such item
    /// can be on the server.
    RefusedName,
}

/// Whether the local item must exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Sharing: the file is uploaded first when the server does not have it yet.
    MustExist,
    /// Recovering (trash, versions): the file may be gone here; its folder must not be.
    MayBeGone,
}

/// The one mapping of a local path to its server path (from the files root, no leading
/// slash): `local`, a file or folder in the synced `folder`, which mirrors the server's
/// `remote_root` ("" for the whole space). The path is resolved (symbolic links, `..`) before
/// it is compared, so nothing outside the folder is named through a link inside it, and every
/// name on the way is one the server accepts.
pub fn map(folder: &Path, remote_root: &str, local: &Path, presence: Presence) -> Result<String, Unmapped> {
    let folder = folder.canonicalize().map_err(|e| Unmapped::NoFolder(format!("{}: {e}", folder.display())))?;
    let local = std::path::absolute(local).map_err(|_| Unmapped::Outside)?;
    let resolved = match (local.canonicalize(), presence) {
        (Ok(p), _) => p,
        (Err(_), Presence::MustExist) => return Err(Unmapped::Missing),
        // The file itself may be gone (deleted locally): resolve its folder, keep its name.
        (Err(_), Presence::MayBeGone) => {
            let parent = local.parent().ok_or(Unmapped::Outside)?.canonicalize().map_err(|_| Unmapped::Outside)?;
            parent.join(local.file_name().ok_or(Unmapped::Outside)?)
        }
    };
    let rel = resolved.strip_prefix(&folder).map_err(|_| Unmapped::Outside)?;
    let mut parts = Vec::new();
    for seg in remote_root.split('/').filter(|s| !s.is_empty()) {
        names::check_remote_name(seg).map_err(|_| Unmapped::Outside)?;
        parts.push(seg.to_string());
    }
    for c in rel.components() {
        match c {
            Component::Normal(name) => {
                let name = name.to_str().ok_or(Unmapped::RefusedName)?;
                names::check_remote_name(name).map_err(|_| Unmapped::RefusedName)?;
                parts.push(name.to_string());
            }
            _ => return Err(Unmapped::Outside),
        }
    }
    Ok(parts.join("/"))
}

/// [`map`] for recovering: the file may be gone locally. Every refusal is `OutsideFolder`.
pub fn server_path(folder: &Path, remote_root: &str, local: &Path) -> Result<String, NextcloudError> {
    map(folder, remote_root, local, Presence::MayBeGone).map_err(|e| match e {
        Unmapped::NoFolder(reason) => NextcloudError::Io(reason),
        Unmapped::Outside | Unmapped::Missing | Unmapped::RefusedName => NextcloudError::OutsideFolder(local.display().to_string()),
    })
}

/// The local path of `server` (from the files root) when it lies in the synced part; `None`
/// when it is elsewhere in the space or its name could not be a local one.
pub fn local_path(folder: &Path, remote_root: &str, server: &str) -> Option<PathBuf> {
    let root = remote_root.trim_matches('/');
    let server = server.trim_matches('/');
    let rel = if root.is_empty() {
        server
    } else if names::is_within(server, root) {
        server[root.len()..].trim_start_matches('/')
    } else {
        return None;
    };
    let mut path = folder.to_path_buf();
    for seg in rel.split('/').filter(|s| !s.is_empty()) {
        names::check_remote_name(seg).ok()?;
        path.push(seg);
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_both_ways_and_never_leave_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("Passerelle");
        std::fs::create_dir_all(folder.join("Projets")).unwrap();
        std::fs::write(folder.join("Projets/devis.txt"), "x").unwrap();
        assert_eq!(server_path(&folder, "", &folder.join("Projets/devis.txt")).unwrap(), "Projets/devis.txt");
        assert_eq!(server_path(&folder, "Equipe/", &folder.join("Projets/gone.txt")).unwrap(), "Equipe/Projets/gone.txt");
        assert_eq!(server_path(&folder, "", &folder.join("Projets/../../x")).unwrap_err().code(), "outside_folder");
        assert_eq!(server_path(&folder, "", dir.path()).unwrap_err().code(), "outside_folder");
        assert_eq!(server_path(&folder, "../Autre", &folder.join("Projets/devis.txt")).unwrap_err().code(), "outside_folder");
        #[cfg(unix)]
        assert_eq!(map(&folder, "", &folder.join("Projets/a\\b.txt"), Presence::MayBeGone), Err(Unmapped::RefusedName));
        assert_eq!(map(&folder, "", &folder.join("Projets/gone.txt"), Presence::MustExist), Err(Unmapped::Missing));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path(), folder.join("lien")).unwrap();
            assert_eq!(server_path(&folder, "", &folder.join("lien/secret")).unwrap_err().code(), "outside_folder");
        }
        assert_eq!(local_path(&folder, "", "/Projets/devis.txt"), Some(folder.join("Projets/devis.txt")));
        assert_eq!(local_path(&folder, "Equipe", "Equipe/a.txt"), Some(folder.join("a.txt")));
        assert_eq!(local_path(&folder, "Equipe", "Autre/a.txt"), None);
        assert_eq!(local_path(&folder, "Equipe", "Equipe2/a.txt"), None);
        assert_eq!(local_path(&folder, "", "a/../../etc/passwd"), None);
    }
}
