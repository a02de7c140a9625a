//! The counting rules of the official Rocket.Chat apps, as pure functions over subscriptions:
//! no I/O, no clock. The live task and the CLI feed them what the server said.
//!
//! | # | Rule | Source (RocketChat/Rocket.Chat unless said) |
//! |---|------|--------------------------------------------|
//! | 1 | A room counts toward the badge unless it is closed (`open == false`), has its unread status hidden (`hideUnreadStatus`) or is archived. | `apps/meteor/client/views/root/hooks/loggedIn/useUnread.ts` (the query) |
//! | 2 | The badge total is the sum of `unread` over the counted rooms with `alert \|\| unread > 0`; thread unreads (`tunread`) do not add to it. | `useUnread.ts` |
//! | 3 | With nothing unread, a dot shows when a counted room has `alert == true`, its `unreadAlert` is not `nothing`, and either its `unreadAlert` is `all` or the member's `unreadAlert` preference is not `false`. | `useUnread.ts` |
//! | 4 | The label caps at `999+`. | `useUnread.ts` |
//! | 5 | The desktop app's badge is that number, or the dot. | `RocketChat/Rocket.Chat.Electron` `src/ui/selectors.ts` |
//! | 6 | Per room: unread = `unread` + `tunread.length`; mentions = `userMentions` + `tunreadUser.length`; group mentions = `groupMentions`. | `apps/meteor/lib/getSubscriptionUnreadData.ts` |
//! | 7 | A room shows its count when `(!hideUnreadStatus \|\| (!hideMentionStatus && (mentions \|\| groupMentions))) && total > 0`: mentions in a "hide unread" room still show. | `getSubscriptionUnreadData.ts` (`showUnread`) |
//! | 8 | A room is highlighted (listed without a count) when `!hideUnreadStatus && (alert \|\| unread)` and the dot rule (3) lets its alert show. | `getSubscriptionUnreadData.ts` (`highlightUnread`), `useUnread.ts` |
//! | 9 | Closed and archived rooms are never listed. | `useUnread.ts` (query), sidebar |
//! | 10 | "For you" = the listed rooms' mentions, plus every unread message of a direct conversation (the server always notifies those). | `apps/meteor/app/lib/server/functions/notifications/desktop.ts` (`roomType === 'd'`) |
//! | 11 | Room types `c`, `p`, `d`, `l` (omnichannel) and `v` (voip) are known; `l` opens at `/live/RID`, `v` and unknown ones on the chat's home page. | `apps/meteor/client/lib/rooms/roomTypes/*.ts` (unverified for `v`) |
//!
//! What the server puts in those fields by default (`Unread_Count` =
//! `user_and_group_mentions_only`: in channels `unread` grows only for @user/@all/@here, other
//! messages set `alert`; `Unread_Count_DM` = `all_messages`; thread replies touch `tunread*`, not
//! `unread`) is in `apps/meteor/app/lib/server/lib/notifyUsersOnMessage.ts` and
//! `apps/meteor/app/threads/server/functions.ts`.
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
    /// `l`: an omnichannel (livechat) conversation.
    Livechat,
    /// `v`: a voip room.
    Voip,
    /// Any other type (a future one): counted, opened on the chat's home.
    Other,
}

impl RoomKind {
    pub fn from_code(t: &str) -> RoomKind {
        match t {
            "c" => RoomKind::Channel,
            "p" => RoomKind::Group,
            "d" => RoomKind::Direct,
            "l" => RoomKind::Livechat,
            "v" => RoomKind::Voip,
            _ => RoomKind::Other,
        }
    }
}

/// A room's own `unreadAlert` setting ("Alert" in the room's notification preferences).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnreadAlert {
    /// Absent or `default`: follow the member's preference.
    #[default]
    Default,
    All,
    Nothing,
}

/// The member's own preferences that change the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preferences {
    /// `unreadAlert` ("Unread tray icon alert"): true unless the member turned it off.
    pub unread_alert: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences { unread_alert: true }
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
    pub group_mentions: u64,
    /// Threads with unread replies (`tunread`), those mentioning the member (`tunreadUser`)
    /// and those with @all/@here (`tunreadGroup`): lengths of the server's id lists.
    pub thread_unread: u64,
    pub thread_user_mentions: u64,
    pub thread_group_mentions: u64,
    pub alert: bool,
    pub unread_alert: UnreadAlert,
    pub open: bool,
    pub hide_unread_status: bool,
    pub hide_mention_status: bool,
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
                if matches!(kind, RoomKind::Channel | RoomKind::Group) {
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
        let group_mentions = number("groupMentions", false);
        // Thread lists are absent until a thread has unread replies.
        let mut list_len = |key: &str| match object.get(key) {
            None | Some(Value::Null) => 0,
            Some(Value::Array(items)) => items.len() as u64,
            Some(_) => {
                degraded = true;
                0
            }
        };
        let thread_unread = list_len("tunread");
        let thread_user_mentions = list_len("tunreadUser");
        let thread_group_mentions = list_len("tunreadGroup");
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
        let hide_mention_status = flag("hideMentionStatus", false);
        let archived = flag("archived", false);
        let unread_alert = match object.get("unreadAlert").and_then(Value::as_str) {
            Some("all") => UnreadAlert::All,
            Some("nothing") => UnreadAlert::Nothing,
            _ => UnreadAlert::Default,
        };
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
            group_mentions,
            thread_unread,
            thread_user_mentions,
            thread_group_mentions,
            alert,
            unread_alert,
            open,
            hide_unread_status,
            hide_mention_status,
            archived,
            updated_at,
            degraded,
        })
    }

    /// Rule 1: whether the room counts toward the badge at all.
    pub fn counted(&self) -> bool {
        self.open && !self.hide_unread_status && !self.archived
    }

    /// Rule 3: whether this room's `alert` may show as the dot.
    pub fn alert_shows(&self, prefs: &Preferences) -> bool {
        self.alert
            && self.unread_alert != UnreadAlert::Nothing
            && (self.unread_alert == UnreadAlert::All || prefs.unread_alert)
    }

    /// Rule 6: the room's own unread figure, threads included.
    pub fn room_unread(&self) -> u64 {
        self.unread.saturating_add(self.thread_unread)
    }

    /// Rules 6 and 10: mentions of the member in this room; every unread message of a direct
    /// conversation is for the member.
    pub fn mentions(&self) -> u64 {
        let mentions = self.user_mentions.saturating_add(self.thread_user_mentions);
        match self.kind {
            RoomKind::Direct => self.room_unread().max(mentions),
            _ => mentions,
        }
    }

    /// Rule 7: whether the room shows a count.
    pub fn shows_unread(&self) -> bool {
        let mentions = self.user_mentions.saturating_add(self.thread_user_mentions);
        (!self.hide_unread_status || (!self.hide_mention_status && (mentions > 0 || self.group_mentions > 0)))
            && self.room_unread() > 0
    }

    /// Rules 7 to 9: whether the room is listed.
    pub fn listed(&self, prefs: &Preferences) -> bool {
        if !self.open || self.archived {
            return false;
        }
        self.shows_unread() || (!self.hide_unread_status && self.alert_shows(prefs))
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
    /// Unread messages, thread replies included (rule 6).
    pub unread: u64,
    pub mentions: u64,
    /// @all / @here mentions.
    #[serde(default)]
    pub group_mentions: u64,
    pub alert: bool,
    /// Where one click opens the room.
    pub url: String,
}

/// How Passerelle's connection shows the member to colleagues (see the chat module's doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// No realtime connection (REST only): the member's status is left as it was.
    #[default]
    Untouched,
    /// The realtime connection told the server it is away: the member shows online only if
    /// another client of theirs is.
    Away,
    /// The connection shows the member online: the OS says they are at the computer
    /// (`UserPresence:online`), or the server did not take `UserPresence:away`.
    Online,
}

/// What the tray shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatCounts {
    /// The badge number: unread messages in the counted rooms (rule 2).
    pub total: u64,
    /// The badge text: "" when nothing is unread, the number, or "999+".
    pub label: String,
    /// True when nothing is unread but some room asks for attention (rule 3).
    pub dot: bool,
    /// Mentions of the member plus unread direct messages (rule 10).
    pub mentions: u64,
    /// @all / @here mentions in the listed rooms.
    #[serde(default)]
    pub group_mentions: u64,
    /// The rooms with something waiting, mentions first, at most [`TOP_ROOMS`].
    pub rooms: Vec<RoomCount>,
    /// True when some of the server's data was unreadable: the figures may be too low.
    pub degraded: bool,
    /// How Passerelle's connection shows the member (set by the live task).
    #[serde(default)]
    pub presence: Presence,
}

/// The badge text for a total.
pub fn label(total: u64) -> String {
    match total {
        0 => String::new(),
        1..=999 => total.to_string(),
        _ => "999+".into(),
    }
}

/// Where a room opens: `/channel/NAME`, `/group/NAME`, `/direct/RID`, `/live/RID` under the
/// chat's address.
pub fn room_url(base: &Url, sub: &Subscription) -> String {
    let mut url = base.clone();
    let (kind, key) = match sub.kind {
        RoomKind::Channel if !sub.name.is_empty() => ("channel", sub.name.as_str()),
        RoomKind::Group if !sub.name.is_empty() => ("group", sub.name.as_str()),
        RoomKind::Direct => ("direct", sub.rid.as_str()),
        RoomKind::Livechat => ("live", sub.rid.as_str()),
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

/// Applies the official apps' rules (the table above). `unreadable` says how many
/// subscriptions could not be read at all (they make the result degraded).
pub fn count<'a>(subs: impl IntoIterator<Item = &'a Subscription>, base: &Url, unreadable: usize, prefs: &Preferences) -> ChatCounts {
    let mut total = 0u64;
    let mut mentions = 0u64;
    let mut group_mentions = 0u64;
    let mut dot = false;
    let mut degraded = unreadable > 0;
    let mut rooms = Vec::new();
    for sub in subs {
        degraded |= sub.degraded;
        if sub.counted() && (sub.alert || sub.unread > 0) {
            total = total.saturating_add(sub.unread);
            dot |= sub.alert_shows(prefs);
        }
        if !sub.listed(prefs) {
            continue;
        }
        mentions = mentions.saturating_add(sub.mentions());
        group_mentions = group_mentions.saturating_add(sub.group_mentions);
        rooms.push(RoomCount {
            rid: sub.rid.clone(),
            name: sub.display_name(),
            kind: sub.kind,
            unread: sub.room_unread(),
            mentions: sub.mentions(),
            group_mentions: sub.group_mentions,
            alert: sub.alert,
            url: room_url(base, sub),
        });
    }
    rooms.sort_by(|a, b| b.mentions.cmp(&a.mentions).then(b.unread.cmp(&a.unread)).then(a.name.cmp(&b.name)));
    rooms.truncate(TOP_ROOMS);
    ChatCounts {
        total,
        label: label(total),
        dot: total == 0 && dot,
        mentions,
        group_mentions,
        rooms,
        degraded,
        presence: Presence::Untouched,
    }
}

/// The member's subscriptions as last heard from the server, keyed by room id.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    subs: BTreeMap<String, Subscription>,
    /// Entries of the last full load that could not be read.
    unreadable: usize,
    /// The newest `_updatedAt` seen, in Unix ms: the next `updatedSince`.
    newest: Option<i64>,
    prefs: Preferences,
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

    /// The member's preferences that change the counts (from the login answer).
    pub fn set_preferences(&mut self, prefs: Preferences) {
        self.prefs = prefs;
    }

    pub fn counts(&self, base: &Url) -> ChatCounts {
        count(self.subs.values(), base, self.unreadable, &self.prefs)
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

    /// A counted room with `unread` messages, alert set when anything is unread.
    fn room(rid: &str, t: &str, unread: u64) -> Value {
        json!({"rid": rid, "t": t, "name": rid, "unread": unread, "userMentions": 0, "alert": unread > 0, "open": true})
    }

    fn with(mut v: Value, key: &str, value: Value) -> Value {
        v[key] = value;
        v
    }

    const ON: Preferences = Preferences { unread_alert: true };
    const OFF: Preferences = Preferences { unread_alert: false };

    /// (rule, case, member's preferences, subscriptions, total, label, dot, mentions, rooms listed)
    type Case = (&'static str, &'static str, Preferences, Vec<Value>, u64, &'static str, bool, u64, usize);

    /// The official apps' rules, point by point; the first column names the rule of the module
    /// doc's table (and so its source).
    #[test]
    fn the_counting_rules_table() {
        let alert_only = with(room("a", "c", 0), "alert", json!(true));
        let cases: Vec<Case> = vec![
            ("2", "nothing", ON, vec![], 0, "", false, 0, 0),
            ("2", "one channel", ON, vec![room("a", "c", 3)], 3, "3", false, 0, 1),
            ("2", "sum over rooms", ON, vec![room("a", "c", 3), room("b", "p", 4)], 7, "7", false, 0, 2),
            ("1", "closed room ignored", ON, vec![room("a", "c", 3), with(room("b", "c", 5), "open", json!(false))], 3, "3", false, 0, 1),
            ("1", "archived ignored", ON, vec![room("a", "c", 3), with(room("b", "c", 5), "archived", json!(true))], 3, "3", false, 0, 1),
            ("1", "hidden unread ignored", ON, vec![with(room("b", "c", 5), "hideUnreadStatus", json!(true))], 0, "", false, 0, 0),
            ("3", "alert only gives a dot", ON, vec![alert_only.clone()], 0, "", true, 0, 1),
            ("3", "no dot when something is unread", ON, vec![alert_only.clone(), room("b", "c", 2)], 2, "2", false, 0, 2),
            ("3", "the member turned the alert off: no dot", OFF, vec![alert_only.clone()], 0, "", false, 0, 0),
            ("3", "the room says all: a dot despite the member", OFF, vec![with(alert_only.clone(), "unreadAlert", json!("all"))], 0, "", true, 0, 1),
            ("3", "the room says nothing: no dot", ON, vec![with(alert_only.clone(), "unreadAlert", json!("nothing"))], 0, "", false, 0, 0),
            ("3", "the room says default: the member decides", ON, vec![with(alert_only.clone(), "unreadAlert", json!("default"))], 0, "", true, 0, 1),
            ("3", "a hidden room's alert gives no dot", ON, vec![with(alert_only.clone(), "hideUnreadStatus", json!(true))], 0, "", false, 0, 0),
            ("2", "unread without alert still counts", ON, vec![with(room("a", "c", 4), "alert", json!(false))], 4, "4", false, 0, 1),
            ("3", "unread counts even where the alert may not show", OFF, vec![with(room("a", "c", 4), "unreadAlert", json!("nothing"))], 4, "4", false, 0, 1),
            ("4", "999 stays", ON, vec![room("a", "c", 999)], 999, "999", false, 0, 1),
            ("4", "1000 caps", ON, vec![room("a", "c", 600), room("b", "c", 400)], 1000, "999+", false, 0, 2),
            ("6", "mentions versus unread", ON, vec![with(room("a", "c", 10), "userMentions", json!(2)), room("b", "c", 5)], 15, "15", false, 2, 2),
            ("10", "direct messages are mentions", ON, vec![room("d1", "d", 3), room("a", "c", 1)], 4, "4", false, 3, 2),
            ("10", "a mention inside a direct message is not counted twice", ON, vec![with(room("d1", "d", 3), "userMentions", json!(1))], 3, "3", false, 3, 1),
            ("9", "mentions in an archived room do not count", ON, vec![with(with(room("a", "c", 3), "userMentions", json!(3)), "archived", json!(true))], 0, "", false, 0, 0),
            ("1", "a missing open is counted", ON, vec![json!({"rid": "a", "t": "c", "name": "a", "unread": 2, "alert": true})], 2, "2", false, 0, 1),
            (
                "2, 6",
                "a thread reply mentioning the member: not in the badge, in the mentions",
                ON,
                vec![json!({"rid": "a", "t": "c", "name": "a", "unread": 0, "alert": true, "open": true,
                            "tunread": ["t1"], "tunreadUser": ["t1"]})],
                0,
                "",
                true,
                1,
                1,
            ),
            (
                "6",
                "thread replies add to the room's own figure",
                ON,
                vec![json!({"rid": "a", "t": "c", "name": "a", "unread": 2, "alert": true, "open": true, "tunread": ["t1", "t2"]})],
                2,
                "2",
                false,
                0,
                1,
            ),
            (
                "7",
                "a mention in a hide-unread room still shows, outside the badge",
                ON,
                vec![json!({"rid": "a", "t": "c", "name": "a", "unread": 1, "userMentions": 1, "alert": true, "open": true,
                            "hideUnreadStatus": true})],
                0,
                "",
                false,
                1,
                1,
            ),
            (
                "7",
                "an @all in a hide-unread room still shows",
                ON,
                vec![json!({"rid": "a", "t": "c", "name": "a", "unread": 1, "groupMentions": 1, "alert": true, "open": true,
                            "hideUnreadStatus": true})],
                0,
                "",
                false,
                0,
                1,
            ),
            (
                "7",
                "hideMentionStatus hides those too",
                ON,
                vec![json!({"rid": "a", "t": "c", "name": "a", "unread": 1, "userMentions": 1, "alert": true, "open": true,
                            "hideUnreadStatus": true, "hideMentionStatus": true})],
                0,
                "",
                false,
                0,
                0,
            ),
            (
                "7",
                "hideMentionStatus alone changes nothing",
                ON,
                vec![with(with(room("a", "c", 2), "userMentions", json!(1)), "hideMentionStatus", json!(true))],
                2,
                "2",
                false,
                1,
                1,
            ),
            ("11", "an omnichannel room counts like any other", ON, vec![room("l1", "l", 2), room("v1", "v", 1)], 3, "3", false, 0, 2),
        ];
        for (rule, case, prefs, subs, total, label, dot, mentions, listed) in cases {
            let subs: Vec<Subscription> = subs.into_iter().map(sub).collect();
            let counts = count(&subs, &base(), 0, &prefs);
            assert_eq!(
                (counts.total, counts.label.as_str(), counts.dot, counts.mentions, counts.rooms.len()),
                (total, label, dot, mentions, listed),
                "rule {rule}: {case}"
            );
            assert!(!counts.degraded, "rule {rule}: {case}: degraded");
        }
    }

    #[test]
    fn group_mentions_are_summed_apart() {
        let subs = vec![
            sub(json!({"rid": "a", "t": "c", "name": "a", "unread": 2, "groupMentions": 2, "alert": true, "open": true})),
            sub(json!({"rid": "b", "t": "p", "name": "b", "unread": 1, "userMentions": 1, "alert": true, "open": true})),
        ];
        let counts = count(&subs, &base(), 0, &ON);
        assert_eq!((counts.total, counts.mentions, counts.group_mentions), (3, 1, 2));
        assert_eq!(counts.rooms[1].group_mentions, 2);
    }

    #[test]
    fn top_rooms_have_names_urls_and_mentions_first() {
        let subs: Vec<Subscription> = vec![
            sub(json!({"rid": "r1", "t": "c", "name": "general", "fname": "Général", "unread": 9, "alert": true, "open": true})),
            sub(json!({"rid": "r2", "t": "p", "name": "bureau", "unread": 1, "userMentions": 1, "alert": true, "open": true})),
            sub(json!({"rid": "bobaliceid", "t": "d", "name": "bob", "fname": "Bob Durand", "unread": 2, "alert": true, "open": true})),
            sub(json!({"rid": "r4", "t": "c", "name": "quiet", "unread": 0, "alert": false, "open": true})),
            sub(json!({"rid": "visitor1", "t": "l", "name": "Visiteur", "unread": 0, "alert": true, "open": true})),
        ];
        let counts = count(&subs, &base(), 0, &ON);
        let rooms: Vec<(&str, RoomKind, u64, u64, &str)> =
            counts.rooms.iter().map(|r| (r.name.as_str(), r.kind, r.unread, r.mentions, r.url.as_str())).collect();
        assert_eq!(
            rooms,
            vec![
                ("Bob Durand", RoomKind::Direct, 2, 2, "https://chat.example.coop/direct/bobaliceid"),
                ("bureau", RoomKind::Group, 1, 1, "https://chat.example.coop/group/bureau"),
                ("Général", RoomKind::Channel, 9, 0, "https://chat.example.coop/channel/general"),
                ("Visiteur", RoomKind::Livechat, 0, 0, "https://chat.example.coop/live/visitor1"),
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
        let counts = count(&subs, &base(), 0, &ON);
        assert_eq!(counts.total, 15);
        assert_eq!(counts.rooms.len(), TOP_ROOMS);
    }

    #[test]
    fn bad_answers_degrade_without_panicking() {
        // Not an object, no rid: unusable.
        assert!(Subscription::from_json(&json!("x")).is_err());
        assert!(Subscription::from_json(&json!({"t": "c", "unread": 1})).is_err());
        // Wrong types and an unknown room type: defaults, flagged.
        let odd = sub(json!({"rid": "x", "t": "zz", "unread": "many", "alert": "yes", "open": true, "tunread": 3}));
        assert!(odd.degraded);
        assert_eq!((odd.kind, odd.unread, odd.alert, odd.thread_unread), (RoomKind::Other, 0, false, 0));
        let future = sub(json!({"rid": "f", "t": "zz", "name": "future", "unread": 2, "alert": true, "open": true}));
        let counts = count([&future], &base(), 0, &ON);
        assert_eq!((counts.total, counts.degraded), (2, true));
        assert_eq!(counts.rooms[0].url, "https://chat.example.coop/home");
        // Omnichannel rooms are known: not degraded (they used to leave the counts degraded).
        let live = sub(json!({"rid": "l", "t": "l", "name": "visitor", "unread": 2, "alert": true, "open": true}));
        let voip = sub(json!({"rid": "v", "t": "v", "unread": 1, "alert": true, "open": true}));
        let counts = count([&live, &voip], &base(), 0, &ON);
        assert_eq!((counts.total, counts.degraded), (3, false));

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
        // The member's preference reaches the rules.
        ledger.apply(&[with(room("c", "c", 0), "alert", json!(true))], &[]);
        ledger.apply(&[with(room("a", "c", 0), "alert", json!(false))], &[]);
        assert!(ledger.counts(&base()).dot);
        ledger.set_preferences(OFF);
        assert!(!ledger.counts(&base()).dot);
    }
}
