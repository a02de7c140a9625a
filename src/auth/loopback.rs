//! The loopback redirect listener of RFC 8252: bound to 127.0.0.1 on a random port, path
//! `/callback`, single use, with a deadline. It answers the browser with a small bilingual page.
use std::{collections::HashMap, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::Instant,
};

use super::AuthError;

/// What the browser brought back, once checked.
pub(crate) struct Callback {
    pub code: String,
}

pub(crate) struct Loopback {
    listener: TcpListener,
    port: u16,
}

impl Loopback {
    pub async fn bind() -> Result<Loopback, AuthError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| AuthError::Loopback(e.to_string()))?;
        let port = listener.local_addr().map_err(|e| AuthError::Loopback(e.to_string()))?.port();
        Ok(Loopback { listener, port })
    }

    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/callback", self.port)
    }

    /// Waits for the one callback. Other paths (a favicon request) get a 404 and the wait goes
    /// on; the first request on `/callback` ends it, whatever it carries, and the listener is
    /// closed on return, so a second callback finds nobody listening.
    pub async fn wait(self, expected_state: &str, timeout: Duration) -> Result<Callback, AuthError> {
        let deadline = Instant::now() + timeout;
        loop {
            let (mut stream, _) = tokio::time::timeout_at(deadline, self.listener.accept())
                .await
                .map_err(|_| AuthError::Timeout)?
                .map_err(|e| AuthError::Loopback(e.to_string()))?;
            // A browser sends its request at once; a silent connection must not hold the login.
            let head = match tokio::time::timeout(Duration::from_secs(5), read_head(&mut stream)).await {
                Ok(Ok(head)) => head,
                _ => continue,
            };
            let Some(target) = request_target(&head) else {
                respond(&mut stream, 400, &page(false)).await;
                continue;
            };
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            if path != "/callback" {
                respond(&mut stream, 404, "").await;
                continue;
            }
            let params: HashMap<String, String> =
                url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            let outcome = check(&params, expected_state);
            respond(&mut stream, if outcome.is_ok() { 200 } else { 400 }, &page(outcome.is_ok())).await;
            return outcome;
        }
    }
}

fn check(params: &HashMap<String, String>, expected_state: &str) -> Result<Callback, AuthError> {
    if let Some(error) = params.get("error") {
        return Err(match error.as_str() {
            "access_denied" => AuthError::Cancelled,
            _ => AuthError::Provider {
                error: error.clone(),
                description: params.get("error_description").cloned().unwrap_or_default(),
            },
        });
    }
    // The state ties this answer to the request we made; anything else may be a forged
    // redirect from another page, so it is refused before the code is even looked at.
    match params.get("state") {
        Some(state) if constant_time_eq(state.as_bytes(), expected_state.as_bytes()) => {}
        _ => return Err(AuthError::StateMismatch),
    }
    match params.get("code") {
        Some(code) if !code.is_empty() => Ok(Callback { code: code.clone() }),
        _ => Err(AuthError::TokenRefused("the server sent no authorisation code".into())),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // 16 KiB is far more than any browser's request head; more is not a browser.
    while buf.len() < 16 * 1024 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn request_target(head: &str) -> Option<&str> {
    let mut words = head.lines().next()?.split_whitespace();
    (words.next()? == "GET").then_some(())?;
    words.next()
}

async fn respond(stream: &mut TcpStream, status: u16, body: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // The browser may have gone; the login outcome does not depend on it reading this page.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn page(ok: bool) -> String {
    let (fr, en) = if ok {
        (
            "Vous êtes connecté à Passerelle. Vous pouvez fermer cet onglet.",
            "You are signed in to Passerelle. You can close this tab.",
        )
    } else {
        (
            "La connexion n'a pas abouti. Fermez cet onglet et réessayez depuis Passerelle.",
            "Signing in did not succeed. Close this tab and try again from Passerelle.",
        )
    };
    format!(
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Passerelle</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1d2a33}}\
p{{font-size:1.15rem;line-height:1.5}}</style></head><body><h1>Passerelle</h1>\
<p id=\"message\">{fr}</p><p lang=\"en\">{en}</p></body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_callback_is_checked() {
        assert!(check(&params(&[("code", "c"), ("state", "s")]), "s").is_ok());
        assert!(matches!(check(&params(&[("code", "c"), ("state", "x")]), "s"), Err(AuthError::StateMismatch)));
        assert!(matches!(check(&params(&[("code", "c")]), "s"), Err(AuthError::StateMismatch)));
        assert!(matches!(check(&params(&[("error", "access_denied"), ("state", "s")]), "s"), Err(AuthError::Cancelled)));
        assert!(matches!(check(&params(&[("error", "server_error")]), "s"), Err(AuthError::Provider { .. })));
        assert!(matches!(check(&params(&[("state", "s")]), "s"), Err(AuthError::TokenRefused(_))));
    }

    #[test]
    fn only_get_requests_have_a_target() {
        assert_eq!(request_target("GET /callback?a=b HTTP/1.1\r\n"), Some("/callback?a=b"));
        assert_eq!(request_target("POST /callback HTTP/1.1\r\n"), None);
        assert_eq!(request_target(""), None);
    }
}
