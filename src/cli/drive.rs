//! `passerelle sync [--once] [--dry-run] [--folder PATH] [--remote URL] [--webdav-user USER]`
//! and `passerelle status [--json]`; `drive` (trash, versions) belongs to the Nextcloud extras.
//!
//! Which server: `--remote URL`, else the profile's `webdav` (generic WebDAV, Basic auth with the
//! user name and password kept in the keychain), else the profile's `nextcloud` (bearer token
//! of the login, or an app password through Login Flow v2).
use std::{io::BufRead, path::PathBuf, sync::Arc};

use clap::Args;
use passerelle::{
    folder::{self, FolderError},
    drive::{
        nextcloud::{self, remote::NextcloudRemote, ConnectOptions},
        plan::Plan,
        run::{self, FolderPaths, Outcome, RunOptions},
        status,
        task::{Drive, DriveConfig, DriveStatus, Event},
        Auth, DriveError, Remote, RemoteError, WebDav,
    },
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{exit, print_json, Context, Failure};

/// The keychain entry of generic WebDAV credentials.
const WEBDAV_SECRET: &str = passerelle::auth::secrets::WEBDAV_KEY;

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Sync once and exit (without it, keep syncing until Ctrl-C).
    #[arg(long)]
    pub once: bool,
    /// Only print what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// The local folder (default: the one in the settings).
    #[arg(long)]
    pub folder: Option<PathBuf>,
    /// Sync the default folder even though it already holds files that were never synced
    /// (they are uploaded, and the server's files are written beside them).
    #[arg(long)]
    pub adopt: bool,
    /// The server folder's WebDAV URL (default: from the organisation profile).
    #[arg(long)]
    pub remote: Option<Url>,
    /// The Nextcloud folder to sync, relative to your files (`Team/Projects`); kept in the
    /// settings for the next runs. `/` syncs the whole space again.
    #[arg(long)]
    pub remote_path: Option<String>,
    /// User name for a generic WebDAV server. The password is read once from
    /// PASSERELLE_WEBDAV_PASSWORD or stdin, then kept in the keychain.
    #[arg(long)]
    pub webdav_user: Option<String>,
    /// Go ahead with the deletions a safety stop asked about.
    #[arg(long)]
    pub allow_deletes: bool,
    /// The other answer to a safety stop: upload again the files the server no longer has,
    /// instead of deleting them here.
    #[arg(long, conflicts_with = "allow_deletes")]
    pub send_back: bool,
    /// Stop and ask when a sync would delete more than this share of the files.
    #[arg(long, default_value_t = 50)]
    pub max_delete_percent: u32,
    /// Transfers at once.
    #[arg(long, default_value_t = 4)]
    pub transfers: usize,
    /// Print the result (or the plan) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub folder: Option<PathBuf>,
    #[arg(long)]
    pub remote: Option<Url>,
}

#[derive(Debug, Args)]
pub struct DriveArgs {
    #[command(subcommand)]
    pub command: DriveCommand,
}

/// The server's trash and earlier versions (Nextcloud only).
#[derive(Debug, clap::Subcommand)]
pub enum DriveCommand {
    /// List deleted files.
    Trash {
        #[arg(long)]
        json: bool,
    },
    /// Put a deleted file back where it was.
    Restore { path: String },
    /// List a file's earlier versions, or bring one back with --restore ID.
    Versions {
        path: String,
        #[arg(long)]
        restore: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize, Deserialize)]
struct WebDavSecret {
    url: String,
    user: String,
    password: String,
}

/// The folder, the server URL and a remote to talk to it.
struct Target {
    folder: FolderPaths,
    remote: Arc<dyn Remote>,
}

fn failure(e: DriveError) -> Failure {
    let code = match &e {
        DriveError::Remote(RemoteError::Unauthorized) => exit::LOGIN_REQUIRED,
        DriveError::Remote(RemoteError::Offline(_)) => exit::OFFLINE,
        DriveError::FolderMissing(_) => exit::NEEDS_CONFIRMATION,
        _ => exit::FAILURE,
    };
    Failure::coded(code, e.code(), &e)
}

fn folder_failure(e: FolderError) -> Failure {
    let path = match &e {
        FolderError::NotEmpty { path } => path.to_string(),
        _ => String::new(),
    };
    Failure::coded_with(exit::FAILURE, e.code(), &e, &[("path", &path)])
}

/// Which folder and which server URL, without connecting. The folder is checked against the
/// private places (`passerelle::folder`); `chosen` says whether the member chose it (named it
/// now or in the settings) rather than taking the profile's default.
pub(super) fn locate(ctx: &Context, folder: Option<PathBuf>, remote: Option<Url>) -> Result<(PathBuf, Url, bool, bool), Failure> {
    let profile = ctx.settings.profile().ok().map(|(p, _)| p);
    let (folder, chosen) = match (folder, &profile) {
        (Some(f), _) => (f, true),
        (None, Some(p)) => (ctx.settings.folder(p), ctx.settings.folder.is_some()),
        (None, None) => return Err(Failure::coded(exit::NOT_CONFIGURED, "no_folder_given", &"no folder given and no organisation")),
    };
    let folder = std::path::absolute(&folder).unwrap_or(folder);
    folder::check(&folder).map_err(folder_failure)?;
    let (url, is_nextcloud) = match (remote, &profile) {
        (Some(u), _) => (u, false),
        (None, Some(p)) => match (&p.webdav, &p.nextcloud) {
            (Some(u), _) => (u.clone(), false),
            (None, Some(u)) => (u.clone(), true),
            (None, None) => {
                return Err(Failure::coded(exit::NOT_CONFIGURED, "no_file_server", &"the profile names neither webdav nor nextcloud"))
            }
        },
        (None, None) => return Err(Failure::coded(exit::NOT_CONFIGURED, "no_remote_given", &"no server given and no organisation")),
    };
    Ok((folder, url, is_nextcloud, chosen))
}

/// The server folder is part of what the journal describes: another folder, another journal.
pub(super) fn nextcloud_folder(ctx: &Context, root: &std::path::Path, url: &Url, sub: &str) -> FolderPaths {
    FolderPaths::nextcloud(&ctx.dirs.data, root, url, sub)
}

/// The server folder to sync: `--remote-path` (then kept in the settings), else the settings'.
fn remote_path(ctx: &Context, given: Option<&str>) -> Result<String, Failure> {
    let Some(given) = given else {
        return Ok(ctx.settings.remote_path.clone().unwrap_or_default());
    };
    let path = given.trim_matches('/').to_string();
    if path.split('/').any(|seg| seg == ".." || seg == ".") {
        return Err(Failure::coded_with(exit::FAILURE, "bad_remote_path", &given, &[("path", given)]));
    }
    let mut settings = ctx.settings.clone();
    settings.remote_path = (!path.is_empty()).then(|| path.clone());
    if settings != ctx.settings {
        settings.save(&ctx.dirs).map_err(|e| Failure::coded(exit::FAILURE, e.code(), &e))?;
    }
    Ok(path)
}

async fn connect(ctx: &Context, args: &SyncArgs, interactive: bool) -> Result<Target, Failure> {
    let (root, url, is_nextcloud, chosen) = locate(ctx, args.folder.clone(), args.remote.clone())?;
    if !is_nextcloud && args.remote_path.is_some() {
        return Err(Failure::coded(exit::FAILURE, "remote_path_not_nextcloud", &"--remote-path without Nextcloud"));
    }
    let sub = if is_nextcloud { remote_path(ctx, args.remote_path.as_deref())? } else { String::new() };
    let folder = if is_nextcloud {
        nextcloud_folder(ctx, &root, &url, &sub)
    } else {
        FolderPaths::new(&ctx.dirs.data, &root, url.as_str())
    };
    passerelle::folder::check_adoption(&root, chosen || args.adopt, folder.journal.exists()).map_err(folder_failure)?;
    if is_nextcloud {
        let session = ctx.session().ok();
        let facts = folder.journal.with_extension("server.json");
        let options = ConnectOptions { non_interactive: !interactive, facts: Some(facts.clone()), ..ConnectOptions::default() };
        let nc = nextcloud::connect(&ctx.http, &url, session.as_ref(), &ctx.store, &options)
            .await
            .map_err(|e| Failure::coded(exit::LOGIN_REQUIRED, e.code(), &e))?;
        let cache = folder.journal.with_extension("tree.json");
        let remote = NextcloudRemote::new(nc, &sub, Some(cache)).with_facts(facts).with_journal(&folder.journal);
        return Ok(Target { folder, remote: Arc::new(remote) });
    }
    let auth = webdav_auth(ctx, &url, args.webdav_user.as_deref())?;
    Ok(Target { folder, remote: Arc::new(WebDav::new(ctx.http.clone(), url, auth)) })
}

/// Basic credentials: given now (then kept), or kept from before for this server; else the
/// login's bearer token, else none.
fn webdav_auth(ctx: &Context, url: &Url, user: Option<&str>) -> Result<Auth, Failure> {
    let secrets_failure = |e: passerelle::auth::SecretError| Failure::coded(exit::FAILURE, "secrets", &e);
    if let Some(user) = user {
        let password = match std::env::var("PASSERELLE_WEBDAV_PASSWORD") {
            Ok(p) => p,
            Err(_) => {
                eprintln!("Password for {user} on {url} (then Enter):");
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|e| Failure::coded(exit::FAILURE, "input", &e))?;
                line.trim_end_matches(['\r', '\n']).to_string()
            }
        };
        let secret = WebDavSecret { url: url.to_string(), user: user.to_string(), password: password.clone() };
        let text = serde_json::to_string(&secret).map_err(|e| Failure::coded(exit::FAILURE, "unknown", &e))?;
        ctx.store.set_owned(WEBDAV_SECRET, &text).map_err(secrets_failure)?;
        return Ok(Auth::Basic { user: user.to_string(), password });
    }
    if let Some(text) = ctx.store.get_owned(WEBDAV_SECRET).map_err(secrets_failure)? {
        if let Ok(secret) = serde_json::from_str::<WebDavSecret>(&text) {
            if secret.url == url.as_str() {
                return Ok(Auth::Basic { user: secret.user, password: secret.password });
            }
        }
    }
    // The login's token goes only to the organisation's own servers, never to a --remote
    // elsewhere.
    match ctx.session() {
        Ok(session) if session.profile().may_receive_token(url) => Ok(Auth::Bearer(session)),
        _ => Ok(Auth::None),
    }
}

fn run_options(args: &SyncArgs) -> RunOptions {
    RunOptions {
        dry_run: args.dry_run,
        allow_deletes: args.allow_deletes,
        send_back: args.send_back,
        max_delete_percent: args.max_delete_percent,
        transfers: args.transfers.max(1),
        // A sync asked for by hand retries what failed, whatever the back-off says.
        retry_failed: args.once,
        ..RunOptions::default()
    }
}

pub async fn sync(ctx: Context, args: SyncArgs) -> Result<(), Failure> {
    // A person at a terminal can approve a Nextcloud login in the browser (Login Flow v2), in
    // continuous mode too; a background start (no terminal) is told to log in instead.
    use std::io::IsTerminal;
    let interactive = args.once || args.dry_run || std::io::stdin().is_terminal();
    let target = connect(&ctx, &args, interactive).await?;
    let options = run_options(&args);
    if args.once || args.dry_run {
        let outcome = run::sync_once(&target.folder, target.remote.as_ref(), &options, None).await.map_err(failure)?;
        return report(outcome, args.json);
    }
    continuous(target, options).await
}

fn report(outcome: Outcome, json: bool) -> Result<(), Failure> {
    if json {
        print_json(&outcome)?;
    }
    match outcome {
        Outcome::Done(summary) => {
            if !json {
                let r = &summary.report;
                println!(
                    "synced: {} done, {} failed, {} B up, {} B down ({} pass{})",
                    r.done,
                    r.failed.len(),
                    r.bytes_up,
                    r.bytes_down,
                    summary.passes,
                    if summary.passes == 1 { "" } else { "es" }
                );
                for f in &r.failed {
                    let why = match &f.by {
                        Some(by) if f.code == "locked" => locked_words(by),
                        _ => f.reason.clone(),
                    };
                    println!("failed: {} ({}) [{}]", f.path, why, f.code);
                }
                for x in &summary.refused {
                    println!("not synced: {} ({})", x.path, x.reason);
                }
                for x in &summary.warnings {
                    println!("warning: {} ({})", x.path, x.reason);
                }
            }
            // Items that could not be synced (over quota, disk full, ...) are a failure of the
            // run, with its own exit code, even though the rest went through.
            match summary.report.failed.len() {
                0 => Ok(()),
                n => Err(Failure::coded_with(exit::ITEMS_FAILED, "items_failed", &format!("{n} items failed"), &[("n", &n.to_string())])),
            }
        }
        Outcome::DryRun { plan, refused, warnings } => {
            if !json {
                print_plan(&plan);
                for x in &refused {
                    println!("not synced: {} ({})", x.path, x.reason);
                }
                for x in &warnings {
                    println!("warning: {} ({})", x.path, x.reason);
                }
            }
            Ok(())
        }
        Outcome::NeedsConfirmation { stops, plan } => {
            if !json {
                print_plan(&plan);
            }
            let why = stops.iter().map(stop_words).collect::<Vec<_>>().join(" ; ");
            let detail = stops.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("; ");
            Err(Failure::coded_with(exit::NEEDS_CONFIRMATION, "needs_confirmation", &detail, &[("why", &why)]))
        }
    }
}

/// A safety stop in the member's words (the catalog's), with its figures.
fn stop_words(stop: &passerelle::drive::plan::SafetyStop) -> String {
    use passerelle::drive::plan::{SafetyStop, Side};
    let t = passerelle::i18n::Catalog::current();
    match stop {
        SafetyStop::MassDelete { side, deletes, files } => {
            let key = if *side == Side::Remote { "cli.stop.mass_delete_remote" } else { "cli.stop.mass_delete_local" };
            t.f(key, &[("deletes", &deletes.to_string()), ("files", &files.to_string())])
        }
        SafetyStop::RemoteEmpty { known } => t.f("cli.stop.remote_empty", &[("known", &known.to_string())]),
        SafetyStop::LocalEmpty { known } => t.f("cli.stop.local_empty", &[("known", &known.to_string())]),
    }
}

fn print_plan(plan: &Plan) {
    if plan.is_empty() {
        println!("nothing to do");
    } else {
        print!("{plan}");
    }
}

async fn continuous(target: Target, options: RunOptions) -> Result<(), Failure> {
    let mut config = DriveConfig::new(target.folder, target.remote);
    config.options = options;
    let handle = Drive::start(config);
    let mut status = handle.status();
    let mut last = String::new();
    loop {
        tokio::select! {
            changed = status.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = status.borrow_and_update().clone();
                let line = match &now {
                    DriveStatus::Syncing { .. } => "syncing".to_string(),
                    other => serde_json::to_string(other).unwrap_or_default(),
                };
                if line != last {
                    eprintln!("{line}");
                    last = line;
                }
                if let DriveStatus::LoginRequired { message } = &now {
                    handle.shutdown().await;
                    return Err(Failure::coded(exit::LOGIN_REQUIRED, "login_required", message));
                }
            }
            _ = tokio::signal::ctrl_c() => {
                handle.send(Event::Shutdown);
                break;
            }
        }
    }
    handle.shutdown().await;
    Ok(())
}

pub async fn status(ctx: Context, args: StatusArgs) -> Result<(), Failure> {
    let (root, url, is_nextcloud, _) = locate(&ctx, args.folder, args.remote)?;
    let folder = if is_nextcloud {
        nextcloud_folder(&ctx, &root, &url, ctx.settings.remote_path.as_deref().unwrap_or_default())
    } else {
        FolderPaths::new(&ctx.dirs.data, &root, url.as_str())
    };
    let s = status::read(&folder).map_err(failure)?;
    // The quota is the server's to say; only Nextcloud says it. Never opens the browser.
    let (profile, session) = (ctx.settings.profile().ok().map(|p| p.0), ctx.session().ok());
    let quota = match profile.as_ref().filter(|p| p.nextcloud.is_some()) {
        Some(profile) => Some(nextcloud::quota_report(&ctx.http, profile, &ctx.store, session.as_ref()).await),
        None => None,
    };
    if args.json {
        let mut value = serde_json::to_value(&s).map_err(|e| Failure::coded(exit::FAILURE, "unknown", &e))?;
        match &quota {
            Some(Ok(q)) => value["quota"] = serde_json::to_value(q).unwrap_or_default(),
            Some(Err(e)) => value["quota_error"] = serde_json::json!({"code": e.code(), "message": e.to_string()}),
            None => value["quota"] = serde_json::Value::Null,
        }
        return print_json(&value);
    }
    match &quota {
        Some(Ok(q)) => {
            // Binary units, as Nextcloud counts them (its 150 MB quota is 150 MiB).
            let mb = |b: u64| b / (1024 * 1024);
            // The server's own figure, which it may keep for minutes: said as such, never as
            // a fresh count.
            let age = match q.may_lag_seconds {
                0 => String::new(),
                lag => format!(" (the server's figure, up to {} min old)", lag.div_ceil(60)),
            };
            match q.total_bytes {
                Some(total) => println!("quota: {} MB of {} MB{age}", mb(q.used_bytes), mb(total)),
                None => println!("quota: {} MB used{age}", mb(q.used_bytes)),
            }
            if let Some(w) = &q.warning {
                println!("warning: {w}");
            }
        }
        Some(Err(e)) => println!("quota: unknown ({e})"),
        None => {}
    }
    println!("folder: {}", s.folder);
    println!("state: {}", s.state);
    println!("items: {}", s.items);
    println!("pending: {}", s.pending);
    println!("last sync: {}", s.last_sync.as_deref().unwrap_or("never"));
    if let Some(e) = &s.last_error {
        println!("last error: {e}");
    }
    if let Some(q) = &s.question {
        println!("waiting for an answer: {q}");
    }
    for f in &s.failures {
        if f.code == "locked" {
            println!("waiting: {} ({})", f.path, locked_words(f.detail.as_deref().unwrap_or_default()));
        } else {
            println!("failed: {} ({}), {} tries", f.path, f.reason, f.retries);
        }
    }
    Ok(())
}

/// Trash and versions are the Nextcloud extras' (see `passerelle::drive::nextcloud`).
pub async fn drive(ctx: Context, args: DriveArgs) -> Result<(), Failure> {
    let nc = nextcloud_account(&ctx, nextcloud_failure).await?;
    match args.command {
        DriveCommand::Trash { json } => {
            let items = nextcloud::trash(&nc).await.map_err(nextcloud_failure)?;
            if json {
                return print_json(&items);
            }
            if items.is_empty() {
                println!("The trash is empty.");
            }
            for item in items {
                println!("{}\t{} bytes\tdeleted at {}", item.original_location, item.size, item.deleted_at);
            }
        }
        DriveCommand::Restore { path } => {
            let item = nextcloud::restore(&nc, &path).await.map_err(nextcloud_failure)?;
            println!("Restored {}.", item.original_location);
        }
        DriveCommand::Versions { path, restore: Some(id), .. } => {
            nextcloud::restore_version(&nc, &path, &id).await.map_err(nextcloud_failure)?;
            println!("Restored the version {id} of {path}.");
        }
        DriveCommand::Versions { path, restore: None, json } => {
            let versions = nextcloud::versions(&nc, &path).await.map_err(nextcloud_failure)?;
            if json {
                return print_json(&versions);
            }
            for v in versions {
                println!("{}\t{} bytes", v.id, v.size);
            }
        }
    }
    Ok(())
}

/// The profile's Nextcloud for the commands that read or restore on the server (trash,
/// versions, recent changes): the saved app password, else the login's token, else Login Flow
/// v2 in the browser. `failure` words a refusal the command's way.
pub(super) async fn nextcloud_account(ctx: &Context, failure: fn(nextcloud::NextcloudError) -> Failure) -> Result<passerelle::drive::nextcloud::Nextcloud, Failure> {
    let (profile, _) = ctx.settings.profile()?;
    let session = ctx.session().ok();
    nextcloud::account(&ctx.http, &profile, &ctx.store, session.as_ref(), &ConnectOptions::default()).await.map_err(failure)
}

/// The exit status of a Nextcloud failure, by its code.
pub(super) fn nextcloud_exit(code: &str) -> u8 {
    match code {
        "login_required" => exit::LOGIN_REQUIRED,
        "offline" => exit::OFFLINE,
        "not_configured" => exit::NOT_CONFIGURED,
        _ => exit::FAILURE,
    }
}

fn nextcloud_failure(e: nextcloud::NextcloudError) -> Failure {
    let code = e.code();
    Failure::coded(nextcloud_exit(code), code, &e)
}

/// "being edited online (by X)" in the member's language (X: who holds the lock, "" unnamed).
fn locked_words(by: &str) -> String {
    let catalog = passerelle::i18n::Catalog::current();
    if by.is_empty() {
        catalog.t("drive.locked")
    } else {
        catalog.f("drive.locked_by", &[("who", by)])
    }
}
