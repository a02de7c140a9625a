//! `passerelle share PATH [--days N] [--password] [--json]` and `passerelle open-online PATH`:
//! a public link for a file of the synced folder, copied to the clipboard; the file's page in
//! the browser. The words are the catalog's (`share.*`, `error.share_*`).
use std::{io::IsTerminal, path::PathBuf, time::Duration};

use clap::Args;
use passerelle::{
    browser::Opener,
    drive::{
        nextcloud::{
            self,
            share::{self, Password, ShareError, ShareOptions, SharedLink},
            ConnectOptions, Nextcloud, NextcloudRemote,
        },
        run::{self, FolderPaths, RunOptions},
        DriveError,
    },
    i18n::{Catalog, Lang},
    visio::{Clipboard, CommandClipboard},
};
use serde::Serialize;

use super::{drive, exit, print_json, Context, Failure};

/// How long a share waits for a sync of the folder already running (the desktop app's) to let
/// the file be uploaded.
const UPLOAD_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, Args)]
pub struct ShareArgs {
    /// A file or folder inside the synced folder.
    pub path: PathBuf,
    /// The link stops working after this many days.
    #[arg(long)]
    pub days: Option<u32>,
    /// Protect the link with a password: typed at the prompt (empty: one is made), or made
    /// when there is no terminal. `PASSERELLE_SHARE_PASSWORD` gives it without a prompt.
    #[arg(long)]
    pub password: bool,
    /// Print the link as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct OpenOnlineArgs {
    /// A file or folder inside the synced folder.
    pub path: PathBuf,
    /// Print the address instead of opening the browser.
    #[arg(long)]
    pub print: bool,
}

/// The folder, its server path and a connection to the profile's Nextcloud.
struct Place {
    folder: FolderPaths,
    sub: String,
    path: String,
    nc: Nextcloud,
}

fn catalog(ctx: &Context) -> Catalog {
    let lang = Lang::choose(ctx.settings.language.as_deref());
    lang.make_current();
    Catalog::load(lang)
}

fn share_failure(t: &Catalog, e: ShareError) -> Failure {
    tracing::debug!(error = %e, "share failed");
    let code = e.code();
    let exit = match code {
        "login_required" | "not_logged_in" => exit::LOGIN_REQUIRED,
        "offline" | "login_unreachable" => exit::OFFLINE,
        "not_configured" => exit::NOT_CONFIGURED,
        _ => exit::FAILURE,
    };
    Failure::new(exit, format!("{} [{code}]", t.error(code)))
}

async fn place(ctx: &Context, t: &Catalog, local: &std::path::Path) -> Result<Place, Failure> {
    let (root, url, is_nextcloud, _) = drive::locate(ctx, None, None)?;
    if !is_nextcloud {
        return Err(share_failure(t, ShareError::Server(nextcloud::NextcloudError::NotConfigured)));
    }
    let sub = ctx.settings.remote_path.clone().unwrap_or_default();
    let path = share::server_path(&root, &sub, local).map_err(|e| share_failure(t, e))?;
    let folder = drive::nextcloud_folder(ctx, &root, &url, &sub);
    let options = ConnectOptions {
        non_interactive: !std::io::stdin().is_terminal(),
        facts: Some(folder.journal.with_extension("server.json")),
        ..ConnectOptions::default()
    };
    let session = ctx.session().ok();
    let nc = nextcloud::connect(&ctx.http, &url, session.as_ref(), &ctx.store, &options)
        .await
        .map_err(|e| share_failure(t, ShareError::Server(e)))?;
    Ok(Place { folder, sub, path, nc })
}

/// Uploads through a sync of the folder, so that the journal knows the file; a sync already
/// running (the desktop app) is waited for, and then this one finds little or nothing to do.
async fn upload_first(place: &Place) -> Result<(), ShareError> {
    let cache = place.folder.journal.with_extension("tree.json");
    let facts = place.folder.journal.with_extension("server.json");
    let remote = NextcloudRemote::new(place.nc.clone(), &place.sub, Some(cache)).with_facts(facts);
    let deadline = tokio::time::Instant::now() + UPLOAD_WAIT;
    loop {
        match run::sync_once(&place.folder, &remote, &RunOptions::default(), None).await {
            Ok(_) => return Ok(()),
            Err(DriveError::FolderBusy(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(ShareError::Upload(format!("{e} [{}]", e.code()))),
        }
    }
}

fn password_choice(t: &Catalog, asked: bool) -> Result<Password, Failure> {
    if !asked {
        return Ok(Password::IfRequired);
    }
    if let Ok(p) = std::env::var("PASSERELLE_SHARE_PASSWORD") {
        if !p.is_empty() {
            return Ok(Password::Given(p));
        }
    }
    if !std::io::stdin().is_terminal() {
        return Ok(Password::Generate);
    }
    // Read without echo: the password stays off the screen (and out of a shared screen's
    // recording) while it is typed.
    let typed = match rpassword::prompt_password(format!("{} ", t.t("share.password_prompt"))) {
        Ok(typed) => typed,
        // The terminal cannot be read without echo: as with no terminal, a password is made
        // and shown.
        Err(e) => {
            tracing::warn!(error = %e, "the password could not be read from the terminal; making one");
            String::new()
        }
    };
    let typed = typed.trim_end_matches(['\r', '\n']);
    Ok(if typed.is_empty() { Password::Generate } else { Password::Given(typed.to_string()) })
}

/// What goes to the clipboard: the link, and a password made now on the next line (the member
/// passes both on).
pub fn clipboard_text(t: &Catalog, link: &SharedLink) -> String {
    match &link.password {
        Some(p) => format!("{}\n{}", link.url, t.f("share.password", &[("password", p)])),
        None => link.url.clone(),
    }
}

#[derive(Serialize)]
struct JsonOut<'a> {
    #[serde(flatten)]
    link: &'a SharedLink,
    copied: bool,
}

pub async fn share(ctx: Context, args: ShareArgs) -> Result<(), Failure> {
    let t = catalog(&ctx);
    let password = password_choice(&t, args.password)?;
    let place = place(&ctx, &t, &args.path).await?;
    let options = ShareOptions { days: args.days, password, today: None };
    let link = match share::share_or_upload(&place.nc, &place.path, &options, || upload_first(&place)).await {
        Ok(link) => link,
        Err(e) => {
            // A refusal the kept capabilities did not foresee (the admin changed the sharing
            // settings): read them again next time.
            if matches!(e, ShareError::Refused { .. }) {
                nextcloud::forget_facts(&place.folder.journal.with_extension("server.json"));
            }
            return Err(share_failure(&t, e));
        }
    };
    let copied = match CommandClipboard.set_text(&clipboard_text(&t, &link)) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e, "no clipboard");
            false
        }
    };
    if args.json {
        return print_json(&JsonOut { link: &link, copied });
    }
    println!("{}", link.url);
    if let Some(p) = &link.password {
        println!("{}", t.f("share.password", &[("password", p)]));
    } else if link.has_password {
        eprintln!("{}", t.t("share.password_kept"));
    }
    if let Some(date) = &link.expires {
        eprintln!("{}", t.f("share.expires", &[("date", date)]));
    }
    if !link.created {
        eprintln!("{}", t.t("share.reused"));
    }
    if link.uploaded {
        eprintln!("{}", t.t("share.uploaded"));
    }
    eprintln!("{}", t.t(if copied { "share.clipboard_done" } else { "share.no_clipboard" }));
    Ok(())
}

pub async fn open_online(ctx: Context, args: OpenOnlineArgs) -> Result<(), Failure> {
    let t = catalog(&ctx);
    let place = place(&ctx, &t, &args.path).await?;
    let url = share::online_url(&place.nc, &place.path).await.map_err(|e| share_failure(&t, e))?;
    let opener = if args.print { Opener::Print } else { Opener::System };
    // The page is on the member's own Nextcloud, and nowhere else.
    opener.open_on(url.as_str(), place.nc.base()).map_err(|e| Failure::new(exit::FAILURE, format!("{} [{}]", t.error(e.code()), e.code())))?;
    if !args.print {
        eprintln!("{}", t.t("share.online_opened"));
    }
    Ok(())
}
