//! Where a file of the synced folder is on the server, and back: the one place both front ends
//! turn a local path into a server path (`--recover PATH`, `passerelle versions PATH`) and a
//! server path into a local one ("Récemment"). A path that leaves the folder, through `..` or a
//! symbolic link, is refused.
use std::path::{Component, Path, PathBuf};

use super::NextcloudError;
use crate::drive::names;

/// The server path (from the files root, no leading slash) of `local`, a file or folder in the
/// synced `folder`, which mirrors the server's `remote_root` ("" for the whole space).
pub fn server_path(folder: &Path, remote_root: &str, local: &Path) -> Result<String, NextcloudError> {
    let outside = || NextcloudError::OutsideFolder(local.display().to_string());
    let folder = folder.canonicalize().map_err(|e| NextcloudError::Io(format!("{}: {e}", folder.display())))?;
    // The file itself may be gone (deleted locally): resolve its folder, keep its name.
    let resolved = match local.canonicalize() {
        Ok(p) => p,
        Err(_) => {
            let parent = local.parent().ok_or_else(outside)?.canonicalize().map_err(|_| outside())?;
            parent.join(local.file_name().ok_or_else(outside)?)
        }
    };
    let rel = resolved.strip_prefix(&folder).map_err(|_| outside())?;
    let mut parts: Vec<String> = remote_root.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
    for c in rel.components() {
        match c {
            Component::Normal(name) => {
                let name = name.to_str().ok_or_else(outside)?;
                names::check_remote_name(name).map_err(|_| outside())?;
                parts.push(name.to_string());
            }
            _ => return Err(outside()),
        }
    }
    Ok(parts.join("/"))
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
