//! From iCalendar text to occurrences: parse with `icalendar`, expand RRULE / RDATE / EXDATE
//! with `rrule` (through `icalendar`'s recurrence support), apply RECURRENCE-ID overrides and
//! cancellations, put every time in UTC with `chrono-tz`, and classify the meeting link.
//! Pure: no I/O, no clock.
use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use icalendar::{CalendarDateTime, Component, DatePerhapsTime, Event, EventLike, EventStatus};
use url::Url;

use super::{Meeting, MeetingKind, Window};

/// What one calendar resource gave: its occurrences in the window, and what was skipped.
#[derive(Debug, Default)]
pub struct Expanded {
    pub meetings: Vec<Meeting>,
    pub warnings: Vec<String>,
    /// Work spent expanding repetitions (rule periods walked plus occurrences looked at).
    pub work: u64,
}

/// A start or end as written in the file, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    Date(NaiveDate),
    Time(DateTime<Utc>),
}

impl Moment {
    /// The key an occurrence is known by, shared by the master's expansion and RECURRENCE-ID.
    fn key(self) -> String {
        match self {
            Moment::Date(d) => d.format("%Y%m%d").to_string(),
            Moment::Time(t) => t.format("%Y%m%dT%H%M%SZ").to_string(),
        }
    }

    fn instant(self, local: chrono_tz::Tz) -> DateTime<Utc> {
        match self {
            Moment::Date(d) => local_instant(local, d.and_hms_opt(0, 0, 0).unwrap_or_default()),
            Moment::Time(t) => t,
        }
    }
}

/// A wall-clock time in `tz`: the earlier of two in the autumn overlap, and shifted past the
/// gap in spring (02:30 on a spring-forward night is 03:30), as calendar apps do.
fn local_instant<T: TimeZone>(tz: T, naive: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&naive).earliest() {
        Some(t) => t.with_timezone(&Utc),
        None => tz
            .from_local_datetime(&(naive + Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&naive)),
    }
}

/// A TZID as chrono-tz knows it. Some clients prefix the IANA name
/// (`/freeassociation.sourceforge.net/Europe/Paris`); try the tail too.
fn parse_tzid(tzid: &str) -> Option<chrono_tz::Tz> {
    let tzid = tzid.trim().trim_matches('"');
    if let Ok(tz) = tzid.parse() {
        return Some(tz);
    }
    let parts: Vec<&str> = tzid.split('/').filter(|p| !p.is_empty()).collect();
    (1..=3.min(parts.len())).rev().find_map(|n| parts[parts.len() - n..].join("/").parse().ok())
}

fn moment(value: DatePerhapsTime, local: chrono_tz::Tz) -> Result<Moment, String> {
    Ok(match value {
        DatePerhapsTime::Date(d) => Moment::Date(d),
        DatePerhapsTime::DateTime(CalendarDateTime::Utc(t)) => Moment::Time(t),
        DatePerhapsTime::DateTime(CalendarDateTime::Floating(naive)) => Moment::Time(local_instant(local, naive)),
        DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone { date_time, tzid }) => {
            let tz = parse_tzid(&tzid).ok_or_else(|| format!("unknown time zone “{tzid}”"))?;
            Moment::Time(local_instant(tz, date_time))
        }
    })
}

/// `DURATION` values such as `PT1H30M`, `P1D`, `P2W` (RFC 5545 §3.3.6).
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let text = text.strip_prefix('P')?;
    let mut total = Duration::zero();
    let mut number = String::new();
    let mut in_time = false;
    for c in text.chars() {
        match c {
            'T' => in_time = true,
            '0'..='9' => number.push(c),
            unit => {
                let n: i64 = number.parse().ok()?;
                number.clear();
                total += match (unit, in_time) {
                    ('W', false) => Duration::weeks(n),
                    ('D', false) => Duration::days(n),
                    ('H', true) => Duration::hours(n),
                    ('M', true) => Duration::minutes(n),
                    ('S', true) => Duration::seconds(n),
                    _ => return None,
                };
            }
        }
    }
    number.is_empty().then_some(if negative { -total } else { total })
}

/// One VEVENT's own start, end and all-day flag.
struct Span {
    start: Moment,
    length: Duration,
    all_day: bool,
}

fn span(event: &Event, local: chrono_tz::Tz) -> Result<Span, String> {
    let start = moment(event.get_start().ok_or("it has no start (DTSTART)")?, local)?;
    let all_day = matches!(start, Moment::Date(_));
    let length = if let Some(end) = event.get_end() {
        let end = moment(end, local)?;
        end.instant(local) - start.instant(local)
    } else if let Some(d) = event.property_value("DURATION") {
        parse_duration(d).ok_or_else(|| format!("its duration “{d}” cannot be read"))?
    } else if all_day {
        Duration::days(1)
    } else {
        Duration::zero()
    };
    Ok(Span { start, length: length.max(Duration::zero()), all_day })
}

fn cancelled(event: &Event) -> bool {
    matches!(event.get_status(), Some(EventStatus::Cancelled))
}

/// How much work expanding may take: rule periods walked plus occurrences produced. A rule
/// walks one period per step of its frequency, so without a bound an event `FREQ=SECONDLY`
/// since 1970 cost an hour of CPU at every refresh, and anyone who can invite the member can
/// send one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Work for one event; an event that would need more is skipped with a warning.
    pub event_work: u64,
    /// Work for all the events of one refresh.
    pub refresh_work: u64,
    /// Occurrences of one event kept, counted from the window's start (the tray needs the
    /// next ones, not the ten-thousandth).
    pub occurrences: usize,
}

impl Limits {
    /// A day of a rule repeating every second fits (86,400 periods); a refresh holds about
    /// twenty such events, or thousands of ordinary ones.
    pub const DEFAULT: Limits = Limits { event_work: 200_000, refresh_work: 2_000_000, occurrences: 2_000 };
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// What is left of a refresh's work, shared by every event it expands.
#[derive(Debug, Clone)]
pub struct Budget {
    limits: Limits,
    left: u64,
}

impl Budget {
    pub fn new(limits: Limits) -> Budget {
        Budget { limits, left: limits.refresh_work }
    }

    /// Work done so far.
    pub fn spent(&self) -> u64 {
        self.limits.refresh_work - self.left
    }

    fn take(&mut self, work: u64) -> bool {
        match self.left.checked_sub(work) {
            Some(left) => {
                self.left = left;
                true
            }
            None => false,
        }
    }
}

/// Length in seconds of one period of a frequency (the shortest a month or a year can be, so
/// that the number of periods is never underestimated).
fn period_seconds(freq: rrule::Frequency) -> i64 {
    use rrule::Frequency::*;
    match freq {
        Secondly => 1,
        Minutely => 60,
        Hourly => 3_600,
        Daily => 86_400,
        Weekly => 7 * 86_400,
        Monthly => 28 * 86_400,
        Yearly => 365 * 86_400,
    }
}

/// The same occurrences from `from` on, with DTSTART moved forward close to `from`, so that
/// the walk does not start in 1970. Done only where the move is exact: one RRULE without COUNT
/// (COUNT counts from the original start) and a frequency of fixed length on the wall clock
/// (seconds to weeks). The validated rule already carries the BYxxx values it took from the
/// original DTSTART, so moving DTSTART by whole periods keeps every occurrence after it.
fn start_near(set: rrule::RRuleSet, from: DateTime<Utc>) -> rrule::RRuleSet {
    let [rule] = set.get_rrule().as_slice() else { return set };
    if rule.get_count().is_some() || !set.get_exrule().is_empty() {
        return set;
    }
    if matches!(rule.get_freq(), rrule::Frequency::Monthly | rrule::Frequency::Yearly) {
        return set;
    }
    let step = period_seconds(rule.get_freq()) * i64::from(rule.get_interval().max(1));
    let start = *set.get_dt_start();
    let tz = start.timezone();
    // Wall-clock arithmetic in the rule's zone, with two hours to spare for a DST change.
    let gap = (from.with_timezone(&tz).naive_local() - start.naive_local()).num_seconds() - 7_200;
    let periods = gap.div_euclid(step);
    if periods <= 0 {
        return set;
    }
    let Some(moved) = start.naive_local().checked_add_signed(Duration::seconds(periods * step)) else { return set };
    let Some(moved) = tz.from_local_datetime(&moved).earliest() else { return set };
    rrule::RRuleSet::new(moved)
        .set_rrules(vec![rule.clone()])
        .set_rdates(set.get_rdate().clone())
        .set_exdates(set.get_exdate().clone())
}

/// Rule periods between `a` and `b`: what walking the rules from `a` to `b` costs at least.
fn periods_between(set: &rrule::RRuleSet, a: DateTime<Utc>, b: DateTime<Utc>) -> u64 {
    let span = (b - a).num_seconds().max(0);
    set.get_rrule()
        .iter()
        .map(|r| (span / (period_seconds(r.get_freq()) * i64::from(r.get_interval().max(1)))) as u64)
        .sum()
}

/// The master's occurrences (original starts) whose span may touch the window, at most
/// `limits.occurrences` of them, and a note when some were left out.
fn occurrences(
    master: &Event,
    span: &Span,
    window: &Window,
    local: chrono_tz::Tz,
    budget: &mut Budget,
) -> Result<(Vec<Moment>, Option<String>, u64), String> {
    let set = master.get_recurrence().map_err(|e| format!("its repetition cannot be read: {e}"))?;
    // Occurrences that began before the window but still run count too. Dates and floating
    // times are expanded on the machine's wall clock and read in the member's zone: a day of
    // slack covers the difference.
    let slack = if matches!(span.start, Moment::Date(_)) || is_floating(master) { Duration::days(1) } else { Duration::zero() };
    let from = window.start - span.length - slack;
    let to = window.end + slack;
    let set = start_near(set, from);
    let limits = budget.limits;
    // The walk up to the window is paid first; then each occurrence and the periods before it.
    let mut walked = set.get_dt_start().with_timezone(&Utc).min(from);
    let mut work = periods_between(&set, walked, from);
    if work > limits.event_work {
        return Err("it repeats too often to be shown".into());
    }
    if !budget.take(work) {
        return Err("the calendars hold too many repeating events to expand them all".into());
    }
    walked = walked.max(from);
    let (from, to) = (from.with_timezone(&rrule::Tz::UTC), to.with_timezone(&rrule::Tz::UTC));
    let mut found = Vec::new();
    let mut note = None;
    // `limit()`: rrule gives up on a rule that matches nothing for 100,000 periods in a row, so
    // the walk past the last occurrence is bounded too.
    let set = set.limit();
    for dt in &set {
        if dt > to {
            break;
        }
        let at = dt.with_timezone(&Utc);
        let cost = periods_between(&set, walked, at) + 1;
        walked = walked.max(at);
        work += cost;
        if work > limits.event_work || !budget.take(cost) {
            note = Some("some of its repetitions were not expanded: it repeats too often".to_string());
            break;
        }
        if dt < from {
            continue;
        }
        found.push(match span.start {
            // A DATE or floating DTSTART is expanded on the wall clock: take the wall-clock value
            // back and read it in the member's zone.
            Moment::Date(_) => Moment::Date(dt.naive_local().date()),
            Moment::Time(_) if is_floating(master) => Moment::Time(local_instant(local, dt.naive_local())),
            Moment::Time(_) => Moment::Time(dt.with_timezone(&Utc)),
        });
        if found.len() >= limits.occurrences {
            note = Some(format!("only its next {} repetitions are shown", limits.occurrences));
            break;
        }
    }
    Ok((found, note, work))
}

fn is_floating(event: &Event) -> bool {
    matches!(event.get_start(), Some(DatePerhapsTime::DateTime(CalendarDateTime::Floating(_))))
}

/// Where an occurrence is put: the member's zone, the org's Jitsi, the calendar's name.
struct Context<'a> {
    local: chrono_tz::Tz,
    jitsi: Option<&'a Url>,
    calendar: &'a str,
}

fn meeting(event: &Event, uid: &str, key: &str, start: Moment, span: &Span, cx: &Context) -> Meeting {
    let Context { local, jitsi, calendar } = *cx;
    let start = start.instant(local);
    let texts = [event.get_location(), event.get_url(), event.get_description()];
    let (link, kind) = classify(texts, jitsi);
    Meeting {
        id: format!("{uid}@{key}"),
        uid: uid.to_string(),
        title: event.get_summary().map(str::trim).filter(|s| !s.is_empty()).unwrap_or("(no title)").to_string(),
        start,
        end: start + span.length,
        all_day: span.all_day,
        link,
        kind,
        calendar: calendar.to_string(),
    }
}

/// Parses one calendar resource and returns its occurrences overlapping `window`. An
/// unreadable file is an `Err` (the caller warns and goes on); an unreadable event inside a
/// readable file is a warning and the others still come out. Bounded by [`Limits::DEFAULT`].
pub fn expand(ics: &str, window: &Window, jitsi: Option<&Url>, local: chrono_tz::Tz, calendar: &str) -> Result<Expanded, String> {
    expand_with(ics, window, jitsi, local, calendar, &mut Budget::new(Limits::DEFAULT))
}

/// [`expand`] drawing on a refresh's shared `budget`.
pub fn expand_with(
    ics: &str,
    window: &Window,
    jitsi: Option<&Url>,
    local: chrono_tz::Tz,
    calendar: &str,
    budget: &mut Budget,
) -> Result<Expanded, String> {
    let ics = ics.trim_start_matches('\u{feff}');
    if !ics.trim_start().to_ascii_uppercase().starts_with("BEGIN:VCALENDAR") {
        return Err("it is not iCalendar data".into());
    }
    let parsed: icalendar::Calendar = ics.parse().map_err(|e: String| e.lines().next().unwrap_or_default().to_string())?;
    let mut out = Expanded::default();
    let cx = Context { local, jitsi, calendar };

    // The master and its overrides share a UID.
    let mut by_uid: HashMap<String, (Option<&Event>, Vec<&Event>)> = HashMap::new();
    for event in parsed.events() {
        let Some(uid) = event.get_uid().map(str::to_string) else {
            out.warnings.push("an event without a UID was skipped".into());
            continue;
        };
        let entry = by_uid.entry(uid).or_default();
        if event.get_recurrence_id().is_some() {
            entry.1.push(event);
        } else {
            entry.0 = Some(event);
        }
    }

    for (uid, (master, overrides)) in &by_uid {
        let mut overridden: HashMap<String, &Event> = HashMap::new();
        for o in overrides {
            match o.get_recurrence_id().map(|r| moment(r, local)) {
                Some(Ok(m)) => {
                    overridden.insert(m.key(), *o);
                }
                _ => out.warnings.push(format!("“{}”: a changed occurrence with an unreadable RECURRENCE-ID was skipped", title(o))),
            }
        }
        if let Some(master) = master {
            if cancelled(master) {
                continue;
            }
            let result = span(master, local).and_then(|s| occurrences(master, &s, window, local, budget).map(|o| (s, o)));
            match result {
                Ok((span, (starts, note, work))) => {
                    out.work += work;
                    if let Some(note) = note {
                        out.warnings.push(format!("“{}”: {note}", title(master)));
                    }
                    for start in starts {
                        let key = start.key();
                        if overridden.contains_key(&key) {
                            continue;
                        }
                        let m = meeting(master, uid, &key, start, &span, &cx);
                        if window.overlaps(m.start, m.end) {
                            out.meetings.push(m);
                        }
                    }
                }
                Err(e) => out.warnings.push(format!("“{}” was skipped: {e}", title(master))),
            }
        }
        for (key, o) in overridden {
            if cancelled(o) {
                continue;
            }
            match span(o, local) {
                Ok(span) => {
                    let m = meeting(o, uid, &key, span.start, &span, &cx);
                    if window.overlaps(m.start, m.end) {
                        out.meetings.push(m);
                    }
                }
                Err(e) => out.warnings.push(format!("“{}” was skipped: {e}", title(o))),
            }
        }
    }
    Ok(out)
}

fn title(event: &Event) -> &str {
    event.get_summary().unwrap_or("(no title)")
}

/// Visio services whose links are meetings wherever they appear.
const CONFERENCE_HOSTS: &[&str] = &[
    "zoom.us", "meet.google.com", "teams.microsoft.com", "teams.live.com", "whereby.com", "webex.com",
    "meet.jit.si", "8x8.vc", "gotomeeting.com", "bluejeans.com", "livestorm.co", "skype.com",
];

fn is_conference_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    CONFERENCE_HOSTS.iter().any(|h| host == *h || host.ends_with(&format!(".{h}")))
        || ["meet.", "visio.", "jitsi.", "bbb.", "webinar."].iter().any(|p| host.starts_with(p))
}

/// Every http(s) link in `text`.
fn urls(text: &str) -> Vec<Url> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("http") {
        let candidate = &rest[at..];
        rest = &rest[at + 4..];
        if !(candidate.starts_with("https://") || candidate.starts_with("http://")) {
            continue;
        }
        let end = candidate
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '\\' | '`'))
            .unwrap_or(candidate.len());
        let raw = candidate[..end].trim_end_matches(['.', ',', ';', ':', ')', ']', '}', '!', '?']);
        if let Ok(url) = Url::parse(raw) {
            found.push(url);
        }
    }
    found
}

fn same_host(a: &Url, b: &Url) -> bool {
    a.host_str().zip(b.host_str()).is_some_and(|(x, y)| x.eq_ignore_ascii_case(y))
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The meeting link among LOCATION, URL and DESCRIPTION (in that order of preference): a room
/// on the organisation's Jitsi makes it `jitsi`; otherwise a link to a known visio service
/// anywhere, or any https link in LOCATION or URL (where invitations put the meeting), makes it
/// `external`. Other links in a description (agendas, documents) are not meetings.
pub fn classify(texts: [Option<&str>; 3], jitsi: Option<&Url>) -> (Option<Url>, MeetingKind) {
    let per_field: Vec<Vec<Url>> = texts.iter().map(|t| t.map(urls).unwrap_or_default()).collect();
    let all = || per_field.iter().flatten();
    if let Some(jitsi) = jitsi {
        let own = all().find(|u| same_host(u, jitsi) && u.path_segments().is_some_and(|mut s| s.any(|p| !p.is_empty())));
        if let Some(url) = own {
            return (Some(url.clone()), MeetingKind::Jitsi);
        }
    }
    // The own host's other pages (its home page) are not meetings, nor someone else's.
    let https = |u: &&Url| u.scheme() == "https" && !jitsi.is_some_and(|j| same_host(u, j));
    if let Some(url) = all().filter(https).find(|u| u.host_str().is_some_and(is_conference_host)) {
        return (Some(url.clone()), MeetingKind::External);
    }
    if let Some(url) = per_field[..2].iter().flatten().find(https) {
        return (Some(url.clone()), MeetingKind::External);
    }
    (None, MeetingKind::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT1H30M"), Some(Duration::minutes(90)));
        assert_eq!(parse_duration("P1D"), Some(Duration::days(1)));
        assert_eq!(parse_duration("P1W"), Some(Duration::weeks(1)));
        assert_eq!(parse_duration("PT"), Some(Duration::zero()));
        assert_eq!(parse_duration("1H"), None);
        assert_eq!(parse_duration("PT5"), None);
    }

    #[test]
    fn tzids_with_prefixes() {
        assert_eq!(parse_tzid("Europe/Paris"), Some(chrono_tz::Europe::Paris));
        assert_eq!(parse_tzid("/freeassociation.sourceforge.net/Tzfile/Europe/Paris"), Some(chrono_tz::Europe::Paris));
        assert_eq!(parse_tzid("Nowhere/Special"), None);
    }

    #[test]
    fn links_in_text() {
        let found = urls("Rejoindre : https://visio.example.coop/pole-tech. Ordre du jour (https://wiki.example.coop/odj), merci\\nhttp://x.y");
        let found: Vec<_> = found.iter().map(Url::as_str).collect();
        assert_eq!(found, ["https://visio.example.coop/pole-tech", "https://wiki.example.coop/odj", "http://x.y/"]);
    }

    #[test]
    fn classification() {
        let jitsi = Url::parse("https://visio.example.coop").unwrap();
        let own = classify([None, None, Some("lien: https://VISIO.example.coop/equipe-ca")], Some(&jitsi));
        assert_eq!(own.1, MeetingKind::Jitsi);
        let zoom = classify([Some("Salle 3"), None, Some("https://us02web.zoom.us/j/123")], Some(&jitsi));
        assert_eq!((zoom.0.unwrap().host_str().unwrap().to_string(), zoom.1), ("us02web.zoom.us".to_string(), MeetingKind::External));
        let doc = classify([Some("Salle 3"), None, Some("Ordre du jour : https://wiki.example.coop/odj")], Some(&jitsi));
        assert_eq!(doc, (None, MeetingKind::None));
        let located = classify([Some("https://bbb.autre.org/b/abc"), None, None], Some(&jitsi));
        assert_eq!(located.1, MeetingKind::External);
        // The Jitsi host's home page is not a room.
        let home = classify([Some("https://visio.example.coop/"), None, None], Some(&jitsi));
        assert_eq!(home, (None, MeetingKind::None));
    }
}
