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
    // Logged in to Nextcloud alone (Login Flow v2, no login of our own) is still logged in:
    // "not logged in" would be wrong once its app password was revoked.
    let mut nextcloud_outcome = None;
    if let Some(nextcloud) = &profile.nextcloud {
        if crate::drive::nextcloud::saved_mode(store, nextcloud).is_some() {
            nextcloud_outcome = Some(match crate::drive::nextcloud::logout(http, nextcloud, store).await {
                Ok(true) => LogoutOutcome::Revoked,
                Ok(false) => LogoutOutcome::LocalOnly("the file server did not revoke its app password".into()),
                Err(e) => {
                    tracing::warn!(code = e.code(), "could not revoke the Nextcloud app password");
                    LogoutOutcome::LocalOnly(e.to_string())
                }
            });
        }
    }
    let outcome = auth::logout(http, profile, store).await?;
    Ok(match (outcome, nextcloud_outcome) {
        (LogoutOutcome::WasNotLoggedIn, Some(nc)) => nc,
        (outcome, _) => outcome,
    })
}
