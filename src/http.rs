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

/// The most a WebDAV or CalDAV answer (a PROPFIND listing, a REPORT) may weigh: a folder of
/// 100,000 items is about 40 MiB of XML.
pub const DAV_ANSWER_LIMIT: u64 = 64 * 1024 * 1024;
/// The most a JSON answer (chat, OCS, OIDC) or an error page may weigh.
pub const JSON_ANSWER_LIMIT: u64 = 8 * 1024 * 1024;

/// Why a body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The server sent (or announced) more than the cap: a broken or hostile server.
    #[error("the server's answer is larger than {} MiB", limit / (1024 * 1024))]
    TooLarge { limit: u64 },
    #[error("the answer was cut short: {0}")]
    Transport(String),
    #[error("the answer is not the JSON expected: {0}")]
    Json(String),
}

/// Reads a response body, at most `limit` bytes: a bigger one stops at the first chunk past
/// the cap (or at once when `Content-Length` says so), so memory never holds more than that.
/// Every answer read whole goes through here (or [`text_limited`] / [`json_limited`]).
pub async fn read_limited(mut response: reqwest::Response, limit: u64) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| BodyError::Transport(crate::config::plain_reqwest(&e)))? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// [`read_limited`] as text (invalid UTF-8 replaced, as XML parsers then refuse it plainly).
pub async fn text_limited(response: reqwest::Response, limit: u64) -> Result<String, BodyError> {
    let body = read_limited(response, limit).await?;
    Ok(match String::from_utf8(body) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// [`read_limited`] parsed as JSON.
pub async fn json_limited<T: serde::de::DeserializeOwned>(response: reqwest::Response, limit: u64) -> Result<T, BodyError> {
    let body = read_limited(response, limit).await?;
    serde_json::from_slice(&body).map_err(|e| BodyError::Json(e.to_string()))
}

#[cfg(test)]
mod body_tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Serves one answer of `size` bytes on 127.0.0.1, with `Content-Length` or chunked.
    async fn serve(size: usize, announce: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let body = vec![b'x'; size];
            if announce {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n");
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(&body).await;
            } else {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").await;
                for piece in body.chunks(64 * 1024) {
                    let _ = conn.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).await;
                    let _ = conn.write_all(piece).await;
                    let _ = conn.write_all(b"\r\n").await;
                }
                let _ = conn.write_all(b"0\r\n\r\n").await;
            }
        });
        url
    }

    /// Issue 12, item 19: answers were read whole, whatever their size. Over the cap, the read
    /// stops with `TooLarge`, announced or not.
    #[tokio::test]
    async fn bodies_over_the_cap_are_refused() {
        let http = client();
        for announce in [true, false] {
            let url = serve(3 * 1024 * 1024, announce).await;
            let answer = http.get(&url).send().await.unwrap();
            let e = read_limited(answer, 1024 * 1024).await.unwrap_err();
            assert!(matches!(e, BodyError::TooLarge { limit: 1_048_576 }), "announced {announce}: {e}");

            let url = serve(1000, announce).await;
            let answer = http.get(&url).send().await.unwrap();
            assert_eq!(read_limited(answer, 1000).await.unwrap().len(), 1000, "announced {announce}");
        }
        let url = serve(10, true).await;
        let e = json_limited::<serde_json::Value>(http.get(&url).send().await.unwrap(), 100).await.unwrap_err();
        assert!(matches!(e, BodyError::Json(_)), "{e}");
    }
}
