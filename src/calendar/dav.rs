//! The CalDAV conversation: discovery (`current-user-principal` -> `calendar-home-set` -> the
//! calendars), one `calendar-query` REPORT per calendar with a time range, and a cache keyed by
//! each calendar's `getctag` / `sync-token` so unchanged calendars are not downloaded again.
//!
//! XML is read with quick-xml's namespace resolver, so `d:`, `D:`, `cal:` or no prefix at all
//! make no difference.
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use chrono::Duration;
use quick_xml::{
    events::Event as XmlEvent,
    name::{Namespace, ResolveResult},
    NsReader,
};
use reqwest::{header, Method, StatusCode};
use tokio::sync::Mutex;
use url::Url;

use super::{CalDavAuth, CalendarError, Window};
use crate::config::plain_reqwest;

const DAV: &str = "DAV:";
const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
const CS: &str = "http://calendarserver.org/ns/";

/// One of the member's calendars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarInfo {
    pub url: Url,
    pub name: String,
    /// `getctag`, else `sync-token`: changes whenever the calendar does. `None` when the server
    /// offers neither (then every refresh downloads).
    pub version: Option<String>,
}

/// One calendar resource from a REPORT.
#[derive(Debug, Clone)]
pub struct Resource {
    pub href: String,
    pub calendar: String,
    pub ics: String,
}

/// What a fetch gave.
#[derive(Debug, Default)]
pub struct Fetched {
    pub resources: Vec<Resource>,
    pub warnings: Vec<String>,
}

/// Request counts, to see that unchanged calendars are not downloaded again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub propfinds: usize,
    pub reports: usize,
}

#[derive(Default)]
struct Counters {
    propfinds: AtomicUsize,
    reports: AtomicUsize,
}

struct Cached {
    version: String,
    window: Window,
    resources: Vec<Resource>,
}

#[derive(Default)]
struct State {
    /// The calendar home, found once.
    home: Option<Url>,
    cache: HashMap<Url, Cached>,
}

/// A CalDAV client for one member. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct CalDav {
    http: reqwest::Client,
    root: Url,
    auth: CalDavAuth,
    state: Arc<Mutex<State>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for CalDav {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CalDav").field("root", &self.root.as_str()).field("auth", &self.auth).finish_non_exhaustive()
    }
}

/// How much further than asked a REPORT looks, so the next refreshes (a window sliding with
/// the clock) still find everything in the cache while the calendar is unchanged.
const LOOK_AHEAD: Duration = Duration::hours(24);

impl CalDav {
    pub fn new(http: reqwest::Client, root: Url, auth: CalDavAuth) -> CalDav {
        CalDav { http, root, auth, state: Arc::default(), counters: Arc::default() }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            propfinds: self.counters.propfinds.load(Ordering::Relaxed),
            reports: self.counters.reports.load(Ordering::Relaxed),
        }
    }

    /// Sends one WebDAV request, with the token refreshed and retried once on a 401.
    async fn send(&self, method: &str, url: &Url, depth: &str, body: String) -> Result<String, CalendarError> {
        let method = Method::from_bytes(method.as_bytes()).map_err(|e| CalendarError::Xml(e.to_string()))?;
        let build = |token: Option<&str>| {
            let req = self
                .http
                .request(method.clone(), url.clone())
                .header("Depth", depth)
                .header(header::CONTENT_TYPE, "application/xml; charset=utf-8")
                .body(body.clone());
            match (&self.auth, token) {
                (CalDavAuth::Basic { user, password }, _) => req.basic_auth(user, Some(password)),
                (CalDavAuth::Bearer(_), Some(token)) => req.bearer_auth(token),
                (CalDavAuth::Bearer(_), None) => req,
            }
        };
        let token = match &self.auth {
            CalDavAuth::Bearer(session) => Some(session.access_token().await?),
            CalDavAuth::Basic { .. } => None,
        };
        let unreachable = |e: reqwest::Error| CalendarError::Unreachable(plain_reqwest(&e));
        let mut response = build(token.as_deref()).send().await.map_err(unreachable)?;
        if response.status() == StatusCode::UNAUTHORIZED {
            match (&self.auth, &token) {
                (CalDavAuth::Bearer(session), Some(rejected)) => {
                    let fresh = session.refresh_after_rejection(rejected).await?;
                    response = build(Some(&fresh)).send().await.map_err(unreachable)?;
                    if response.status() == StatusCode::UNAUTHORIZED {
                        // The token is fresh (the login server just renewed it), so the login
                        // is valid: this server wants a password of its own.
                        return Err(CalendarError::TokenRefused);
                    }
                }
                _ => return Err(CalendarError::BadCredentials),
            }
        }
        let status = response.status();
        if status != StatusCode::MULTI_STATUS && !status.is_success() {
            return Err(CalendarError::Refused { status: status.as_u16(), what: url.path().to_string() });
        }
        crate::http::text_limited(response, crate::http::DAV_ANSWER_LIMIT).await.map_err(|e| match e {
            e @ crate::http::BodyError::TooLarge { .. } => CalendarError::TooLarge(e.to_string()),
            e => CalendarError::Unreachable(e.to_string()),
        })
    }

    async fn propfind(&self, url: &Url, depth: &str, props: &str) -> Result<Vec<Response>, CalendarError> {
        self.counters.propfinds.fetch_add(1, Ordering::Relaxed);
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:" xmlns:c="{CALDAV}" xmlns:cs="{CS}"><d:prop>{props}</d:prop></d:propfind>"#
        );
        let text = self.send("PROPFIND", url, depth, body).await?;
        parse_multistatus(&text)
    }

    /// Asks the server who the member is (one PROPFIND on the root): `BadCredentials` when it
    /// refuses the user name or password.
    pub async fn check(&self) -> Result<(), CalendarError> {
        self.propfind(&self.root, "0", "<d:current-user-principal/>").await.map(drop)
    }

    /// Finds the calendar home: `current-user-principal`, then `calendar-home-set`.
    async fn home(&self) -> Result<Url, CalendarError> {
        if let Some(home) = self.state.lock().await.home.clone() {
            return Ok(home);
        }
        let answer = self.propfind(&self.root, "0", "<d:current-user-principal/>").await?;
        let principal = first_href(&answer, DAV, "current-user-principal")
            .ok_or_else(|| CalendarError::Discovery(format!("{} names no current-user-principal", self.root)))?;
        let principal = follow(&self.root, &self.root, &principal)?;
        let answer = self.propfind(&principal, "0", "<c:calendar-home-set/>").await?;
        let home = first_href(&answer, CALDAV, "calendar-home-set")
            .ok_or_else(|| CalendarError::Discovery("the account has no calendar-home-set".into()))?;
        let home = follow(&self.root, &principal, &home)?;
        tracing::debug!(%home, "found the calendar home");
        self.state.lock().await.home = Some(home.clone());
        Ok(home)
    }

    /// The member's calendars that hold events, with their change markers.
    pub async fn calendars(&self) -> Result<Vec<CalendarInfo>, CalendarError> {
        let home = self.home().await?;
        let answer = self.propfind(&home, "1", CALENDAR_PROPS).await?;
        Ok(calendars_in(answer, &home))
    }

    /// The resources of every calendar with an event overlapping `window`. A calendar whose
    /// marker is unchanged and whose cached range covers the window is not asked again. A
    /// calendar that fails becomes a warning; the others still come.
    pub async fn fetch(&self, window: Window) -> Result<Fetched, CalendarError> {
        let calendars = self.calendars().await?;
        let mut out = Fetched::default();
        let mut state = self.state.lock().await;
        state.cache.retain(|url, _| calendars.iter().any(|c| &c.url == url));
        for calendar in calendars {
            if let (Some(version), Some(cached)) = (&calendar.version, state.cache.get(&calendar.url)) {
                if &cached.version == version && cached.window.contains(&window) {
                    tracing::debug!(calendar = %calendar.name, "unchanged: using the cached events");
                    out.resources.extend(cached.resources.iter().cloned());
                    continue;
                }
            }
            let wide = Window { start: window.start, end: window.end + LOOK_AHEAD };
            match self.report(&calendar, &wide).await {
                Ok((resources, warnings)) => {
                    out.warnings.extend(warnings);
                    out.resources.extend(resources.iter().cloned());
                    match calendar.version {
                        Some(version) => {
                            state.cache.insert(calendar.url.clone(), Cached { version, window: wide, resources });
                        }
                        None => {
                            state.cache.remove(&calendar.url);
                        }
                    }
                }
                Err(e @ (CalendarError::Auth(_) | CalendarError::BadCredentials | CalendarError::Unreachable(_))) => return Err(e),
                Err(e) => {
                    tracing::warn!(calendar = %calendar.name, error = %e, "skipping a calendar");
                    out.warnings.push(format!("the calendar “{}” was skipped: {e}", calendar.name));
                }
            }
        }
        Ok(out)
    }

    async fn report(&self, calendar: &CalendarInfo, window: &Window) -> Result<(Vec<Resource>, Vec<String>), CalendarError> {
        self.counters.reports.fetch_add(1, Ordering::Relaxed);
        let fmt = "%Y%m%dT%H%M%SZ";
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<c:calendar-query xmlns:d="DAV:" xmlns:c="{CALDAV}">
  <d:prop><d:getetag/><c:calendar-data/></d:prop>
  <c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">
    <c:time-range start="{}" end="{}"/>
  </c:comp-filter></c:comp-filter></c:filter>
</c:calendar-query>"#,
            window.start.format(fmt),
            window.end.format(fmt)
        );
        let text = self.send("REPORT", &calendar.url, "1", body).await?;
        parse_report(&text, &calendar.name)
    }
}

/// A link from the server's answer, resolved against `base`, only when it stays on the origin
/// of `root` (scheme, host and port): every request carries the member's token or password, so
/// an answer must not choose another server for them.
fn follow(root: &Url, base: &Url, href: &str) -> Result<Url, CalendarError> {
    let url = base.join(href).map_err(|e| CalendarError::Xml(e.to_string()))?;
    if url.origin() != root.origin() {
        tracing::warn!(link = %url.origin().ascii_serialization(), "the calendar server linked to another server");
        return Err(CalendarError::OtherServer { origin: url.origin().ascii_serialization() });
    }
    Ok(url)
}

const CALENDAR_PROPS: &str =
    "<d:resourcetype/><d:displayname/><cs:getctag/><d:sync-token/><c:supported-calendar-component-set/>";

/// The calendars holding events in a Depth-1 PROPFIND answer on the calendar home.
pub fn parse_calendars(xml: &str, home: &Url) -> Result<Vec<CalendarInfo>, CalendarError> {
    Ok(calendars_in(parse_multistatus(xml)?, home))
}

fn calendars_in(answer: Vec<Response>, home: &Url) -> Vec<CalendarInfo> {
    let mut found = Vec::new();
    for response in answer {
        let Some(resourcetype) = response.prop(DAV, "resourcetype") else { continue };
        if !resourcetype.has_child(CALDAV, "calendar") {
            continue;
        }
        // Calendars that declare their components and leave VEVENT out hold only tasks.
        if let Some(set) = response.prop(CALDAV, "supported-calendar-component-set") {
            if !set.comps.is_empty() && !set.comps.iter().any(|c| c.eq_ignore_ascii_case("VEVENT")) {
                continue;
            }
        }
        // The home is on the root's origin (see `follow`); a calendar elsewhere is left out.
        let Ok(url) = follow(home, home, &response.href) else { continue };
        let name = response
            .prop(DAV, "displayname")
            .map(|p| p.text.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| url.path_segments().and_then(|mut s| s.rfind(|p| !p.is_empty())).unwrap_or("").to_string());
        let version = [response.prop(CS, "getctag"), response.prop(DAV, "sync-token")]
            .into_iter()
            .flatten()
            .map(|p| p.text.trim().to_string())
            .find(|v| !v.is_empty());
        found.push(CalendarInfo { url, name, version });
    }
    found
}

/// The calendar data of a REPORT answer; a response without data becomes a warning.
pub fn parse_report(xml: &str, calendar: &str) -> Result<(Vec<Resource>, Vec<String>), CalendarError> {
    let mut resources = Vec::new();
    let mut warnings = Vec::new();
    for response in parse_multistatus(xml)? {
        match response.prop(CALDAV, "calendar-data") {
            Some(data) if !data.text.trim().is_empty() => {
                resources.push(Resource { href: response.href.clone(), calendar: calendar.to_string(), ics: data.text.clone() })
            }
            _ => warnings.push(format!("{}: the server sent no calendar data", response.href)),
        }
    }
    Ok((resources, warnings))
}

/// One `<response>` of a multistatus: its href and the properties of its 200 propstats.
#[derive(Debug, Default, Clone)]
pub struct Response {
    pub href: String,
    pub props: Vec<Prop>,
}

/// One property: its namespace and name, all its text, the hrefs and child elements inside it,
/// and the `name` attributes of `comp` children (for supported-calendar-component-set).
#[derive(Debug, Default, Clone)]
pub struct Prop {
    pub ns: String,
    pub name: String,
    pub text: String,
    pub hrefs: Vec<String>,
    pub children: Vec<(String, String)>,
    pub comps: Vec<String>,
}

impl Prop {
    fn has_child(&self, ns: &str, name: &str) -> bool {
        self.children.iter().any(|(n, l)| n == ns && l == name)
    }
}

impl Response {
    fn prop(&self, ns: &str, name: &str) -> Option<&Prop> {
        self.props.iter().find(|p| p.ns == ns && p.name == name)
    }
}

fn first_href(responses: &[Response], ns: &str, name: &str) -> Option<String> {
    responses.iter().find_map(|r| r.prop(ns, name).and_then(|p| p.hrefs.first().cloned()))
}

fn xml_error(e: impl std::fmt::Display) -> CalendarError {
    CalendarError::Xml(e.to_string())
}

/// Parses a 207 multistatus body. Properties from propstats whose status is not 2xx (the
/// server's "404 not found" for properties it lacks) are left out.
pub fn parse_multistatus(xml: &str) -> Result<Vec<Response>, CalendarError> {
    let mut reader = NsReader::from_str(xml);
    // (namespace, local name) of each open element.
    let mut stack: Vec<(String, String)> = Vec::new();
    let mut responses = Vec::new();
    let mut response: Option<Response> = None;
    let mut propstat: Vec<Prop> = Vec::new();
    let mut status_ok = true;
    let mut prop: Option<Prop> = None;
    let mut text = String::new();
    let mut saw_multistatus = false;

    loop {
        let (resolved, event) = reader.read_resolved_event().map_err(xml_error)?;
        let ns = match resolved {
            ResolveResult::Bound(Namespace(n)) => n.to_string(),
            _ => String::new(),
        };
        match event {
            XmlEvent::Start(ref e) | XmlEvent::Empty(ref e) => {
                let local = e.local_name().as_ref().to_string();
                let empty = matches!(event, XmlEvent::Empty(_));
                let depth = stack.len();
                if depth == 0 {
                    if !(ns == DAV && local == "multistatus") {
                        return Err(CalendarError::Xml(format!("expected a multistatus answer, got <{local}>")));
                    }
                    saw_multistatus = true;
                }
                // Inside a <prop>: the property itself, or something inside it.
                let parent_is_prop = stack.last().is_some_and(|(n, l)| n == DAV && l == "prop");
                if parent_is_prop && response.is_some() {
                    prop = Some(Prop { ns: ns.clone(), name: local.clone(), ..Prop::default() });
                } else if let Some(p) = prop.as_mut() {
                    if stack.len() == prop_depth(&stack) + 1 {
                        p.children.push((ns.clone(), local.clone()));
                    }
                    if ns == CALDAV && local == "comp" {
                        if let Ok(Some(attr)) = e.try_get_attribute("name") {
                            p.comps.push(attr.value.to_string());
                        }
                    }
                }
                if ns == DAV && local == "response" && depth == 1 {
                    response = Some(Response::default());
                }
                if ns == DAV && local == "propstat" {
                    propstat.clear();
                    status_ok = true;
                }
                text.clear();
                if empty {
                    close(&ns, &local, &mut stack, &mut response, &mut responses, &mut propstat, &mut status_ok, &mut prop, &text);
                } else {
                    stack.push((ns, local));
                }
            }
            XmlEvent::End(_) => {
                let Some((ns, local)) = stack.pop() else {
                    return Err(CalendarError::Xml("an element closes that was never opened".into()));
                };
                close(&ns, &local, &mut stack, &mut response, &mut responses, &mut propstat, &mut status_ok, &mut prop, &text);
                text.clear();
            }
            XmlEvent::Text(t) => {
                let piece = t.xml10_content();
                text.push_str(&piece);
                if let Some(p) = prop.as_mut() {
                    p.text.push_str(&piece);
                }
            }
            XmlEvent::CData(t) => {
                let piece = t.xml10_content();
                text.push_str(&piece);
                if let Some(p) = prop.as_mut() {
                    p.text.push_str(&piece);
                }
            }
            XmlEvent::GeneralRef(r) => {
                let piece = match r.resolve_char_ref().map_err(xml_error)? {
                    Some(c) => c.to_string(),
                    None => match r.xml10_content().as_ref() {
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "amp" => "&".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => return Err(CalendarError::Xml(format!("unknown entity &{other};"))),
                    },
                };
                text.push_str(&piece);
                if let Some(p) = prop.as_mut() {
                    p.text.push_str(&piece);
                }
            }
            XmlEvent::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(CalendarError::Xml("the answer is cut off".into()));
    }
    if !saw_multistatus {
        return Err(CalendarError::Xml("the answer is empty".into()));
    }
    Ok(responses)
}

/// Depth (in `stack`) of the element holding the current property: the `prop` element's depth
/// plus one.
fn prop_depth(stack: &[(String, String)]) -> usize {
    stack.iter().rposition(|(n, l)| n == DAV && l == "prop").map(|i| i + 1).unwrap_or(0)
}

#[allow(clippy::too_many_arguments)]
fn close(
    ns: &str,
    local: &str,
    stack: &mut [(String, String)],
    response: &mut Option<Response>,
    responses: &mut Vec<Response>,
    propstat: &mut Vec<Prop>,
    status_ok: &mut bool,
    prop: &mut Option<Prop>,
    text: &str,
) {
    let parent_is_prop = stack.last().is_some_and(|(n, l)| n == DAV && l == "prop");
    if parent_is_prop {
        if let Some(p) = prop.take() {
            propstat.push(p);
        }
        return;
    }
    if let Some(p) = prop.as_mut() {
        if ns == DAV && local == "href" {
            p.hrefs.push(text.trim().to_string());
        }
        return;
    }
    let parent = stack.last().map(|(n, l)| (n.as_str(), l.as_str()));
    match (ns, local) {
        (DAV, "href") if parent == Some((DAV, "response")) => {
            if let Some(r) = response.as_mut() {
                r.href = text.trim().to_string();
            }
        }
        (DAV, "status") if parent == Some((DAV, "propstat")) => {
            // "HTTP/1.1 200 OK": keep only 2xx propstats.
            *status_ok = text.split_whitespace().nth(1).is_some_and(|code| code.starts_with('2'));
        }
        (DAV, "propstat") => {
            if *status_ok {
                if let Some(r) = response.as_mut() {
                    r.props.append(propstat);
                }
            }
            propstat.clear();
        }
        (DAV, "response") => {
            if let Some(r) = response.take() {
                responses.push(r);
            }
        }
        _ => {}
    }
}
