//! The one error type crossing the IPC boundary: `{code, message}`, where `code` is the core
//! error's stable `code()` and `message` a plain sentence for the member.
use serde::Serialize;

#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct ShellError {
    pub code: String,
    pub message: String,
}

impl ShellError {
    pub fn new(code: &str, message: impl Into<String>) -> ShellError {
        ShellError { code: code.into(), message: message.into() }
    }
}

macro_rules! from_core {
    ($($t:ty),*) => {$(
        impl From<$t> for ShellError {
            fn from(e: $t) -> ShellError {
                ShellError { code: e.code().into(), message: e.to_string() }
            }
        }
    )*};
}

from_core!(
    passerelle::auth::AuthError,
    passerelle::config::ConfigError,
    passerelle::visio::VisioError,
    passerelle::chat::ChatError
);

impl From<tauri::Error> for ShellError {
    fn from(e: tauri::Error) -> ShellError {
        ShellError::new("shell", e.to_string())
    }
}

impl From<std::io::Error> for ShellError {
    fn from(e: std::io::Error) -> ShellError {
        ShellError::new("io", e.to_string())
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
        assert!(json["message"].as_str().unwrap().contains("too long"));
    }
}
