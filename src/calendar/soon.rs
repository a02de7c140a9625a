//! When to tell the member and when to look again: the "meeting starting in 10 min" event,
//! once per occurrence, and the refresh pace. Pure: the time is always passed in.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};

use super::{Meeting, MeetingKind};

/// How long before its start a meeting is announced.
pub const SOON: Duration = Duration::minutes(10);
/// The calendar is fetched at most this often (and at once after a wake).
pub const REFRESH_INTERVAL: Duration = Duration::minutes(5);

/// The meetings to announce at `now`: a visio (a link to join), not all-day, starting within
/// [`SOON`], and not in `notified` (occurrence ids already announced).
pub fn starting_soon<'a>(meetings: &'a [Meeting], now: DateTime<Utc>, notified: &HashSet<String>) -> Vec<&'a Meeting> {
    meetings
        .iter()
        .filter(|m| m.kind != MeetingKind::None && !m.all_day)
        .filter(|m| m.start >= now && m.start - now <= SOON)
        .filter(|m| !notified.contains(&m.id))
        .collect()
}

/// Remembers which occurrences were announced, so each fires once even when the list is
/// refreshed, and forgets them a day after they started.
#[derive(Debug, Default, Clone)]
pub struct StartingSoon {
    notified: HashMap<String, DateTime<Utc>>,
}

impl StartingSoon {
    pub fn new() -> StartingSoon {
        StartingSoon::default()
    }

    /// The meetings to announce now; they are marked as announced.
    pub fn poll(&mut self, meetings: &[Meeting], now: DateTime<Utc>) -> Vec<Meeting> {
        self.notified.retain(|_, start| *start + Duration::days(1) > now);
        let seen: HashSet<String> = self.notified.keys().cloned().collect();
        let due: Vec<Meeting> = starting_soon(meetings, now, &seen).into_iter().cloned().collect();
        for m in &due {
            self.notified.insert(m.id.clone(), m.start);
        }
        due
    }
}

/// A gap this long between two polls of a caller that polls every few seconds means the
/// machine was asleep.
pub const WAKE_GAP: Duration = Duration::minutes(2);

/// The refresh pace: at most every [`REFRESH_INTERVAL`], and at once after the machine wakes
/// (the shell says so, or [`Freshness::poll`] sees a gap between polls) or when the clock went
/// backwards.
#[derive(Debug, Clone)]
pub struct Freshness {
    interval: Duration,
    last: Option<DateTime<Utc>>,
    last_poll: Option<DateTime<Utc>>,
}

impl Default for Freshness {
    fn default() -> Self {
        Freshness::new(REFRESH_INTERVAL)
    }
}

impl Freshness {
    pub fn new(interval: Duration) -> Freshness {
        Freshness { interval, last: None, last_poll: None }
    }

    /// For callers that poll regularly (every 30 s): true when a refresh is due, counting a
    /// gap of more than [`WAKE_GAP`] since the previous poll as a wake.
    pub fn poll(&mut self, now: DateTime<Utc>, woke: bool) -> bool {
        let slept = self.last_poll.is_some_and(|p| now - p > WAKE_GAP);
        self.last_poll = Some(now);
        self.due(now, woke || slept)
    }

    /// True when a refresh should run now.
    pub fn due(&self, now: DateTime<Utc>, woke: bool) -> bool {
        match self.last {
            None => true,
            Some(last) => woke || now < last || now - last >= self.interval,
        }
    }

    /// Records a refresh done at `now`.
    pub fn mark(&mut self, now: DateTime<Utc>) {
        self.last = Some(now);
    }
}
