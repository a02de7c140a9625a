//! Ending the member's presence on this computer: the login and every token other servers
//! gave on the strength of it (the chat's login token, Nextcloud's app password). `auth` cannot
//! do this itself, since the modules that hold those tokens build on `auth`, not the reverse.
use crate::{
    auth::{self, AuthError, LogoutOutcome, SecretStore, Session},
    config::Profile,
};

/// Logs out everywhere. The extra tokens are best effort: logging out must work even when the
/// chat or Nextcloud are down; the login itself is revoked, or at least forgotten locally.
#[tracing::instrument(skip_all)]
pub async fn logout(http: &reqwest::Client, profile: &Profile, store: &SecretStore) -> Result<LogoutOutcome, AuthError> {
    if let Ok(session) = Session::restore(http.clone(), profile.clone(), store.clone()) {
        if let Err(e) = crate::chat::forget(&session) {
            tracing::warn!(code = e.code(), "could not forget the chat token");
        }
    }
    if let Some(nextcloud) = &profile.nextcloud {
        if let Err(e) = crate::drive::nextcloud::logout(http, nextcloud, store).await {
            tracing::warn!(code = e.code(), "could not revoke the Nextcloud app password");
        }
    }
    auth::logout(http, profile, store).await
}
