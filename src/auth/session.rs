//! The logged-in session: a cheap-to-clone handle that gives a valid access token, refreshing
//! ahead of expiry. Concurrent callers share one refresh (single flight): the token state sits
//! behind a `tokio::sync::Mutex` that is held across the refresh request, so the second caller
//! waits and then finds the fresh token instead of spending the (rotating) refresh token again.
use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{oidc, oidc::Provider, AuthError, Identity, SecretStore};
use crate::config::Profile;

const KEY: &str = super::SESSION_KEY;

/// The secrets and facts kept between runs. Not `Debug`: it holds tokens.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub issuer: String,
    pub client_id: String,
    pub identity: Identity,
    pub access_token: String,
    /// Unix seconds.
    pub access_issued_at: u64,
    pub access_expires_at: u64,
    pub refresh_token: String,
    /// The latest ID token, for RP-initiated logout (`id_token_hint`).
    #[serde(default)]
    pub id_token: Option<String>,
}

/// What is left of a session the server ended.
#[derive(Serialize, Deserialize)]
struct Ended {
    ended: String,
    /// Whose it was: the account's other secrets stay its own until another login.
    #[serde(default)]
    account: Option<String>,
}

/// Names an account: a subject is only unique at its issuer.
pub(crate) fn account_id(issuer: &str, subject: &str) -> String {
    format!("{issuer}#{subject}")
}

/// The account of a saved login entry (tokens or the note of an ended session).
pub(crate) fn account_of_saved(text: &str) -> Option<String> {
    if let Ok(stored) = serde_json::from_str::<Stored>(text) {
        return Some(account_id(&stored.issuer, &stored.identity.subject));
    }
    serde_json::from_str::<Ended>(text).ok().and_then(|e| e.account)
}

impl Stored {
    pub fn load(store: &SecretStore) -> Result<Option<Stored>, AuthError> {
        match store.get(KEY)? {
            None => Ok(None),
            Some(text) => match serde_json::from_str(&text) {
                Ok(stored) => Ok(Some(stored)),
                Err(_) if serde_json::from_str::<Ended>(&text).is_ok() => Err(AuthError::LoginRequired(
                    serde_json::from_str::<Ended>(&text).map(|e| e.ended).unwrap_or_default(),
                )),
                // A damaged entry cannot be used; a fresh login is the only way forward.
                Err(_) => Err(AuthError::LoginRequired("the saved session is unreadable".into())),
            },
        }
    }

    fn save(&self, store: &SecretStore) -> Result<(), AuthError> {
        let text = serde_json::to_string(self).map_err(|e| AuthError::LoginRequired(e.to_string()))?;
        store.set(KEY, &text)?;
        Ok(())
    }

    /// Replaces the dead tokens by a note saying why, so that the next command, even in
    /// another process, says "please log in again" rather than "not logged in".
    fn mark_ended(&self, store: &SecretStore, reason: &str) -> Result<(), AuthError> {
        let account = Some(account_id(&self.issuer, &self.identity.subject));
        let text = serde_json::to_string(&Ended { ended: reason.to_string(), account })
            .map_err(|e| AuthError::LoginRequired(e.to_string()))?;
        store.set(KEY, &text)?;
        Ok(())
    }

    /// The saved tokens, or `None` when there are none or only the note of an ended session.
    pub fn load_live(store: &SecretStore) -> Result<Option<Stored>, AuthError> {
        match Stored::load(store) {
            Ok(stored) => Ok(stored),
            Err(AuthError::LoginRequired(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn delete(store: &SecretStore) -> Result<(), AuthError> {
        store.delete(KEY)?;
        Ok(())
    }

    /// Refresh when less than a quarter of the token's life (at most a minute) is left, so a
    /// request never leaves with a token about to die on the way.
    fn needs_refresh(&self, now: u64) -> bool {
        let life = self.access_expires_at.saturating_sub(self.access_issued_at);
        let margin = (life / 4).min(60);
        now + margin >= self.access_expires_at
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A handle on the member's session. Clone it freely; all clones share one token state.
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

struct Shared {
    http: reqwest::Client,
    profile: Profile,
    store: SecretStore,
    identity: Identity,
    /// Discovered on the first refresh of a restored session.
    provider: Mutex<Option<Provider>>,
    tokens: Mutex<Stored>,
    /// Set when the login server refused a refresh: only a new login helps.
    ended: std::sync::atomic::AtomicBool,
    /// The previous account's secrets, set aside in memory when this login replaced another
    /// account's: the store no longer has them, and `account::end_replaced` revokes them on
    /// their servers.
    replaced: std::sync::Mutex<Option<SecretStore>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("subject", &self.shared.identity.subject).finish_non_exhaustive()
    }
}

/// What `whoami` shows.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub name: String,
    pub email: Option<String>,
    pub username: Option<String>,
    pub issuer: String,
    /// Unix seconds.
    pub access_token_expires_at: u64,
    pub secrets_location: String,
}

impl Session {
    pub(crate) fn start(
        http: reqwest::Client,
        profile: Profile,
        provider: Provider,
        store: SecretStore,
        identity: Identity,
        tokens: oidc::TokenResponse,
    ) -> Result<Session, AuthError> {
        let refresh_token = tokens.refresh_token.ok_or_else(|| {
            AuthError::TokenRefused("the login server gave no refresh token, so the session could not be kept".into())
        })?;
        let issued = now();
        let stored = Stored {
            issuer: profile.issuer.to_string(),
            client_id: profile.client_id.clone(),
            identity: identity.clone(),
            access_token: tokens.access_token,
            access_issued_at: issued,
            access_expires_at: issued + tokens.expires_in.unwrap_or(60),
            refresh_token,
            id_token: tokens.id_token,
        };
        let previous = store.account()?;
        let account = account_id(&stored.issuer, &identity.subject);
        let keys = super::secrets::account_keys(profile.nextcloud.as_ref());
        // The previous account's secrets are copied aside first: deleted here, they must still
        // be revoked on their servers (a live app password left behind is a device the member
        // cannot see ending). In memory only.
        let replaced = match &previous {
            Some(p) if *p != account => store.set_aside(&keys).map_err(|e| tracing::warn!(error = %e, "could not set the previous account's secrets aside")).ok(),
            _ => None,
        };
        stored.save(&store)?;
        // Another account's secrets go before anything can use them (two members, one
        // computer, no logout in between). The check on reading covers a failure here.
        if let Err(e) = store.forget_other_accounts(&account, previous.as_deref(), &keys) {
            tracing::warn!(error = %e, "could not delete the previous account's secrets");
        }
        Ok(Session {
            shared: Arc::new(Shared {
                http,
                profile,
                store,
                identity,
                provider: Mutex::new(Some(provider)),
                tokens: Mutex::new(stored),
                ended: Default::default(),
                replaced: std::sync::Mutex::new(replaced),
            }),
        })
    }

    /// Picks up the session saved by an earlier run, without any network request.
    pub fn restore(http: reqwest::Client, profile: Profile, store: SecretStore) -> Result<Session, AuthError> {
        let stored = Stored::load(&store)?.ok_or(AuthError::NotLoggedIn)?;
        if stored.issuer != profile.issuer.as_str() || stored.client_id != profile.client_id {
            // Saved for another organisation: not ours to use.
            return Err(AuthError::NotLoggedIn);
        }
        Ok(Session {
            shared: Arc::new(Shared {
                http,
                identity: stored.identity.clone(),
                profile,
                store,
                provider: Mutex::new(None),
                tokens: Mutex::new(stored),
                ended: Default::default(),
                replaced: Default::default(),
            }),
        })
    }

    /// True when this session can no longer give a token without a new interactive login:
    /// the login server refused its refresh (here, or in another process sharing the store),
    /// or its tokens were deleted (a logout elsewhere). No network request.
    pub fn has_ended(&self) -> bool {
        if self.shared.ended.load(std::sync::atomic::Ordering::SeqCst) {
            return true;
        }
        match Stored::load(&self.shared.store) {
            Ok(Some(saved)) => saved.identity.subject != self.shared.identity.subject || saved.issuer != self.shared.profile.issuer.as_str(),
            Ok(None) | Err(AuthError::LoginRequired(_)) => true,
            // An unreadable store is not proof that the session ended.
            Err(_) => false,
        }
    }

    pub fn identity(&self) -> &Identity {
        &self.shared.identity
    }

    /// The previous account's secrets, when this login replaced another account's without a
    /// logout; given once (see `account::end_replaced`).
    pub fn take_replaced(&self) -> Option<SecretStore> {
        self.shared.replaced.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Names this session's account, as the secrets it obtains are saved for
    /// ([`SecretStore::set_for`]).
    pub fn account(&self) -> String {
        account_id(self.shared.profile.issuer.as_str(), &self.shared.identity.subject)
    }

    pub fn profile(&self) -> &Profile {
        &self.shared.profile
    }

    /// The shared HTTP client, for modules that talk to the coop's servers.
    pub fn http(&self) -> &reqwest::Client {
        &self.shared.http
    }

    pub fn secrets(&self) -> &SecretStore {
        &self.shared.store
    }

    pub async fn info(&self) -> SessionInfo {
        let tokens = self.shared.tokens.lock().await;
        SessionInfo {
            name: self.shared.identity.name.clone(),
            email: self.shared.identity.email.clone(),
            username: self.shared.identity.username.clone(),
            issuer: tokens.issuer.clone(),
            access_token_expires_at: tokens.access_expires_at,
            secrets_location: self.shared.store.location(),
        }
    }

    /// A valid access token, refreshed first when it is about to expire.
    pub async fn access_token(&self) -> Result<String, AuthError> {
        let mut tokens = self.shared.tokens.lock().await;
        if tokens.needs_refresh(now()) {
            self.refresh_locked(&mut tokens).await?;
        }
        Ok(tokens.access_token.clone())
    }

    /// Call after a server refused `rejected` with 401: refreshes, unless another caller already
    /// did since, and returns the token to retry with.
    pub async fn refresh_after_rejection(&self, rejected: &str) -> Result<String, AuthError> {
        let mut tokens = self.shared.tokens.lock().await;
        if tokens.access_token == rejected {
            self.refresh_locked(&mut tokens).await?;
        }
        Ok(tokens.access_token.clone())
    }

    #[tracing::instrument(skip_all)]
    async fn refresh_locked(&self, tokens: &mut Stored) -> Result<(), AuthError> {
        // One refresh at a time across processes (the tray and the CLI): with rotation, two
        // refreshes with one refresh token leave one of them with a dead token. The lock is a
        // file beside the store; the in-process mutex is already held by our caller.
        let _across_processes = self.shared.store.lock("session").await?;
        // Another process may have refreshed while we waited: adopt its newer tokens, which
        // are as good as a refresh of our own (and our refresh token may be dead by now).
        if self.adopt_saved(tokens) && !tokens.needs_refresh(now()) {
            return Ok(());
        }
        let mut provider = self.shared.provider.lock().await;
        if provider.is_none() {
            *provider = Some(Provider::discover(&self.shared.http, &self.shared.profile.issuer).await?);
        }
        let Some(provider) = provider.as_ref() else { return Err(AuthError::NotLoggedIn) };
        let spent = tokens.refresh_token.clone();
        let answer = provider.refresh(&self.shared.http, &tokens.client_id, &spent).await;
        let fresh = match answer {
            Ok(fresh) => fresh,
            Err(e) => {
                if let AuthError::LoginRequired(reason) = &e {
                    // Before declaring the session over, look again: a process that does not
                    // take the lock (an older version) may have rotated the token meanwhile.
                    if self.adopt_saved(tokens) && tokens.refresh_token != spent {
                        // Newer tokens than ours: the session lives on, whatever we spent.
                        if !tokens.needs_refresh(now()) {
                            return Ok(());
                        }
                        return Err(AuthError::Network("the session was renewed elsewhere meanwhile; try again".into()));
                    }
                    // The server ended the session: the stored tokens are worthless now.
                    tracing::warn!("the login server refused the refresh: the member must log in again");
                    self.shared.ended.store(true, std::sync::atomic::Ordering::SeqCst);
                    tokens.mark_ended(&self.shared.store, reason)?;
                }
                return Err(e);
            }
        };
        let issued = now();
        tokens.access_token = fresh.access_token;
        tokens.access_issued_at = issued;
        tokens.access_expires_at = issued + fresh.expires_in.unwrap_or(60);
        // Rotation: the server may return a new refresh token and kill the old one. Store the
        // newest at once, before anything else can fail.
        if let Some(refresh) = fresh.refresh_token {
            tokens.refresh_token = refresh;
        }
        if let Some(id_token) = fresh.id_token {
            tokens.id_token = Some(id_token);
        }
        tokens.save(&self.shared.store)?;
        tracing::debug!(expires_at = tokens.access_expires_at, "access token refreshed");
        Ok(())
    }

    /// Takes the saved tokens when another process stored newer ones. True when it did.
    fn adopt_saved(&self, tokens: &mut Stored) -> bool {
        match Stored::load(&self.shared.store) {
            Ok(Some(saved))
                if saved.refresh_token != tokens.refresh_token
                    && saved.issuer == tokens.issuer
                    && saved.identity.subject == tokens.identity.subject =>
            {
                *tokens = saved;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(issued: u64, expires: u64) -> Stored {
        Stored {
            issuer: "i".into(),
            client_id: "c".into(),
            identity: Identity { subject: "s".into(), name: "n".into(), email: None, username: None },
            access_token: "a".into(),
            access_issued_at: issued,
            access_expires_at: expires,
            refresh_token: "r".into(),
            id_token: None,
        }
    }

    #[test]
    fn refresh_happens_ahead_of_expiry() {
        // A 300 s token is refreshed in its last minute.
        let s = stored(1000, 1300);
        assert!(!s.needs_refresh(1239));
        assert!(s.needs_refresh(1240));
        // A 20 s token in its last 5 s.
        let s = stored(1000, 1020);
        assert!(!s.needs_refresh(1014));
        assert!(s.needs_refresh(1015));
        assert!(s.needs_refresh(5000));
    }
}
