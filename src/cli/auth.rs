//! `login`, `whoami`, `logout`.
use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    time::Duration,
};

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
    /// Servers outside the organisation's domain that its published settings may send your
    /// login to (comma-separated host names), after checking them with your organisation.
    #[arg(long, value_delimiter = ',')]
    pub accept_hosts: Vec<String>,
    /// Print the login address instead of opening the browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Give up after this many seconds without an answer from the browser.
    #[arg(long, default_value_t = 300, hide = true)]
    pub timeout: u64,
}

pub async fn login(mut ctx: Context, args: LoginArgs) -> Result<(), Failure> {
    let resolve = |accepted: Vec<String>| {
        let (http, settings) = (ctx.http.clone(), ctx.settings.clone());
        let (org, file) = (args.org.clone(), args.profile.clone());
        async move { config::resolve(&http, &settings, org.as_deref(), file.as_deref(), &accepted).await }
    };
    let (profile, source) = match resolve(args.accept_hosts.clone()).await {
        // Servers outside the typed domain: show them and let the member decide, at a terminal;
        // a script must name them with --accept-hosts.
        Err(config::ConfigError::ForeignHosts { domain, hosts, servers }) if std::io::stdin().is_terminal() => {
            eprintln!("The settings published by {domain} send your login to these servers too:");
            for server in &servers {
                let uses: Vec<&str> = server
                    .uses
                    .iter()
                    .map(|u| match u {
                        config::ServerUse::Login => "login",
                        config::ServerUse::Files => "files",
                        config::ServerUse::Chat => "chat",
                        config::ServerUse::Calendar => "calendar",
                    })
                    .collect();
                eprintln!("  {} (for: {})", server.host, uses.join(", "));
            }
            eprint!("Log in with them? Answer yes only if your organisation uses them [y/N] ");
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            let _ = std::io::stdin().read_line(&mut answer);
            if !matches!(answer.trim(), "y" | "Y" | "yes" | "o" | "oui") {
                return Err(config::ConfigError::ForeignHosts { domain, hosts, servers }.into());
            }
            let mut accepted = args.accept_hosts.clone();
            accepted.extend(hosts);
            resolve(accepted).await?
        }
        other => other?,
    };
    let opener = if args.no_browser { Opener::Print } else { Opener::System };
    if args.no_browser {
        eprintln!("Open this address in your browser to log in:");
    }
    let options = LoginOptions {
        opener,
        timeout: Duration::from_secs(args.timeout),
        language: Some(passerelle::i18n::Lang::choose(ctx.settings.language.as_deref())),
        ..LoginOptions::default()
    };
    let pending = auth::begin(&ctx.http, &profile, &ctx.store, &options).await?;
    if let Err(e) = options.opener.open(pending.url().as_str()) {
        // No browser (none installed, or it refused to start): the address still works when
        // pasted into a browser on this computer (the answer comes back to 127.0.0.1).
        tracing::warn!(code = e.code(), "no browser could be opened: {e}");
        eprintln!("No browser could be opened. Open this address in your browser to log in:");
        println!("{}", pending.url());
    }
    let session = pending.finish().await?;
    // Another member was logged in here: their access ends on the servers too.
    passerelle::account::end_replaced(&ctx.http, &session).await;
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
