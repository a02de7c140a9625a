//! The one error type crossing the IPC boundary: `{code, message}`, where `code` is the core
//! error's stable `code()` and `message` the catalog's sentence for it, in the member's
//! language. The error's own English text (a URL, a path, an OS message) goes to the log only.
use passerelle::i18n::Catalog;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct ShellError {
    pub code: String,
    pub message: String,
}

impl ShellError {
    /// The error the member reads for `code` (`error.<code>` in `i18n/`).
    pub fn new(code: &str) -> ShellError {
        ShellError { code: code.into(), message: Catalog::current().error(code) }
    }

    /// The same, keeping the technical detail in the log.
    pub fn logged(code: &str, detail: &dyn std::fmt::Display) -> ShellError {
        tracing::warn!(code, "{detail}");
        ShellError::new(code)
    }
}

macro_rules! from_core {
    ($($t:ty),*) => {$(
        impl From<$t> for ShellError {
            fn from(e: $t) -> ShellError {
                ShellError::logged(e.code(), &e)
            }
        }
    )*};
}

from_core!(
    passerelle::auth::AuthError,
    passerelle::config::ConfigError,
    passerelle::visio::VisioError,
    passerelle::chat::ChatError,
    passerelle::folder::FolderError,
    passerelle::drive::nextcloud::NextcloudError
);

impl From<tauri::Error> for ShellError {
    fn from(e: tauri::Error) -> ShellError {
        ShellError::logged("shell", &e)
    }
}

impl From<std::io::Error> for ShellError {
    fn from(e: std::io::Error) -> ShellError {
        ShellError::logged("io", &e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_code_and_message() {
        let e: ShellError = passerelle::auth::AuthError::Timeout.into();
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["code"], "timeout");
        assert_eq!(json["message"], Catalog::current().error("timeout"));
        assert!(!json["message"].as_str().unwrap().starts_with("error."));
    }
}
