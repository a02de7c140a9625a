//! Opening a URL in the member's browser, through one replaceable hook.
//!
//! The login, the visio and the links all go through [`Opener`]. By default it asks the OS to
//! open the URL. `PASSERELLE_BROWSER` (like the classic `BROWSER`) names a command that gets the
//! URL as its last argument instead; tests and the desktop shell can also pass a closure.
//!
//! Whatever the hook, only web pages are opened: `https`, or `http` on this computer's loopback
//! addresses. A URL that came from a server (Nextcloud's Login Flow v2 `login` page) goes through
//! [`Opener::open_on`], which also requires the origin the caller expects. A `file:`, `smb:`
//! or bare path from a server would otherwise reach the OS's "open" and run or mount things.
use std::sync::Arc;

use thiserror::Error;
use url::Url;

#[derive(Debug, Error)]
pub enum OpenError {
    #[error("could not open the browser: {0}")]
    Launch(String),
    #[error("refused to open {0}: only secure web addresses of the expected server are opened")]
    Refused(String),
}

impl OpenError {
    /// A stable code for scripts and the IPC boundary.
    pub fn code(&self) -> &'static str {
        match self {
            OpenError::Launch(_) => "browser",
            OpenError::Refused(_) => "url_refused",
        }
    }
}

/// The URL if the opener may open it: https, or http on loopback; and, when `expected` is
/// given, on the same origin as `expected`. The refusal names only the scheme and host: the
/// URL itself may carry a token.
pub fn check_url(url: &str, expected: Option<&Url>) -> Result<Url, OpenError> {
    let refused = |shown: String| OpenError::Refused(shown);
    let parsed = Url::parse(url).map_err(|_| refused("an address that is not a web address".into()))?;
    let shown = format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or(""));
    let web = match parsed.scheme() {
        "https" => parsed.host().is_some(),
        "http" => crate::config::is_loopback(&parsed),
        _ => false,
    };
    if !web || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refused(shown));
    }
    if let Some(expected) = expected {
        if parsed.origin() != expected.origin() {
            return Err(refused(shown));
        }
    }
    Ok(parsed)
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

    /// Opens a web page: https, or http on loopback; anything else is refused.
    pub fn open(&self, url: &str) -> Result<(), OpenError> {
        let url = check_url(url, None)?;
        self.launch(url.as_str())
    }

    /// Opens a page that a server named, only if it is on `expected`'s origin (and https, or
    /// http on loopback).
    pub fn open_on(&self, url: &str, expected: &Url) -> Result<(), OpenError> {
        let url = check_url(url, Some(expected))?;
        self.launch(url.as_str())
    }

    fn launch(&self, url: &str) -> Result<(), OpenError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_pages_of_the_expected_origin_are_opened() {
        let cloud = Url::parse("https://cloud.example.coop/").unwrap();
        for bad in ["file:///etc/passwd", "/usr/bin/xcalc", "smb://host/share/x.desktop", "javascript:alert(1)",
                    "http://cloud.example.coop/login", "https://user:pw@cloud.example.coop/", "ftp://x/", ""] {
            assert_eq!(check_url(bad, None).map_err(|e| e.code()).err(), Some("url_refused"), "{bad}");
        }
        check_url("https://visio.example.coop/room", None).unwrap();
        check_url("http://127.0.0.1:8080/x", None).unwrap();
        check_url("https://cloud.example.coop/login/v2/flow/abc", Some(&cloud)).unwrap();
        assert!(check_url("https://evil.example/login/v2/flow", Some(&cloud)).is_err());
        assert!(check_url("https://cloud.example.coop:8443/", Some(&cloud)).is_err());
    }

    #[test]
    fn a_refused_url_never_reaches_the_hook() {
        let opened = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = opened.clone();
        let opener = Opener::hook(move |u| {
            seen.lock().unwrap().push(u.to_string());
            Ok(())
        });
        assert!(opener.open("file:///etc/passwd").is_err());
        opener.open("https://visio.example.coop/room").unwrap();
        assert_eq!(*opened.lock().unwrap(), vec!["https://visio.example.coop/room".to_string()]);
    }
}
