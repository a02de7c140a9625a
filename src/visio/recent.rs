//! The short list of recent meetings (room, when, kind), newest first, kept as JSON in the data
//! dir so the tray can offer "join again". A damaged file is set aside rather than blocking a
//! visio: losing this list costs nothing.
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{RoomKind, VisioError};
use crate::paths::Dirs;

/// How many meetings are kept.
pub const RECENT_LEN: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentMeeting {
    pub room: String,
    /// The invite link (no fragment), to join again.
    pub url: Url,
    pub when: DateTime<Utc>,
    pub kind: RoomKind,
    /// The team's name or the event's title, when there is one.
    #[serde(default)]
    pub title: Option<String>,
}

/// The recent meetings file of one installation.
#[derive(Debug, Clone)]
pub struct Recent {
    path: PathBuf,
}

fn io(path: &Path, e: impl ToString) -> VisioError {
    VisioError::Io { path: path.display().to_string(), reason: e.to_string() }
}

impl Recent {
    pub fn new(dirs: &Dirs) -> Recent {
        Recent { path: dirs.data.join("visio-recent.json") }
    }

    /// Newest first. A missing or unreadable file gives an empty list.
    pub fn list(&self) -> Vec<RecentMeeting> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                tracing::warn!(path = %self.path.display(), error = %e, "the recent meetings list is unreadable; starting a new one");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        }
    }

    /// Puts `meeting` first, drops an older entry for the same room, keeps [`RECENT_LEN`].
    pub fn record(&self, meeting: RecentMeeting) -> Result<Vec<RecentMeeting>, VisioError> {
        let mut all = self.list();
        all.retain(|m| m.room != meeting.room);
        all.insert(0, meeting);
        all.truncate(RECENT_LEN);
        let dir = self.path.parent().ok_or_else(|| io(&self.path, "no parent folder"))?;
        crate::paths::private_dir(dir).map_err(|e| io(&self.path, e))?;
        let text = serde_json::to_vec_pretty(&all).map_err(|e| io(&self.path, e))?;
        // 0600: meeting links are invitations.
        crate::paths::write_private(&self.path, &text).map_err(|e| io(&self.path, e))?;
        Ok(all)
    }
}
