//! Where Passerelle keeps things on disk: settings in the OS config dir, journals and caches in
//! the data dir, logs in the state dir. `PASSERELLE_HOME` puts all of them under one folder,
//! which is how tests and scripts get an isolated installation.
use std::path::PathBuf;

use directories::ProjectDirs;

/// The folders of one installation.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub config: PathBuf,
    pub data: PathBuf,
    pub logs: PathBuf,
}

impl Dirs {
    /// The folders for this user, honouring `PASSERELLE_HOME`.
    pub fn discover() -> Dirs {
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
}
