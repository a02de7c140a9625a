//! `passerelle visio`, `passerelle meetings` and `passerelle links`: thin callers of
//! [`passerelle::visio`] and [`passerelle::calendar`].
use chrono::{DateTime, Utc};
use clap::Args;
use passerelle::{
    auth::AuthError,
    browser::Opener,
    calendar::{self, CalDavAuth, CalendarError, Window},
    visio::{self, CommandClipboard, JoinOptions, Recent, RecentMeeting, RoomKind, VisioError},
};

use super::{exit, print_json, Context, Failure};

impl From<VisioError> for Failure {
    fn from(e: VisioError) -> Failure {
        let (name, known) = match &e {
            VisioError::UnknownTeam { name, known } => (name.clone(), known.join(", ")),
            _ => Default::default(),
        };
        Failure::coded_with(exit::FAILURE, e.code(), &e, &[("name", &name), ("known", &known)])
    }
}

impl From<CalendarError> for Failure {
    fn from(e: CalendarError) -> Failure {
        let code = match &e {
            CalendarError::Auth(AuthError::LoginRequired(_) | AuthError::NotLoggedIn) => exit::LOGIN_REQUIRED,
            CalendarError::Unreachable(_) => exit::OFFLINE,
            CalendarError::NotConfigured => exit::NOT_CONFIGURED,
            _ => exit::FAILURE,
        };
        Failure::coded(code, e.code(), &e)
    }
}

#[derive(Debug, Args)]
pub struct VisioArgs {
    /// Join with audio only (no video): the server carries 10 people this way, 5 with video.
    #[arg(long)]
    pub audio_only: bool,
    /// Join a room by its name instead of starting a new one.
    #[arg(long, value_name = "NAME", conflicts_with = "team")]
    pub room: Option<String>,
    /// Join a team's room (see the organisation's teams), e.g. --team "Pôle Tech".
    #[arg(long, value_name = "NAME")]
    pub team: Option<String>,
    /// Print the URL instead of opening the browser.
    #[arg(long)]
    pub print: bool,
    /// Copy the invite link (without your name and options) to the clipboard.
    #[arg(long)]
    pub copy: bool,
    /// Skip Jitsi's camera and microphone check screen.
    #[arg(long)]
    pub no_prejoin: bool,
    /// The meeting's subject, shown to everyone.
    #[arg(long)]
    pub subject: Option<String>,
    /// List the recent meetings instead of starting one.
    #[arg(long, conflicts_with_all = ["room", "team", "print", "copy", "audio_only"])]
    pub recent: bool,
    /// With --recent: print JSON.
    #[arg(long, requires = "recent")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MeetingsArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Use this user name with a password on a generic CalDAV server instead of the login. The
    /// password comes from the environment variable PASSERELLE_CALDAV_PASSWORD the first time
    /// and is then kept in the keychain.
    #[arg(long, value_name = "USER")]
    pub caldav_user: Option<String>,
    /// Start of the window (RFC 3339, e.g. 2026-10-24T12:00:00+02:00); default: now.
    #[arg(long, value_name = "TIME")]
    pub from: Option<DateTime<chrono::FixedOffset>>,
    /// Length of the window in hours.
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
}

#[derive(Debug, Args)]
pub struct LinksArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn visio(ctx: Context, args: VisioArgs) -> Result<(), Failure> {
    if args.recent {
        let recent = Recent::new(&ctx.dirs).list();
        if args.json {
            return print_json(&recent);
        }
        for m in &recent {
            let when = m.when.with_timezone(&chrono::Local).format("%a %d %b %H:%M");
            println!("{when}  {}  {}", m.title.as_deref().unwrap_or(&m.room), m.url);
        }
        return Ok(());
    }
    let (profile, _) = ctx.settings.profile()?;
    let jitsi = visio::jitsi_host(&profile)?;
    // The name shown to the others comes from the login; without one Jitsi simply asks.
    let display_name = match ctx.session() {
        Ok(session) => Some(session.identity().name.clone()),
        Err(f) => {
            tracing::warn!("{}: Jitsi will ask for your name", f.message);
            None
        }
    };
    let (room, kind, title) = if let Some(team) = &args.team {
        let team = visio::team_room(&profile, team)?;
        (team.room.clone(), RoomKind::Team, Some(team.name.clone()))
    } else if let Some(room) = &args.room {
        (visio::named_room(room)?, RoomKind::Named, None)
    } else {
        (visio::new_room(), RoomKind::AdHoc, None)
    };
    let options = JoinOptions {
        display_name,
        audio_only: args.audio_only,
        prejoin: !args.no_prejoin,
        subject: args.subject.clone().or_else(|| title.clone()),
    };
    let url = visio::meeting_url(jitsi, &room, &options)?;
    let opener = if args.print { Opener::Print } else { Opener::System };
    visio::open(&opener, &url)?;
    if args.copy {
        match visio::copy_invite(&CommandClipboard, &url) {
            Ok(invite) => eprintln!("Invite link copied: {invite}"),
            Err(e) => eprintln!("Invite link (could not copy it: {e}): {}", visio::invite_url(&url)),
        }
    }
    let recent = RecentMeeting { room, url: visio::invite_url(&url), when: Utc::now(), kind, title };
    if let Err(e) = Recent::new(&ctx.dirs).record(recent) {
        tracing::warn!(error = %e, "the meeting was not added to the recent list");
    }
    Ok(())
}

pub async fn meetings(ctx: Context, args: MeetingsArgs) -> Result<(), Failure> {
    let (profile, _) = ctx.settings.profile()?;
    let root = calendar::caldav_root(&profile)?;
    let auth = match &args.caldav_user {
        Some(user) => {
            let password = std::env::var("PASSERELLE_CALDAV_PASSWORD").ok().filter(|p| !p.is_empty());
            // A new password is checked with the server before it is kept.
            if let Some(password) = &password {
                calendar::save_password(&ctx.http, &ctx.store, &root, user, password).await?;
            }
            CalDavAuth::basic_from_store(&ctx.store, &root, user, None)?
        }
        None => calendar::auth_for(&ctx.http, &profile, ctx.session().ok().as_ref(), &ctx.store).await?,
    };
    let from = args.from.map(|t| t.with_timezone(&Utc)).unwrap_or_else(Utc::now);
    let window = Window::new(from, chrono::Duration::hours(i64::from(args.hours)));
    let client = calendar::CalDav::new(ctx.http.clone(), root, auth);
    let outcome = calendar::next_meetings(&client, &profile, window).await?;
    for warning in &outcome.warnings {
        eprintln!("warning: {warning}");
    }
    if args.json {
        return print_json(&outcome.meetings);
    }
    if outcome.meetings.is_empty() {
        println!("No meetings in the next {} hours.", args.hours);
    }
    for m in &outcome.meetings {
        let when = if m.all_day {
            format!("{} (all day)", m.start.with_timezone(&chrono::Local).format("%a %d %b"))
        } else {
            format!(
                "{} - {}",
                m.start.with_timezone(&chrono::Local).format("%a %d %b %H:%M"),
                m.end.with_timezone(&chrono::Local).format("%H:%M")
            )
        };
        match &m.link {
            Some(link) => println!("{when}  {}  [{}] {link}", m.title, m.kind.as_str()),
            None => println!("{when}  {}", m.title),
        }
    }
    Ok(())
}

pub async fn links(ctx: Context, args: LinksArgs) -> Result<(), Failure> {
    let (profile, _) = ctx.settings.profile()?;
    let links = visio::links(&profile);
    if args.json {
        return print_json(&links);
    }
    for link in &links {
        println!("{}\t{}", link.name, link.url);
    }
    Ok(())
}
