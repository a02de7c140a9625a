//! The one HTTP client of the process. Every module clones it (cheap, shares the connection
//! pool), so there is one reqwest, one TLS stack (rustls with aws-lc-rs) and one pool.
use std::time::Duration;

/// A user agent naming the app and its version, so that server admins can tell us apart.
pub const USER_AGENT: &str = concat!("Passerelle/", env!("CARGO_PKG_VERSION"));

/// Builds the shared client. Timeouts are generous for uploads but bound the connect phase, so a
/// dead network is reported in seconds rather than minutes.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        // Building only fails when the TLS backend cannot initialise, which is a broken install,
        // not bad input: there is nothing sensible to do but stop.
        .expect("the TLS backend failed to initialise")
}
