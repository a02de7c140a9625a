//! A tiny HTTP/1.1 server on 127.0.0.1 for tests that need a hostile server (one that sends
//! links to other origins, names like `..`, endless listings or huge answers): each request is
//! answered by a closure chosen by the test, and what came is recorded, with whether it carried
//! credentials. One request per connection (`Connection: close`), which every client handles.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// As sent (still percent-encoded).
    pub path: String,
    /// The request line and headers, lower-cased.
    pub head: String,
}

impl Request {
    /// A header's value (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(str::trim)
    }

    pub fn authorized(&self) -> bool {
        self.header("authorization").is_some()
    }
}

/// The answer: status, content type and body.
pub type Answer = (u16, &'static str, Vec<u8>);

pub struct TinyServer {
    pub url: Url,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl TinyServer {
    pub async fn start(answer: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> TinyServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let url = Url::parse(&format!("http://{}/", listener.local_addr().expect("address"))).expect("url");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(answer);
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (answer, log) = (answer.clone(), log.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let raw = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let mut words = raw.split_whitespace();
                    let request = Request {
                        method: words.next().unwrap_or("").to_string(),
                        path: words.next().unwrap_or("").to_string(),
                        head,
                    };
                    let length: usize = request.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                    while buf.len() < head_end + length {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    log.lock().expect("log").push(request.clone());
                    let (status, content_type, body) = answer(&request);
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    if conn.write_all(head.as_bytes()).await.is_ok() {
                        let _ = conn.write_all(&body).await;
                    }
                    let _ = conn.shutdown().await;
                });
            }
        });
        TinyServer { url, seen }
    }

    /// The requests received so far.
    pub fn seen(&self) -> Vec<Request> {
        self.seen.lock().expect("log").clone()
    }
}

/// A 207 multistatus of `(href, props)` responses, with the DAV:, CalDAV, CalendarServer and
/// ownCloud namespaces as `d:`, `c:`, `cs:` and `oc:`.
pub fn multistatus(responses: &[(&str, &str)]) -> Vec<u8> {
    let inner: String = responses
        .iter()
        .map(|(href, props)| {
            format!("<d:response><d:href>{href}</d:href><d:propstat><d:prop>{props}</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>")
        })
        .collect();
    format!(
        r#"<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cs="http://calendarserver.org/ns/" xmlns:oc="http://owncloud.org/ns">{inner}</d:multistatus>"#
    )
    .into_bytes()
}

pub const XML: &str = "application/xml; charset=utf-8";
