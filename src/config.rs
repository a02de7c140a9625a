//! The organisation profile (which servers a cooperative uses) and the member's own settings.
//!
//! A profile comes from, highest priority first: one bundled at build time (`PASSERELLE_PROFILE`
//! names a JSON file when building), the discovery document
//! `https://DOMAIN/.well-known/passerelle.json`, or a file given on the command line. Once
//! resolved it is saved with the settings, so later runs need neither.
//!
//! Settings live in the OS config dir. Secrets never do: they go to the keychain (see
//! [`crate::auth::secrets`]).
use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use url::Url;

use crate::paths::Dirs;

const BUNDLED: &str = include_str!(concat!(env!("OUT_DIR"), "/bundled-profile.json"));

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("the organisation profile has no “{0}”")]
    Missing(&'static str),
    #[error("“{field}” must use https (only addresses on this computer may use http): {url}")]
    Insecure { field: String, url: String },
    #[error("“{field}” is not valid: {reason}")]
    Invalid { field: String, reason: String },
    #[error("the organisation profile could not be read: {0}")]
    Parse(String),
    #[error("could not reach {domain} to find its settings: {reason}")]
    Unreachable { domain: String, reason: String },
    #[error("{domain} does not publish Passerelle settings (no {url})")]
    NotPublished { domain: String, url: String },
    #[error("no organisation is set up yet: run “passerelle login --org DOMAIN”")]
    NoProfile,
    #[error("could not read or write {path}: {reason}")]
    Io { path: String, reason: String },
    #[error("the settings published by {domain} would send your login to servers outside {domain}: {}; accept them only if your organisation uses them", hosts.join(", "))]
    ForeignHosts {
        domain: String,
        hosts: Vec<String>,
        /// The same hosts, each with what it would be used for, for the member to read.
        servers: Vec<ForeignHost>,
    },
}

/// What a server named by a profile would be used for, in the member's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerUse {
    Login,
    Files,
    Chat,
    Calendar,
}

/// A host outside the typed domain, and what the profile would use it for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignHost {
    pub host: String,
    pub uses: Vec<ServerUse>,
}

impl ConfigError {
    /// A stable code for scripts and the IPC boundary.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Missing(_) => "profile_missing_field",
            ConfigError::Insecure { .. } => "profile_insecure_url",
            ConfigError::Invalid { .. } => "profile_invalid",
            ConfigError::Parse(_) => "profile_unreadable",
            ConfigError::Unreachable { .. } => "discovery_unreachable",
            ConfigError::NotPublished { .. } => "discovery_not_published",
            ConfigError::NoProfile => "no_profile",
            ConfigError::Io { .. } => "io",
            ConfigError::ForeignHosts { .. } => "profile_foreign_hosts",
        }
    }
}

/// A named link to another of the cooperative's tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub name: String,
    pub url: Url,
}

/// A team's standing visio room, for example "Pôle Tech".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamRoom {
    pub name: String,
    pub room: String,
}

/// What a cooperative tells Passerelle about its servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The organisation's display name.
    #[serde(default)]
    pub name: String,
    /// The OIDC issuer, e.g. `https://sso.example.coop/realms/coop`.
    pub issuer: Url,
    pub client_id: String,
    #[serde(default)]
    pub nextcloud: Option<Url>,
    /// A generic WebDAV folder URL, for hosts without Nextcloud.
    #[serde(default)]
    pub webdav: Option<Url>,
    #[serde(default)]
    pub rocketchat: Option<Url>,
    /// The name of Rocket.Chat's custom OAuth service tied to the issuer.
    #[serde(default = "default_chat_service")]
    pub chat_service: String,
    #[serde(default)]
    pub jitsi: Option<Url>,
    /// A CalDAV root; defaults to Nextcloud's `/remote.php/dav`.
    #[serde(default)]
    pub caldav: Option<Url>,
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default)]
    pub teams: Vec<TeamRoom>,
    /// The name of the local folder created in the member's home.
    #[serde(default = "default_folder_name")]
    pub folder_name: String,
}

fn default_chat_service() -> String {
    "keycloak".into()
}

fn default_folder_name() -> String {
    "Passerelle".into()
}

/// Where a profile came from, for `whoami` and support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Bundled,
    Discovered,
    File,
    Saved,
}

impl Profile {
    /// Parses and validates a profile document.
    pub fn from_json(text: &str) -> Result<Profile, ConfigError> {
        // Parse loosely first so that a missing field is named in plain words rather than as a
        // serde message about line and column.
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        let obj = value.as_object().ok_or_else(|| ConfigError::Parse("not a JSON object".into()))?;
        for field in ["issuer", "client_id"] {
            match obj.get(field) {
                None | Some(serde_json::Value::Null) => return Err(ConfigError::Missing(field)),
                Some(serde_json::Value::String(s)) if s.trim().is_empty() => {
                    return Err(ConfigError::Missing(field))
                }
                _ => {}
            }
        }
        let profile: Profile =
            serde_json::from_value(value).map_err(|e| ConfigError::Parse(e.to_string()))?;
        profile.validate()?;
        Ok(profile)
    }

    /// Checks what serde cannot: https everywhere except on loopback, sane names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        require_secure("issuer", &self.issuer)?;
        let urls = [
            ("nextcloud", &self.nextcloud),
            ("webdav", &self.webdav),
            ("rocketchat", &self.rocketchat),
            ("jitsi", &self.jitsi),
            ("caldav", &self.caldav),
        ];
        for (field, url) in urls {
            if let Some(url) = url {
                require_secure(field, url)?;
            }
        }
        for link in &self.links {
            require_secure(&format!("links/{}", link.name), &link.url)?;
        }
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::Missing("client_id"));
        }
        // The name proposes a folder in the member's home: never a hidden one (`.ssh`,
        // `.config`), a path or an absolute one. See `crate::folder`.
        if let Err(e) = crate::folder::check_name(&self.folder_name) {
            let reason = match e {
                crate::folder::FolderError::BadName { reason, .. } => reason.to_string(),
                other => other.to_string(),
            };
            return Err(ConfigError::Invalid { field: "folder_name".into(), reason });
        }
        Ok(())
    }

    /// The servers that get the member's login or a token from it (login, files, chat,
    /// calendar), each host once, in the profile's order.
    pub fn token_hosts(&self) -> Vec<String> {
        let urls = [Some(&self.issuer), self.nextcloud.as_ref(), self.webdav.as_ref(), self.rocketchat.as_ref(), self.caldav.as_ref()];
        let mut hosts: Vec<String> = Vec::new();
        for url in urls.into_iter().flatten() {
            if let Some(host) = url.host_str().map(|h| h.to_ascii_lowercase()) {
                if !hosts.contains(&host) {
                    hosts.push(host);
                }
            }
        }
        hosts
    }

    /// What the profile uses `host` for (login, files, chat, calendar), in that order.
    pub fn uses_of(&self, host: &str) -> Vec<ServerUse> {
        let urls = [
            (ServerUse::Login, Some(&self.issuer)),
            (ServerUse::Files, self.nextcloud.as_ref()),
            (ServerUse::Files, self.webdav.as_ref()),
            (ServerUse::Chat, self.rocketchat.as_ref()),
            (ServerUse::Calendar, self.caldav.as_ref()),
        ];
        let mut uses = Vec::new();
        for (used_for, url) in urls {
            let on_host = url.and_then(|u| u.host_str()).is_some_and(|h| h.eq_ignore_ascii_case(host));
            if on_host && !uses.contains(&used_for) {
                uses.push(used_for);
            }
        }
        uses
    }

    /// The hosts of [`Profile::token_hosts`] that are neither `domain`'s host nor under it
    /// (`sso.example.coop` is under `example.coop`; `example.coop.evil.example` is not).
    pub fn foreign_hosts(&self, domain: &Url) -> Vec<String> {
        let Some(own) = domain.host_str().map(|h| h.to_ascii_lowercase()) else { return self.token_hosts() };
        self.token_hosts()
            .into_iter()
            .filter(|host| !(*host == own || host.ends_with(&format!(".{own}"))))
            .collect()
    }

    /// True when `url` is on one of the servers of [`Profile::token_hosts`], so that the
    /// member's access token may go there.
    pub fn may_receive_token(&self, url: &Url) -> bool {
        let urls = [Some(&self.issuer), self.nextcloud.as_ref(), self.webdav.as_ref(), self.rocketchat.as_ref(), self.caldav.as_ref()];
        urls.into_iter().flatten().any(|u| u.origin() == url.origin())
    }

    /// The bundled profile, if this build carries one.
    pub fn bundled() -> Option<Result<Profile, ConfigError>> {
        (!BUNDLED.trim().is_empty()).then(|| Profile::from_json(BUNDLED))
    }

    pub fn from_file(path: &Path) -> Result<Profile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Profile::from_json(&text)
    }

    /// Fetches `https://DOMAIN/.well-known/passerelle.json`. `domain` may also be a full base
    /// URL; plain http is only accepted for loopback addresses (local stacks and tests).
    pub async fn discover(http: &reqwest::Client, domain: &str) -> Result<Profile, ConfigError> {
        let url = discovery_url(domain)?;
        let unreachable = |reason: String| ConfigError::Unreachable { domain: domain.to_string(), reason };
        let response = http.get(url.clone()).send().await.map_err(|e| unreachable(plain_reqwest(&e)))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(ConfigError::NotPublished { domain: domain.into(), url: url.to_string() });
        }
        if !response.status().is_success() {
            return Err(unreachable(format!("the server answered {}", response.status())));
        }
        let text = crate::http::text_limited(response, crate::http::JSON_ANSWER_LIMIT).await.map_err(|e| unreachable(e.to_string()))?;
        Profile::from_json(&text)
    }

    /// The Keycloak account page, always offered among the links.
    pub fn account_url(&self) -> Url {
        let mut url = self.issuer.clone();
        url.path_segments_mut().map(|mut s| {
            s.pop_if_empty().push("account");
        }).ok();
        url
    }
}

/// The discovery URL for what the member typed.
pub fn discovery_url(domain: &str) -> Result<Url, ConfigError> {
    let typed = domain.trim().trim_end_matches('/');
    if typed.is_empty() {
        return Err(ConfigError::Invalid { field: "domain".into(), reason: "it is empty".into() });
    }
    let base = if typed.contains("://") { typed.to_string() } else if is_loopback_authority(typed) {
        format!("http://{typed}")
    } else {
        format!("https://{typed}")
    };
    let base = Url::parse(&format!("{base}/")).map_err(|e| ConfigError::Invalid {
        field: "domain".into(),
        reason: e.to_string(),
    })?;
    require_secure("domain", &base)?;
    base.join(".well-known/passerelle.json").map_err(|e| ConfigError::Invalid {
        field: "domain".into(),
        reason: e.to_string(),
    })
}

fn is_loopback_authority(authority: &str) -> bool {
    Url::parse(&format!("http://{authority}/")).map(|u| is_loopback(&u)).unwrap_or(false)
}

/// True for `localhost`, 127.0.0.0/8 and `[::1]`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// True for https, or http on loopback: where a credential may be sent.
pub fn is_secure(url: &Url) -> bool {
    url.scheme() == "https" || (url.scheme() == "http" && is_loopback(url))
}

fn require_secure(field: &str, url: &Url) -> Result<(), ConfigError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(ConfigError::Insecure { field: field.into(), url: url.to_string() }),
        other => Err(ConfigError::Invalid {
            field: field.into(),
            reason: format!("unsupported address scheme “{other}”"),
        }),
    }
}

/// Turns a reqwest error into words a member can act on, without the URL's query string.
pub fn plain_reqwest(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the server did not answer in time".into()
    } else if e.is_connect() {
        "the server cannot be reached (check the network connection)".into()
    } else if e.is_redirect() {
        // Our redirect policy's own words (crate::http::RedirectRefused), else reqwest's.
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(refused) = s.downcast_ref::<crate::http::RedirectRefused>() {
                return refused.to_string();
            }
            source = s.source();
        }
        "the server redirected the request somewhere it may not go".into()
    } else if e.is_decode() || e.is_body() {
        "the server's answer was cut off or unreadable".into()
    } else {
        // Say it without the URL: its query may carry codes or tokens.
        let mut text = e.to_string();
        if let Some(url) = e.url() {
            text = text.replace(url.as_str(), "…");
        }
        text
    }
}

/// The member's own choices, kept in `settings.json` in the OS config dir.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The resolved organisation profile, so that later runs need no discovery.
    pub profile: Option<Profile>,
    /// The synced local folder; defaults to `~/<folder_name>`.
    pub folder: Option<PathBuf>,
    /// "fr" or "en"; `None` follows the OS locale.
    pub language: Option<String>,
    /// Folders (relative paths) left out of the sync.
    pub excluded_folders: Vec<String>,
    pub notifications: Option<bool>,
    pub autostart: Option<bool>,
    pub paused: bool,
    /// The server folder synced, relative to the member's Nextcloud files (`Team/Projects`);
    /// `None` syncs the whole space. Like Nextcloud's own client and `nextcloudcmd --path`.
    #[serde(default)]
    pub remote_path: Option<String>,
    /// The login (its subject) that chose `folder`: another account's login does not sync it
    /// before its member confirms a folder of their own (issue 14, items 13 and 14).
    #[serde(default)]
    pub folder_account: Option<String>,
}

impl Settings {
    pub fn path(dirs: &Dirs) -> PathBuf {
        dirs.config.join("settings.json")
    }

    /// Loads the settings; a missing file gives the defaults. A damaged file is an error rather
    /// than silently reset, so the member's choices are not lost.
    pub fn load(dirs: &Dirs) -> Result<Settings, ConfigError> {
        let path = Settings::path(dirs);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| ConfigError::Parse(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(ConfigError::Io { path: path.display().to_string(), reason: e.to_string() }),
        }
    }

    /// Saves atomically: write a temporary file, then rename over the old one.
    pub fn save(&self, dirs: &Dirs) -> Result<(), ConfigError> {
        let path = Settings::path(dirs);
        let io = |e: std::io::Error| ConfigError::Io { path: path.display().to_string(), reason: e.to_string() };
        std::fs::create_dir_all(&dirs.config).map_err(io)?;
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|e| ConfigError::Parse(e.to_string()))?;
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// The profile in force: the bundled one wins over the saved one.
    pub fn profile(&self) -> Result<(Profile, Source), ConfigError> {
        if let Some(bundled) = Profile::bundled() {
            return Ok((bundled?, Source::Bundled));
        }
        self.profile.clone().map(|p| (p, Source::Saved)).ok_or(ConfigError::NoProfile)
    }

    /// The local folder to sync.
    pub fn folder(&self, profile: &Profile) -> PathBuf {
        self.folder.clone().unwrap_or_else(|| {
            directories::UserDirs::new()
                .map(|u| u.home_dir().to_path_buf())
                .unwrap_or_else(|| PathBuf::from("."))
                .join(&profile.folder_name)
        })
    }
}

/// Chooses the profile for a login: bundled first, then discovery of `org`, then `file`, then
/// the one saved by an earlier login.
///
/// A discovered profile comes from a server, not from the member: it may only send the login
/// and its tokens to hosts under the typed domain, or to hosts in `accepted_hosts`, which the
/// member confirmed after seeing them. Otherwise [`ConfigError::ForeignHosts`] lists them.
/// A bundled profile, a file the member gave, and a saved profile were chosen already.
pub async fn resolve(
    http: &reqwest::Client,
    settings: &Settings,
    org: Option<&str>,
    file: Option<&Path>,
    accepted_hosts: &[String],
) -> Result<(Profile, Source), ConfigError> {
    if let Some(bundled) = Profile::bundled() {
        return Ok((bundled?, Source::Bundled));
    }
    if let Some(org) = org {
        let profile = Profile::discover(http, org).await?;
        let typed = discovery_url(org)?;
        let foreign: Vec<String> = profile
            .foreign_hosts(&typed)
            .into_iter()
            .filter(|h| !accepted_hosts.iter().any(|a| a.trim().eq_ignore_ascii_case(h)))
            .collect();
        if !foreign.is_empty() {
            let domain = typed.host_str().unwrap_or(org).to_string();
            let servers = foreign.iter().map(|h| ForeignHost { host: h.clone(), uses: profile.uses_of(h) }).collect();
            return Err(ConfigError::ForeignHosts { domain, hosts: foreign, servers });
        }
        return Ok((profile, Source::Discovered));
    }
    if let Some(file) = file {
        return Ok((Profile::from_file(file)?, Source::File));
    }
    settings.profile()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> serde_json::Value {
        serde_json::json!({"issuer": "https://sso.example.coop/realms/coop", "client_id": "passerelle"})
    }

    #[test]
    fn a_minimal_profile_gets_defaults() {
        let p = Profile::from_json(&minimal().to_string()).unwrap();
        assert_eq!(p.folder_name, "Passerelle");
        assert_eq!(p.chat_service, "keycloak");
        assert_eq!(p.account_url().as_str(), "https://sso.example.coop/realms/coop/account");
    }

    #[test]
    fn a_missing_field_is_named() {
        let mut v = minimal();
        v.as_object_mut().unwrap().remove("client_id");
        let err = Profile::from_json(&v.to_string()).unwrap_err();
        assert!(matches!(err, ConfigError::Missing("client_id")), "{err}");
        assert!(err.to_string().contains("client_id"));
    }

    #[test]
    fn http_is_refused_except_on_loopback() {
        let mut v = minimal();
        v["nextcloud"] = "http://cloud.example.coop".into();
        let err = Profile::from_json(&v.to_string()).unwrap_err();
        assert_eq!(err.code(), "profile_insecure_url");
        assert!(err.to_string().contains("nextcloud"));
        v["nextcloud"] = "http://127.0.0.1:8080".into();
        v["issuer"] = "http://localhost:8080/realms/coop".into();
        Profile::from_json(&v.to_string()).unwrap();
    }

    #[test]
    fn discovery_url_forms() {
        assert_eq!(discovery_url("example.coop").unwrap().as_str(), "https://example.coop/.well-known/passerelle.json");
        assert_eq!(discovery_url("127.0.0.1:9000").unwrap().as_str(), "http://127.0.0.1:9000/.well-known/passerelle.json");
        assert_eq!(discovery_url("http://evil.example").unwrap_err().code(), "profile_insecure_url");
        assert!(discovery_url("  ").is_err());
    }

    #[test]
    fn a_hostile_folder_name_is_refused() {
        for name in ["../etc", ".ssh", ".config", "/home/alice/.ssh", "a/b", "..", "~"] {
            let mut v = minimal();
            v["folder_name"] = name.into();
            assert_eq!(Profile::from_json(&v.to_string()).unwrap_err().code(), "profile_invalid", "{name}");
        }
    }

    #[test]
    fn hosts_outside_the_typed_domain_are_foreign() {
        let mut v = minimal();
        v["nextcloud"] = "https://cloud.example.coop".into();
        v["rocketchat"] = "https://chat.attacker.example".into();
        v["caldav"] = "https://example.coop.attacker.example/dav".into();
        v["jitsi"] = "https://meet.jit.si".into();
        let p = Profile::from_json(&v.to_string()).unwrap();
        let typed = Url::parse("https://example.coop/").unwrap();
        assert_eq!(p.foreign_hosts(&typed), vec!["chat.attacker.example", "example.coop.attacker.example"]);
        assert!(p.may_receive_token(&Url::parse("https://cloud.example.coop/remote.php/dav").unwrap()));
        assert!(!p.may_receive_token(&Url::parse("https://evil.example/").unwrap()));
        assert_eq!(p.uses_of("CHAT.attacker.example"), vec![ServerUse::Chat]);
        assert_eq!(p.uses_of("nowhere.example"), vec![]);
    }
}
