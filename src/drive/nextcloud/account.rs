//! The member's Nextcloud as the organisation profile names it: one call for the CLI commands
//! (`passerelle drive trash|restore|versions`, `passerelle status`) and the tray.
use serde::Serialize;

use super::{client::Nextcloud, login, quota::Quota, ConnectOptions, NextcloudError};
use crate::{
    auth::{SecretStore, Session},
    config::Profile,
};

/// Connects to the profile's Nextcloud (saved app password, else bearer, else Login Flow v2
/// unless `options.non_interactive`).
pub async fn account(
    http: &reqwest::Client,
    profile: &Profile,
    store: &SecretStore,
    session: Option<&Session>,
    options: &ConnectOptions,
) -> Result<Nextcloud, NextcloudError> {
    let base = profile.nextcloud.as_ref().ok_or(NextcloudError::NotConfigured)?;
    login::connect(http, base, session, store, options).await
}

/// What `passerelle status --json` shows about the space on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaReport {
    pub used_bytes: u64,
    pub free_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
    pub percent_used: Option<u64>,
    /// Set from 90 % use, in plain words.
    pub warning: Option<String>,
    /// The figures are the server's, which it keeps for up to this long (observed on Nextcloud
    /// 34.0.1: still 0 used minutes after a 100 MiB upload): never a fresh count.
    pub may_lag_seconds: u64,
}

impl From<Quota> for QuotaReport {
    fn from(q: Quota) -> Self {
        QuotaReport {
            used_bytes: q.used,
            free_bytes: q.free,
            total_bytes: q.total,
            percent_used: q.percent_used(),
            warning: q.warning(),
            may_lag_seconds: if q.fresh { 0 } else { super::remote::QUOTA_FIGURE_LAG.as_secs() },
        }
    }
}

/// The quota of the profile's Nextcloud, for `status` (never opens the browser).
pub async fn quota_report(
    http: &reqwest::Client,
    profile: &Profile,
    store: &SecretStore,
    session: Option<&Session>,
) -> Result<QuotaReport, NextcloudError> {
    let options = ConnectOptions { non_interactive: true, ..ConnectOptions::default() };
    let nc = account(http, profile, store, session, &options).await?;
    Ok(nc.quota().await?.into())
}

/// What a member sees before choosing which server folder to sync (issue 11, defect 12; issue
/// 14, item 14): the space's top folders, and what the chosen one holds, so that the local
/// folder will take about that much room. Nothing is synced or created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpaceChoice {
    /// The account as the server names it (a local folder belongs to it).
    pub account: String,
    /// The folders at the top of the space, by name.
    pub folders: Vec<String>,
    /// Bytes in the chosen server folder (the whole space: the quota's "used").
    pub size: u64,
}

impl Nextcloud {
    /// See [`SpaceChoice`]. `server_folder`: "" for the whole space, else `Team/Projects`.
    pub async fn space_choice(&self, server_folder: &str) -> Result<SpaceChoice, NextcloudError> {
        let server_folder = server_folder.trim_matches('/');
        let items = self
            .propfind(self.files_url(""), 1, super::dav::ROOT_PROPS)
            .await?
            .ok_or_else(|| NextcloudError::NotFound("/".into()))?;
        let mut folders: Vec<String> = items
            .iter()
            .skip(1)
            .filter(|i| i.is_dir && crate::drive::names::check_remote_name(i.name()).is_ok())
            .map(|i| i.name().to_string())
            .collect();
        folders.sort_by_key(|n| n.to_lowercase());
        let size = if server_folder.is_empty() {
            self.quota().await?.used
        } else {
            self.root_item(server_folder).await?.size.unwrap_or(0)
        };
        Ok(SpaceChoice { account: self.user().to_string(), folders, size })
    }
}
