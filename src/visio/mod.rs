//! One-click Jitsi visio: meeting URLs, unguessable ad-hoc rooms, team rooms, the short list of
//! recent meetings, and the links to the cooperative's other tools.
//!
//! # Public API (stable: the desktop shell builds on it)
//! - [`meeting_url`]`(jitsi, room, &JoinOptions) -> Result<Url, VisioError>`: the URL to open,
//!   with the member's options in the fragment (each value JSON-encoded then URL-encoded, as
//!   Jitsi's `parseURLParams` reads them).
//! - [`invite_url`]`(&meeting_url) -> Url`: the same URL without the fragment, to share: the
//!   display name and options are the member's own.
//! - [`jitsi_host`]`(profile)`, [`new_room`]`()`, [`team_room`]`(profile, name)`,
//!   [`named_room`]`(text)`: where to meet. [`AdHocRoom`]: the desktop's "start a visio" (a
//!   fresh room each time, or the room of an invite just copied).
//! - [`open`]`(opener, url)` through the one replaceable [`crate::browser::Opener`];
//!   [`copy_invite`]`(clipboard, url)` through the [`Clipboard`] trait the shell implements
//!   ([`CommandClipboard`] is the small one the CLI uses).
//! - [`Recent`]: the last [`RECENT_LEN`] meetings (room, when, kind), kept in the data dir.
//! - [`links`]`(profile) -> Vec<ToolLink>`: the profile's links plus the Keycloak account page.
//!
//! This module knows nothing of calendars or of the login: the caller passes the display name
//! (`Session::identity().name`) in [`JoinOptions`].
mod recent;
mod room;

use std::io::Write;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use unicode_normalization::UnicodeNormalization;
use url::Url;

use crate::{
    browser::{OpenError, Opener},
    config::Profile,
};

pub use recent::{Recent, RecentMeeting, RECENT_LEN};
pub use room::{new_room, new_room_with, AdHocRoom, INVITE_WAITS, ROOM_DIGITS, ROOM_ENTROPY_BITS, ROOM_WORDS, WORDS};

#[derive(Debug, Error)]
pub enum VisioError {
    #[error("this organisation has no visio server in its settings")]
    NoJitsi,
    #[error("there is no team called “{name}”; known teams: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    UnknownTeam { name: String, known: Vec<String> },
    #[error("the room name is empty")]
    EmptyRoom,
    #[error("the room name “{0}” cannot be used: it must not contain “/”, “?”, “#” or “%”")]
    InvalidRoom(String),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("could not copy to the clipboard: {0}")]
    Clipboard(String),
    #[error("could not read or write {path}: {reason}")]
    Io { path: String, reason: String },
}

impl VisioError {
    /// A stable code for scripts and the IPC boundary.
    pub fn code(&self) -> &'static str {
        match self {
            VisioError::NoJitsi => "no_jitsi",
            VisioError::UnknownTeam { .. } => "unknown_team",
            VisioError::EmptyRoom => "empty_room",
            VisioError::InvalidRoom(_) => "invalid_room",
            VisioError::Open(e) => e.code(),
            VisioError::Clipboard(_) => "clipboard",
            VisioError::Io { .. } => "io",
        }
    }
}

/// What kind of room a meeting uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// A fresh unguessable room.
    AdHoc,
    /// A team's standing room from the profile.
    Team,
    /// A room the member named.
    Named,
    /// A room from a calendar event's link.
    Calendar,
}

/// The member's choices for joining. `Default` is: no name, video on, pre-join screen on, no
/// subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinOptions {
    /// Shown to the others; `None` or empty lets Jitsi ask.
    pub display_name: Option<String>,
    /// Join without video (and with video muted): the host carries 10 people this way, 5 with
    /// video.
    pub audio_only: bool,
    /// Show Jitsi's pre-join screen (camera and microphone check).
    pub prejoin: bool,
    pub subject: Option<String>,
}

impl Default for JoinOptions {
    fn default() -> Self {
        JoinOptions { display_name: None, audio_only: false, prejoin: true, subject: None }
    }
}

/// What `encodeURIComponent` leaves alone; everything else is percent-encoded, so that `&`, `=`,
/// `#` and `%` in a name can never break the fragment apart.
const COMPONENT: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'!').remove(b'~').remove(b'*').remove(b'\'').remove(b'(').remove(b')');

/// The organisation's Jitsi server.
pub fn jitsi_host(profile: &Profile) -> Result<&Url, VisioError> {
    profile.jitsi.as_ref().ok_or(VisioError::NoJitsi)
}

/// A meeting URL: `jitsi` + `room`, with the options in the fragment.
pub fn meeting_url(jitsi: &Url, room: &str, options: &JoinOptions) -> Result<Url, VisioError> {
    let room = named_room(room)?;
    let mut url = jitsi.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut().map_err(|()| VisioError::NoJitsi)?.pop_if_empty().push(&room);

    let mut params: Vec<(&str, serde_json::Value)> = Vec::new();
    if options.audio_only {
        params.push(("config.startAudioOnly", true.into()));
        params.push(("config.startWithVideoMuted", true.into()));
    }
    params.push(("config.prejoinConfig.enabled", options.prejoin.into()));
    if let Some(name) = options.display_name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        params.push(("userInfo.displayName", name.into()));
    }
    if let Some(subject) = options.subject.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        params.push(("config.subject", subject.into()));
    }
    let fragment = params
        .iter()
        .map(|(key, value)| format!("{key}={}", utf8_percent_encode(&value.to_string(), COMPONENT)))
        .collect::<Vec<_>>()
        .join("&");
    url.set_fragment(Some(&fragment));
    Ok(url)
}

/// The link to share: the meeting URL without the fragment (the name and options are the
/// member's own, not the guest's).
pub fn invite_url(meeting: &Url) -> Url {
    let mut url = meeting.clone();
    url.set_fragment(None);
    url
}

/// A room name as Jitsi will see it: NFKC, lower case, trimmed. Jitsi normalises this way on
/// the server, so doing it here keeps "Réunion" and "RÉUNION" the same room in the recent list.
pub fn named_room(text: &str) -> Result<String, VisioError> {
    let room: String = text.trim().nfkc().collect::<String>().to_lowercase();
    if room.is_empty() {
        return Err(VisioError::EmptyRoom);
    }
    if room.contains(['/', '?', '#', '%', '\\']) || room.chars().any(char::is_control) {
        return Err(VisioError::InvalidRoom(text.trim().to_string()));
    }
    Ok(room)
}

/// Folds a name for lookups: NFKD, no combining accents, lower case, single spaces. So
/// "pole tech" finds "Pôle Tech".
fn fold(text: &str) -> String {
    let plain: String = text.nfkd().filter(|c| !('\u{300}'..='\u{36f}').contains(c)).collect::<String>().to_lowercase();
    plain.split(|c: char| c.is_whitespace() || c == '-' || c == '_').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// A team's standing room, by the team's name (accents and case do not matter) or its room.
pub fn team_room<'a>(profile: &'a Profile, name: &str) -> Result<&'a crate::config::TeamRoom, VisioError> {
    let wanted = fold(name);
    profile
        .teams
        .iter()
        .find(|t| fold(&t.name) == wanted)
        .or_else(|| profile.teams.iter().find(|t| fold(&t.room) == wanted))
        .ok_or_else(|| VisioError::UnknownTeam {
            name: name.to_string(),
            known: profile.teams.iter().map(|t| t.name.clone()).collect(),
        })
}

/// Opens a meeting (or any link) through the one replaceable hook.
pub fn open(opener: &Opener, url: &Url) -> Result<(), VisioError> {
    opener.open(url.as_str())?;
    Ok(())
}

/// The clipboard, provided by whoever runs the core: the desktop shell's clipboard plugin, or
/// [`CommandClipboard`] for the CLI.
pub trait Clipboard {
    fn set_text(&self, text: &str) -> Result<(), VisioError>;
}

/// Copies the invite link (the URL without its fragment) and returns it.
pub fn copy_invite(clipboard: &dyn Clipboard, meeting: &Url) -> Result<Url, VisioError> {
    let invite = invite_url(meeting);
    clipboard.set_text(invite.as_str())?;
    Ok(invite)
}

/// A clipboard through the OS's own small tools (`wl-copy`, `xclip`, `xsel`, `pbcopy`, `clip`),
/// the first one present. Chosen over a clipboard crate because X11 clipboards only live while
/// their owner process runs: these tools stay behind to serve the paste after the CLI exits,
/// which a library in a short-lived process cannot do.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommandClipboard;

impl CommandClipboard {
    const TOOLS: &'static [(&'static str, &'static [&'static str])] = &[
        ("wl-copy", &[]),
        ("xclip", &["-selection", "clipboard"]),
        ("xsel", &["--clipboard", "--input"]),
        ("pbcopy", &[]),
        ("clip", &[]),
    ];
}

impl Clipboard for CommandClipboard {
    fn set_text(&self, text: &str) -> Result<(), VisioError> {
        let mut tried = Vec::new();
        for (program, args) in Self::TOOLS {
            // Wayland's tool without a Wayland session, or X11's without a display, only fail.
            if *program == "wl-copy" && std::env::var_os("WAYLAND_DISPLAY").is_none() {
                continue;
            }
            if matches!(*program, "xclip" | "xsel") && std::env::var_os("DISPLAY").is_none() {
                continue;
            }
            let child = std::process::Command::new(program)
                .args(*args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
            let Ok(mut child) = child else { continue };
            tried.push(*program);
            let written = child.stdin.take().map(|mut stdin| stdin.write_all(text.as_bytes()));
            match (written, child.wait()) {
                (Some(Ok(())), Ok(status)) if status.success() => return Ok(()),
                _ => tracing::debug!(program, "the clipboard tool failed"),
            }
        }
        Err(VisioError::Clipboard(if tried.is_empty() {
            "no clipboard tool found (wl-copy, xclip, xsel)".into()
        } else {
            format!("{} failed", tried.join(", "))
        }))
    }
}

/// A link to another of the cooperative's tools, for the tray.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolLink {
    pub name: String,
    pub url: Url,
    pub kind: LinkKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// One of the profile's links (wiki, website...).
    Tool,
    /// The member's Keycloak account page.
    Account,
}

/// The profile's links, then the Keycloak account page. Opening them in the system browser
/// reuses the browser's SSO session, so no token is passed.
pub fn links(profile: &Profile) -> Vec<ToolLink> {
    let account = profile.account_url();
    let same = |u: &Url| u.as_str().trim_end_matches('/') == account.as_str().trim_end_matches('/');
    // A profile that lists the account page itself gets it once ("Mon compte" was twice).
    let mut all: Vec<ToolLink> = profile
        .links
        .iter()
        .map(|l| ToolLink { name: l.name.clone(), url: l.url.clone(), kind: if same(&l.url) { LinkKind::Account } else { LinkKind::Tool } })
        .collect();
    if !all.iter().any(|l| l.kind == LinkKind::Account) {
        all.push(ToolLink { name: "Mon compte".into(), url: account, kind: LinkKind::Account });
    }
    all
}
