//! The counting rules of the official Rocket.Chat apps, as pure functions over subscriptions:
//! no I/O, no clock. The live task and the CLI feed them what the server said.
//!
//! Rules (from the web client's unread badge): a subscription counts unless it is closed
//! (`open == false`), archived or has its unread status hidden; the total is the sum of `unread`
//! over the counted subscriptions with `alert || unread > 0`; a dot shows when nothing is unread
//! but some room has `alert`; the label caps at `999+`. Mentions are `userMentions`, and every
//! unread direct message.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

/// How many rooms [`ChatCounts::rooms`] lists at most.
pub const TOP_ROOMS: usize = 10;

/// The kind of a room, from the subscription's `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// `c`: a public channel.
    Channel,
    /// `p`: a private group.
    Group,
    /// `d`: a direct conversation.
    Direct,
    /// Any other type (livechat, voip, a future one): counted, opened on the chat's home.
    Other,
}

impl RoomKind {
    pub fn from_code(t: &str) -> RoomKind {
        match t {
            "c" => RoomKind::Channel,
            "p" => RoomKind::Group,
            "d" => RoomKind::Direct,
            _ => RoomKind::Other,
        }
    }
}

/// One room as the member sees it: the fields of a Rocket.Chat subscription that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The subscription's own `_id` (removals name it).
    pub id: Option<String>,
    pub rid: String,
    pub kind: RoomKind,
    /// The room's unique name (`name`): the URL uses it.
    pub name: String,
    /// The display name (`fname`), when the server gives one.
    pub fname: Option<String>,
    pub unread: u64,
    pub user_mentions: u64,
    pub alert: bool,
    pub open: bool,
    pub hide_unread_status: bool,
    pub archived: bool,
    /// `_updatedAt` in Unix milliseconds, for `updatedSince`.
    pub updated_at: Option<i64>,
    /// True when a field was missing or of the wrong type and a default was used.
    pub degraded: bool,
}

impl Subscription {
    /// Reads a subscription as REST (`_updatedAt` an ISO string) or DDP (`{"$date": ms}`) sends
    /// it. Only a missing `rid` makes it unusable; other oddities give defaults and `degraded`.
    pub fn from_json(value: &Value) -> Result<Subscription, String> {
        let object = value.as_object().ok_or("a subscription is not a JSON object")?;
        let rid = object.get("rid").and_then(Value::as_str).filter(|r| !r.is_empty()).ok_or("a subscription has no rid")?;
        let mut degraded = false;
        let t = match object.get("t").and_then(Value::as_str) {
            Some(t) => t,
            None => {
                degraded = true;
                ""
            }
        };
        let kind = RoomKind::from_code(t);
        if kind == RoomKind::Other {
            tracing::warn!(rid, t, "unknown room type: counted, opened on the chat's home page");
            degraded = true;
        }
        let name = match object.get("name").and_then(Value::as_str) {
            Some(n) => n.to_string(),
            None => {
                if kind != RoomKind::Direct {
                    degraded = true;
                }
                String::new()
            }
        };
        let fname = object.get("fname").and_then(Value::as_str).filter(|f| !f.is_empty()).map(str::to_string);
        let mut number = |key: &str, required: bool| match object.get(key) {
            Some(v) => v.as_u64().or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)).unwrap_or_else(|| {
                degraded = true;
                0
            }),
            None => {
                degraded |= required;
                0
            }
        };
        let unread = number("unread", true);
        let user_mentions = number("userMentions", false);
        let mut flag = |key: &str, default: bool| match object.get(key) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                degraded = true;
                default
            }
        };
        let alert = flag("alert", false);
        // A subscription without `open` is counted: better one badge too many than a lost message.
        let open = flag("open", true);
        let hide_unread_status = flag("hideUnreadStatus", false);
        let archived = flag("archived", false);
        let updated_at = object.get("_updatedAt").and_then(timestamp_ms);
        if degraded {
            tracing::warn!(rid, "a subscription from the chat server is incomplete: using defaults");
        }
        Ok(Subscription {
            id: object.get("_id").and_then(Value::as_str).map(str::to_string),
            rid: rid.to_string(),
            kind,
            name,
            fname,
            unread,
            user_mentions,
            alert,
            open,
            hide_unread_status,
            archived,
            updated_at,
            degraded,
        })
    }

    /// Whether the official apps count this room at all.
    pub fn counted(&self) -> bool {
        self.open && !self.hide_unread_status && !self.archived
    }

    /// Mentions in this room: `userMentions`, or every unread message of a direct conversation.
    pub fn mentions(&self) -> u64 {
        match self.kind {
            RoomKind::Direct => self.unread.max(self.user_mentions),
            _ => self.user_mentions,
        }
    }

    /// What the member calls the room.
    pub fn display_name(&self) -> String {
        self.fname.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| self.name.clone())
    }
}

/// Reads a Rocket.Chat date: an ISO-8601 string (REST) or `{"$date": ms}` (DDP, EJSON).
pub fn timestamp_ms(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) => time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64),
        Value::Object(o) => o.get("$date").and_then(|d| d.as_i64().or_else(|| d.as_f64().map(|f| f as i64))),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Formats Unix milliseconds as the ISO-8601 `updatedSince` wants.
pub fn iso_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&format).unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".into())
}

/// One room with something waiting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCount {
    pub rid: String,
    /// The display name.
    pub name: String,
    pub kind: RoomKind,
    pub unread: u64,
    pub mentions: u64,
    pub alert: bool,
    /// Where one click opens the room.
    pub url: String,
}

/// What the tray shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatCounts {
    /// Unread messages in the counted rooms.
    pub total: u64,
    /// The badge text: "" when nothing is unread, the number, or "999+".
    pub label: String,
    /// True when nothing is unread but some room asks for attention (`alert` only).
    pub dot: bool,
    /// Mentions of the member plus unread direct messages.
    pub mentions: u64,
    /// The rooms with something waiting, mentions first, at most [`TOP_ROOMS`].
    pub rooms: Vec<RoomCount>,
    /// True when some of the server's data was unreadable: the figures may be too low.
    pub degraded: bool,
}

/// The badge text for a total.
pub fn label(total: u64) -> String {
    match total {
        0 => String::new(),
        1..=999 => total.to_string(),
        _ => "999+".into(),
    }
}

/// Where a room opens: `/channel/NAME`, `/group/NAME`, `/direct/RID` under the chat's address.
pub fn room_url(base: &Url, sub: &Subscription) -> String {
    let mut url = base.clone();
    let (kind, key) = match sub.kind {
        RoomKind::Channel if !sub.name.is_empty() => ("channel", sub.name.as_str()),
        RoomKind::Group if !sub.name.is_empty() => ("group", sub.name.as_str()),
        RoomKind::Direct => ("direct", sub.rid.as_str()),
        _ => ("home", ""),
    };
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push(kind);
        if !key.is_empty() {
            segments.push(key);
        }
    }
    url.to_string()
}

/// Applies the official apps' rules. `unreadable` says how many subscriptions could not be read
/// at all (they make the result degraded).
pub fn count<'a>(subs: impl IntoIterator<Item = &'a Subscription>, base: &Url, unreadable: usize) -> ChatCounts {
    let mut total = 0u64;
    let mut mentions = 0u64;
    let mut any_alert = false;
    let mut degraded = unreadable > 0;
    let mut rooms = Vec::new();
    for sub in subs {
        degraded |= sub.degraded;
        if !sub.counted() || !(sub.alert || sub.unread > 0) {
            continue;
        }
        total = total.saturating_add(sub.unread);
        mentions = mentions.saturating_add(sub.mentions());
        any_alert |= sub.alert;
        rooms.push(RoomCount {
            rid: sub.rid.clone(),
            name: sub.display_name(),
            kind: sub.kind,
            unread: sub.unread,
            mentions: sub.mentions(),
            alert: sub.alert,
            url: room_url(base, sub),
        });
    }
    rooms.sort_by(|a, b| b.mentions.cmp(&a.mentions).then(b.unread.cmp(&a.unread)).then(a.name.cmp(&b.name)));
    rooms.truncate(TOP_ROOMS);
    ChatCounts { total, label: label(total), dot: total == 0 && any_alert, mentions, rooms, degraded }
}

/// The member's subscriptions as last heard from the server, keyed by room id.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    subs: BTreeMap<String, Subscription>,
    /// Entries of the last full load that could not be read.
    unreadable: usize,
    /// The newest `_updatedAt` seen, in Unix ms: the next `updatedSince`.
    newest: Option<i64>,
}

impl Ledger {
    /// Replaces everything with a full `subscriptions.get` answer.
    pub fn replace_all(&mut self, update: &[Value]) {
        self.subs.clear();
        self.unreadable = 0;
        for value in update {
            self.upsert(value);
        }
    }

    /// Applies an `updatedSince` answer or a stream event.
    pub fn apply(&mut self, update: &[Value], remove: &[Value]) {
        for value in update {
            self.upsert(value);
        }
        for value in remove {
            self.remove(value);
        }
    }

    /// Adds or replaces one subscription; an unreadable one is logged and counted as such.
    pub fn upsert(&mut self, value: &Value) {
        match Subscription::from_json(value) {
            Ok(sub) => {
                if let Some(t) = sub.updated_at {
                    self.newest = Some(self.newest.map_or(t, |n| n.max(t)));
                }
                self.subs.insert(sub.rid.clone(), sub);
            }
            Err(reason) => {
                tracing::warn!(%reason, "ignoring an unreadable subscription from the chat server");
                self.unreadable += 1;
            }
        }
    }

    /// Forgets a removed subscription, named by `rid` or by its `_id`.
    pub fn remove(&mut self, value: &Value) {
        if let Some(t) = value.get("_deletedAt").and_then(timestamp_ms) {
            self.newest = Some(self.newest.map_or(t, |n| n.max(t)));
        }
        if let Some(rid) = value.get("rid").and_then(Value::as_str) {
            self.subs.remove(rid);
        } else if let Some(id) = value.get("_id").and_then(Value::as_str) {
            // `remove` entries of `updatedSince` carry only the subscription's own `_id`.
            self.subs.retain(|_, sub| sub.id.as_deref() != Some(id));
        } else {
            tracing::warn!("ignoring a removal without rid or _id from the chat server");
        }
    }

    pub fn get(&self, rid: &str) -> Option<&Subscription> {
        self.subs.get(rid)
    }

    pub fn newest(&self) -> Option<i64> {
        self.newest
    }

    /// Moves the `updatedSince` mark forward (for example to the server's clock of a load).
    pub fn mark(&mut self, ms: i64) {
        self.newest = Some(self.newest.map_or(ms, |n| n.max(ms)));
    }

    pub fn counts(&self, base: &Url) -> ChatCounts {
        count(self.subs.values(), base, self.unreadable)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn base() -> Url {
        Url::parse("https://chat.example.coop/").unwrap()
    }

    fn sub(v: Value) -> Subscription {
        Subscription::from_json(&v).unwrap()
    }

    /// A counted channel with `unread` messages, alert set when anything is unread.
    fn room(rid: &str, t: &str, unread: u64) -> Value {
        json!({"rid": rid, "t": t, "name": rid, "unread": unread, "userMentions": 0, "alert": unread > 0, "open": true})
    }

    fn with(mut v: Value, key: &str, value: Value) -> Value {
        v[key] = value;
        v
    }

    /// (case, subscriptions, total, label, dot, mentions)
    type Case = (&'static str, Vec<Value>, u64, &'static str, bool, u64);

    #[test]
    fn the_counting_rules_table() {
        let cases: Vec<Case> = vec![
            ("nothing", vec![], 0, "", false, 0),
            ("one channel", vec![room("a", "c", 3)], 3, "3", false, 0),
            ("sum over rooms", vec![room("a", "c", 3), room("b", "p", 4)], 7, "7", false, 0),
            ("closed room ignored", vec![room("a", "c", 3), with(room("b", "c", 5), "open", json!(false))], 3, "3", false, 0),
            ("archived ignored", vec![room("a", "c", 3), with(room("b", "c", 5), "archived", json!(true))], 3, "3", false, 0),
            ("hidden unread ignored", vec![with(room("b", "c", 5), "hideUnreadStatus", json!(true))], 0, "", false, 0),
            (
                "alert only gives a dot",
                vec![with(room("a", "c", 0), "alert", json!(true))],
                0,
                "",
                true,
                0,
            ),
            (
                "no dot when something is unread",
                vec![with(room("a", "c", 0), "alert", json!(true)), room("b", "c", 2)],
                2,
                "2",
                false,
                0,
            ),
            ("unread without alert still counts", vec![with(room("a", "c", 4), "alert", json!(false))], 4, "4", false, 0),
            ("999 stays", vec![room("a", "c", 999)], 999, "999", false, 0),
            ("1000 caps", vec![room("a", "c", 600), room("b", "c", 400)], 1000, "999+", false, 0),
            (
                "mentions versus unread",
                vec![with(room("a", "c", 10), "userMentions", json!(2)), room("b", "c", 5)],
                15,
                "15",
                false,
                2,
            ),
            ("direct messages are mentions", vec![room("d1", "d", 3), room("a", "c", 1)], 4, "4", false, 3),
            (
                "a mention inside a direct message is not counted twice",
                vec![with(room("d1", "d", 3), "userMentions", json!(1))],
                3,
                "3",
                false,
                3,
            ),
            (
                "mentions in an archived room do not count",
                vec![with(with(room("a", "c", 3), "userMentions", json!(3)), "archived", json!(true))],
                0,
                "",
                false,
                0,
            ),
            (
                "a missing open is counted",
                vec![json!({"rid": "a", "t": "c", "name": "a", "unread": 2, "alert": true})],
                2,
                "2",
                false,
                0,
            ),
        ];
        for (case, subs, total, label, dot, mentions) in cases {
            let subs: Vec<Subscription> = subs.into_iter().map(sub).collect();
            let counts = count(&subs, &base(), 0);
            assert_eq!((counts.total, counts.label.as_str(), counts.dot, counts.mentions), (total, label, dot, mentions), "{case}");
        }
    }

    #[test]
    fn top_rooms_have_names_urls_and_mentions_first() {
        let subs: Vec<Subscription> = vec![
            sub(json!({"rid": "r1", "t": "c", "name": "general", "fname": "Général", "unread": 9, "alert": true, "open": true})),
            sub(json!({"rid": "r2", "t": "p", "name": "bureau", "unread": 1, "userMentions": 1, "alert": true, "open": true})),
            sub(json!({"rid": "bobaliceid", "t": "d", "name": "bob", "fname": "Bob Durand", "unread": 2, "alert": true, "open": true})),
            sub(json!({"rid": "r4", "t": "c", "name": "quiet", "unread": 0, "alert": false, "open": true})),
        ];
        let counts = count(&subs, &base(), 0);
        let rooms: Vec<(&str, RoomKind, u64, u64, &str)> =
            counts.rooms.iter().map(|r| (r.name.as_str(), r.kind, r.unread, r.mentions, r.url.as_str())).collect();
        assert_eq!(
            rooms,
            vec![
                ("Bob Durand", RoomKind::Direct, 2, 2, "https://chat.example.coop/direct/bobaliceid"),
                ("bureau", RoomKind::Group, 1, 1, "https://chat.example.coop/group/bureau"),
                ("Général", RoomKind::Channel, 9, 0, "https://chat.example.coop/channel/general"),
            ]
        );
    }

    #[test]
    fn urls_keep_a_base_path_and_escape_names() {
        let base = Url::parse("https://example.coop/chat/").unwrap();
        let s = sub(json!({"rid": "r", "t": "c", "name": "été 2026", "unread": 1, "open": true}));
        assert_eq!(room_url(&base, &s), "https://example.coop/chat/channel/%C3%A9t%C3%A9%202026");
    }

    #[test]
    fn at_most_ten_rooms() {
        let subs: Vec<Subscription> = (0..15).map(|i| sub(room(&format!("r{i:02}"), "c", 1))).collect();
        let counts = count(&subs, &base(), 0);
        assert_eq!(counts.total, 15);
        assert_eq!(counts.rooms.len(), TOP_ROOMS);
    }

    #[test]
    fn bad_answers_degrade_without_panicking() {
        // Not an object, no rid: unusable.
        assert!(Subscription::from_json(&json!("x")).is_err());
        assert!(Subscription::from_json(&json!({"t": "c", "unread": 1})).is_err());
        // Wrong types and an unknown room type: defaults, flagged.
        let odd = sub(json!({"rid": "x", "t": "zz", "unread": "many", "alert": "yes", "open": true}));
        assert!(odd.degraded);
        assert_eq!((odd.kind, odd.unread, odd.alert), (RoomKind::Other, 0, false));
        let live = sub(json!({"rid": "l", "t": "l", "name": "visitor", "unread": 2, "alert": true, "open": true}));
        let counts = count([&live], &base(), 0);
        assert_eq!((counts.total, counts.degraded), (2, true));
        assert_eq!(counts.rooms[0].url, "https://chat.example.coop/home");

        let mut ledger = Ledger::default();
        ledger.replace_all(&[room("a", "c", 2), json!(42), json!({"no": "rid"})]);
        let counts = ledger.counts(&base());
        assert_eq!((counts.total, counts.degraded), (2, true));
    }

    #[test]
    fn the_ledger_applies_updates_removals_and_tracks_the_newest_date() {
        let mut ledger = Ledger::default();
        ledger.replace_all(&[
            with(room("a", "c", 1), "_updatedAt", json!("2026-11-28T10:00:00.000Z")),
            with(with(room("b", "c", 1), "_updatedAt", json!("2026-11-28T10:00:01.500Z")), "_id", json!("sub-b")),
        ]);
        assert_eq!(ledger.newest().map(iso_ms).as_deref(), Some("2026-11-28T10:00:01.500Z"));
        // A DDP update (EJSON date) and a removal by subscription id.
        ledger.apply(&[with(room("a", "c", 5), "_updatedAt", json!({"$date": 1_795_860_000_000i64}))], &[json!({"_id": "sub-b", "_deletedAt": "2026-11-28T10:00:02.000Z"})]);
        let counts = ledger.counts(&base());
        assert_eq!(counts.total, 5);
        assert_eq!(ledger.newest(), Some(1_795_860_002_000), "the removal is the newest");
        assert!(ledger.get("b").is_none());
    }
}
