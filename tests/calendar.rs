//! The next meetings against a real CalDAV server (Radicale from the test stack): discovery,
//! the REPORT, recurrences across the October 2026 DST change in Paris, cancellations, links,
//! the ctag cache; then the pure parts (bad input, starting soon, freshness) and the CLI.
mod hostile;
mod support;

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use passerelle::{
    calendar::{self, Agenda, CalDav, CalDavAuth, Freshness, Meeting, MeetingKind, StartingSoon, Window},
    config::Profile,
    visio::JoinOptions,
};
use hostile::{multistatus, TinyServer, XML};
use url::Url;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/calendar");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}")).to_utc()
}

fn root() -> Url {
    Url::parse(&support::env("PASSERELLE_TEST_CALDAV")).unwrap()
}

fn client(user: &str) -> CalDav {
    CalDav::new(passerelle::http::client(), root(), CalDavAuth::Basic { user: user.into(), password: support::caldav_password(user) })
}

fn profile() -> Profile {
    let mut p: Profile = serde_json::from_value(serde_json::json!({
        "issuer": "https://sso.example.coop/realms/coop",
        "client_id": "passerelle",
        "jitsi": "https://visio.example.coop",
    }))
    .unwrap();
    p.caldav = Some(root());
    p
}

/// Writes fixtures the way a calendar app does: MKCALENDAR, then one PUT per event.
struct Writer {
    http: reqwest::Client,
    user: String,
    calendar: Url,
}

impl Writer {
    /// A new calendar of `user` with a unique name (runs and tests never share one).
    async fn new_calendar(user: &str, display: &str) -> Writer {
        let http = reqwest::Client::new();
        let id = format!("test-{}", passerelle::visio::new_room().split('-').take(3).collect::<Vec<_>>().join("-"));
        let calendar = root().join(&format!("{user}/{id}/")).unwrap();
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>
<D:displayname>{display}</D:displayname>
<C:supported-calendar-component-set><C:comp name="VEVENT"/></C:supported-calendar-component-set>
</D:prop></D:set></C:mkcalendar>"#
        );
        let r = http
            .request(reqwest::Method::from_bytes(b"MKCALENDAR").unwrap(), calendar.clone())
            .basic_auth(user, Some(support::caldav_password(user)))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "MKCALENDAR: {}", r.text().await.unwrap());
        Writer { http, user: user.into(), calendar }
    }

    async fn put(&self, name: &str, ics: &str) {
        let r = self
            .http
            .put(self.calendar.join(name).unwrap())
            .basic_auth(&self.user, Some(support::caldav_password(&self.user)))
            .header("Content-Type", "text/calendar; charset=utf-8")
            .body(ics.to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "PUT {name}: {} {}", r.status(), r.text().await.unwrap());
    }

    async fn delete(&self) {
        let _ = self.http.delete(self.calendar.clone()).basic_auth(&self.user, Some(support::caldav_password(&self.user))).send().await;
    }
}

fn summary(meetings: &[Meeting], calendar: &str) -> Vec<(String, String, MeetingKind, bool)> {
    meetings
        .iter()
        .filter(|m| m.calendar == calendar)
        .map(|m| (m.start.to_rfc3339(), m.title.clone(), m.kind, m.all_day))
        .collect()
}

/// The whole promise against Radicale: the right occurrences in the right order across the
/// night Paris goes from CEST to CET, the moved one moved, the cancelled ones absent, other
/// time zones right, links classified.
#[tokio::test]
async fn radicale_occurrences_across_the_dst_change() {
    let name = format!("Coop {}", passerelle::visio::new_room().split('-').next().unwrap());
    let writer = Writer::new_calendar("alice", &name).await;
    for f in ["daily.ics", "all-day.ics", "tokyo.ics", "new-york.ics", "description-link.ics", "no-link.ics", "outside.ics"] {
        writer.put(f, &fixture(f)).await;
    }
    let client = client("alice");
    let calendars = client.calendars().await.unwrap();
    let mine = calendars.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("{name} not discovered in {calendars:?}"));
    assert!(mine.version.is_some(), "Radicale offers getctag / sync-token");

    // Saturday 24 to Wednesday 28 October 2026: Paris changes time on Sunday 25 at 03:00.
    let window = Window { start: t("2026-10-24T00:00:00Z"), end: t("2026-10-29T00:00:00Z") };
    let got = calendar::next_meetings_in(&client, &profile(), window, chrono_tz::Europe::Paris).await.unwrap();
    use MeetingKind::*;
    let expected = [
        ("2026-10-24T07:30:00+00:00", "Point quotidien", Jitsi, false), // 09:30 CEST
        ("2026-10-24T12:00:00+00:00", "Partenaires de New York", External, false), // 08:00 EDT
        ("2026-10-25T09:00:00+00:00", "Appel coopérative de Tokyo", External, false), // 18:00 JST
        ("2026-10-25T11:00:00+00:00", "Déjeuner d'équipe", None, false),
        ("2026-10-25T13:00:00+00:00", "Point quotidien (décalé)", Jitsi, false), // moved to 14:00 CET
        ("2026-10-25T23:00:00+00:00", "Assemblée générale", None, true), // all day 26, Paris
        ("2026-10-26T08:30:00+00:00", "Point quotidien", Jitsi, false), // 09:30 CET
        ("2026-10-26T15:00:00+00:00", "Atelier compta", Jitsi, false), // link in DESCRIPTION only
        // 27: EXDATE; 28: cancelled override; 10 November: outside the window.
    ];
    let expected: Vec<_> = expected.iter().map(|(s, n, k, a)| (s.to_string(), n.to_string(), *k, *a)).collect();
    assert_eq!(summary(&got.meetings, &name), expected, "warnings: {:?}", got.warnings);
    assert!(got.warnings.is_empty(), "{:?}", got.warnings);

    let mine: Vec<&Meeting> = got.meetings.iter().filter(|m| m.calendar == name).collect();
    let link = |title: &str| mine.iter().find(|m| m.title == title).and_then(|m| m.link.clone()).map(String::from);
    assert_eq!(link("Atelier compta").as_deref(), Some("https://visio.example.coop/atelier-compta"));
    assert_eq!(link("Appel coopérative de Tokyo").as_deref(), Some("https://us02web.zoom.us/j/1234567890"));
    assert_eq!(link("Déjeuner d'équipe"), Option::None);
    let ag = mine.iter().find(|m| m.all_day).unwrap();
    assert_eq!(ag.end, t("2026-10-26T23:00:00Z"));
    let ny = mine.iter().find(|m| m.title.contains("New York")).unwrap();
    assert_eq!(ny.end - ny.start, Duration::minutes(45));
    // Occurrence ids are distinct and the moved one keeps its original slot.
    let ids: HashSet<&str> = mine.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), mine.len());
    assert!(ids.contains("point-quotidien@passerelle.test@20261025T083000Z"), "{ids:?}");

    // Joining a calendar meeting opens our Jitsi with the member's options and the title.
    let moved = mine.iter().find(|m| m.title.contains("décalé")).unwrap();
    let join = moved.join_url(&profile(), JoinOptions { display_name: Some("Alice Martin".into()), ..JoinOptions::default() }).unwrap();
    assert_eq!(join.path(), "/point-quotidien");
    assert!(join.fragment().unwrap().contains("config.subject=%22Point%20quotidien%20(d%C3%A9cal%C3%A9)%22"), "{join}");
    writer.delete().await;
}

/// Unchanged calendars are not downloaded again; a change is seen on the next refresh.
#[tokio::test]
async fn the_ctag_spares_unchanged_calendars() {
    let writer = Writer::new_calendar("bob", "Bob").await;
    writer.put("no-link.ics", &fixture("no-link.ics")).await;
    let client = client("bob");
    let window = Window { start: t("2026-10-25T00:00:00Z"), end: t("2026-10-26T00:00:00Z") };
    let first = calendar::next_meetings_in(&client, &profile(), window, chrono_tz::Europe::Paris).await.unwrap();
    assert_eq!(summary(&first.meetings, "Bob").len(), 1);
    let after_first = client.stats();
    assert!(after_first.reports >= 1);

    // Same calendars, a window 1 hour later (the clock moved): nothing is downloaded.
    let later = Window { start: window.start + Duration::hours(1), end: window.end + Duration::hours(1) };
    let second = calendar::next_meetings_in(&client, &profile(), later, chrono_tz::Europe::Paris).await.unwrap();
    assert_eq!(summary(&second.meetings, "Bob"), summary(&first.meetings, "Bob"));
    assert_eq!(client.stats().reports, after_first.reports, "an unchanged calendar was downloaded again");
    assert_eq!(client.stats().propfinds, after_first.propfinds + 1, "only the calendar list is asked again");

    // A new event changes the ctag: the next refresh downloads and sees it.
    writer.put("tokyo.ics", &fixture("tokyo.ics")).await;
    let third = calendar::next_meetings_in(&client, &profile(), later, chrono_tz::Europe::Paris).await.unwrap();
    assert_eq!(client.stats().reports, after_first.reports + 1);
    let titles: Vec<String> = summary(&third.meetings, "Bob").into_iter().map(|s| s.1).collect();
    assert_eq!(titles, ["Appel coopérative de Tokyo", "Déjeuner d'équipe"]);
    writer.delete().await;
}

#[tokio::test]
async fn a_wrong_password_is_said_plainly() {
    let client = CalDav::new(
        passerelle::http::client(),
        root(),
        CalDavAuth::Basic { user: "alice".into(), password: "not-the-password".into() },
    );
    let err = calendar::next_meetings(&client, &profile(), Window::next_24h(Utc::now())).await.unwrap_err();
    assert_eq!(err.code(), "bad_credentials", "{err}");
}

/// Bad input: a broken event becomes a warning and the others still show; a broken XML
/// answer is an error for that calendar only (the fetch turns it into a warning).
#[test]
fn malformed_icalendar_is_skipped_with_a_warning() {
    let (resources, warnings) = calendar::parse_report(&fixture("report-mixed.xml"), "Perso").unwrap();
    assert_eq!(resources.len(), 4, "the 404 propstat carries no data");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("missing.ics"));
    // Entities and character references come back as text.
    assert!(resources[0].ics.contains("SUMMARY:Réunion <bureau> & co\r\n"), "{:?}", resources[0].ics);

    let window = Window { start: t("2026-10-24T00:00:00Z"), end: t("2026-10-25T00:00:00Z") };
    let jitsi = Url::parse("https://visio.example.coop").unwrap();
    let got = calendar::meetings_from(&resources, &window, Some(&jitsi), chrono_tz::Europe::Paris);
    let titles: Vec<(&str, MeetingKind)> = got.meetings.iter().map(|m| (m.title.as_str(), m.kind)).collect();
    assert_eq!(titles, [("Réunion <bureau> & co", MeetingKind::Jitsi), ("Dans le même fichier", MeetingKind::None)]);
    let all = got.warnings.join("\n");
    assert_eq!(got.warnings.len(), 3, "{all}");
    assert!(all.contains("garbage.ics") && all.contains("Date illisible") && all.contains("Règle illisible"), "{all}");
}

#[test]
fn malformed_xml_is_an_error_not_a_panic() {
    let err = calendar::parse_report(&fixture("report-cut.xml"), "Perso").unwrap_err();
    assert_eq!(err.code(), "bad_xml", "{err}");
    for bad in ["", "<html><body>Login</body></html>", "<multistatus xmlns='DAV:'><response></multistatus>", "not xml &"] {
        assert_eq!(calendar::parse_report(bad, "x").unwrap_err().code(), "bad_xml", "{bad}");
    }
}

#[test]
fn discovery_answers_with_any_prefixes() {
    let home = Url::parse("https://cloud.example.coop/remote.php/dav/calendars/alice/").unwrap();
    let found = calendar::parse_calendars(&fixture("discovery-prefixes.xml"), &home).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, "Personnel");
    assert_eq!(found[0].url.as_str(), "https://cloud.example.coop/remote.php/dav/calendars/alice/personal/");
    assert_eq!(found[0].version.as_deref(), Some("http://sabre.io/ns/sync/42"));
}

fn meeting(id: &str, start: &str, kind: MeetingKind) -> Meeting {
    let start = t(start);
    Meeting {
        id: id.into(),
        uid: id.into(),
        title: id.into(),
        start,
        end: start + Duration::minutes(30),
        all_day: false,
        link: (kind != MeetingKind::None).then(|| Url::parse("https://visio.example.coop/r").unwrap()),
        kind,
        calendar: "c".into(),
    }
}

/// "Starting in 10 min" fires once per occurrence, whatever the refreshes, with the clock
/// passed in.
#[test]
fn starting_soon_fires_once_per_occurrence() {
    let list = vec![
        meeting("standup@20261026T0830Z", "2026-10-26T08:30:00Z", MeetingKind::Jitsi),
        meeting("standup@20261027T0830Z", "2026-10-27T08:30:00Z", MeetingKind::Jitsi),
        meeting("zoom", "2026-10-26T08:35:00Z", MeetingKind::External),
        meeting("lunch", "2026-10-26T08:31:00Z", MeetingKind::None),
    ];
    // Pure function: nothing is due 11 minutes before.
    assert!(calendar::starting_soon(&list, t("2026-10-26T08:19:00Z"), &HashSet::new()).is_empty());
    let due: Vec<&str> =
        calendar::starting_soon(&list, t("2026-10-26T08:20:00Z"), &HashSet::new()).iter().map(|m| m.id.as_str()).collect();
    assert_eq!(due, ["standup@20261026T0830Z"]);
    let notified: HashSet<String> = ["standup@20261026T0830Z".to_string()].into();
    let due: Vec<&str> = calendar::starting_soon(&list, t("2026-10-26T08:26:00Z"), &notified).iter().map(|m| m.id.as_str()).collect();
    assert_eq!(due, ["zoom"], "no link, no visio to join: lunch is not announced");

    // The stateful helper, polled every 30 s over two days with the list refreshed each time.
    let mut soon = StartingSoon::new();
    let mut fired = Vec::new();
    let mut now = t("2026-10-26T07:00:00Z");
    while now < t("2026-10-28T00:00:00Z") {
        let refreshed = list.clone();
        for m in soon.poll(&refreshed, now) {
            fired.push((m.id, now));
        }
        now += Duration::seconds(30);
    }
    assert_eq!(
        fired,
        [
            ("standup@20261026T0830Z".to_string(), t("2026-10-26T08:20:00Z")),
            ("zoom".to_string(), t("2026-10-26T08:25:00Z")),
            ("standup@20261027T0830Z".to_string(), t("2026-10-27T08:20:00Z")),
        ]
    );
}

#[test]
fn refreshes_at_most_every_five_minutes_and_on_wake() {
    let mut f = Freshness::default();
    let t0 = t("2026-10-26T08:00:00Z");
    assert!(f.due(t0, false));
    f.mark(t0);
    assert!(!f.due(t0 + Duration::minutes(4), false));
    assert!(f.due(t0 + Duration::minutes(4), true), "a wake refreshes at once");
    assert!(f.due(t0 + Duration::minutes(5), false));
    assert!(f.due(t0 - Duration::minutes(1), false), "the clock went back");
}

/// The tray's loop with the clock injected, against Radicale: one refresh every 5 minutes (the
/// ctag keeps them to one PROPFIND each), at once after a wake or a sleep gap, and "starting in
/// 10 min" exactly once.
#[tokio::test]
async fn the_agenda_paces_refreshes_and_announces_once() {
    let writer = Writer::new_calendar("dave", "Dave").await;
    writer.put("daily.ics", &fixture("daily.ics")).await;
    writer.put("description-link.ics", &fixture("description-link.ics")).await;
    let mut agenda = Agenda::new(client("dave"), profile(), chrono_tz::Europe::Paris);

    let t0 = t("2026-10-26T08:00:00Z");
    let first = agenda.tick(t0, false).await;
    let titles: Vec<String> = first.refreshed.expect("the first tick refreshes").meetings.into_iter().map(|m| m.title).collect();
    assert_eq!(titles, ["Point quotidien", "Atelier compta"]);
    assert!(first.starting.is_empty());
    let after_first = agenda.client().stats();

    let (mut refreshes, mut announced) = (Vec::new(), Vec::new());
    let mut now = t0;
    while now < t0 + Duration::minutes(30) {
        now += Duration::seconds(30);
        let tick = agenda.tick(now, false).await;
        assert_eq!(tick.error, None);
        if tick.refreshed.is_some() {
            refreshes.push((now - t0).num_seconds());
        }
        announced.extend(tick.starting.into_iter().map(|m| (m.title, now)));
    }
    assert_eq!(refreshes, [300, 600, 900, 1200, 1500, 1800]);
    assert_eq!(announced, [("Point quotidien".to_string(), t("2026-10-26T08:20:00Z"))]);
    let stats = agenda.client().stats();
    assert_eq!(stats.reports, after_first.reports, "unchanged calendars are not downloaded again");
    assert_eq!(stats.propfinds, after_first.propfinds + 6);

    // A wake refreshes at once; so does a gap between ticks (the machine slept).
    assert!(agenda.tick(now + Duration::seconds(30), true).await.refreshed.is_some());
    assert!(agenda.tick(now + Duration::seconds(60), false).await.refreshed.is_none());
    assert!(agenda.tick(now + Duration::minutes(4), false).await.refreshed.is_some());
    writer.delete().await;
}

/// `passerelle meetings --json` against Radicale with Basic credentials: the password is taken
/// from the environment once, then from the keychain.
#[tokio::test]
async fn cli_meetings_json() {
    let writer = Writer::new_calendar("carol", "Carole").await;
    writer.put("daily.ics", &fixture("daily.ics")).await;
    writer.put("description-link.ics", &fixture("description-link.ics")).await;
    let home = support::home();
    home.save_profile(&support::profile());

    let run = |with_password: bool| {
        let mut cmd = support::cli(&home);
        cmd.args(["meetings", "--json", "--caldav-user", "carol", "--from", "2026-10-26T00:00:00Z", "--hours", "24"]);
        cmd.env("TZ", "Europe/Paris");
        if with_password {
            cmd.env("PASSERELLE_CALDAV_PASSWORD", support::caldav_password("carol"));
        } else {
            cmd.env_remove("PASSERELLE_CALDAV_PASSWORD");
        }
        cmd.output().unwrap()
    };
    for with_password in [true, false] {
        let out = run(with_password);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let got: Vec<(String, String, String, String)> = json
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["calendar"] == "Carole")
            .map(|m| {
                let s = |k: &str| m[k].as_str().unwrap_or("null").to_string();
                (s("start"), s("title"), s("kind"), s("link"))
            })
            .collect();
        assert_eq!(
            got,
            [
                ("2026-10-26T08:30:00Z".into(), "Point quotidien".into(), "jitsi".into(), "https://visio.example.coop/point-quotidien".into()),
                ("2026-10-26T15:00:00Z".into(), "Atelier compta".into(), "jitsi".into(), "https://visio.example.coop/atelier-compta".into()),
            ]
        );
        assert_eq!(json[0]["end"], "2026-10-26T09:00:00Z");
    }
    assert!(home.secrets().get("caldav").unwrap().is_some(), "the password is kept in the secret store");

    // Unknown user without a password: a plain message.
    let out = support::cli(&home).args(["meetings", "--caldav-user", "dave"]).env_remove("PASSERELLE_CALDAV_PASSWORD").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_password"));
    writer.delete().await;
}

#[test]
fn joining_a_meeting_from_its_link() {
    let mut p = profile();
    let options = JoinOptions { display_name: Some("Alice Martin".into()), audio_only: true, ..JoinOptions::default() };
    let mut m = meeting("m", "2026-10-26T08:30:00Z", MeetingKind::Jitsi);
    m.title = "Point & co".into();
    let url = m.join_url(&p, options.clone()).unwrap();
    assert_eq!(url.as_str().split('#').next(), Some("https://visio.example.coop/r"));
    assert!(url.fragment().unwrap().contains("config.startAudioOnly=true"));
    assert!(url.fragment().unwrap().contains("config.subject=%22Point%20%26%20co%22"), "{url}");

    // A Jitsi under a path: the room is what follows it.
    p.jitsi = Some(Url::parse("https://example.coop/visio/").unwrap());
    m.link = Some(Url::parse("https://example.coop/visio/Conseil").unwrap());
    assert_eq!(m.join_url(&p, options.clone()).unwrap().path(), "/visio/conseil");

    // External links open as they are; no link, nothing to join.
    let mut zoom = meeting("z", "2026-10-26T08:30:00Z", MeetingKind::External);
    zoom.link = Some(Url::parse("https://us02web.zoom.us/j/1").unwrap());
    assert_eq!(zoom.join_url(&p, options.clone()).unwrap().as_str(), "https://us02web.zoom.us/j/1");
    assert_eq!(meeting("n", "2026-10-26T08:30:00Z", MeetingKind::None).join_url(&p, options), Option::None);
}

/// One event repeating by `rule` from `start` (UTC), 0 or more seconds long.
fn repeating(uid: &str, start: &str, rule: &str, seconds: i64) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//hostile//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n\
DTSTART:{start}\r\nDURATION:PT{seconds}S\r\nRRULE:{rule}\r\nSUMMARY:{uid}\r\nLOCATION:https://visio.example.coop/{uid}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn starts(meetings: &[Meeting]) -> Vec<DateTime<Utc>> {
    meetings.iter().map(|m| m.start).collect()
}

/// Issue 12, item 6: one invitation `FREQ=MINUTELY` since 1970 took 55 s per expansion (every
/// 5 minutes, on the async runtime). The expansion now starts near the window: every minute of
/// the window is there, and the work is what a day of minutes costs, not 29 million steps.
#[test]
fn a_rule_every_minute_since_1970_costs_a_day_of_minutes() {
    let window = Window::next_24h(t("2026-11-29T10:00:00Z"));
    let jitsi = Url::parse("https://visio.example.coop").unwrap();
    let ics = repeating("minutely", "19700101T000000Z", "FREQ=MINUTELY", 0);
    let out = calendar::expand(&ics, &window, Some(&jitsi), chrono_tz::UTC, "c").unwrap();
    assert_eq!(out.warnings, Vec::<String>::new());
    let got = starts(&out.meetings);
    assert_eq!(got.len(), 24 * 60);
    assert_eq!(got.first(), Some(&t("2026-11-29T10:00:00Z")));
    assert_eq!(got.last(), Some(&t("2026-11-30T09:59:00Z")));
    assert!(got.windows(2).all(|w| w[1] - w[0] == Duration::minutes(1)));
    assert!(out.work < 10_000, "work {}: the expansion did not start near the window", out.work);

    // Every 7 minutes, 30 minutes long: the grid of 1970 is kept, and the ones still running at
    // the window's start are there too.
    let ics = repeating("seven", "19700101T000000Z", "FREQ=MINUTELY;INTERVAL=7", 1800);
    let out = calendar::expand(&ics, &window, Some(&jitsi), chrono_tz::UTC, "c").unwrap();
    let got = starts(&out.meetings);
    let epoch = t("1970-01-01T00:00:00Z");
    let expected: Vec<DateTime<Utc>> = (0..)
        .map(|k| epoch + Duration::minutes(7 * k))
        .skip_while(|s| *s + Duration::minutes(30) <= window.start)
        .take_while(|s| *s < window.end)
        .collect();
    assert_eq!(got, expected);
    assert!(out.work < 10_000, "work {}", out.work);
}

/// Issue 12, item 6: `FREQ=SECONDLY` from a week ago returned no meeting at all, because the
/// 2,000-occurrence cap counted from a day before the window. The cap now counts from the
/// window: the next 2,000 seconds are there, with a warning that the rest is not shown.
#[test]
fn a_rule_every_second_shows_the_window_not_the_day_before() {
    let window = Window::next_24h(t("2026-11-29T10:00:00Z"));
    let ics = repeating("secondly", "20261122T100000Z", "FREQ=SECONDLY", 0);
    let out = calendar::expand(&ics, &window, None, chrono_tz::UTC, "c").unwrap();
    let got = starts(&out.meetings);
    assert_eq!(got.len(), 2_000);
    assert_eq!(got[0], window.start);
    assert_eq!(got[1999], window.start + Duration::seconds(1999));
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(out.warnings[0].contains("2000"), "{:?}", out.warnings);
    assert!(out.work < 20_000, "work {}", out.work);

    // Since 1970 it is the same work: the start is moved, not walked.
    let ics = repeating("secondly-1970", "19700101T000000Z", "FREQ=SECONDLY", 0);
    let out = calendar::expand(&ics, &window, None, chrono_tz::UTC, "c").unwrap();
    assert_eq!(starts(&out.meetings)[..2], [window.start, window.start + Duration::seconds(1)]);
    assert!(out.work < 20_000, "work {}", out.work);

    // A COUNT cannot be moved (it counts from the start): too much to walk is a warning, not
    // a minute of CPU.
    let ics = repeating("counted", "19700101T000000Z", "FREQ=SECONDLY;COUNT=4000000000", 0);
    let out = calendar::expand(&ics, &window, None, chrono_tz::UTC, "c").unwrap();
    assert!(out.meetings.is_empty());
    assert!(out.warnings.iter().any(|w| w.contains("repeats too often")), "{:?}", out.warnings);
    assert_eq!(out.work, 0);
}

/// Issue 12, item 6: the work of one refresh is bounded too, whatever the number of hostile
/// events; the events expanded before the budget ran out still show, and ordinary events are
/// not affected by the limits.
#[test]
fn one_refresh_has_a_bounded_amount_of_work() {
    let window = Window::next_24h(t("2026-11-29T10:00:00Z"));
    let resources: Vec<calendar::Resource> = (0..10)
        .map(|i| calendar::Resource {
            href: format!("/cal/{i}.ics"),
            calendar: "c".into(),
            ics: repeating(&format!("e{i}"), "19700101T000000Z", "FREQ=MINUTELY", 0),
        })
        .collect();
    let limits = calendar::Limits { event_work: 10_000, refresh_work: 12_000, occurrences: 2_000 };
    let out = calendar::meetings_from_limited(&resources, &window, None, chrono_tz::UTC, limits);
    // Each event costs about 3,000 (its periods and its 1,440 occurrences): three fit, the
    // fourth runs out midway, the others are skipped with a warning.
    let full: HashSet<&str> =
        out.meetings.iter().map(|m| m.uid.as_str()).filter(|u| out.meetings.iter().filter(|m| &m.uid == u).count() == 1440).collect();
    assert_eq!(full.len(), 3, "{full:?}");
    assert!(out.meetings.len() < 4 * 1440);
    assert!(out.warnings.iter().filter(|w| w.contains("too many repeating events")).count() >= 5, "{:?}", out.warnings);

    let ordinary = [calendar::Resource { href: "/cal/daily.ics".into(), calendar: "c".into(), ics: fixture("daily.ics") }];
    let wide = Window::new(t("2026-10-20T00:00:00Z"), Duration::days(14));
    let bounded = calendar::meetings_from(&ordinary, &wide, None, chrono_tz::Europe::Paris);
    assert!(!bounded.meetings.is_empty());
    assert!(bounded.warnings.is_empty(), "{:?}", bounded.warnings);
}

/// A CalDAV server whose links are chosen by the test: the principal, the calendar home and a
/// second calendar may point to `elsewhere`.
async fn hostile_caldav(principal: String, home: String, stolen: String) -> TinyServer {
    TinyServer::start(move |request| {
        let (method, path) = (request.method.as_str(), request.path.as_str());
        let calendar = "<d:resourcetype><d:collection/><c:calendar/></d:resourcetype><cs:getctag>1</cs:getctag>";
        let body = match (method, path) {
            ("PROPFIND", "/") => multistatus(&[("/", &format!("<d:current-user-principal><d:href>{principal}</d:href></d:current-user-principal>"))]),
            ("PROPFIND", "/principals/alice/") => multistatus(&[(
                "/principals/alice/",
                &format!("<c:calendar-home-set><d:href>{home}</d:href></c:calendar-home-set>"),
            )]),
            ("PROPFIND", "/calendars/alice/") => multistatus(&[
                ("/calendars/alice/", "<d:resourcetype><d:collection/></d:resourcetype>"),
                ("/calendars/alice/work/", &format!("{calendar}<d:displayname>Travail</d:displayname>")),
                (&stolen, &format!("{calendar}<d:displayname>Ailleurs</d:displayname>")),
            ]),
            ("REPORT", "/calendars/alice/work/") => multistatus(&[(
                "/calendars/alice/work/a.ics",
                &format!("<c:calendar-data>{}</c:calendar-data>", repeating("a", "20261129T110000Z", "FREQ=DAILY;COUNT=1", 600)),
            )]),
            _ => return (404, XML, Vec::new()),
        };
        (207, XML, body)
    })
    .await
}

/// Issue 12, item 4: CalDAV links were followed to any origin, and the next PROPFIND carried
/// the Bearer token or the Basic password there. Now a principal or a calendar home on another
/// origin stops the discovery with `other_server`, a calendar elsewhere is left out, and the
/// other server never hears from us.
#[tokio::test]
async fn caldav_links_to_another_server_are_not_followed() {
    let elsewhere = TinyServer::start(|_| (207, XML, multistatus(&[]))).await;
    let other = |path: &str| elsewhere.url.join(path).unwrap().to_string();
    let auth = || CalDavAuth::Basic { user: "alice".into(), password: "secret".into() };
    let window = Window::next_24h(t("2026-11-29T10:00:00Z"));

    // The principal on another server.
    let server = hostile_caldav(other("/principals/alice/"), "/calendars/alice/".into(), "/calendars/alice/x/".into()).await;
    let client = CalDav::new(passerelle::http::client(), server.url.clone(), auth());
    let e = client.calendars().await.unwrap_err();
    assert_eq!(e.code(), "other_server", "{e}");

    // The calendar home on another server (an absolute URL in the principal's answer).
    let server = hostile_caldav("/principals/alice/".into(), other("/calendars/alice/"), "/calendars/alice/x/".into()).await;
    let client = CalDav::new(passerelle::http::client(), server.url.clone(), auth());
    let e = client.calendars().await.unwrap_err();
    assert_eq!(e.code(), "other_server", "{e}");

    // One calendar of the home on another server: the others still come.
    let server = hostile_caldav("/principals/alice/".into(), "/calendars/alice/".into(), other("/calendars/alice/stolen/")).await;
    let client = CalDav::new(passerelle::http::client(), server.url.clone(), auth());
    let names: Vec<String> = client.calendars().await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["Travail"]);
    let fetched = client.fetch(window).await.unwrap();
    assert_eq!(fetched.resources.len(), 1);
    assert!(server.seen().iter().all(|r| r.authorized()), "every request to the member's server is authenticated");

    let contacted: Vec<String> = elsewhere.seen().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(contacted, Vec::<String>::new(), "the other server was contacted");
}

/// Issue 14, item 17: a calendar server that refuses the login's token (Radicale, as most do)
/// is not "please log in again" while the login is valid: it asks for its own password. Once
/// given, the meetings come; logout forgets that password with every other secret (item 18).
#[tokio::test(flavor = "multi_thread")]
async fn a_calendar_refusing_the_token_asks_for_its_password_not_a_new_login() {
    let writer = Writer::new_calendar("bob", "Bob agenda").await;
    writer.put("daily.ics", &fixture("daily.ics")).await;
    let home = support::home();
    let mut profile = support::profile();
    profile.nextcloud = None;
    profile.rocketchat = None;
    profile.caldav = Some(root());
    support::login_with("bob", "bob-pass-1", &home, &profile).await.expect("login");
    let meetings = |password: Option<String>| {
        let mut cmd = support::cli(&home);
        cmd.args(["meetings", "--json", "--from", "2026-10-26T00:00:00Z", "--hours", "24"]);
        if let Some(password) = password {
            cmd.args(["--caldav-user", "bob"]).env("PASSERELLE_CALDAV_PASSWORD", password);
        }
        cmd.output().unwrap()
    };

    let out = meetings(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(3), "said to log in again: {stderr}");
    assert!(stderr.contains("calendar_password_needed"), "{stderr}");
    let whoami = support::cli(&home).arg("whoami").output().unwrap();
    assert!(whoami.status.success(), "the login is still valid: {}", String::from_utf8_lossy(&whoami.stderr));

    // A wrong password is said at once and not kept.
    let out = meetings(Some("not-bobs-password".into()));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[bad_credentials]"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(home.secrets().get(calendar::SECRET_KEY).unwrap(), None, "a refused password was kept");

    // The password once; then the saved one for that server, without the flag.
    let out = meetings(Some(support::caldav_password("bob")));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = meetings(None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json.as_array().unwrap().iter().any(|m| m["calendar"] == "Bob agenda" && m["title"] == "Point quotidien"), "{json}");

    let out = support::cli(&home).arg("logout").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(home.secrets().get(calendar::SECRET_KEY).unwrap(), None, "the calendar password stayed after logout");
    writer.delete().await;
}

/// The password typed in the settings is checked before it is kept, and is sent only to the
/// server it was given for.
#[tokio::test]
async fn a_calendar_password_is_checked_then_kept_for_its_own_server_only() {
    let home = support::home();
    let store = home.secrets();
    let http = passerelle::http::client();
    let mut profile = profile();
    assert_eq!(calendar::password_state(&store, &profile).0, calendar::PasswordState::Missing);

    let wrong = calendar::save_password(&http, &store, &root(), "carol", "not-her-password").await.unwrap_err();
    assert_eq!(wrong.code(), "bad_credentials");
    assert_eq!(store.get(calendar::SECRET_KEY).unwrap(), None, "a refused password was kept");

    calendar::save_password(&http, &store, &root(), "carol", &support::caldav_password("carol")).await.unwrap();
    assert_eq!(calendar::password_state(&store, &profile), (calendar::PasswordState::Saved, Some("carol".into())));
    let saved = CalDavAuth::saved_basic(&store, &root()).unwrap();
    assert!(matches!(saved, Some(CalDavAuth::Basic { ref user, .. }) if user == "carol"), "{saved:?}");

    // The profile now names another calendar server: the password stays with the first.
    let elsewhere = Url::parse("http://127.0.0.2:18084/").unwrap();
    assert!(CalDavAuth::saved_basic(&store, &elsewhere).unwrap().is_none());
    profile.caldav = Some(elsewhere);
    assert_eq!(calendar::password_state(&store, &profile).0, calendar::PasswordState::Missing);

    // Nextcloud's own calendar takes the files' credentials: nothing to type.
    profile.nextcloud = Some(Url::parse("https://cloud.example.coop/").unwrap());
    profile.caldav = Some(Url::parse("https://cloud.example.coop/remote.php/dav/").unwrap());
    assert_eq!(calendar::separate_server(&profile), None);
    assert_eq!(calendar::password_state(&store, &profile).0, calendar::PasswordState::NotNeeded);
}
