//! The one HTTP client of the process. Every module clones it (cheap, shares the connection
//! pool), so there is one reqwest, one TLS stack (rustls with aws-lc-rs), one pool and one
//! redirect policy.
//!
//! The redirect policy is a trust rule: a redirect never takes a request to another origin.
//! reqwest strips only `Authorization` and cookies on a cross-host hop; our credentials also
//! travel as `X-Auth-Token`/`X-User-Id` (Rocket.Chat) and in bodies (the chat login's access
//! token, re-sent on 307/308), so the only safe rule is not to leave the origin at all.
use std::time::Duration;

use url::Url;

/// A user agent naming the app and its version, so that server admins can tell us apart.
pub const USER_AGENT: &str = concat!("Passerelle/", env!("CARGO_PKG_VERSION"));

/// At most this many hops, all on the first request's origin.
const MAX_REDIRECTS: usize = 10;

/// Builds the shared client. Timeouts are generous for uploads but bound the connect phase, so a
/// dead network is reported in seconds rather than minutes.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(redirect_policy())
        .build()
        // Building only fails when the TLS backend cannot initialise, which is a broken install,
        // not bad input: there is nothing sensible to do but stop.
        .expect("the TLS backend failed to initialise")
}

/// Why a redirect was not followed. Its text reaches the member through `plain_reqwest`.
#[derive(Debug, thiserror::Error)]
pub enum RedirectRefused {
    #[error("the server sent the request on to another site ({0}): not followed, so that no credential leaves the server")]
    OtherOrigin(String),
    #[error("the server redirected too many times")]
    TooMany,
}

/// What to do with one redirect hop from `from` (the first request's URL) to `to`.
#[derive(Debug, PartialEq, Eq)]
pub enum Hop {
    Follow,
    Refuse,
}

/// Same origin only; the one exception is an upgrade from http to https on the same host and
/// default ports (a server moving its own clients to TLS). A downgrade is a change of origin,
/// so it is refused, on loopback too.
pub fn redirect_hop(from: &Url, to: &Url) -> Hop {
    if from.origin() == to.origin() {
        return Hop::Follow;
    }
    let upgrade = from.scheme() == "http"
        && to.scheme() == "https"
        && from.host() == to.host()
        && from.port().is_none()
        && to.port().is_none();
    if upgrade {
        Hop::Follow
    } else {
        Hop::Refuse
    }
}

fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(RedirectRefused::TooMany);
        }
        let Some(first) = attempt.previous().first().cloned() else { return attempt.follow() };
        match redirect_hop(&first, attempt.url()) {
            Hop::Follow => attempt.follow(),
            Hop::Refuse => {
                let to = attempt.url().origin().ascii_serialization();
                tracing::warn!(from = %first.origin().ascii_serialization(), %to, "a redirect to another origin was refused");
                attempt.error(RedirectRefused::OtherOrigin(to))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(a: &str, b: &str) -> Hop {
        redirect_hop(&Url::parse(a).unwrap(), &Url::parse(b).unwrap())
    }

    #[test]
    fn only_the_same_origin_or_an_upgrade_is_followed() {
        assert_eq!(hop("https://chat.coop/api/v1/x", "https://chat.coop/other"), Hop::Follow);
        assert_eq!(hop("http://cloud.coop/status.php", "https://cloud.coop/status.php"), Hop::Follow);
        assert_eq!(hop("https://chat.coop/a", "https://evil.example/a"), Hop::Refuse);
        assert_eq!(hop("https://chat.coop/a", "https://other.chat.coop/a"), Hop::Refuse);
        assert_eq!(hop("https://chat.coop/a", "http://chat.coop/a"), Hop::Refuse, "downgrade");
        assert_eq!(hop("https://127.0.0.1:8443/a", "http://127.0.0.1:8443/a"), Hop::Refuse, "downgrade on loopback");
        assert_eq!(hop("http://127.0.0.1:1/a", "http://127.0.0.1:2/a"), Hop::Refuse, "another port");
        assert_eq!(hop("http://cloud.coop:8080/a", "https://cloud.coop:8443/a"), Hop::Refuse);
    }
}
