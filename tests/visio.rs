//! Visio: meeting URL tables, room names, team rooms, the recent list and links; then the CLI
//! against the test stack (a real Keycloak login gives the display name).
mod support;

use std::collections::{HashMap, HashSet};

use passerelle::{
    browser::Opener,
    config::{Link, Profile, TeamRoom},
    visio::{self, Clipboard, JoinOptions, LinkKind, Recent, RecentMeeting, RoomKind, VisioError},
};
use unicode_normalization::UnicodeNormalization;
use url::Url;

fn jitsi() -> Url {
    Url::parse("https://visio.example.coop").unwrap()
}

fn profile() -> Profile {
    Profile::from_json(
        &serde_json::json!({
            "issuer": "https://sso.example.coop/realms/coop",
            "client_id": "passerelle",
            "jitsi": "https://visio.example.coop",
            "links": [{"name": "Wiki", "url": "https://wiki.example.coop"}],
            "teams": [{"name": "Pôle Tech", "room": "pole-tech"}, {"name": "Conseil d'administration", "room": "ca"}]
        })
        .to_string(),
    )
    .unwrap()
}

/// The fragment as Jitsi's parseURLParams reads it: split on `&` and `=`, decodeURIComponent,
/// JSON.parse.
fn fragment_params(url: &Url) -> HashMap<String, serde_json::Value> {
    url.fragment()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or_else(|| panic!("param without '=': {p}"));
            let decoded = percent_encoding::percent_decode_str(v).decode_utf8().expect("UTF-8");
            (k.to_string(), serde_json::from_str(&decoded).unwrap_or_else(|e| panic!("{k}={decoded}: {e}")))
        })
        .collect()
}

#[test]
fn display_names_survive_the_fragment() {
    let names = [
        "Alice Martin",
        "Élodie Müller-Öztürk",
        "Jean \"JJ\" O'Neil",
        "Alice & Bob = 2 #1 100%",
        "Zoé 🎉👩🏽‍💻",
        "a+b?c/d\\e",
        "  espaces autour  ",
    ];
    for name in names {
        let options = JoinOptions { display_name: Some(name.into()), ..JoinOptions::default() };
        let url = visio::meeting_url(&jitsi(), "pole-tech", &options).unwrap();
        assert_eq!(url.path(), "/pole-tech", "{name}");
        assert_eq!(url.query(), None);
        let params = fragment_params(&url);
        assert_eq!(params["userInfo.displayName"], serde_json::Value::from(name.trim()), "{url}");
        assert_eq!(params["config.prejoinConfig.enabled"], true);
        assert_eq!(params.len(), 2, "nothing in the name may split the fragment: {url}");
        // Only URL-safe characters in the fragment: the browser must not re-encode anything.
        let fragment = url.fragment().unwrap();
        assert!(fragment.chars().all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()%=&".contains(c)), "{fragment}");
    }
}

#[test]
fn an_empty_name_lets_jitsi_ask() {
    for name in [None, Some(""), Some("   ")] {
        let options = JoinOptions { display_name: name.map(String::from), ..JoinOptions::default() };
        let url = visio::meeting_url(&jitsi(), "ca", &options).unwrap();
        let params = fragment_params(&url);
        assert!(!params.contains_key("userInfo.displayName"), "{url}");
    }
}

#[test]
fn audio_only_also_mutes_video_and_options_are_exact() {
    let options = JoinOptions {
        display_name: Some("Bob Durand".into()),
        audio_only: true,
        prejoin: false,
        subject: Some("Réunion \"budget\" & vote".into()),
    };
    let url = visio::meeting_url(&jitsi(), "ca", &options).unwrap();
    assert_eq!(
        url.as_str(),
        "https://visio.example.coop/ca#config.startAudioOnly=true&config.startWithVideoMuted=true\
         &config.prejoinConfig.enabled=false&userInfo.displayName=%22Bob%20Durand%22\
         &config.subject=%22R%C3%A9union%20%5C%22budget%5C%22%20%26%20vote%22"
    );
    let params = fragment_params(&url);
    assert_eq!(params["config.subject"], "Réunion \"budget\" & vote");

    let video = visio::meeting_url(&jitsi(), "ca", &JoinOptions::default()).unwrap();
    let params = fragment_params(&video);
    assert!(!params.contains_key("config.startAudioOnly"));
    assert!(!params.contains_key("config.startWithVideoMuted"));
}

#[test]
fn the_invite_link_has_no_fragment() {
    let options = JoinOptions { display_name: Some("Alice".into()), audio_only: true, ..JoinOptions::default() };
    let url = visio::meeting_url(&jitsi(), "pole-tech", &options).unwrap();
    assert_eq!(visio::invite_url(&url).as_str(), "https://visio.example.coop/pole-tech");

    struct Recorder(std::sync::Mutex<Vec<String>>);
    impl Clipboard for Recorder {
        fn set_text(&self, text: &str) -> Result<(), VisioError> {
            self.0.lock().unwrap().push(text.to_string());
            Ok(())
        }
    }
    let clipboard = Recorder(Default::default());
    let invite = visio::copy_invite(&clipboard, &url).unwrap();
    assert_eq!(clipboard.0.lock().unwrap().as_slice(), [invite.to_string()]);
    assert_eq!(invite.fragment(), None);
}

#[test]
fn a_jitsi_under_a_path_and_named_rooms() {
    let base = Url::parse("https://example.coop/visio/").unwrap();
    let url = visio::meeting_url(&base, "Réunion CA", &JoinOptions::default()).unwrap();
    assert_eq!(url.path(), "/visio/r%C3%A9union%20ca");
    // Jitsi normalises with NFKC + lower case: so do we, so the recent list sees one room.
    assert_eq!(visio::named_room("ＲÉUNION").unwrap(), "réunion");
    assert_eq!(visio::named_room("  ").unwrap_err().code(), "empty_room");
    assert_eq!(visio::named_room("a/b").unwrap_err().code(), "invalid_room");
    assert_eq!(visio::named_room("a#b").unwrap_err().code(), "invalid_room");
}

#[test]
fn teams_by_name_accents_and_case_do_not_matter() {
    let p = profile();
    for name in ["Pôle Tech", "pole tech", "PÔLE  TECH", "pole-tech"] {
        assert_eq!(visio::team_room(&p, name).unwrap().room, "pole-tech", "{name}");
    }
    assert_eq!(visio::team_room(&p, "conseil d'administration").unwrap().room, "ca");
}

#[test]
fn an_unknown_team_names_the_known_ones() {
    let err = visio::team_room(&profile(), "Pôle Compta").unwrap_err();
    assert_eq!(err.code(), "unknown_team");
    let text = err.to_string();
    assert!(text.contains("Pôle Compta") && text.contains("Pôle Tech") && text.contains("Conseil d'administration"), "{text}");

    let mut none = profile();
    none.teams.clear();
    assert!(visio::team_room(&none, "x").unwrap_err().to_string().contains("none"));
}

#[test]
fn no_jitsi_in_the_profile_is_a_clear_error() {
    let mut p = profile();
    p.jitsi = None;
    assert_eq!(visio::jitsi_host(&p).unwrap_err().code(), "no_jitsi");
}

#[test]
fn the_word_list_is_clean() {
    let words = &*visio::WORDS;
    assert_eq!(words.len(), 1024);
    let unique: HashSet<_> = words.iter().collect();
    assert_eq!(unique.len(), words.len(), "duplicate words");
    for w in words {
        assert!((3..=7).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_lowercase()), "{w}");
    }
}

#[test]
fn room_names_are_readable_stable_and_strong() {
    assert!(*visio::ROOM_ENTROPY_BITS >= 80.0, "{} bits", *visio::ROOM_ENTROPY_BITS);
    let words: HashSet<&str> = visio::WORDS.iter().copied().collect();
    const DRAWS: usize = 100_000;
    let mut seen = HashSet::with_capacity(DRAWS);
    let mut first_word: HashMap<&str, usize> = HashMap::new();
    let mut max_len = 0;
    for _ in 0..DRAWS {
        let room = visio::new_room();
        // Jitsi applies NFKC and lower-casing: the name must come out unchanged.
        let normalised: String = room.nfkc().collect::<String>().to_lowercase();
        assert_eq!(normalised, room);
        assert!(room.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{room}");
        let parts: Vec<&str> = room.split('-').collect();
        assert_eq!(parts.len(), visio::ROOM_WORDS + 1, "{room}");
        for w in &parts[..visio::ROOM_WORDS] {
            assert!(words.contains(w), "{w} is not in the list");
        }
        let digits = parts[visio::ROOM_WORDS];
        assert!(digits.len() == visio::ROOM_DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit()), "{room}");
        *first_word.entry(words.get(parts[0]).copied().unwrap()).or_default() += 1;
        max_len = max_len.max(room.len());
        assert!(seen.insert(room), "a room name came twice");
    }
    assert!(max_len <= 7 * 8 + 4, "{max_len}");
    // Uniform draws: every word shows up as first word, none far from the 97.7 expected (the
    // bounds are over 6 standard deviations away, so a fair source never trips them).
    assert_eq!(first_word.len(), 1024, "some words never came first");
    let (lo, hi) = (first_word.values().min().copied().unwrap(), first_word.values().max().copied().unwrap());
    assert!(lo > 35 && hi < 165, "skewed draws: min {lo}, max {hi}");
}

#[test]
fn rooms_come_from_the_generator_they_are_given() {
    // A seeded CSPRNG gives the same names twice (so new_room's only entropy is its RNG, and
    // new_room passes the OS one); the OS one never repeats.
    use rand::SeedableRng;
    let a = visio::new_room_with(&mut rand::rngs::StdRng::seed_from_u64(7));
    let b = visio::new_room_with(&mut rand::rngs::StdRng::seed_from_u64(7));
    assert_eq!(a, b);
    assert_ne!(visio::new_room(), visio::new_room());
}

#[test]
fn the_recent_list_is_short_newest_first_and_one_per_room() {
    let home = tempfile::tempdir().unwrap();
    let dirs = passerelle::paths::Dirs {
        config: home.path().join("config"),
        data: home.path().join("data"),
        logs: home.path().join("logs"),
    };
    let recent = Recent::new(&dirs);
    assert!(recent.list().is_empty());
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").unwrap().to_utc();
    for i in 0..12 {
        let room = format!("room-{i}");
        recent
            .record(RecentMeeting {
                url: visio::invite_url(&visio::meeting_url(&jitsi(), &room, &JoinOptions::default()).unwrap()),
                room,
                when: t0 + chrono::Duration::minutes(i),
                kind: RoomKind::AdHoc,
                title: None,
            })
            .unwrap();
    }
    recent
        .record(RecentMeeting {
            room: "room-5".into(),
            url: Url::parse("https://visio.example.coop/room-5").unwrap(),
            when: t0 + chrono::Duration::hours(1),
            kind: RoomKind::Team,
            title: Some("Pôle Tech".into()),
        })
        .unwrap();
    let list = Recent::new(&dirs).list();
    assert_eq!(list.len(), visio::RECENT_LEN);
    let rooms: Vec<&str> = list.iter().map(|m| m.room.as_str()).collect();
    assert_eq!(rooms, ["room-5", "room-11", "room-10", "room-9", "room-8", "room-7", "room-6", "room-4", "room-3", "room-2"]);
    assert_eq!(list[0].kind, RoomKind::Team);
    // A damaged file does not block a visio.
    std::fs::write(dirs.data.join("visio-recent.json"), "{not json").unwrap();
    assert!(Recent::new(&dirs).list().is_empty());
}

#[test]
fn links_are_the_profile_links_and_the_account_page() {
    let mut p = profile();
    p.links.push(Link { name: "Site".into(), url: Url::parse("https://example.coop").unwrap() });
    let links = visio::links(&p);
    let got: Vec<(&str, &str, LinkKind)> = links.iter().map(|l| (l.name.as_str(), l.url.as_str(), l.kind)).collect();
    assert_eq!(
        got,
        [
            ("Wiki", "https://wiki.example.coop/", LinkKind::Tool),
            ("Site", "https://example.coop/", LinkKind::Tool),
            ("Mon compte", "https://sso.example.coop/realms/coop/account", LinkKind::Account),
        ]
    );
}

/// Issue 14, item 18: a profile listing the account page itself ("Mon compte", as the demo
/// does) shows it once in "Mes outils".
#[test]
fn the_account_page_is_listed_once() {
    let mut p = profile();
    p.links.push(Link { name: "Mon compte".into(), url: p.account_url() });
    let links = visio::links(&p);
    let accounts: Vec<&str> = links.iter().filter(|l| l.url == p.account_url()).map(|l| l.name.as_str()).collect();
    assert_eq!(accounts, ["Mon compte"], "{links:?}");
    assert_eq!(links.iter().filter(|l| l.kind == LinkKind::Account).count(), 1);
}

#[test]
fn opening_goes_through_the_replaceable_hook() {
    let opened = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = opened.clone();
    let opener = Opener::hook(move |url| {
        sink.lock().unwrap().push(url.to_string());
        Ok(())
    });
    let url = visio::meeting_url(&jitsi(), "ca", &JoinOptions::default()).unwrap();
    visio::open(&opener, &url).unwrap();
    assert_eq!(opened.lock().unwrap().as_slice(), [url.to_string()]);
    let _ = TeamRoom { name: String::new(), room: String::new() };
}

/// The CLI against the stack: a real login gives the display name.
#[tokio::test(flavor = "multi_thread")]
async fn cli_visio_print_audio_only_team_and_links() {
    let home = support::home();
    let _session = support::login("alice", "alice-pass-1", &home).await;

    let out = support::cli(&home).args(["visio", "--print", "--audio-only"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let url = Url::parse(stdout.trim()).unwrap_or_else(|e| panic!("{stdout}: {e}"));
    assert_eq!(url.host_str(), Some("visio.example.coop"));
    let room = url.path().trim_start_matches('/').to_string();
    assert_eq!(room.split('-').count(), visio::ROOM_WORDS + 1, "{room}");
    let params = fragment_params(&url);
    assert_eq!(params["userInfo.displayName"], "Alice Martin");
    assert_eq!(params["config.startAudioOnly"], true);
    assert_eq!(params["config.startWithVideoMuted"], true);

    let out = support::cli(&home).args(["visio", "--print", "--team", "pole tech"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = Url::parse(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(url.path(), "/pole-tech");
    let params = fragment_params(&url);
    assert_eq!(params["config.subject"], "Pôle Tech");
    assert!(!params.contains_key("config.startAudioOnly"));

    let out = support::cli(&home).args(["visio", "--print", "--team", "Pôle Compta"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Pôle Tech") && stderr.contains("unknown_team"), "{stderr}");

    // Both meetings are in the recent list, newest first.
    let recent = Recent::new(&home.dirs()).list();
    assert_eq!(recent.iter().map(|m| m.room.as_str()).collect::<Vec<_>>(), ["pole-tech", room.as_str()]);
    assert_eq!((recent[0].kind, recent[1].kind), (RoomKind::Team, RoomKind::AdHoc));

    // --copy hands the invite link (no fragment) to the OS clipboard tool: a stand-in
    // `wl-copy` on PATH records what it gets.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let bin = home.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let copied = home.path().join("copied.txt");
        let tool = bin.join("wl-copy");
        std::fs::write(&tool, format!("#!/bin/sh\ncat > '{}'\n", copied.display())).unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let out = support::cli(&home)
            .args(["visio", "--print", "--copy", "--room", "Réunion CA"])
            .env("PATH", path)
            .env("WAYLAND_DISPLAY", "wayland-test")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(std::fs::read_to_string(&copied).unwrap(), "https://visio.example.coop/r%C3%A9union%20ca");
        assert!(String::from_utf8_lossy(&out.stdout).contains("#config.prejoinConfig.enabled=true&userInfo.displayName=%22Alice%20Martin%22"));
    }

    let out = support::cli(&home).args(["visio", "--recent", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rooms: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|m| m["room"].as_str()).collect();
    assert!(rooms[..2] == ["réunion ca", "pole-tech"] || rooms[..2] == ["pole-tech", room.as_str()], "{rooms:?}");
    let team = listed.as_array().unwrap().iter().find(|m| m["room"] == "pole-tech").unwrap();
    assert_eq!(team["url"], "https://visio.example.coop/pole-tech", "the recent list keeps the invite link only");
    assert_eq!(team["kind"], "team");

    let out = support::cli(&home).args(["links", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(links[0]["name"], "Wiki");
    assert_eq!(links[1]["kind"], "account");
    assert_eq!(links[1]["url"], format!("{}/account", support::env("PASSERELLE_TEST_ISSUER")));
}
