//! `login`, `whoami`, `logout`.
use std::{io::Write, path::PathBuf, time::Duration};

use clap::Args;
use passerelle::{
    auth::{self, LoginOptions, LogoutOutcome},
    browser::Opener,
    config,
};

use super::{print_json, Context, Failure};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The organisation's domain; its settings are read from https://DOMAIN/.well-known/passerelle.json.
    #[arg(long, conflicts_with = "profile")]
    pub org: Option<String>,
    /// An organisation profile file (JSON).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Print the login address instead of opening the browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Give up after this many seconds without an answer from the browser.
    #[arg(long, default_value_t = 300, hide = true)]
    pub timeout: u64,
}

pub async fn login(mut ctx: Context, args: LoginArgs) -> Result<(), Failure> {
    let (profile, source) =
        config::resolve(&ctx.http, &ctx.settings, args.org.as_deref(), args.profile.as_deref()).await?;
    let opener = if args.no_browser { Opener::Print } else { Opener::System };
    if args.no_browser {
        eprintln!("Open this address in your browser to log in:");
    }
    let options = LoginOptions { opener, timeout: Duration::from_secs(args.timeout) };
    let session = auth::login(&ctx.http, &profile, &ctx.store, &options).await?;
    // Remember the organisation so that later commands need no flag.
    if source != config::Source::Bundled && ctx.settings.profile.as_ref() != Some(&profile) {
        ctx.settings.profile = Some(profile);
        ctx.settings.save(&ctx.dirs)?;
    }
    let _ = std::io::stdout().flush();
    eprintln!("Logged in as {}.", session.identity().name);
    Ok(())
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[arg(long)]
    pub json: bool,
}

pub async fn whoami(ctx: Context, args: WhoamiArgs) -> Result<(), Failure> {
    let session = ctx.session()?;
    // Prove the session still works: this refreshes when due and fails plainly when revoked.
    session.access_token().await?;
    let info = session.info().await;
    if args.json {
        return print_json(&info);
    }
    let expires = time::OffsetDateTime::from_unix_timestamp(info.access_token_expires_at as i64)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| info.access_token_expires_at.to_string());
    println!("{}", info.name);
    if let Some(email) = &info.email {
        println!("email: {email}");
    }
    println!("login server: {}", info.issuer);
    println!("access token valid until: {expires}");
    println!("secrets kept in: {}", info.secrets_location);
    Ok(())
}

pub async fn logout(ctx: Context) -> Result<(), Failure> {
    let (profile, _) = ctx.settings.profile()?;
    match passerelle::account::logout(&ctx.http, &profile, &ctx.store).await? {
        LogoutOutcome::Revoked => eprintln!("Logged out."),
        LogoutOutcome::LocalOnly(reason) => {
            eprintln!("Logged out on this computer; the server could not be told ({reason}).")
        }
        LogoutOutcome::WasNotLoggedIn => eprintln!("You were not logged in."),
    }
    Ok(())
}
