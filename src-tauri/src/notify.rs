//! Desktop notifications: mentions, direct messages, a meeting starting, quota at 90%, a tray
//! action that failed. They
//! go to the notification plugin and, when `PASSERELLE_NOTIFY_LOG=path` is set, are
//! also appended to that file as JSON lines: the recorded sink the end-to-end tests read.
use std::io::Write;

use serde::Serialize;
use tauri::{AppHandle, Runtime};
use tauri_plugin_notification::NotificationExt;

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Mention,
    DirectMessage,
    MeetingSoon,
    Quota,
    /// A share link is in the clipboard ("Lien copié", with the file's name).
    LinkCopied,
    InviteCopied,
    /// A tray action failed; the body is the catalog's sentence for its code.
    ActionFailed,
}

#[derive(Debug, Serialize)]
struct Recorded<'a> {
    kind: NoticeKind,
    title: &'a str,
    body: &'a str,
    at: u64,
}

pub fn send<R: Runtime>(app: &AppHandle<R>, kind: NoticeKind, title: &str, body: &str) {
    if let Ok(path) = std::env::var("PASSERELLE_NOTIFY_LOG") {
        let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let line = serde_json::to_string(&Recorded { kind, title, body, at }).unwrap_or_default();
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = written {
            tracing::warn!(error = %e, %path, "could not record the notification");
        }
    }
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        // No notification daemon (a bare session): the tray still shows the count.
        tracing::debug!(error = %e, ?kind, "the notification could not be shown");
    }
}
