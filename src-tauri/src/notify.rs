//! Desktop notifications: mentions, direct messages, a meeting starting, quota at 90%, a tray
//! action that failed. They
//! go to the notification plugin and, when `PASSERELLE_NOTIFY_LOG=path` is set, are
//! also appended to that file as JSON lines: the recorded sink the end-to-end tests read.
//!
//! A Nextcloud notification carries its id ([`NEXTCLOUD_ID`]): a click on it comes back through
//! the plugin's action handler (`tap`, from the XDG server's `ActionInvoked "default"` on Linux)
//! and opens it, as its tray line does ([`nextcloud_clicked`]).
use std::io::Write;

use serde::Serialize;
use tauri::{AppHandle, Runtime};
use tauri_plugin_notification::{ActionPerformed, NotificationExt};

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
    /// A new Nextcloud notification (a share, a mention in a comment, a reminder).
    Nextcloud,
    /// The calendar server wants its own password (once per session).
    CalendarPassword,
}

#[derive(Debug, Serialize)]
struct Recorded<'a> {
    kind: NoticeKind,
    title: &'a str,
    body: &'a str,
    at: u64,
}

/// The key, in an OS notification's extra payload, of the Nextcloud notification it shows.
pub const NEXTCLOUD_ID: &str = "nextcloud_id";

pub fn send<R: Runtime>(app: &AppHandle<R>, kind: NoticeKind, title: &str, body: &str) {
    send_with(app, kind, title, body, None)
}

/// A Nextcloud notification: a click on it opens it and marks it read ([`nextcloud_clicked`]).
pub fn send_nextcloud<R: Runtime>(app: &AppHandle<R>, title: &str, body: &str, id: i64) {
    send_with(app, NoticeKind::Nextcloud, title, body, Some(id))
}

/// The Nextcloud notification a click was on: `tap` (a click on the notification itself) on a
/// notification that carries [`NEXTCLOUD_ID`]. Other clicks (a chat mention, a meeting) mean
/// nothing yet.
pub fn nextcloud_clicked(performed: &ActionPerformed) -> Option<i64> {
    if performed.action_id() != "tap" {
        return None;
    }
    performed.notification()?.extra().get(NEXTCLOUD_ID)?.as_i64()
}

fn send_with<R: Runtime>(app: &AppHandle<R>, kind: NoticeKind, title: &str, body: &str, nextcloud: Option<i64>) {
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
    let mut builder = app.notification().builder().title(title).body(body);
    if let Some(id) = nextcloud {
        builder = builder.extra(NEXTCLOUD_ID, id);
    }
    if let Err(e) = builder.show() {
        // No notification daemon (a bare session): the tray still shows the count.
        tracing::debug!(error = %e, ?kind, "the notification could not be shown");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Issue 15: a click on a Nextcloud notification's OS notification names it; a click on
    /// another kind, or on a button, does not.
    #[test]
    fn a_click_names_the_nextcloud_notification_it_was_on() {
        let performed = |action: &str, extra: serde_json::Value| -> ActionPerformed {
            serde_json::from_value(json!({"actionId": action, "inputValue": null, "notification": {"id": 0, "extra": extra}})).unwrap()
        };
        assert_eq!(nextcloud_clicked(&performed("tap", json!({NEXTCLOUD_ID: 42}))), Some(42));
        assert_eq!(nextcloud_clicked(&performed("tap", json!({}))), None, "a chat mention");
        assert_eq!(nextcloud_clicked(&performed("later", json!({NEXTCLOUD_ID: 42}))), None);
        let bare: ActionPerformed = serde_json::from_value(json!({"actionId": "tap", "inputValue": null, "notification": null})).unwrap();
        assert_eq!(nextcloud_clicked(&bare), None);
    }
}
