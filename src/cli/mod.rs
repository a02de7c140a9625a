//! The command line. One file per area; each command parses its flags, calls the core and
//! prints. Failures end as one plain line on stderr and a distinct exit code.
use clap::{Parser, Subcommand};
use passerelle::{
    auth::{AuthError, SecretStore, Session},
    config::{ConfigError, Settings},
    paths::Dirs,
};

mod auth;
mod chat;
mod drive;
mod visio;
// After the others: `share` and `open-online` (issue 15).
pub mod share;

#[derive(Debug, Parser)]
#[command(name = "passerelle", version, about = "Passerelle: your cooperative's tools in one place (login, files, chat, visio)")]
pub struct Cli {
    /// More detail on stderr (-v: debug, -vv: trace). Tokens are never logged.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in through the browser (Keycloak single sign-on).
    Login(auth::LoginArgs),
    /// Show who is logged in.
    Whoami(auth::WhoamiArgs),
    /// Log out: end the session on the server and forget the secrets.
    Logout,
    /// Sync the local folder with the server.
    Sync(drive::SyncArgs),
    /// Show the sync state, pending items, last error and quota.
    Status(drive::StatusArgs),
    /// Copy a public link to a file or folder of the synced folder.
    Share(share::ShareArgs),
    /// Open a file of the synced folder on the server's website.
    OpenOnline(share::OpenOnlineArgs),
    /// Files on the server: trash and versions.
    Drive(drive::DriveArgs),
    /// Unread messages and mentions in the chat.
    Chat(chat::ChatArgs),
    /// Start or join a visio meeting.
    Visio(visio::VisioArgs),
    /// The next meetings from the calendar.
    Meetings(visio::MeetingsArgs),
    /// The cooperative's other tools.
    Links(visio::LinksArgs),
}

/// Exit codes, stable for scripts.
pub mod exit {
    pub const FAILURE: u8 = 1;
    pub const LOGIN_REQUIRED: u8 = 3;
    pub const OFFLINE: u8 = 4;
    /// The sync stopped to ask before deleting (safety stop).
    pub const NEEDS_CONFIRMATION: u8 = 5;
    pub const NOT_CONFIGURED: u8 = 6;
    /// The sync ran, but some items could not be synced (over quota, disk full, ...).
    pub const ITEMS_FAILED: u8 = 7;
}

/// How a command failed: the exit code and one plain line.
#[derive(Debug)]
pub struct Failure {
    pub exit: u8,
    pub message: String,
}

impl Failure {
    pub fn new(exit: u8, message: impl Into<String>) -> Failure {
        Failure { exit, message: message.into() }
    }
}

impl From<AuthError> for Failure {
    fn from(e: AuthError) -> Failure {
        let exit = match &e {
            AuthError::LoginRequired(_) | AuthError::NotLoggedIn => exit::LOGIN_REQUIRED,
            AuthError::Network(_) | AuthError::DiscoveryUnreachable { .. } => exit::OFFLINE,
            _ => exit::FAILURE,
        };
        Failure::new(exit, format!("{e} [{}]", e.code()))
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Failure {
        let exit = match &e {
            ConfigError::NoProfile => exit::NOT_CONFIGURED,
            ConfigError::Unreachable { .. } => exit::OFFLINE,
            _ => exit::FAILURE,
        };
        let hint = match &e {
            ConfigError::ForeignHosts { hosts, .. } => format!(" (to accept them: --accept-hosts {})", hosts.join(",")),
            _ => String::new(),
        };
        Failure::new(exit, format!("{e} [{}]{hint}", e.code()))
    }
}

/// What every command needs: folders, settings, the one HTTP client, the secret store.
pub struct Context {
    pub dirs: Dirs,
    pub settings: Settings,
    pub http: reqwest::Client,
    pub store: SecretStore,
}

impl Context {
    fn load() -> Result<Context, Failure> {
        let dirs = Dirs::discover();
        let settings = Settings::load(&dirs)?;
        let store = SecretStore::open(&dirs);
        Ok(Context { dirs, settings, http: passerelle::http::client(), store })
    }

    /// The saved session of the configured organisation.
    pub fn session(&self) -> Result<Session, Failure> {
        let (profile, _) = self.settings.profile()?;
        Ok(Session::restore(self.http.clone(), profile, self.store.clone())?)
    }
}

pub async fn run(cli: Cli) -> Result<(), Failure> {
    let ctx = Context::load()?;
    match cli.command {
        Command::Login(args) => auth::login(ctx, args).await,
        Command::Whoami(args) => auth::whoami(ctx, args).await,
        Command::Logout => auth::logout(ctx).await,
        Command::Sync(args) => drive::sync(ctx, args).await,
        Command::Status(args) => drive::status(ctx, args).await,
        Command::Share(args) => share::share(ctx, args).await,
        Command::OpenOnline(args) => share::open_online(ctx, args).await,
        Command::Drive(args) => drive::drive(ctx, args).await,
        Command::Chat(args) => chat::chat(ctx, args).await,
        Command::Visio(args) => visio::visio(ctx, args).await,
        Command::Meetings(args) => visio::meetings(ctx, args).await,
        Command::Links(args) => visio::links(ctx, args).await,
    }
}

/// Logs go to stderr so that `--json` output stays clean. `PASSERELLE_LOG` (or `RUST_LOG`)
/// overrides the level with an env-filter directive.
pub fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "warn,passerelle=debug",
        _ => "debug,passerelle=trace",
    };
    let filter = std::env::var("PASSERELLE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::new(exit::FAILURE, e.to_string()))?;
    println!("{text}");
    Ok(())
}
