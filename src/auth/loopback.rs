//! The loopback redirect listener of RFC 8252: bound to 127.0.0.1 on a random port, path
//! `/callback`, single use, with a deadline. It answers the browser with a small bilingual page.
use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
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

    /// Waits for the one callback carrying our `state`. Connections are served concurrently,
    /// so a silent one never holds the real callback. The state is checked before anything
    /// else: a request without it (another page's forged redirect, a port scan) gets an error
    /// page and the wait goes on; only a request with the right state ends it, with its code or
    /// the provider's error. The listener is closed on return, so a second callback finds
    /// nobody listening.
    pub async fn wait(self, expected_state: &str, timeout: Duration) -> Result<Callback, AuthError> {
        let deadline = Instant::now() + timeout;
        let expected: Arc<str> = Arc::from(expected_state);
        let (tx, mut rx) = mpsc::channel::<Result<Callback, AuthError>>(1);
        loop {
            tokio::select! {
                Some(outcome) = rx.recv() => return outcome,
                accepted = tokio::time::timeout_at(deadline, self.listener.accept()) => {
                    let (stream, _) = accepted.map_err(|_| AuthError::Timeout)?.map_err(|e| AuthError::Loopback(e.to_string()))?;
                    tokio::spawn(serve(stream, expected.clone(), tx.clone()));
                }
            }
        }
    }
}

/// Answers one connection; sends the outcome when it carried our state.
async fn serve(mut stream: TcpStream, expected: Arc<str>, outcome: mpsc::Sender<Result<Callback, AuthError>>) {
    // A browser sends its request at once; a silent connection is dropped after a while.
    let head = match tokio::time::timeout(Duration::from_secs(5), read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        _ => return,
    };
    let Some(target) = request_target(&head) else {
        respond(&mut stream, 400, &page(false)).await;
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/callback" {
        respond(&mut stream, 404, "").await;
        return;
    }
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    match check(&params, &expected) {
        None => {
            tracing::warn!("a request to the login callback without this login's state was ignored");
            respond(&mut stream, 400, &page(false)).await;
        }
        Some(result) => {
            respond(&mut stream, if result.is_ok() { 200 } else { 400 }, &page(result.is_ok())).await;
            // Only the first answer counts; a full channel means one is already on its way.
            let _ = outcome.try_send(result);
        }
    }
}

/// `None` when the request does not carry this login's state: it is not an answer to our
/// request (it may be a forged redirect from another page), so nothing in it is looked at.
fn check(params: &HashMap<String, String>, expected_state: &str) -> Option<Result<Callback, AuthError>> {
    match params.get("state") {
        Some(state) if constant_time_eq(state.as_bytes(), expected_state.as_bytes()) => {}
        _ => return None,
    }
    if let Some(error) = params.get("error") {
        return Some(Err(match error.as_str() {
            "access_denied" => AuthError::Cancelled,
            _ => AuthError::Provider {
                error: error.clone(),
                description: params.get("error_description").cloned().unwrap_or_default(),
            },
        }));
    }
    Some(match params.get("code") {
        Some(code) if !code.is_empty() => Ok(Callback { code: code.clone() }),
        _ => Err(AuthError::TokenRefused("the server sent no authorisation code".into())),
    })
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
        assert!(matches!(check(&params(&[("code", "c"), ("state", "s")]), "s"), Some(Ok(_))));
        assert!(check(&params(&[("code", "c"), ("state", "x")]), "s").is_none());
        assert!(check(&params(&[("code", "c")]), "s").is_none());
        assert!(matches!(check(&params(&[("error", "access_denied"), ("state", "s")]), "s"), Some(Err(AuthError::Cancelled))));
        assert!(check(&params(&[("error", "server_error")]), "s").is_none(), "an error without our state is not ours");
        assert!(matches!(check(&params(&[("error", "server_error"), ("state", "s")]), "s"), Some(Err(AuthError::Provider { .. }))));
        assert!(matches!(check(&params(&[("state", "s")]), "s"), Some(Err(AuthError::TokenRefused(_)))));
    }

    /// Sends one GET and returns the status code of the answer.
    async fn get(port: u16, target: &str) -> u16 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        s.write_all(format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).await.expect("send");
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.expect("read");
        answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
    }

    /// Issue 12, item 10: a forged `?error=` without state ended the login with the attacker's
    /// text, and six silent connections held the real callback back, one at a time.
    #[tokio::test]
    async fn forged_and_silent_requests_neither_end_nor_hold_the_login() {
        let listener = Loopback::bind().await.expect("bind");
        let port = listener.port;
        let waiting = tokio::spawn(listener.wait("the-state", Duration::from_secs(120)));
        let mut silent = Vec::new();
        for _ in 0..6 {
            silent.push(TcpStream::connect(("127.0.0.1", port)).await.expect("connect"));
        }
        assert_eq!(get(port, "/callback?error=server_error&error_description=Call%20+1-555-0100").await, 400);
        assert_eq!(get(port, "/callback?code=forged&state=guess").await, 400);
        assert_eq!(get(port, "/callback?code=the-code&state=the-state").await, 200);
        // The real callback was answered while the silent connections were still waiting:
        // they were not served first.
        for s in &silent {
            let mut byte = [0u8; 1];
            match s.try_read(&mut byte) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                other => panic!("a silent connection was closed before the real callback was served: {other:?}"),
            }
        }
        let callback = waiting.await.expect("join").expect("the real callback ends the login");
        assert_eq!(callback.code, "the-code");
    }

    #[test]
    fn only_get_requests_have_a_target() {
        assert_eq!(request_target("GET /callback?a=b HTTP/1.1\r\n"), Some("/callback?a=b"));
        assert_eq!(request_target("POST /callback HTTP/1.1\r\n"), None);
        assert_eq!(request_target(""), None);
    }
}
