//! Whether the member is at the computer, for the chat's presence (issue 13): the official
//! desktop app asks Electron's `powerMonitor.getSystemIdleState(threshold)` and sets "online"
//! when active, "away" when idle or locked. Here the OS idle time comes over D-Bus: GNOME's
//! `org.gnome.Mutter.IdleMonitor` (`GetIdletime`, milliseconds), else the freedesktop
//! `org.freedesktop.ScreenSaver` (`GetSessionIdleTime`, seconds; KDE and others). When neither
//! answers, the idle time is unknown and the presence is never changed.
use std::time::Duration;

use passerelle::chat::Activity;
use tauri::{async_runtime::JoinHandle, AppHandle, Manager, Wry};

use crate::shell::Shell;

/// Rocket.Chat's own default for "away after" (`idleTimeLimit`, 300 s).
const THRESHOLD: Duration = Duration::from_secs(300);
/// How often the idle time is read: going away or coming back shows within this.
const EVERY: Duration = Duration::from_secs(20);
/// With no idle source on the bus, look again this rarely (a session bus restarting, a
/// desktop started after us).
const NO_SOURCE_AGAIN: Duration = Duration::from_secs(10 * 60);

/// Active or idle from an idle time.
pub fn activity(idle: Duration) -> Activity {
    if idle < THRESHOLD {
        Activity::Active
    } else {
        Activity::Idle
    }
}

/// Follows the OS idle time and hands it to the running chat. Linux only; elsewhere the
/// presence stays as the chat connection declares it ("away").
pub fn start(app: &AppHandle<Wry>) -> Option<JoinHandle<()>> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let app = app.clone();
    Some(tauri::async_runtime::spawn(async move {
        let mut bus = None;
        loop {
            if bus.is_none() {
                bus = zbus::Connection::session().await.map_err(|e| tracing::info!(error = %e, "no session bus: the idle time is unknown")).ok();
            }
            let idle = match &bus {
                Some(bus) => idle_time(bus).await,
                None => None,
            };
            let pause = match idle {
                Some(idle) => {
                    app.state::<Shell>().set_chat_activity(activity(idle));
                    EVERY
                }
                // Unknown: the presence is left as it is.
                None => NO_SOURCE_AGAIN,
            };
            tokio::time::sleep(pause).await;
        }
    }))
}

/// The OS idle time, from the first source that answers.
async fn idle_time(bus: &zbus::Connection) -> Option<Duration> {
    let mutter = bus
        .call_method(
            Some("org.gnome.Mutter.IdleMonitor"),
            "/org/gnome/Mutter/IdleMonitor/Core",
            Some("org.gnome.Mutter.IdleMonitor"),
            "GetIdletime",
            &(),
        )
        .await;
    if let Ok(reply) = mutter {
        if let Ok(ms) = reply.body().deserialize::<u64>() {
            return Some(Duration::from_millis(ms));
        }
    }
    let screensaver = bus
        .call_method(
            Some("org.freedesktop.ScreenSaver"),
            "/org/freedesktop/ScreenSaver",
            Some("org.freedesktop.ScreenSaver"),
            "GetSessionIdleTime",
            &(),
        )
        .await;
    match screensaver {
        Ok(reply) => reply.body().deserialize::<u32>().ok().map(|s| Duration::from_secs(u64::from(s))),
        Err(e) => {
            tracing::debug!(error = %e, "no idle time on the session bus");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn away_after_rocket_chats_default_five_minutes() {
        assert_eq!(activity(Duration::from_secs(0)), Activity::Active);
        assert_eq!(activity(Duration::from_secs(299)), Activity::Active);
        assert_eq!(activity(Duration::from_secs(300)), Activity::Idle);
    }
}
