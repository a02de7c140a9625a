//! Opening a URL in the member's browser, through one replaceable hook.
//!
//! The login, the visio and the links all go through [`Opener`]. By default it asks the OS to
//! open the URL. `PASSERELLE_BROWSER` (like the classic `BROWSER`) names a command that gets the
//! URL as its last argument instead; tests and the desktop shell can also pass a closure.
use std::sync::Arc;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum OpenError {
    #[error("could not open the browser: {0}")]
    Launch(String),
}

type Hook = Arc<dyn Fn(&str) -> Result<(), OpenError> + Send + Sync>;

/// Opens URLs for the member. Cheap to clone.
#[derive(Clone)]
pub enum Opener {
    /// The OS default browser, or `PASSERELLE_BROWSER` when set.
    System,
    /// Print the URL on standard output instead (`--no-browser`, `--print`).
    Print,
    /// A function supplied by the caller: the desktop shell's opener plugin, or a test.
    Hook(Hook),
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Opener::System => "Opener::System",
            Opener::Print => "Opener::Print",
            Opener::Hook(_) => "Opener::Hook",
        })
    }
}

impl Opener {
    pub fn hook(f: impl Fn(&str) -> Result<(), OpenError> + Send + Sync + 'static) -> Opener {
        Opener::Hook(Arc::new(f))
    }

    pub fn open(&self, url: &str) -> Result<(), OpenError> {
        match self {
            Opener::Print => {
                println!("{url}");
                Ok(())
            }
            Opener::Hook(f) => f(url),
            Opener::System => match std::env::var("PASSERELLE_BROWSER") {
                Ok(cmd) if !cmd.trim().is_empty() => {
                    let mut words = cmd.split_whitespace();
                    let program = words.next().unwrap_or_default();
                    std::process::Command::new(program)
                        .args(words)
                        .arg(url)
                        .spawn()
                        .map(drop)
                        .map_err(|e| OpenError::Launch(format!("{program}: {e}")))
                }
                _ => open::that_detached(url).map_err(|e| OpenError::Launch(e.to_string())),
            },
        }
    }
}
