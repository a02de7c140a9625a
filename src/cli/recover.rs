//! `passerelle trash`, `passerelle versions PATH`, `passerelle recent`, `passerelle notifications`:
//! recover what was lost and see what changed, from the server (Nextcloud only). Paths may be
//! a file of the synced folder (`~/Passerelle/devis.txt`) or a path on the server
//! (`Projets/devis.txt`).
use std::path::{Path, PathBuf};

use clap::Args;
use passerelle::drive::nextcloud::{
    self,
    feed::{self, Feed, FeedConfig, Polled},
    Nextcloud,
};

use super::{drive, exit, print_json, Context, Failure};

#[derive(Debug, Args)]
pub struct TrashArgs {
    /// Put a deleted file back where it was: its former path, or its id in the trash.
    #[arg(long)]
    pub restore: Option<String>,
    /// Only the items whose name contains this (any case).
    #[arg(long)]
    pub search: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// A file of the synced folder, or its path on the server.
    pub path: String,
    /// Make this version (its id, as listed) the current content; the current one is kept as a
    /// version.
    #[arg(long)]
    pub restore: Option<String>,
    /// Write this version to a read-only file in the temporary folder and print its path.
    #[arg(long)]
    pub open: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RecentArgs {
    #[arg(long, default_value_t = feed::RECENT)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct NotificationsArgs {
    /// Mark this notification read (Nextcloud deletes it).
    #[arg(long)]
    pub read: Option<i64>,
    /// Keep running and print each new notification as a JSON line (one request per 5 minutes
    /// while nothing changes, answered 304).
    #[arg(long)]
    pub follow: bool,
    #[arg(long)]
    pub json: bool,
}

fn failure(e: nextcloud::NextcloudError) -> Failure {
    let code = e.code();
    Failure::new(drive::nextcloud_exit(code), format!("{e} [{code}]"))
}

async fn account(ctx: &Context) -> Result<Nextcloud, Failure> {
    drive::nextcloud_account(ctx, failure).await
}

/// The server path of what the member named: a local file of the synced folder when it is
/// one (absolute, or existing here), else a path on the server as given.
pub fn server_path(ctx: &Context, given: &str) -> Result<String, Failure> {
    let local = Path::new(given);
    if local.is_absolute() || local.exists() {
        let (profile, _) = ctx.settings.profile()?;
        let folder = ctx.settings.folder(&profile);
        let local = std::path::absolute(local).unwrap_or_else(|_| local.to_path_buf());
        let root = ctx.settings.remote_path.clone().unwrap_or_default();
        return nextcloud::place::server_path(&folder, &root, &local).map_err(failure);
    }
    let path = given.trim_matches('/');
    if path.split('/').any(|s| s == ".." || s == ".") {
        return Err(Failure::new(exit::FAILURE, format!("{given:?} is not a path on the server")));
    }
    Ok(path.to_string())
}

fn when(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| unix.to_string())
}

pub async fn trash(ctx: Context, args: TrashArgs) -> Result<(), Failure> {
    let nc = account(&ctx).await?;
    if let Some(wanted) = args.restore {
        let item = nextcloud::restore(&nc, &wanted).await.map_err(failure)?;
        println!("Restored {}: it comes back in your folder at the next sync.", item.original_location);
        return Ok(());
    }
    let mut items = nextcloud::trash(&nc).await.map_err(failure)?;
    if let Some(search) = args.search.as_deref().map(str::to_lowercase) {
        items.retain(|i| i.name.to_lowercase().contains(&search));
    }
    if args.json {
        return print_json(&items);
    }
    if items.is_empty() {
        println!("The trash is empty.");
    }
    for i in items {
        let folder = if i.original_folder().is_empty() { "/" } else { i.original_folder() };
        let by = i.deleted_by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
        println!("{}\t{}\t{} bytes\tdeleted {}{by}\t[{}]", i.name, folder, i.size, when(i.deleted_at), i.id);
    }
    Ok(())
}

pub async fn versions(ctx: Context, args: VersionsArgs) -> Result<(), Failure> {
    let path = server_path(&ctx, &args.path)?;
    let nc = account(&ctx).await?;
    if let Some(id) = args.restore {
        nextcloud::restore_version(&nc, &path, &id).await.map_err(failure)?;
        println!("Restored the version {id} of {path}; the content it replaced is kept as a version.");
        return Ok(());
    }
    if let Some(id) = args.open {
        let dir = version_dir();
        let file = nextcloud::fetch_version(&nc, &path, &id, &dir).await.map_err(failure)?;
        println!("{}", file.display());
        return Ok(());
    }
    let list = nextcloud::versions(&nc, &path).await.map_err(failure)?;
    if args.json {
        return print_json(&list);
    }
    if list.is_empty() {
        println!("{path} has no earlier version.");
    }
    for v in list {
        let by = v.author.as_deref().map(|a| format!("\tby {a}")).unwrap_or_default();
        println!("{}\t{}\t{} bytes{by}", v.id, when(v.mtime), v.size);
    }
    Ok(())
}

/// Where looked-at versions go: a folder of our own in the temporary folder.
pub fn version_dir() -> PathBuf {
    std::env::temp_dir().join("passerelle-versions")
}

pub async fn recent(ctx: Context, args: RecentArgs) -> Result<(), Failure> {
    let nc = account(&ctx).await?;
    let changes = match feed::recent(&nc, args.limit, None).await.map_err(failure)? {
        Polled::Changed { items, .. } => items,
        Polled::Unchanged | Polled::Unavailable => Vec::new(),
    };
    if args.json {
        return print_json(&changes);
    }
    if changes.is_empty() {
        println!("No recent change.");
    }
    for c in changes {
        let who = if c.by_me { "you".to_string() } else { c.actor_name.clone() };
        println!("{}\t{}\t{}\t{}", when(c.at), c.kind, c.path, who);
    }
    Ok(())
}

pub async fn notifications(ctx: Context, args: NotificationsArgs) -> Result<(), Failure> {
    let nc = account(&ctx).await?;
    if let Some(id) = args.read {
        feed::mark_read(&nc, id).await.map_err(failure)?;
        println!("Notification {id} marked read.");
        return Ok(());
    }
    if args.follow {
        let handle = Feed::start(nc, FeedConfig::default());
        let mut arrivals = handle.arrivals();
        let mut state = handle.state();
        let first = state.wait_for(|s| s.requests > 0).await.map(|s| s.notifications.len()).unwrap_or(0);
        eprintln!("{first} notification(s) now; waiting for new ones (Ctrl-C to stop)");
        loop {
            tokio::select! {
                got = arrivals.recv() => match got {
                    Ok(n) => println!("{}", serde_json::to_string(&n).unwrap_or_default()),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return Ok(()),
                },
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    }
    let list = match feed::notifications(&nc, None).await.map_err(failure)? {
        Polled::Changed { items, .. } => items,
        Polled::Unchanged | Polled::Unavailable => Vec::new(),
    };
    if args.json {
        return print_json(&list);
    }
    if list.is_empty() {
        println!("No notification.");
    }
    for n in list {
        println!("{}\t{}\t{}\t{}", n.id, when(n.at), n.app, n.subject);
    }
    Ok(())
}
