//! Where Passerelle keeps things on disk: settings in the OS config dir, journals and caches in
//! the data dir, logs in the state dir. `PASSERELLE_HOME` puts all of them under one folder,
//! which is how tests and scripts get an isolated installation.
//!
//! These folders hold file names (journals, tree caches), meeting links and logs: they are the
//! member's alone. [`Dirs::discover`] creates them 0700 and narrows existing ones to it, and
//! [`private_file`] / [`make_private`] give files 0600, on Unix.
use std::{
    fs::File,
    io,
    path::{Path, PathBuf},
};

use directories::ProjectDirs;

/// The folders of one installation.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub config: PathBuf,
    pub data: PathBuf,
    pub logs: PathBuf,
}

impl Dirs {
    /// The folders for this user, honouring `PASSERELLE_HOME`, created private (0700) when
    /// missing and narrowed to 0700 when they exist. A failure is logged, not fatal: the command
    /// that needs the folder reports it plainly.
    pub fn discover() -> Dirs {
        let dirs = Dirs::locate();
        if let Err(e) = dirs.make_private() {
            tracing::warn!(error = %e, "could not make Passerelle's folders private");
        }
        dirs
    }

    /// Where the folders are, without touching the disk.
    pub fn locate() -> Dirs {
        if let Some(home) = std::env::var_os("PASSERELLE_HOME").filter(|h| !h.is_empty()) {
            let home = PathBuf::from(home);
            return Dirs { config: home.join("config"), data: home.join("data"), logs: home.join("logs") };
        }
        match ProjectDirs::from("coop", "Passerelle", "passerelle") {
            Some(p) => Dirs {
                config: p.config_dir().to_path_buf(),
                data: p.data_dir().to_path_buf(),
                logs: p.state_dir().unwrap_or_else(|| p.data_dir()).join("logs"),
            },
            // No home directory at all (a bare service account): stay in the working directory
            // rather than refusing to run.
            None => {
                let base = PathBuf::from(".passerelle");
                Dirs { config: base.join("config"), data: base.join("data"), logs: base.join("logs") }
            }
        }
    }

    /// Creates the three folders 0700, or narrows them to 0700.
    pub fn make_private(&self) -> io::Result<()> {
        for dir in [&self.config, &self.data, &self.logs] {
            private_dir(dir)?;
        }
        Ok(())
    }
}

/// Creates `dir` (and its missing parents) and gives it mode 0700 on Unix.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let meta = std::fs::symlink_metadata(dir)?;
        if meta.is_dir() && meta.permissions().mode() & 0o777 != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Narrows an existing file to 0600 on Unix (a file created by a library, such as SQLite's).
pub fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Writes `bytes` to `path` through a fresh temporary file created 0600 beside it, then renames
/// it into place: the content is never readable by others nor seen half-written.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let (mut file, tmp) = private_file(dir, path.file_name().and_then(|n| n.to_str()).unwrap_or("file"))?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all()).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Creates a new temporary file in `dir`, named after `stem` with a unique suffix, exclusively
/// (never an existing file, never through a symbolic link) and with mode 0600 forced.
pub fn private_file(dir: &Path, stem: &str) -> io::Result<(File, PathBuf)> {
    use rand::Rng;
    let mut options = std::fs::OpenOptions::new();
    // create_new is O_CREAT|O_EXCL: an existing name, a symbolic link included, is refused.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let mut attempts = 0;
    loop {
        let suffix: u64 = rand::rng().random();
        let tmp = dir.join(format!(".{stem}.{}.{suffix:016x}.tmp", std::process::id()));
        match options.open(&tmp) {
            Ok(file) => {
                // The umask may have narrowed the mode further; it can never have widened it,
                // but say 0600 explicitly so that the rename publishes exactly that.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                }
                return Ok((file, tmp));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}
