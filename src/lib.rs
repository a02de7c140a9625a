//! Passerelle's core: everything the desktop shell and the `passerelle` CLI do, with no GUI
//! dependency. One module per capability; the shell and the CLI are thin callers.
//!
//! - [`config`]: the organisation profile and the member's settings.
//! - [`account`]: logging out everywhere.
//! - [`auth`]: the one login (OIDC + PKCE against Keycloak) and the [`auth::Session`] handle.
//! - [`drive`]: the two-way sync of the member's folder over WebDAV.
//! - [`chat`]: Rocket.Chat unread and mention counts.
//! - [`visio`]: Jitsi meeting links.
//! - [`calendar`]: the next meetings from CalDAV.
//! - [`folder`]: which local folders may be synced.

pub mod account;
pub mod auth;
pub mod browser;
pub mod calendar;
pub mod chat;
pub mod config;
pub mod drive;
pub mod file_actions;
pub mod folder;
pub mod http;
pub mod i18n;
pub mod paths;
pub mod visio;
