#!/usr/bin/env python3
"""A TEST DOUBLE of Rocket.Chat's REST and DDP (realtime) API. This is NOT Rocket.Chat.

Rocket.Chat cannot run on the test machines, so this one aiohttp process reproduces what
Passerelle uses, rebuilt on Rocket.Chat's own source (RocketChat/Rocket.Chat, read for 6.x and
7.x). Every behaviour names the file it comes from; "unverified" marks what the source read did
not settle. Paths are under apps/meteor/ unless they start with ee/ or meteor/ (Meteor itself).

Two API generations, chosen with --rocketchat-version (default 7.x):
  6.x  the Restivus API (app/api/server/api.ts, `_initAuth`): a failed login answers 401
       {"status":"error","error":e.error,"details":e.details,"message":e.reason||e.message}
       whatever the error; unauthenticated calls answer 401 {"status":"error","message":...}.
  7.x  the Express API (app/api/server/ApiClass.ts, after "chore: remove restivus"): a login
       that fails with a Meteor.Error answers 401 {"success":false,"error",...,"status":"error",
       "details","message"}; any other error (an expired token, an unknown service, a Match
       failure on the body) answers 500 {"success":false,"error":"Internal server error"}.

  POST /api/v1/login  {"serviceName","accessToken","expiresIn"}: the access-token login handler
        (app/lib/server/oauth/oauth.ts) then the custom OAuth service
        (app/custom-oauth/server/custom_oauth_server.ts), which checks the token at the REAL
        Keycloak's userinfo, sending it as the service's "token sent via" setting says (header:
        Authorization: Bearer; payload: ?access_token=). Two-factor users get `totp-required`
        (app/2fa/server/loginHandler.ts, server/lib/2fa/code/index.ts).
  GET  /api/v1/subscriptions.get[?updatedSince=ISO]   {"update":[...],"remove":[...],"success":true}
  GET  /api/v1/me, GET /api/info
  POST /api/v1/logout  (ApiClass.ts / api.ts `_initAuth`, authRequired): the request's token is
        removed; {"status":"success","data":{"message":"You've been logged out!"}} (not checked
        against a running server)
  REST rate limit (ApiClass.ts `enforceRateLimit`, settings API_Enable_Rate_Limiter_Limit_Calls_
        Default = 10, ..._Time_Default = 60000): per client IP and route, every limited route
        answers X-RateLimit-Limit / -Remaining / -Reset (Unix ms); over the limit 429
        {"success":false,"error":"Error, too many requests. ... [error-too-many-requests]"} and
        NO Retry-After.
  GET  /websocket  DDP (meteor/ddp-server livedata_server.js): {"server_id":"0"} first; connect
        needs "version" in "support"; method "login" {"resume"}; "UserPresence:away" /
        "UserPresence:online" / "UserPresence:setDefaultStatus" (server/methods/userPresence.ts);
        sub "stream-notify-user" on "<userId>/<event>" (server/modules/notifications/
        notifications.module.ts: only one's own user id); DDP rate limits (app/lib/server/startup/
        rateLimiter.ts, meteor/ddp-rate-limiter); pings both ways (Meteor's heartbeat).
  Presence per connection (server/startup/presence.ts; ee/packages/presence/src/Presence.ts and
        lib/processConnectionStatus.ts): a DDP login adds a connection "online" (6.x: only
        `resume` logins); the member's status is online if any connection is, else away if one
        is away, else offline; a default status other than online wins over the connections.
  Messages posted through the control API follow the server's rules for counts
        (app/lib/server/lib/notifyUsersOnMessage.ts; threads: app/threads/server/functions.ts
        and hooks/aftersavemessage.ts) and notifications (app/lib/server/lib/
        sendNotificationsOnMessage.ts, app/lib/server/functions/notifications/desktop.ts).
        Default settings (server/settings/*.ts): Unread_Count = user_and_group_mentions_only,
        Unread_Count_DM = all_messages, Unread_Count_Omni = all_messages,
        Accounts_Default_User_Preferences_desktopNotifications = all.

The control API (not Rocket.Chat's; for tests) lives under /_control/:
  POST /_control/rooms          {"t":"c"|"p"|"d"|"l","name","fname","members":[usernames]} -> {"rid"}
  POST /_control/messages       {"rid"|"room","from","text","tmid"?} -> {"_id"}: counts, stream
                                events and notifications like a posted message
  POST /_control/subscriptions  {"user","rid"|"room","set":{...}} or {"user","rid","remove":true}
  POST /_control/users          {"user","preferences":{...},"two_factor":bool,"status_default":s}
  POST /_control/settings       {name: value} for the settings named above
  POST /_control/touch          {"rid"|"room"}: the room is sent again unchanged (an edit, a reaction)
  POST /_control/personal-token {"user"} -> {"userId","token"}
  POST /_control/faults         any of: {"drop_sockets":user} (no close frame), {"expire_tokens":user}
                                (tokens die, sockets close), {"rate_limit":{"endpoint","count"}}
                                (the next calls get the real 429), {"ddp_rate_limit":{"user","wait_ms",
                                "method","count"}} (the next DDP calls get the real
                                too-many-requests error), {"malformed_rest":{"endpoint","count"}},
                                {"identity_fails":n} (the next identity checks fail as
                                Keycloak's 401 makes them), {"malformed_frames":user}, {"access_token_login":false|true},
                                {"silence":user}, {"refuse_sockets":true|false} (/websocket 503)
  GET  /_control/stats          requests per endpoint and user, a request log, socket connects,
                                pongs, open sockets, presence and notifications per user

Usage: rocketchat.py [--port 18083] [--issuer URL] [--service keycloak] [--ping-interval S]
                     [--rocketchat-version 6.x|7.x] [--token-sent-via header|payload]
With --port 0 it picks a free port. It prints the port as its first line of output.
"""
import argparse
import asyncio
import hashlib
import json
import math
import random
import re
import sys
import time
from datetime import datetime, timezone

from aiohttp import ClientSession, WSMsgType, web

ID_CHARS = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"
TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def new_id(n=17):
    return "".join(random.choice(ID_CHARS) for _ in range(n))


def new_token():
    return "".join(random.choice(TOKEN_CHARS) for _ in range(43))


def now_ms():
    return int(time.time() * 1000)


def iso(ms):
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_iso(text):
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except (ValueError, AttributeError):
        return None


DATE_KEYS = {"_updatedAt", "ts", "ls", "_deletedAt", "lm", "lr"}


def dated(value, ejson):
    """Dates as ISO strings (REST) or EJSON {"$date": ms} (DDP), recursively."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in DATE_KEYS and isinstance(v, int):
                out[k] = {"$date": v} if ejson else iso(v)
            else:
                out[k] = dated(v, ejson)
        return out
    if isinstance(value, list):
        return [dated(v, ejson) for v in value]
    return value


class MeteorError(Exception):
    """meteor/meteor errors.js: `message` is "reason [error]"."""

    def __init__(self, error, reason=None, details=None):
        super().__init__(f"{reason} [{error}]" if reason else f"[{error}]")
        self.error, self.reason, self.details = error, reason, details


class PlainError(Exception):
    """A JavaScript `Error` (or Match.Error, ConfigError): not a Meteor.Error."""


# Meteor's default DDP rate-limit text (meteor/ddp-rate-limiter ddp-rate-limiter.js); Rocket.Chat
# keeps it (app/lib/server/startup/rateLimiter.ts sets no message).
def ddp_rate_limit_reason(ms):
    return f"Error, too many requests. Please slow down. You must wait {math.ceil(ms / 1000)} seconds before trying again."


# ApiClass.ts / api.ts `enforceRateLimit`.
def api_rate_limit_reason(ms):
    return (f"Error, too many requests. Please slow down. You must wait {math.ceil(ms / 1000)} seconds "
            "before trying this endpoint again.")


class Window:
    """meteor/rate-limit: one fixed window per rule; counters reset when it has passed."""

    def __init__(self, allowed, interval_ms):
        self.allowed, self.interval_ms = allowed, interval_ms
        self.reset_at = now_ms()
        self.counters = {}

    def hit(self, key):
        """increment then check: (allowed, left, ms to reset)."""
        now = now_ms()
        if now - self.reset_at >= self.interval_ms:
            self.counters.clear()
            self.reset_at = now
        n = self.counters.get(key, 0) + 1
        self.counters[key] = n
        to_reset = self.interval_ms - (now - self.reset_at)
        if n > self.allowed:
            return False, 0, to_reset
        return True, self.allowed - n, to_reset


class Server:
    def __init__(self, args):
        self.issuer = args.issuer.rstrip("/")
        self.services = set(args.service or ["keycloak"])
        self.version = args.rocketchat_version
        self.token_sent_via = args.token_sent_via
        self.ping_interval = args.ping_interval
        self.ping_timeout = args.ping_timeout
        self.users = {}  # id -> user
        self.by_name = {}  # username -> id
        self.tokens = {}  # authToken -> user id
        self.rooms = {}  # rid -> room
        self.messages = {}  # _id -> message
        self.subs = {}  # (rid, uid) -> subscription
        self.trash = []  # removed subscriptions {_id, _deletedAt, uid}
        self.sockets = {}  # uid -> set of Conn
        self.last_ms = 0
        self.access_token_login = not args.no_access_token_login
        self.refuse_sockets = False
        # server/settings/*.ts defaults.
        self.settings = {
            "Unread_Count": "user_and_group_mentions_only",
            "Unread_Count_DM": "all_messages",
            "Unread_Count_Omni": "all_messages",
            "Accounts_Default_User_Preferences_desktopNotifications": "all",
            "Accounts_TwoFactorAuthentication_Enabled": True,
            "API_Enable_Rate_Limiter": True,
            "API_Enable_Rate_Limiter_Limit_Calls_Default": 10,
            "API_Enable_Rate_Limiter_Limit_Time_Default": 60000,
        }
        self.api_windows = {}  # route -> Window
        self.forced_429 = {}  # endpoint -> count
        self.forced_ddp_limit = {}  # (username, method) -> count
        self.malformed = {}  # endpoint -> count
        self.identity_fails = 0  # the next identity checks that fail as for an expired token
        self.login_tokens = []  # a short hash of each access token a login brought
        self.requests = {}  # "METHOD /path" -> {"total": n, username: n}
        self.log = []
        self.connects = {}
        self.pongs = {}
        self.notifications = {}  # username -> [payload]
        self.http = None

    # --- data -------------------------------------------------------------------------------
    def stamp(self):
        self.last_ms = max(now_ms(), self.last_ms + 1)
        return self.last_ms

    def user(self, username, name=None, email=None):
        uid = self.by_name.get(username)
        if uid is None:
            uid = new_id()
            self.by_name[username] = uid
            self.users[uid] = {
                "_id": uid,
                "username": username,
                "name": name or username.capitalize(),
                "emails": [{"address": email or f"{username}@example.coop", "verified": True}],
                "status": "offline",
                "statusConnection": "offline",
                "statusDefault": "online",
                "active": True,
                "roles": ["user"],
                "type": "user",
                # The user's preferences as getUserInfo sends them (app/api/server/helpers/
                # getUserInfo.ts); unreadAlert defaults to true (server/settings/accounts.ts).
                "settings": {"preferences": {"unreadAlert": True, "highlights": []}},
                "__two_factor": False,
            }
        elif name:
            self.users[uid]["name"] = name
        return self.users[uid]

    def public_user(self, user):
        return {k: v for k, v in user.items() if not k.startswith("__")}

    def room_by(self, body):
        rid = body.get("rid")
        if rid in self.rooms:
            return self.rooms[rid]
        for room in self.rooms.values():
            if room.get("name") and room.get("name") == body.get("room"):
                return room
        raise web.HTTPNotFound(text=json.dumps({"success": False, "error": "room not found"}), content_type="application/json")

    def sub_view(self, sub):
        return {k: v for k, v in sub.items() if not k.startswith("__")}

    # --- presence ---------------------------------------------------------------------------
    def update_presence(self, uid):
        """ee/packages/presence/src/lib/processConnectionStatus.ts."""
        user = self.users[uid]
        status_connection = "offline"
        for conn in self.sockets.get(uid, ()):
            if conn.presence is None:
                continue
            if status_connection == "online":
                break
            if conn.presence != "offline":
                status_connection = conn.presence
        default = user["statusDefault"]
        status = status_connection if status_connection == "offline" or default == "online" else default
        user["statusConnection"], user["status"] = status_connection, status

    # --- streams ----------------------------------------------------------------------------
    async def notify(self, uid, event, args):
        name = f"{uid}/{event}"
        frame = json.dumps({"msg": "changed", "collection": "stream-notify-user", "id": "id",
                            "fields": {"eventName": name, "args": dated(args, True)}})
        for conn in list(self.sockets.get(uid, ())):
            if name in conn.streams and not conn.silent:
                try:
                    await conn.ws.send_str(frame)
                except ConnectionError:
                    pass

    async def sub_changed(self, sub, action="updated"):
        await self.notify(sub["u"]["_id"], "subscriptions-changed", [action, self.sub_view(sub)])

    # --- REST -------------------------------------------------------------------------------
    def count(self, request, username):
        key = f"{request.method} {request.path}"
        entry = self.requests.setdefault(key, {"total": 0})
        entry["total"] += 1
        if username:
            entry[username] = entry.get(username, 0) + 1
        self.log.append({"t": time.time(), "request": key, "query": request.query_string, "user": username,
                         "status": None})
        return self.log[-1]

    def json(self, status, body, headers=None):
        if self.log:
            self.log[-1]["status"] = status
        return web.json_response(body, status=status, headers=headers)

    def not_logged_in(self):
        # ApiClass.ts: `unauthorized('You must be logged in to do this.')` plus the old API's
        # status/message (kept until 8.0); 6.x Restivus answers only the old pair.
        body = {"status": "error", "message": "You must be logged in to do this."}
        if self.version == "7.x":
            body = {"success": False, "error": "You must be logged in to do this.", **body}
        return self.json(401, body)

    def rate_limit(self, request, endpoint):
        """ApiClass.ts `enforceRateLimit`: headers on every limited route, 429 over the limit.
        Returns (headers, error response or None)."""
        limit = self.settings["API_Enable_Rate_Limiter_Limit_Calls_Default"]
        if not self.settings["API_Enable_Rate_Limiter"]:
            return {}, None
        window = self.api_windows.get(endpoint)
        if window is None or window.allowed != limit:
            window = self.api_windows[endpoint] = Window(limit, self.settings["API_Enable_Rate_Limiter_Limit_Time_Default"])
        allowed, left, to_reset = window.hit(request.remote)
        if self.forced_429.get(endpoint, 0) > 0:
            self.forced_429[endpoint] -= 1
            allowed, left = False, 0
        headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(left),
                   "X-RateLimit-Reset": str(now_ms() + to_reset)}
        if allowed:
            return headers, None
        error = MeteorError("error-too-many-requests", api_rate_limit_reason(to_reset))
        if self.log:
            self.log[-1]["reset_ms"] = now_ms() + to_reset
        return headers, self.json(429, {"success": False, "error": str(error)}, headers)

    def malformed_answer(self, endpoint):
        if self.malformed.get(endpoint, 0) > 0:
            self.malformed[endpoint] -= 1
            return web.Response(text='{"update": [{"_id": "x", "rid": ', content_type="application/json")
        return None

    def authenticated(self, request):
        uid = request.headers.get("X-User-Id")
        token = request.headers.get("X-Auth-Token")
        if uid and token and self.tokens.get(token) == uid:
            return self.users[uid]
        return None

    def username_of(self, request):
        uid = request.headers.get("X-User-Id")
        return self.users.get(uid, {}).get("username") if uid else None

    async def access_token_login_handler(self, options):
        """app/lib/server/oauth/oauth.ts then custom_oauth_server.ts `registerAccessTokenService`."""
        if isinstance(options.get("accessToken"), str):
            self.login_tokens.append(hashlib.sha256(options["accessToken"].encode()).hexdigest()[:12])
        if not isinstance(options.get("serviceName"), str):
            raise PlainError("Match error: Expected string, got undefined in field serviceName")
        if not self.access_token_login or options["serviceName"] not in self.services:
            raise PlainError(f"Unexpected AccessToken service {options['serviceName']}")
        expires_in = options.get("expiresIn")
        if not isinstance(options.get("accessToken"), str):
            raise PlainError("Match error: Expected string in field accessToken")
        # Match.Integer: a JSON number without a fraction (unverified: the exact wording).
        if isinstance(expires_in, bool) or not isinstance(expires_in, int):
            raise PlainError("Match error: Expected Integer in field expiresIn")
        userinfo = f"{self.issuer}/protocol/openid-connect/userinfo"
        if self.identity_fails > 0:
            # What custom_oauth_server.ts `getIdentity` throws when Keycloak answers 401.
            self.identity_fails -= 1
            raise PlainError(f"Failed to fetch identity from {options['serviceName']} at {userinfo}. Unauthorized")
        headers, params = {"Accept": "application/json"}, {}
        if self.token_sent_via == "header":
            headers["Authorization"] = f"Bearer {options['accessToken']}"
        else:
            params["access_token"] = options["accessToken"]
        async with self.http.get(userinfo, headers=headers, params=params) as r:
            if r.status >= 400:
                raise PlainError(f"Failed to fetch identity from {options['serviceName']} at {userinfo}. {r.reason}")
            info = await r.json(content_type=None)
        if not info.get("preferred_username"):
            raise PlainError("Service data for service keycloak must include id")
        user = self.user(info["preferred_username"], info.get("name"), info.get("email"))
        # app/2fa/server/loginHandler.ts: every login type but resume/proxy/cas asks for the
        # second factor of a user who has one.
        if user["__two_factor"] and self.settings["Accounts_TwoFactorAuthentication_Enabled"]:
            raise MeteorError("totp-required", "TOTP Required",
                              {"method": "totp", "codeGenerated": False, "availableMethods": ["totp"]})
        return user

    def login_failure(self, e, headers):
        if self.version == "6.x" or isinstance(e, MeteorError):
            # 6.x api.ts: every error is 401; 7.x ApiClass.ts: only Meteor.Error is.
            body = {"status": "error"}
            if isinstance(e, MeteorError):
                body.update({"error": e.error, "message": e.reason or str(e)})
                if e.details is not None:
                    body["details"] = e.details
            else:
                body["message"] = str(e)
            if self.version == "7.x":
                body = {"success": False, **body}
            return self.json(401, body, headers)
        return self.json(500, {"success": False, "error": "Internal server error"}, headers)

    async def login(self, request):
        self.count(request, None)
        headers, limited = self.rate_limit(request, "login")
        if limited:
            return limited
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            # unverified: the body parser's answer to broken JSON.
            return self.json(400, {"success": False, "error": "Invalid JSON body"}, headers)
        try:
            if not isinstance(body, dict):
                raise PlainError("Match error: Expected object, got " + type(body).__name__)
            if body.get("accessToken"):
                user = await self.access_token_login_handler(body)
            else:
                # meteor/accounts-base accounts_server.js `_runLoginHandlers`: nobody took it.
                raise MeteorError(400, "Unrecognized options for login request")
        except (MeteorError, PlainError) as e:
            return self.login_failure(e, headers)
        token = new_token()
        self.tokens[token] = user["_id"]
        self.log[-1]["user"] = user["username"]
        entry = self.requests["POST /api/v1/login"]
        entry[user["username"]] = entry.get(user["username"], 0) + 1
        answer = {"status": "success", "data": {"userId": user["_id"], "authToken": token, "me": self.public_user(user)}}
        if self.version == "7.x":
            answer["success"] = True
        return self.json(200, answer, headers)

    async def me(self, request):
        self.count(request, self.username_of(request))
        user = self.authenticated(request)
        if not user:
            return self.not_logged_in()
        headers, limited = self.rate_limit(request, "me")
        if limited:
            return limited
        return self.json(200, {**self.public_user(user), "success": True}, headers)

    async def logout(self, request):
        self.count(request, self.username_of(request))
        user = self.authenticated(request)
        if not user:
            return self.not_logged_in()
        headers, limited = self.rate_limit(request, "logout")
        if limited:
            return limited
        self.tokens.pop(request.headers.get("X-Auth-Token"), None)
        return self.json(200, {"status": "success", "data": {"message": "You've been logged out!"}}, headers)

    async def subscriptions_get(self, request):
        self.count(request, self.username_of(request))
        user = self.authenticated(request)
        if not user:
            return self.not_logged_in()
        headers, limited = self.rate_limit(request, "subscriptions.get")
        if limited:
            return limited
        bad = self.malformed_answer("subscriptions.get")
        if bad:
            return bad
        since = None
        if "updatedSince" in request.query:
            since = parse_iso(request.query["updatedSince"])
            if since is None:
                return self.json(400, {"success": False, "error": "Invalid date for `updatedSince`"}, headers)
        uid = user["_id"]
        update = [self.sub_view(s) for s in self.subs.values()
                  if s["u"]["_id"] == uid and (since is None or s["_updatedAt"] > since)]
        remove = [{"_id": t["_id"], "_deletedAt": t["_deletedAt"]} for t in self.trash
                  if t["uid"] == uid and since is not None and t["_deletedAt"] > since]
        return self.json(200, {"update": dated(update, False), "remove": dated(remove, False), "success": True}, headers)

    async def info(self, request):
        return web.json_response({"version": "7.4.0" if self.version == "7.x" else "6.13.0", "success": True})

    # --- DDP --------------------------------------------------------------------------------
    async def websocket(self, request):
        if self.refuse_sockets:
            # As a proxy that does not pass websockets would: a plain error page.
            return web.Response(status=503, text="Service Unavailable")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Conn(ws, request)
        await ws.send_str(json.dumps({"server_id": "0"}))
        pinger = asyncio.create_task(self.heartbeat(conn))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                conn.last_recv = time.monotonic()
                if conn.silent:
                    continue
                try:
                    m = json.loads(msg.data)
                    assert isinstance(m, dict)
                except (json.JSONDecodeError, AssertionError):
                    await ws.send_str(json.dumps({"msg": "error", "reason": "Bad request"}))
                    continue
                await self.ddp(conn, m)
        finally:
            pinger.cancel()
            if conn.uid:
                # server/startup/presence.ts: connection.onClose -> Presence.removeConnection.
                self.sockets.get(conn.uid, set()).discard(conn)
                self.update_presence(conn.uid)
        return ws

    async def heartbeat(self, conn):
        """Meteor's heartbeat: ping a socket quiet for an interval; close it if it stays quiet."""
        while not conn.ws.closed:
            await asyncio.sleep(self.ping_interval / 4)
            quiet = time.monotonic() - conn.last_recv
            if conn.ping_sent is not None:
                if conn.last_recv > conn.ping_sent:
                    conn.ping_sent = None
                elif time.monotonic() - conn.ping_sent > self.ping_timeout:
                    await conn.ws.close()
                    return
            elif quiet > self.ping_interval and not conn.silent:
                conn.ping_sent = time.monotonic()
                await conn.ws.send_str(json.dumps({"msg": "ping"}))

    def ddp_limited(self, conn, kind, name, params=None):
        """app/lib/server/startup/rateLimiter.ts defaults: per connection and method 10 calls in
        10 s, per user and method 20 in 10 s (stream subscriptions four times that); the IP rule
        spares 127.0.0.1. Returns the ms to wait, or None."""
        uid = conn.uid
        if uid is None and name == "login" and params and isinstance(params[0], dict):
            # Not logged in yet: the forced fault names the user whose token this is.
            uid = self.tokens.get(params[0].get("resume"))
        username = self.users[uid]["username"] if uid else None
        forced, wait_ms = self.forced_ddp_limit.get((username, name), (0, 0))
        if forced > 0:
            self.forced_ddp_limit[(username, name)] = (forced - 1, wait_ms)
            return wait_ms
        factor = 4 if name.startswith("stream-") else 1
        windows = [(conn.by_method, 10 * factor, conn.id)]
        if conn.uid:
            windows.append((self.user_windows(conn.uid), 20 * factor, conn.uid))
        for table, allowed, key in windows:
            window = table.setdefault((kind, name), Window(allowed, 10000 * factor))
            ok, _, to_reset = window.hit(key)
            if not ok:
                return to_reset
        return None

    def user_windows(self, uid):
        return self.users[uid].setdefault("__ddp_windows", {})

    async def ddp(self, conn, m):
        send = lambda v: conn.ws.send_str(json.dumps(v))
        kind = m.get("msg")
        if kind == "connect":
            support = m.get("support")
            if (isinstance(m.get("version"), str) and isinstance(support, list)
                    and all(isinstance(s, str) for s in support) and m["version"] in support and m["version"] == "1"):
                conn.connected = True
                await send({"msg": "connected", "session": conn.id})
            else:
                await send({"msg": "failed", "version": "1"})
                await conn.ws.close()
            return
        if not conn.connected:
            await send({"msg": "error", "reason": "Must connect first", "offendingMessage": m})
            return
        if kind == "ping":
            await send({"msg": "pong", **({"id": m["id"]} if "id" in m else {})})
        elif kind == "pong":
            if conn.uid:
                name = self.users[conn.uid]["username"]
                self.pongs[name] = self.pongs.get(name, 0) + 1
        elif kind == "method":
            mid, method = m.get("id"), m.get("method")
            wait = self.ddp_limited(conn, "method", method, m.get("params"))
            if wait is not None:
                reason = ddp_rate_limit_reason(wait)
                await send({"msg": "result", "id": mid, "error": {
                    "isClientSafe": True, "error": "too-many-requests", "reason": reason,
                    "details": {"timeToReset": wait}, "message": f"{reason} [too-many-requests]",
                    "errorType": "Meteor.Error"}})
            else:
                await send(await self.method(conn, mid, method, m.get("params") or []))
            await send({"msg": "updated", "methods": [mid]})
        elif kind == "sub":
            await self.sub(conn, m)
        elif kind == "unsub":
            conn.streams.discard(conn.sub_ids.pop(m.get("id"), None))
            await send({"msg": "nosub", "id": m.get("id")})

    def meteor_error(self, mid, error, reason):
        return {"msg": "result", "id": mid, "error": {
            "isClientSafe": True, "error": error, "reason": reason, "message": f"{reason} [{error}]",
            "errorType": "Meteor.Error"}}

    async def method(self, conn, mid, method, params):
        if method == "login":
            resume = params[0].get("resume") if params and isinstance(params[0], dict) else None
            uid = self.tokens.get(resume) if resume else None
            if not uid:
                # meteor/accounts-base: a resume token the server does not know.
                return self.meteor_error(mid, 403, "You've been logged out by the server. Please log in again.")
            conn.uid = uid
            self.sockets.setdefault(uid, set()).add(conn)
            name = self.users[uid]["username"]
            self.connects[name] = self.connects.get(name, 0) + 1
            # server/startup/presence.ts: Accounts.onLogin -> Presence.newConnection (status
            # online). 6.x registers `resume` logins only; 7.x every DDP login.
            conn.presence = "online"
            self.update_presence(uid)
            return {"msg": "result", "id": mid, "result": {
                "id": uid, "token": resume, "tokenExpires": {"$date": now_ms() + 90 * 86400000}, "type": "resume"}}
        if method in ("UserPresence:away", "UserPresence:online"):
            # server/methods/userPresence.ts: Presence.setConnectionStatus(userId, status, connection.id).
            if not conn.uid:
                return {"msg": "result", "id": mid}
            changed = conn.presence is not None
            if changed:
                conn.presence = "away" if method.endswith("away") else "online"
                self.update_presence(conn.uid)
            return {"msg": "result", "id": mid, "result": changed}
        if method == "UserPresence:setDefaultStatus":
            if not conn.uid:
                return {"msg": "result", "id": mid}
            self.users[conn.uid]["statusDefault"] = params[0] if params else "online"
            self.update_presence(conn.uid)
            return {"msg": "result", "id": mid, "result": True}
        return self.meteor_error(mid, 404, f"Method '{method}' not found")

    async def sub(self, conn, m):
        send = lambda v: conn.ws.send_str(json.dumps(v))
        sid, params, name = m.get("id"), m.get("params") or [], m.get("name")
        if name != "stream-notify-user":
            await send({"msg": "nosub", "id": sid, "error": {
                "isClientSafe": True, "error": 404, "reason": f"Subscription '{name}' not found",
                "message": f"Subscription '{name}' not found [404]", "errorType": "Meteor.Error"}})
            return
        wait = self.ddp_limited(conn, "subscription", name)
        if wait is not None:
            reason = ddp_rate_limit_reason(wait)
            await send({"msg": "nosub", "id": sid, "error": {
                "isClientSafe": True, "error": "too-many-requests", "reason": reason, "details": {"timeToReset": wait},
                "message": f"{reason} [too-many-requests]", "errorType": "Meteor.Error"}})
            return
        event = params[0] if params else ""
        # notifications.module.ts streamUser.allowRead: one's own user id only (unverified: the
        # exact nosub error of a refused stream).
        if not conn.uid or not isinstance(event, str) or not event.startswith(conn.uid + "/"):
            await send({"msg": "nosub", "id": sid, "error": {
                "isClientSafe": True, "error": "not-allowed", "reason": "Not allowed",
                "message": "Not allowed [not-allowed]", "errorType": "Meteor.Error"}})
            return
        conn.streams.add(event)
        conn.sub_ids[sid] = event
        await send({"msg": "ready", "subs": [sid]})

    # --- the server's rules for a new message ------------------------------------------------
    def unread_setting(self, t):
        """notifyUsersOnMessage.ts `getUnreadSettingCount`."""
        return self.settings["Unread_Count_DM" if t == "d" else "Unread_Count_Omni" if t == "l" else "Unread_Count"]

    def touch(self, sub, **set_fields):
        sub.update(set_fields)
        sub["__touched"] = True

    def mentions_of(self, text, sender):
        """notifyUsersOnMessage.ts `getMentions`: @all, @here, users (not the sender)."""
        names = set(re.findall(r"@([\w.-]+)", text))
        to_all, to_here = "all" in names, "here" in names
        ids = [self.by_name[n] for n in sorted(names) if n in self.by_name and self.by_name[n] != sender["_id"]]
        mentions = ([{"_id": "all", "username": "all"}] if to_all else []) + \
                   ([{"_id": "here", "username": "here"}] if to_here else []) + \
                   [{"_id": i, "username": self.users[i]["username"], "name": self.users[i]["name"], "type": "user"} for i in ids]
        return to_all, to_here, ids, mentions

    def highlighted(self, uid, text):
        highlights = self.users[uid]["settings"]["preferences"].get("highlights") or []
        return any(h and h.lower() in text.lower() for h in highlights)

    async def c_messages(self, request):
        body = await request.json()
        room = self.room_by(body)
        sender = self.user(body["from"])
        text = body.get("text", "")
        tmid = body.get("tmid")
        now = self.stamp()
        to_all, to_here, mention_ids, mentions = self.mentions_of(text, sender)
        message = {"_id": new_id(), "rid": room["_id"], "msg": text, "ts": now, "_updatedAt": now,
                   "u": {"_id": sender["_id"], "username": sender["username"], "name": sender["name"]},
                   "mentions": mentions}
        members = [uid for (rid, uid) in self.subs if rid == room["_id"]]
        highlight_ids = [uid for uid in members if uid != sender["_id"] and self.highlighted(uid, text)]
        followers = []
        if tmid:
            parent = self.messages.get(tmid)
            if parent is None:
                raise web.HTTPNotFound(text='{"success":false,"error":"no such thread"}', content_type="application/json")
            message["tmid"] = tmid
            # threads/server/hooks/aftersavemessage.ts: the thread's followers (its replies, else
            # the parent's author) and the mentioned, not the sender, are alerted (not counted in
            # `unread`); functions.ts `reply`: followers get the thread in `tunread` (and in
            # `tunreadGroup` for @all/@here), the mentioned and highlighted in `tunreadUser`.
            replies = parent.get("replies") or [parent["u"]["_id"]]
            followers = [u for u in dict.fromkeys(replies + mention_ids) if u != sender["_id"]]
            parent["replies"] = list(dict.fromkeys(replies + mention_ids + [sender["_id"]]))
            room["msgs"] += 1
            for uid in members:
                sub = self.subs[(room["_id"], uid)]
                if uid in followers:
                    self.touch(sub, alert=True, open=True)
                    if uid not in mention_ids:
                        sub.setdefault("tunread", [])
                        if tmid not in sub["tunread"]:
                            sub["tunread"].append(tmid)
                        if to_all or to_here:
                            sub.setdefault("tunreadGroup", []).append(tmid)
                if uid in mention_ids or uid in highlight_ids:
                    self.touch(sub, alert=True, open=True)
                    for field in ("tunread", "tunreadUser"):
                        sub.setdefault(field, [])
                        if tmid not in sub[field]:
                            sub[field].append(tmid)
        else:
            # notifyUsersOnMessage.ts `notifyUsersOnMessage` / `updateUsersSubscriptions`.
            room["lastMessage"] = message
            room["lm"] = now
            room["msgs"] += 1
            unread_count = self.unread_setting(room["t"])
            user_ids = list(dict.fromkeys(mention_ids + highlight_ids))
            direct = room["t"] in ("d", "l")
            for uid in members:
                if uid == sender["_id"]:
                    continue
                sub = self.subs[(room["_id"], uid)]
                if user_ids:
                    # Priority to user mentions over group mentions.
                    if uid in user_ids:
                        inc = 1 if direct or unread_count in ("all_messages", "user_mentions_only", "user_and_group_mentions_only") else 0
                        self.touch(sub, userMentions=sub.get("userMentions", 0) + 1, unread=sub.get("unread", 0) + inc,
                                   alert=True, open=True)
                elif to_all or to_here:
                    inc = 1 if direct or unread_count in ("all_messages", "group_mentions_only", "user_and_group_mentions_only") else 0
                    self.touch(sub, groupMentions=sub.get("groupMentions", 0) + 1, unread=sub.get("unread", 0) + inc,
                               alert=True, open=True)
                if not to_all and not to_here and unread_count == "all_messages" and uid not in user_ids:
                    self.touch(sub, unread=sub.get("unread", 0) + 1)
                # Every other subscription is alerted and opened, without counting.
                self.touch(sub, alert=True, open=True)
        self.messages[message["_id"]] = message
        room["_updatedAt"] = now
        own = self.subs.get((room["_id"], sender["_id"]))
        if own is not None:
            self.touch(own, ls=now)
        for uid in members:
            sub = self.subs[(room["_id"], uid)]
            if sub.pop("__touched", False):
                sub["_updatedAt"] = self.stamp()
                await self.sub_changed(sub)
            if not tmid:
                await self.notify(uid, "rooms-changed", ["updated", room])
        for uid in members:
            if uid == sender["_id"]:
                continue
            await self.maybe_notify(uid, room, message, sender, to_all, to_here, mention_ids, uid in highlight_ids,
                                    uid in followers)
        return web.json_response({"_id": message["_id"], "success": True})

    async def maybe_notify(self, uid, room, message, sender, to_all, to_here, mention_ids, highlighted, follower):
        """sendNotificationsOnMessage.ts (which subscriptions are looked at) and desktop.ts
        `shouldNotifyDesktop` (whether a desktop notification goes out), then `notifyDesktopUser`
        -> stream-notify-user "<uid>/notification"."""
        sub = self.subs[(room["_id"], uid)]
        user = self.users[uid]
        if sub.get("disableNotifications") or sub.get("ignored") and sender["_id"] in sub["ignored"]:
            return
        pref = sub.get("desktopNotifications")
        is_thread = "tmid" in message
        has_reply_to_thread = is_thread and follower
        mentioned = uid in mention_ids
        # Notifications_Max_Room_Members (100) is never reached here.
        disable_all = False
        if user["statusConnection"] == "offline" or user["status"] == "busy" or pref == "nothing":
            return
        if not pref:
            default = self.settings["Accounts_Default_User_Preferences_desktopNotifications"]
            if default == "all" and (not is_thread or has_reply_to_thread):
                pass
            elif default == "nothing":
                return
            elif not ((room["t"] == "d" or (not disable_all and (to_all or to_here)) or highlighted or mentioned)
                      and (highlighted or not is_thread or has_reply_to_thread)):
                return
        elif not ((room["t"] == "d" or (not disable_all and (to_all or to_here)) or highlighted
                   or pref in ("all", "allAndReaction") or mentioned)
                  and (highlighted or not is_thread or has_reply_to_thread)):
            return
        # unverified: title and text come from the room type's getNotificationDetails.
        title = sender["name"] if room["t"] == "d" else f"#{room.get('name', '')}"
        text = message["msg"] if room["t"] == "d" else f"{sender['username']}: {message['msg']}"
        payload = {
            "title": title,
            "text": text,
            "duration": None,
            "payload": {
                "_id": message["_id"],
                "rid": room["_id"],
                "tmid": message.get("tmid"),
                "sender": {"_id": sender["_id"], "username": sender["username"], "name": sender["name"]},
                "type": room["t"],
                "message": {"msg": message["msg"]},
                "name": room.get("name"),
            },
        }
        self.notifications.setdefault(user["username"], []).append(payload["payload"])
        await self.notify(uid, "notification", [payload])

    # --- control ----------------------------------------------------------------------------
    async def c_rooms(self, request):
        body = await request.json()
        t = body.get("t", "c")
        members = [self.user(u) for u in body.get("members", [])]
        now = self.stamp()
        if t == "d":
            rid = "".join(sorted(u["_id"] for u in members))
            room = {"_id": rid, "t": "d", "usernames": [u["username"] for u in members], "msgs": 0,
                    "ts": now, "_updatedAt": now}
        else:
            rid = new_id()
            room = {"_id": rid, "t": t, "name": body["name"], "fname": body.get("fname", body["name"]), "msgs": 0,
                    "ts": now, "_updatedAt": now, "usernames": [u["username"] for u in members]}
        self.rooms[rid] = room
        for u in members:
            if t == "d":
                other = next((o for o in members if o["_id"] != u["_id"]), u)
                name, fname = other["username"], other["name"]
            else:
                name, fname = room["name"], room["fname"]
            # app/lib/server/functions/createRoom.ts / addUserToRoom.ts: a new subscription
            # (no tunread, no unreadAlert until set).
            sub = {"_id": new_id(), "rid": rid, "u": {"_id": u["_id"], "username": u["username"], "name": u["name"]},
                   "t": t, "name": name, "fname": fname, "ts": now, "ls": now, "_updatedAt": now,
                   "unread": 0, "userMentions": 0, "groupMentions": 0, "alert": False, "open": True}
            self.subs[(rid, u["_id"])] = sub
            await self.sub_changed(sub, "inserted")
            await self.notify(u["_id"], "rooms-changed", ["inserted", room])
        return web.json_response({"rid": rid})

    async def c_touch(self, request):
        """Sends the room again unchanged, as Rocket.Chat does after an edit or a reaction."""
        body = await request.json()
        room = self.room_by(body)
        room["_updatedAt"] = self.stamp()
        for (rid, uid) in list(self.subs):
            if rid == room["_id"]:
                await self.notify(uid, "rooms-changed", ["updated", room])
        return web.json_response({"success": True})

    async def c_subscriptions(self, request):
        body = await request.json()
        room = self.room_by(body)
        uid = self.user(body["user"])["_id"]
        sub = self.subs.get((room["_id"], uid))
        if sub is None:
            raise web.HTTPNotFound(text='{"success":false,"error":"no subscription"}', content_type="application/json")
        if body.get("remove"):
            del self.subs[(room["_id"], uid)]
            self.trash.append({"_id": sub["_id"], "_deletedAt": self.stamp(), "uid": uid})
            await self.sub_changed(sub, "removed")
        else:
            sub.update(body.get("set", {}))
            sub["_updatedAt"] = self.stamp()
            await self.sub_changed(sub)
        return web.json_response({"success": True})

    async def c_users(self, request):
        body = await request.json()
        user = self.user(body["user"])
        user["settings"]["preferences"].update(body.get("preferences", {}))
        if "two_factor" in body:
            user["__two_factor"] = bool(body["two_factor"])
        if "status_default" in body:
            user["statusDefault"] = body["status_default"]
            self.update_presence(user["_id"])
        return web.json_response({"userId": user["_id"], "success": True})

    async def c_settings(self, request):
        body = await request.json()
        unknown = [k for k in body if k not in self.settings]
        if unknown:
            return web.json_response({"success": False, "error": f"unknown settings {unknown}"}, status=400)
        self.settings.update(body)
        self.api_windows.clear()
        return web.json_response({"success": True})

    async def c_personal_token(self, request):
        body = await request.json()
        user = self.user(body["user"])
        token = new_token()
        self.tokens[token] = user["_id"]
        return web.json_response({"userId": user["_id"], "token": token})

    async def c_faults(self, request):
        body = await request.json()
        if "access_token_login" in body:
            self.access_token_login = bool(body["access_token_login"])
        if "refuse_sockets" in body:
            self.refuse_sockets = bool(body["refuse_sockets"])
        if "rate_limit" in body:
            r = body["rate_limit"]
            self.forced_429[r["endpoint"]] = int(r.get("count", 1))
        if "ddp_rate_limit" in body:
            r = body["ddp_rate_limit"]
            self.forced_ddp_limit[(r["user"], r.get("method", "login"))] = (int(r.get("count", 1)), int(r.get("wait_ms", 7000)))
        if "identity_fails" in body:
            self.identity_fails = int(body["identity_fails"])
        if "malformed_rest" in body:
            r = body["malformed_rest"]
            self.malformed[r["endpoint"]] = int(r.get("count", 1))
        if "expire_tokens" in body:
            uid = self.user(body["expire_tokens"])["_id"]
            for token in [t for t, u in self.tokens.items() if u == uid]:
                del self.tokens[token]
            for conn in list(self.sockets.get(uid, ())):
                await conn.ws.close()
        if "drop_sockets" in body:
            uid = self.user(body["drop_sockets"])["_id"]
            for conn in list(self.sockets.get(uid, ())):
                # Abrupt: no close frame, as when a network drops.
                if conn.request.transport is not None:
                    conn.request.transport.abort()
        if "malformed_frames" in body:
            uid = self.user(body["malformed_frames"])["_id"]
            garbage = [
                "not json {",
                "[1, 2, 3]",
                json.dumps({"msg": "changed", "collection": "stream-notify-user", "id": "id",
                            "fields": {"eventName": f"{uid}/subscriptions-changed", "args": ["updated", {"rid": 42}]}}),
                json.dumps({"msg": "changed", "collection": "stream-notify-user", "id": "id",
                            "fields": {"eventName": f"{uid}/notification", "args": [{"payload": "x"}]}}),
                json.dumps({"msg": "changed", "collection": "stream-notify-user", "id": "id",
                            "fields": {"eventName": f"{uid}/subscriptions-changed"}}),
            ]
            for conn in list(self.sockets.get(uid, ())):
                for g in garbage:
                    await conn.ws.send_str(g)
                await conn.ws.send_bytes(b"\x00\xff")
        if "silence" in body:
            uid = self.user(body["silence"])["_id"]
            for conn in list(self.sockets.get(uid, ())):
                conn.silent = True
        return web.json_response({"success": True})

    async def c_stats(self, request):
        sockets = {self.users[uid]["username"]: len(c) for uid, c in self.sockets.items()}
        presence = {u["username"]: {"status": u["status"], "statusConnection": u["statusConnection"]}
                    for u in self.users.values()}
        return web.json_response({"requests": self.requests, "log": self.log[-500:], "connects": self.connects,
                                  "pongs": self.pongs, "sockets": sockets, "presence": presence,
                                  "notifications": self.notifications, "version": self.version,
                                  "login_tokens": self.login_tokens})


class Conn:
    def __init__(self, ws, request):
        self.id = new_id()
        self.ws = ws
        self.request = request
        self.uid = None
        self.connected = False
        self.streams = set()
        self.sub_ids = {}
        self.last_recv = time.monotonic()
        self.ping_sent = None
        self.silent = False
        # This connection's presence status, once a login registered it.
        self.presence = None
        self.by_method = {}


def main():
    import os
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=18083)
    p.add_argument("--issuer", default=os.environ.get("PASSERELLE_TEST_ISSUER", "http://127.0.0.1:18080/realms/passerelle"))
    p.add_argument("--service", action="append", help="access-token login services (default: keycloak)")
    p.add_argument("--rocketchat-version", choices=["6.x", "7.x"], default="7.x",
                   help="6.x: the Restivus API's answers; 7.x: the Express API's (default)")
    p.add_argument("--token-sent-via", choices=["header", "payload"], default="header",
                   help="how the custom OAuth service sends the token to the identity path")
    p.add_argument("--ping-interval", type=float, default=25.0)
    p.add_argument("--ping-timeout", type=float, default=15.0)
    p.add_argument("--no-access-token-login", action="store_true",
                   help="the service is not registered for access-token login")
    args = p.parse_args()
    server = Server(args)

    async def start():
        server.http = ClientSession()
        app = web.Application()
        app.router.add_post("/api/v1/login", server.login)
        app.router.add_get("/api/v1/me", server.me)
        app.router.add_post("/api/v1/logout", server.logout)
        app.router.add_get("/api/v1/subscriptions.get", server.subscriptions_get)
        app.router.add_get("/api/info", server.info)
        app.router.add_get("/websocket", server.websocket)
        app.router.add_post("/_control/rooms", server.c_rooms)
        app.router.add_post("/_control/messages", server.c_messages)
        app.router.add_post("/_control/subscriptions", server.c_subscriptions)
        app.router.add_post("/_control/users", server.c_users)
        app.router.add_post("/_control/settings", server.c_settings)
        app.router.add_post("/_control/touch", server.c_touch)
        app.router.add_post("/_control/personal-token", server.c_personal_token)
        app.router.add_post("/_control/faults", server.c_faults)
        app.router.add_get("/_control/stats", server.c_stats)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(start())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
