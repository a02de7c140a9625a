//! The next meeting in the tray, and "starting in 10 min" notifications, from the member's
//! calendar. Which credentials reach the calendar is the core's choice
//! (`calendar::auth_for`); this only runs the loop, remembers what went wrong for the settings
//! window, and takes the password the member types there.
use std::sync::Mutex;

use passerelle::{
    auth::Session,
    calendar::{self, CalDav, CalendarError},
    visio::JoinOptions,
};
use tauri::{async_runtime::JoinHandle, AppHandle, Manager, Wry};
use tokio::sync::Notify;

use crate::{
    error::ShellError,
    notify::{self, NoticeKind},
    shell::Shell,
    tray::NextMeeting,
};

/// Managed by Tauri beside the [`Shell`]: what the calendar loop last met, and its wake-up bell.
#[derive(Default)]
pub struct Agenda {
    /// The code of the last failure (`calendar_password_needed`, `bad_credentials`, `offline`…),
    /// `None` once the calendar answered.
    problem: Mutex<Option<String>>,
    /// Rung when the member gave a password: the loop tries again at once.
    again: Notify,
}

impl Agenda {
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_problem(&self, code: Option<&str>) {
        *self.problem.lock().unwrap_or_else(|p| p.into_inner()) = code.map(str::to_owned);
    }
}

/// What the settings window shows about the calendar.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CalendarView {
    /// Whether the member has a password to give (`not_needed`, `missing`, `saved`).
    password: calendar::PasswordState,
    /// The user name to propose: the saved one, else the login's.
    user: Option<String>,
    /// The last failure's code, for its sentence.
    problem: Option<String>,
}

pub fn view(app: &AppHandle<Wry>) -> Option<CalendarView> {
    let shell = app.state::<Shell>();
    let session = shell.session()?;
    calendar::caldav_root(session.profile()).ok()?;
    let (password, user) = calendar::password_state(&shell.store, session.profile());
    let user = user.or_else(|| session.identity().username.clone());
    Some(CalendarView { password, user, problem: app.state::<Agenda>().problem() })
}

/// Checks the password with the calendar server, keeps it, and refreshes the tray's meeting.
pub async fn save_password(app: &AppHandle<Wry>, user: &str, password: &str) -> Result<(), ShellError> {
    let shell = app.state::<Shell>();
    let session = shell.session().ok_or_else(|| ShellError::new("not_logged_in"))?;
    let root = calendar::separate_server(session.profile()).ok_or_else(|| ShellError::new("no_calendar"))?;
    calendar::save_password(&shell.http, &shell.store, &root, user, password)
        .await
        .map_err(|e| ShellError::logged(e.code(), &e))?;
    let agenda = app.state::<Agenda>();
    agenda.set_problem(None);
    agenda.again.notify_one();
    Ok(())
}

/// The calendar loop of a session. It wakes only to refresh (every 5 min at most, as the
/// calendar module asks), when a meeting nears, or when the member gave a password.
pub fn start(app: &AppHandle<Wry>, session: Session) -> Option<JoinHandle<()>> {
    let profile = session.profile().clone();
    let root = calendar::caldav_root(&profile).ok()?;
    let app = app.clone();
    Some(tauri::async_runtime::spawn(async move {
        let agenda = app.state::<Agenda>();
        agenda.set_problem(None);
        let mut announced = calendar::StartingSoon::new();
        let tz = calendar::local_timezone();
        let mut client: Option<CalDav> = None;
        // The member is told once per session that the calendar wants its password.
        let mut told = false;
        loop {
            let now = chrono::Utc::now();
            let mut wake = Some(now + calendar::REFRESH_INTERVAL);
            let shell = app.state::<Shell>();
            if client.is_none() {
                match calendar::auth_for(&shell.http, &profile, Some(&session), &shell.store).await {
                    Ok(auth) => client = Some(CalDav::new(shell.http.clone(), root.clone(), auth)),
                    Err(e) => {
                        tracing::warn!(code = e.code(), "no way to the calendar: {e}");
                        agenda.set_problem(Some(e.code()));
                    }
                }
            }
            let found = match &client {
                Some(client) => calendar::next_meetings(client, &profile, calendar::Window::next_24h(now)).await,
                None => Err(CalendarError::NotConfigured),
            };
            match found {
                Ok(found) => {
                    agenda.set_problem(None);
                    let options = || JoinOptions { display_name: Some(session.identity().name.clone()), ..JoinOptions::default() };
                    let next = found
                        .meetings
                        .iter()
                        .filter(|m| m.kind != calendar::MeetingKind::None && m.end > now && !m.all_day)
                        .find_map(|m| Some((m, m.join_url(&profile, options())?)));
                    shell.set_meeting(next.map(|(m, url)| NextMeeting {
                        title: m.title.clone(),
                        time: m.start.with_timezone(&tz).format("%H:%M").to_string(),
                        url: url.to_string(),
                    }));
                    for m in found.meetings.iter().filter(|m| m.start > now) {
                        let before = m.start - calendar::SOON;
                        if before > now && wake.is_none_or(|w| before < w) {
                            wake = Some(before);
                        }
                    }
                    if shell.settings().notifications != Some(false) {
                        let t = shell.catalog();
                        for m in announced.poll(&found.meetings, now) {
                            let time = m.start.with_timezone(&tz).format("%H:%M").to_string();
                            let body = t.f("notify.meeting.body", &[("title", &m.title), ("time", &time)]);
                            notify::send(&app, NoticeKind::MeetingSoon, &t.t("notify.meeting.title"), &body);
                        }
                    }
                }
                Err(CalendarError::NotConfigured) => {}
                Err(e) => {
                    // Said in the settings window (its sentence by code), not only in the log.
                    tracing::warn!(code = e.code(), "the calendar could not be read: {e}");
                    agenda.set_problem(Some(e.code()));
                    // Only a separate server has a password to give in the settings.
                    let separate = calendar::separate_server(&profile).is_some();
                    if !told && separate && matches!(e, CalendarError::TokenRefused | CalendarError::NoPassword { .. }) {
                        told = true;
                        let t = shell.catalog();
                        notify::send(&app, NoticeKind::CalendarPassword, &t.t("settings.calendar"), &t.error(e.code()));
                    }
                    if refused(&e) {
                        // The credentials will not work until they change: a stale meeting
                        // line would be a lie, and asking again would only be refused again
                        // (and, with the login's token, spend a token refresh each time).
                        shell.set_meeting(None);
                        client = None;
                        if separate {
                            wake = None;
                        }
                    }
                }
            }
            let bell = agenda.again.notified();
            match wake {
                Some(at) => {
                    let pause = (at - chrono::Utc::now()).to_std().unwrap_or_default().max(std::time::Duration::from_secs(1));
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = bell => {}
                    }
                }
                None => bell.await,
            }
        }
    }))
}

/// The calendar server refused the credentials themselves (not a passing failure).
fn refused(e: &CalendarError) -> bool {
    matches!(e, CalendarError::TokenRefused | CalendarError::BadCredentials | CalendarError::NoPassword { .. })
}
