//! The one login: OAuth2 authorization code with PKCE (S256), `state` and `nonce`, in the
//! system browser, with the loopback redirect of RFC 8252. The resulting [`Session`] keeps
//! the tokens fresh and in the keychain, and is what every other module asks for a token.
//!
//! Flow: [`login`] discovers the provider, opens the browser through the replaceable
//! [`crate::browser::Opener`], waits on the loopback listener, exchanges the code, validates
//! the ID token and stores the tokens. A front end that must show the address itself (no
//! browser could open) or let the member stop waiting uses its two halves: [`begin`] gives a
//! [`PendingLogin`] with the address, [`PendingLogin::finish`] waits, and a [`LoginCancel`]
//! ends the wait. [`Session::restore`] picks them up after a restart;
//! [`logout`] revokes the refresh token and deletes the secrets.

mod loopback;
mod oidc;
pub mod secrets;
mod session;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use openidconnect::{CsrfToken, Nonce, PkceCodeChallenge};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use secrets::{SecretError, SecretStore};
pub use session::Session;

use crate::{browser::Opener, config::Profile, i18n::Lang};

/// The secret store key of the login's tokens.
pub const SESSION_KEY: &str = "oidc";

/// Scopes asked for: `offline_access` makes the session survive restarts and SSO expiry.
pub const SCOPES: &str = "openid profile email offline_access";

/// How long the browser has to come back before the login gives up.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Error)]
pub enum AuthError {
    #[error("the login server {issuer} cannot be reached: {reason}")]
    DiscoveryUnreachable { issuer: String, reason: String },
    #[error("the login server says it is {found}, not {expected}: refusing to trust it")]
    WrongIssuer { expected: String, found: String },
    #[error("the login server names an address without https for its “{field}” ({url}): refusing to send anything there")]
    InsecureEndpoint { field: String, url: String },
    #[error("the login was cancelled in the browser")]
    Cancelled,
    #[error("the login was stopped before the browser came back")]
    Stopped,
    #[error("the login server refused the login ({error}{})", if description.is_empty() { String::new() } else { format!(": {description}") })]
    Provider { error: String, description: String },
    #[error("the login took too long: nobody came back from the browser in time")]
    Timeout,
    #[error("the browser's answer does not match this login (state mismatch): refused")]
    StateMismatch,
    #[error("the login server refused to give a session: {0}")]
    TokenRefused(String),
    #[error("the identity sent by the login server is not valid: {0}")]
    InvalidIdToken(String),
    #[error("please log in again ({0})")]
    LoginRequired(String),
    #[error("you are not logged in: run “passerelle login”")]
    NotLoggedIn,
    #[error("the login server cannot be reached right now: {0}")]
    Network(String),
    #[error("could not listen for the browser's answer: {0}")]
    Loopback(String),
    #[error(transparent)]
    Browser(#[from] crate::browser::OpenError),
    #[error(transparent)]
    Secrets(#[from] SecretError),
}

impl AuthError {
    /// A stable code for scripts and the IPC boundary.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::DiscoveryUnreachable { .. } => "discovery_unreachable",
            AuthError::WrongIssuer { .. } => "wrong_issuer",
            AuthError::InsecureEndpoint { .. } => "provider_insecure",
            AuthError::Cancelled => "cancelled",
            AuthError::Stopped => "login_stopped",
            AuthError::Provider { .. } => "provider_error",
            AuthError::Timeout => "timeout",
            AuthError::StateMismatch => "state_mismatch",
            AuthError::TokenRefused(_) => "token_refused",
            AuthError::InvalidIdToken(_) => "invalid_id_token",
            AuthError::LoginRequired(_) => "login_required",
            AuthError::NotLoggedIn => "not_logged_in",
            AuthError::Network(_) => "offline",
            AuthError::Loopback(_) => "loopback",
            AuthError::Browser(e) => e.code(),
            AuthError::Secrets(_) => "secrets",
        }
    }

    /// True when only a new interactive login can help.
    pub fn needs_login(&self) -> bool {
        matches!(self, AuthError::LoginRequired(_) | AuthError::NotLoggedIn)
    }
}

/// Who is logged in, from the validated ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub subject: String,
    /// The display name ("Alice Martin"), or the user name when the provider gives none.
    pub name: String,
    pub email: Option<String>,
    pub username: Option<String>,
}

/// How to run an interactive login.
#[derive(Debug, Clone)]
pub struct LoginOptions {
    pub opener: Opener,
    pub timeout: Duration,
    /// The app's language, sent as `ui_locales` so that the login page speaks it (Keycloak
    /// otherwise follows the browser's languages, often English on a French desktop).
    pub language: Option<Lang>,
    /// Ends the wait for the browser when the member gives up.
    pub cancel: LoginCancel,
}

impl Default for LoginOptions {
    fn default() -> Self {
        LoginOptions { opener: Opener::System, timeout: DEFAULT_LOGIN_TIMEOUT, language: None, cancel: LoginCancel::default() }
    }
}

/// Stops a login waiting for the browser: the wait ends with [`AuthError::Stopped`] and the
/// loopback listener is closed. Cheap to clone; cancelling before the wait starts counts too.
#[derive(Debug, Clone, Default)]
pub struct LoginCancel {
    inner: Arc<CancelInner>,
}

#[derive(Debug, Default)]
struct CancelInner {
    cancelled: AtomicBool,
    notify: tokio::sync::Notify,
}

impl LoginCancel {
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// True when both handles cancel the same login.
    pub fn same(&self, other: &LoginCancel) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Resolves once [`LoginCancel::cancel`] was called, before or after this call.
    pub(crate) async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            // Registered before the flag is read, so a cancel in between is not missed.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// Whether the organisation's login server answers now (its discovery document). The desktop
/// tells "the file server is down" from "the computer is offline" with it.
pub async fn login_server_answers(http: &reqwest::Client, profile: &Profile) -> bool {
    oidc::Provider::discover(http, &profile.issuer).await.is_ok()
}

/// Runs the interactive login and stores the session.
#[tracing::instrument(skip_all, fields(issuer = %profile.issuer))]
pub async fn login(
    http: &reqwest::Client,
    profile: &Profile,
    store: &SecretStore,
    options: &LoginOptions,
) -> Result<Session, AuthError> {
    let pending = begin(http, profile, store, options).await?;
    tracing::info!(redirect_uri = %pending.redirect_uri, "opening the browser for the login");
    options.opener.open(pending.url().as_str())?;
    pending.finish().await
}

/// A login whose browser step is under way: the address to open, and the loopback listener
/// waiting for the browser to come back. Dropping it closes the listener. Not `Debug`: it holds
/// the PKCE verifier.
pub struct PendingLogin {
    http: reqwest::Client,
    profile: Profile,
    store: SecretStore,
    provider: oidc::Provider,
    listener: loopback::Loopback,
    redirect_uri: String,
    url: url::Url,
    verifier: openidconnect::PkceCodeVerifier,
    state: CsrfToken,
    nonce: Nonce,
    timeout: Duration,
    cancel: LoginCancel,
}

/// The first half of [`login`]: discovery, the loopback listener, and the address of the login
/// page (with PKCE, state, nonce and `ui_locales`). Nothing is opened: the caller opens
/// [`PendingLogin::url`] (and may show it to the member), then calls [`PendingLogin::finish`].
#[tracing::instrument(skip_all, fields(issuer = %profile.issuer))]
pub async fn begin(
    http: &reqwest::Client,
    profile: &Profile,
    store: &SecretStore,
    options: &LoginOptions,
) -> Result<PendingLogin, AuthError> {
    let provider = oidc::Provider::discover(http, &profile.issuer).await?;
    let listener = loopback::Loopback::bind().await?;
    let redirect_uri = listener.redirect_uri();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = CsrfToken::new_random();
    let nonce = Nonce::new_random();

    let mut url = provider.authorization_endpoint.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &profile.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", SCOPES)
            .append_pair("state", state.secret())
            .append_pair("nonce", nonce.secret())
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        // OIDC Core 3.1.2.1: the end-user's preferred languages for the login page.
        if let Some(lang) = options.language {
            query.append_pair("ui_locales", lang.tag());
        }
    }
    Ok(PendingLogin {
        http: http.clone(),
        profile: profile.clone(),
        store: store.clone(),
        provider,
        listener,
        redirect_uri,
        url,
        verifier,
        state,
        nonce,
        timeout: options.timeout,
        cancel: options.cancel.clone(),
    })
}

impl PendingLogin {
    /// The login page's address, for the browser (or for the member to paste into one).
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The organisation this login is for.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Waits for the browser (until the timeout, or until the [`LoginCancel`] of the options
    /// is cancelled), exchanges the code, checks the ID token and stores the session.
    pub async fn finish(self) -> Result<Session, AuthError> {
        let PendingLogin { http, profile, store, provider, listener, redirect_uri, verifier, state, nonce, timeout, cancel, .. } = self;
        let callback = tokio::select! {
            callback = listener.wait(state.secret(), timeout) => callback?,
            () = cancel.cancelled() => {
                // The listener is dropped with this branch: the port is closed at once.
                tracing::info!("the member stopped waiting for the browser");
                return Err(AuthError::Stopped);
            }
        };
        tracing::debug!("the browser came back with a code; exchanging it");
        let tokens = provider
            .exchange_code(&http, &profile.client_id, &callback.code, &redirect_uri, verifier.secret())
            .await?;
        let id_token = tokens
            .id_token
            .as_deref()
            .ok_or_else(|| AuthError::InvalidIdToken("the login server sent no ID token".into()))?;
        let identity = provider.verify_id_token(&http, &profile.client_id, id_token, &nonce).await?;
        tracing::info!(subject = %identity.subject, "logged in");
        Session::start(http, profile, provider, store, identity, tokens)
    }
}

/// Ends the session: ends the Keycloak session the tokens belong to and revokes the refresh
/// token at the provider, then deletes the local secrets whatever the provider said, so that
/// logging out always works, even offline, and also when the session had already ended.
#[tracing::instrument(skip_all)]
pub async fn logout(http: &reqwest::Client, profile: &Profile, store: &SecretStore) -> Result<LogoutOutcome, AuthError> {
    let had_entry = store.get(SESSION_KEY)?.is_some();
    // An ended session (or an unreadable entry) has nothing left to revoke: just forget it.
    let stored = session::Stored::load_live(store).unwrap_or(None);
    let Some(stored) = stored else {
        session::Stored::delete(store)?;
        return Ok(if had_entry { LogoutOutcome::LocalOnly("the session had already ended".into()) } else { LogoutOutcome::WasNotLoggedIn });
    };
    let told = match oidc::Provider::discover(http, &profile.issuer).await {
        Ok(provider) => {
            // The session first (it needs a live refresh token), then the token itself.
            if let Err(e) = provider.end_session(http, &profile.client_id, &stored.refresh_token).await {
                tracing::warn!(error = %e, "the login server did not end the session");
            }
            provider.revoke(http, &profile.client_id, &stored.refresh_token).await
        }
        Err(e) => Err(e),
    };
    session::Stored::delete(store)?;
    Ok(match told {
        Ok(()) => LogoutOutcome::Revoked,
        Err(e) => {
            tracing::warn!(error = %e, "the server could not be told; local secrets were deleted anyway");
            LogoutOutcome::LocalOnly(e.to_string())
        }
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutOutcome {
    Revoked,
    /// Secrets deleted here, but the server was not told (offline): the reason.
    LocalOnly(String),
    WasNotLoggedIn,
}
