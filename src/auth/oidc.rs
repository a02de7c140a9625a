//! The OpenID provider, as seen from a public client: discovery, the token endpoint (code
//! exchange, refresh), revocation, and ID-token validation against the provider's JWKS.
//!
//! Requests go through the one shared reqwest client; `openidconnect` is used for what is easy
//! to get wrong by hand: PKCE values, nonces, and the ID token's signature and claims checks.
use std::time::Duration;

use openidconnect::{
    core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet},
    ClientId, IssuerUrl, Nonce,
};
use serde::Deserialize;
use url::Url;

use super::{AuthError, Identity};
use crate::config::plain_reqwest;

/// The endpoints we use from `/.well-known/openid-configuration`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Provider {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
    #[serde(default)]
    pub revocation_endpoint: Option<Url>,
    /// RP-initiated logout (OIDC RP-Initiated Logout 1.0).
    #[serde(default)]
    pub end_session_endpoint: Option<Url>,
}

/// The token endpoint's answer. Not `Debug`: it holds secrets.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl Provider {
    /// Fetches and checks the discovery document: its issuer must be exactly the one configured
    /// (OIDC Discovery §4.3), otherwise a look-alike server could hand out its own endpoints.
    pub async fn discover(http: &reqwest::Client, issuer: &Url) -> Result<Provider, AuthError> {
        let issuer_text = issuer.as_str().trim_end_matches('/');
        let url = format!("{issuer_text}/.well-known/openid-configuration");
        let unreachable = |reason: String| AuthError::DiscoveryUnreachable { issuer: issuer_text.into(), reason };
        let response = http
            .get(&url)
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .map_err(|e| unreachable(plain_reqwest(&e)))?;
        if !response.status().is_success() {
            return Err(unreachable(format!("the server answered {}", response.status())));
        }
        let provider: Provider = crate::http::json_limited(response, crate::http::JSON_ANSWER_LIMIT)
            .await
            .map_err(|e| unreachable(format!("its discovery document is unreadable ({e})")))?;
        if provider.issuer.trim_end_matches('/') != issuer_text {
            return Err(AuthError::WrongIssuer { expected: issuer_text.into(), found: provider.issuer });
        }
        // The code, the PKCE verifier and the refresh token go to these endpoints: plain http
        // (off loopback) would hand them to anyone on the network.
        let endpoints = [
            ("authorization_endpoint", Some(&provider.authorization_endpoint)),
            ("token_endpoint", Some(&provider.token_endpoint)),
            ("jwks_uri", Some(&provider.jwks_uri)),
            ("revocation_endpoint", provider.revocation_endpoint.as_ref()),
            ("end_session_endpoint", provider.end_session_endpoint.as_ref()),
        ];
        for (field, url) in endpoints {
            if let Some(url) = url {
                if !crate::config::is_secure(url) {
                    return Err(AuthError::InsecureEndpoint { field: field.into(), url: url.to_string() });
                }
            }
        }
        Ok(provider)
    }

    async fn token_request(
        &self,
        http: &reqwest::Client,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, TokenFailure> {
        let response = http
            .post(self.token_endpoint.clone())
            .form(form)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| TokenFailure::Network(plain_reqwest(&e)))?;
        let status = response.status();
        if status.is_success() {
            return crate::http::json_limited(response, crate::http::JSON_ANSWER_LIMIT)
                .await
                .map_err(|e| TokenFailure::Network(e.to_string()));
        }
        let body = crate::http::text_limited(response, crate::http::JSON_ANSWER_LIMIT).await.unwrap_or_default();
        match serde_json::from_str::<OAuthError>(&body) {
            Ok(err) => Err(TokenFailure::Refused {
                error: err.error,
                description: err.error_description.unwrap_or_default(),
            }),
            Err(_) if status.is_server_error() => {
                Err(TokenFailure::Network(format!("the login server answered {status}")))
            }
            Err(_) => Err(TokenFailure::Refused { error: status.to_string(), description: String::new() }),
        }
    }

    pub async fn exchange_code(
        &self,
        http: &reqwest::Client,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<TokenResponse, AuthError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
            ("code_verifier", verifier),
        ];
        self.token_request(http, &form).await.map_err(|f| match f {
            TokenFailure::Network(reason) => AuthError::Network(reason),
            TokenFailure::Refused { error, description } => {
                AuthError::TokenRefused(format!("{error} {description}").trim().to_string())
            }
        })
    }

    pub async fn refresh(
        &self,
        http: &reqwest::Client,
        client_id: &str,
        refresh_token: &str,
    ) -> Result<TokenResponse, AuthError> {
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)];
        self.token_request(http, &form).await.map_err(|f| match f {
            TokenFailure::Network(reason) => AuthError::Network(reason),
            // invalid_grant: revoked, expired or already used (rotation). The member must log
            // in again; anything else from the server is no better.
            // The server's description is for developers ("Token is not active"); say it plainly.
            TokenFailure::Refused { error, description } => {
                tracing::debug!(%error, %description, "refresh refused");
                AuthError::LoginRequired("your session was ended by the server".into())
            }
        })
    }

    /// Revokes a refresh token (RFC 7009). Best effort: the caller deletes local secrets anyway.
    pub async fn revoke(&self, http: &reqwest::Client, client_id: &str, refresh_token: &str) -> Result<(), AuthError> {
        let Some(endpoint) = &self.revocation_endpoint else {
            return Err(AuthError::Network("the login server offers no revocation".into()));
        };
        let form = [("token", refresh_token), ("token_type_hint", "refresh_token"), ("client_id", client_id)];
        post_form(http, endpoint, &form).await
    }

    /// Ends the provider's session that `refresh_token` belongs to, from the back channel:
    /// Keycloak's logout endpoint takes a POST with `client_id` and `refresh_token` and ends the
    /// user session (the browser's single sign-on too), so that on a shared computer the next
    /// login asks for the password again.
    pub async fn end_session(&self, http: &reqwest::Client, client_id: &str, refresh_token: &str) -> Result<(), AuthError> {
        let Some(endpoint) = &self.end_session_endpoint else {
            return Err(AuthError::Network("the login server offers no logout endpoint".into()));
        };
        let form = [("client_id", client_id), ("refresh_token", refresh_token)];
        post_form(http, endpoint, &form).await
    }

    /// Validates an ID token: signature against the provider's JWKS, `iss`, `aud`, `exp` and
    /// the nonce we sent. Returns who logged in.
    pub async fn verify_id_token(
        &self,
        http: &reqwest::Client,
        client_id: &str,
        id_token: &str,
        nonce: &Nonce,
    ) -> Result<Identity, AuthError> {
        let jwks = http
            .get(self.jwks_uri.clone())
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| AuthError::Network(plain_reqwest(&e)))?;
        let jwks: CoreJsonWebKeySet = crate::http::json_limited(jwks, crate::http::JSON_ANSWER_LIMIT)
            .await
            .map_err(|e| AuthError::InvalidIdToken(format!("the signing keys are unreadable: {e}")))?;
        let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| AuthError::InvalidIdToken(e.to_string()))?;
        let verifier = CoreIdTokenVerifier::new_public_client(ClientId::new(client_id.to_string()), issuer, jwks);
        let token: CoreIdToken = serde_json::from_value(serde_json::Value::String(id_token.to_string()))
            .map_err(|_| AuthError::InvalidIdToken("it is not a well-formed token".into()))?;
        let claims = token.claims(&verifier, nonce).map_err(|e| AuthError::InvalidIdToken(e.to_string()))?;
        let name = claims.name().and_then(|n| n.get(None)).map(|n| n.to_string());
        let username = claims.preferred_username().map(|u| u.to_string());
        Ok(Identity {
            subject: claims.subject().to_string(),
            name: name.or_else(|| username.clone()).unwrap_or_default(),
            email: claims.email().map(|e| e.to_string()),
            username,
        })
    }
}

enum TokenFailure {
    Network(String),
    Refused { error: String, description: String },
}

/// A form POST to one of the provider's endpoints whose answer carries nothing but success
/// (revocation, back-channel logout).
async fn post_form(http: &reqwest::Client, endpoint: &Url, form: &[(&str, &str)]) -> Result<(), AuthError> {
    let response = http
        .post(endpoint.clone())
        .form(form)
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .map_err(|e| AuthError::Network(plain_reqwest(&e)))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(AuthError::Network(format!("the login server answered {}", response.status())))
    }
}
