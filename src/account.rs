//! Ending the member's presence on this computer: the login and every token other servers
//! gave on the strength of it (the chat's login token, Nextcloud's app password). `auth` cannot
//! do this itself, since the modules that hold those tokens build on `auth`, not the reverse.
use crate::{
    auth::{self, AuthError, LogoutOutcome, SecretStore},
    config::Profile,
};

/// Logs out everywhere. Every local secret is deleted whatever else happens, also when the
/// session had already ended; the servers are told what they can be told (the chat token and
/// the Nextcloud app password revoked, the login's refresh token revoked and its Keycloak
/// session ended), best effort, so logging out works offline too.
#[tracing::instrument(skip_all)]
pub async fn logout(http: &reqwest::Client, profile: &Profile, store: &SecretStore) -> Result<LogoutOutcome, AuthError> {
    match crate::chat::logout(http, profile, store).await {
        Ok(revoked) => tracing::debug!(revoked, "chat token forgotten"),
        Err(e) => tracing::warn!(code = e.code(), "could not forget the chat token"),
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
    let outcome = auth::logout(http, profile, store).await;
    // Whatever failed above, nothing of this member stays on the computer.
    let mut keys = auth::secrets::account_keys(profile.nextcloud.as_ref());
    keys.push(auth::SESSION_KEY.to_string());
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let leftovers = store.delete_all(&keys, &[auth::secrets::NEXTCLOUD_PREFIX]);
    let outcome = outcome?;
    leftovers?;
    Ok(match (outcome, nextcloud_outcome) {
        (LogoutOutcome::WasNotLoggedIn, Some(nc)) => nc,
        (outcome, _) => outcome,
    })
}

/// After a login that replaced another account's without a logout (two members, one
/// computer): ends the previous account's access on its servers as [`logout`] does (its
/// Keycloak session, chat token and Nextcloud app password), from the copy the login set aside
/// before deleting them here. Nothing to do otherwise. Best effort: the secrets are already
/// gone from this computer, so a server that cannot be told only keeps a token nobody here has.
#[tracing::instrument(skip_all)]
pub async fn end_replaced(http: &reqwest::Client, session: &auth::Session) {
    let Some(previous) = session.take_replaced() else { return };
    match logout(http, session.profile(), &previous).await {
        Ok(outcome) => tracing::info!(?outcome, "the previous account's access was ended on its servers"),
        Err(e) => tracing::warn!(code = e.code(), "could not end the previous account's access on its servers"),
    }
}
