#!/usr/bin/env python3
"""A TEST DOUBLE of Rocket.Chat's documented REST and DDP (realtime) API. This is NOT Rocket.Chat.

Rocket.Chat cannot run on the test machines, so this one aiohttp process reproduces the parts of
its API that Passerelle uses, with the JSON shapes, status codes and error bodies of the real
server (see ../shared/reference/services.md and Rocket.Chat's developer docs):

  POST /api/v1/login            {"serviceName","accessToken","expiresIn"}: the access token is
                                checked against the REAL Keycloak's userinfo endpoint; success
                                {"status":"success","data":{"userId","authToken","me"}}; failures
                                401 {"status":"error","error":...,"message":...}; a server without
                                the access-token handler answers Meteor's "Unrecognized options for
                                login request".
  GET  /api/v1/subscriptions.get[?updatedSince=ISO]   {"update":[...],"remove":[...],"success":true}
  GET  /api/v1/me
  POST /api/v1/logout           with X-Auth-Token/X-User-Id: the token is removed, answer
                                {"status":"success","data":{"message":"You've been logged out!"}}
                                (Rocket.Chat's REST `logout` route in its API class, 6.x/7.x
                                source; not checked against a running server)
  GET  /websocket               DDP: {"server_id":"0"}, connect/connected, method "login" with
                                {"resume": authToken}, sub "stream-notify-user" on
                                "<userId>/subscriptions-changed" and "<userId>/rooms-changed",
                                "changed" events, ping/pong both ways (the server pings a quiet
                                socket every --ping-interval s and closes it after --ping-timeout s
                                without an answer, as Meteor's heartbeat does).
  Requests without a valid X-Auth-Token/X-User-Id get 401
  {"status":"error","message":"You must be logged in to do this."}. Rate-limited requests get 429
  with Rocket.Chat's error body and X-RateLimit-* headers, plus the standard Retry-After.

The control API (not Rocket.Chat's; for tests) lives under /_control/:
  POST /_control/rooms          {"t":"c"|"p"|"d","name","fname","members":[usernames]} -> {"rid"}
  POST /_control/messages       {"rid"|"room","from","text"} -> {"_id"}: @username mentions, unread
                                and alerts, stream events, like a posted message
  POST /_control/subscriptions  {"user","rid"|"room","set":{...}} or {"user","rid","remove":true}
  POST /_control/touch          {"rid"|"room"}: the room is sent again unchanged (an edit, a reaction)
  POST /_control/personal-token {"user"} -> {"userId","token"}
  POST /_control/faults         any of: {"drop_sockets":user} (no close frame), {"expire_tokens":user}
                                (tokens die, sockets close), {"rate_limit":{"endpoint","count",
                                "retry_after"}}, {"malformed_rest":{"endpoint","count"}},
                                {"malformed_frames":user}, {"access_token_login":false|true},
                                {"silence":user} (the user's sockets stop answering),
                                {"refuse_sockets":true|false} (/websocket answers 503)
  GET  /_control/stats          request counts per endpoint and user, a request log, socket
                                connects, pongs and open sockets per user

Usage: rocketchat.py [--port 18083] [--issuer URL] [--service keycloak] [--ping-interval S]
With --port 0 it picks a free port. It prints the port as its first line of output.
"""
import argparse
import asyncio
import json
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


def iso(ms):
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_iso(text):
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except (ValueError, AttributeError):
        return None


DATE_KEYS = {"_updatedAt", "ts", "ls", "_deletedAt", "lm"}


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


def error_json(status, body, headers=None):
    return web.json_response(body, status=status, headers=headers)


NOT_LOGGED_IN = {"status": "error", "message": "You must be logged in to do this."}


class Server:
    def __init__(self, issuer, services, ping_interval, ping_timeout):
        self.issuer = issuer.rstrip("/")
        self.services = set(services)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.users = {}  # id -> user
        self.by_name = {}  # username -> id
        self.tokens = {}  # authToken -> user id
        self.rooms = {}  # rid -> room
        self.subs = {}  # (rid, uid) -> subscription
        self.trash = []  # removed subscriptions {_id, _deletedAt, uid}
        self.sockets = {}  # uid -> set of Conn
        self.last_ms = 0
        self.access_token_login = True
        self.refuse_sockets = False
        self.rate_limits = {}  # endpoint -> [count, retry_after]
        self.malformed = {}  # endpoint -> count
        self.requests = {}  # "METHOD /path" -> {"total": n, username: n}
        self.log = []
        self.connects = {}
        self.pongs = {}
        self.http = None

    # --- data -------------------------------------------------------------------------------
    def stamp(self):
        self.last_ms = max(int(time.time() * 1000), self.last_ms + 1)
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
                "active": True,
                "roles": ["user"],
                "type": "user",
            }
        elif name:
            self.users[uid]["name"] = name
        return self.users[uid]

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
        self.log.append({"t": time.time(), "request": key, "query": request.query_string, "user": username})

    def faults(self, endpoint):
        limit = self.rate_limits.get(endpoint)
        if limit and limit[0] > 0:
            limit[0] -= 1
            wait = limit[1]
            reset = int(time.time() * 1000) + wait * 1000
            return error_json(429, {
                "success": False,
                "error": f"Error, too many requests. Please slow down. You must wait {wait} seconds before trying this endpoint again. [error-too-many-requests]",
            }, headers={"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset),
                        "Retry-After": str(wait)})
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

    async def login(self, request):
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            self.count(request, None)
            return error_json(400, {"status": "error", "message": "Match error"})
        fault = self.faults("login")
        if fault:
            self.count(request, None)
            return fault
        service, access_token = body.get("serviceName"), body.get("accessToken")
        if not (service and access_token) or not self.access_token_login or service not in self.services:
            # No login handler accepted these options: Meteor's answer, which REST wraps in 401.
            self.count(request, None)
            return error_json(401, {"status": "error", "error": 400, "message": "Unrecognized options for login request"})
        async with self.http.get(f"{self.issuer}/protocol/openid-connect/userinfo",
                                 headers={"Authorization": f"Bearer {access_token}"}) as r:
            info = await r.json(content_type=None) if r.status == 200 else None
        if not info or not info.get("preferred_username"):
            self.count(request, None)
            return error_json(401, {"status": "error", "error": "Unauthorized", "message": "Unauthorized"})
        user = self.user(info["preferred_username"], info.get("name"), info.get("email"))
        token = new_token()
        self.tokens[token] = user["_id"]
        self.count(request, user["username"])
        return web.json_response({"status": "success", "data": {"userId": user["_id"], "authToken": token, "me": user}})

    async def me(self, request):
        self.count(request, self.username_of(request))
        user = self.authenticated(request)
        if not user:
            return error_json(401, NOT_LOGGED_IN)
        return web.json_response({**user, "success": True})

    async def logout(self, request):
        # Rocket.Chat's REST `logout` (authRequired): pulls the request's token from the user's
        # resume tokens, then answers success; without valid credentials the usual 401.
        self.count(request, self.username_of(request))
        user = self.authenticated(request)
        if not user:
            return error_json(401, NOT_LOGGED_IN)
        self.tokens.pop(request.headers.get("X-Auth-Token"), None)
        return web.json_response({"status": "success", "data": {"message": "You've been logged out!"}})

    async def subscriptions_get(self, request):
        self.count(request, self.username_of(request))
        fault = self.faults("subscriptions.get")
        if fault:
            return fault
        user = self.authenticated(request)
        if not user:
            return error_json(401, NOT_LOGGED_IN)
        since = None
        if "updatedSince" in request.query:
            since = parse_iso(request.query["updatedSince"])
            if since is None:
                return error_json(400, {"success": False, "error": "Invalid date for `updatedSince`"})
        uid = user["_id"]
        update = [self.sub_view(s) for s in self.subs.values()
                  if s["u"]["_id"] == uid and (since is None or s["_updatedAt"] > since)]
        remove = [{"_id": t["_id"], "_deletedAt": t["_deletedAt"]} for t in self.trash
                  if t["uid"] == uid and since is not None and t["_deletedAt"] > since]
        return web.json_response({"update": dated(update, False), "remove": dated(remove, False), "success": True})

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
                self.sockets.get(conn.uid, set()).discard(conn)
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

    async def ddp(self, conn, m):
        send = lambda v: conn.ws.send_str(json.dumps(v))
        kind = m.get("msg")
        if kind == "connect":
            if m.get("version") == "1" or "1" in (m.get("support") or []):
                conn.connected = True
                await send({"msg": "connected", "session": new_id()})
            else:
                await send({"msg": "failed", "version": "1"})
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
            mid = m.get("id")
            if m.get("method") == "login":
                params = m.get("params") or [{}]
                resume = params[0].get("resume") if params and isinstance(params[0], dict) else None
                uid = self.tokens.get(resume) if resume else None
                if uid:
                    conn.uid = uid
                    self.sockets.setdefault(uid, set()).add(conn)
                    name = self.users[uid]["username"]
                    self.connects[name] = self.connects.get(name, 0) + 1
                    await send({"msg": "result", "id": mid, "result": {
                        "id": uid, "token": resume, "tokenExpires": {"$date": int(time.time() * 1000) + 90 * 86400000},
                        "type": "resume"}})
                else:
                    reason = "You've been logged out by the server. Please log in again."
                    await send({"msg": "result", "id": mid, "error": {
                        "isClientSafe": True, "error": 403, "reason": reason, "message": f"{reason} [403]",
                        "errorType": "Meteor.Error"}})
            else:
                name = m.get("method")
                await send({"msg": "result", "id": mid, "error": {
                    "isClientSafe": True, "error": 404, "reason": f"Method '{name}' not found",
                    "message": f"Method '{name}' not found [404]", "errorType": "Meteor.Error"}})
            await send({"msg": "updated", "methods": [mid]})
        elif kind == "sub":
            sid, params = m.get("id"), m.get("params") or []
            if m.get("name") != "stream-notify-user":
                await send({"msg": "nosub", "id": sid, "error": {
                    "isClientSafe": True, "error": 404, "reason": f"Subscription '{m.get('name')}' not found",
                    "message": f"Subscription '{m.get('name')}' not found [404]", "errorType": "Meteor.Error"}})
                return
            event = params[0] if params else ""
            if not conn.uid or not isinstance(event, str) or not event.startswith(conn.uid + "/"):
                await send({"msg": "nosub", "id": sid, "error": {
                    "isClientSafe": True, "error": "not-allowed", "reason": "Not allowed",
                    "message": "Not allowed [not-allowed]", "errorType": "Meteor.Error"}})
                return
            conn.streams.add(event)
            await send({"msg": "ready", "subs": [sid]})
        elif kind == "unsub":
            await send({"msg": "nosub", "id": m.get("id")})

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
            sub = {"_id": new_id(), "rid": rid, "u": {"_id": u["_id"], "username": u["username"], "name": u["name"]},
                   "t": t, "name": name, "fname": fname, "ts": now, "ls": now, "_updatedAt": now,
                   "unread": 0, "userMentions": 0, "groupMentions": 0, "alert": False, "open": True}
            self.subs[(rid, u["_id"])] = sub
            await self.sub_changed(sub, "inserted")
            await self.notify(u["_id"], "rooms-changed", ["inserted", room])
        return web.json_response({"rid": rid})

    async def c_messages(self, request):
        body = await request.json()
        room = self.room_by(body)
        sender = self.user(body["from"])
        text = body.get("text", "")
        now = self.stamp()
        mentioned = {u for u in re.findall(r"@([\w.-]+)", text) if u in self.by_name}
        message = {"_id": new_id(), "rid": room["_id"], "msg": text, "ts": now, "_updatedAt": now,
                   "u": {"_id": sender["_id"], "username": sender["username"], "name": sender["name"]},
                   "mentions": [{"_id": self.by_name[u], "username": u, "name": self.users[self.by_name[u]]["name"],
                                 "type": "user"} for u in sorted(mentioned)]}
        room["lastMessage"] = message
        room["lm"] = now
        room["msgs"] += 1
        room["_updatedAt"] = now
        for (rid, uid), sub in list(self.subs.items()):
            if rid != room["_id"]:
                continue
            if uid == sender["_id"]:
                sub["ls"] = now
            else:
                sub["unread"] += 1
                sub["alert"] = True
                sub["open"] = True
                if self.users[uid]["username"] in mentioned:
                    sub["userMentions"] += 1
            sub["_updatedAt"] = self.stamp()
            await self.sub_changed(sub)
            await self.notify(uid, "rooms-changed", ["updated", room])
        return web.json_response({"_id": message["_id"], "success": True})

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
            self.rate_limits[r["endpoint"]] = [int(r.get("count", 1)), int(r.get("retry_after", 60))]
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
                            "fields": {"eventName": f"{uid}/rooms-changed", "args": ["updated", {"lastMessage": "x"}]}}),
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
        return web.json_response({"requests": self.requests, "log": self.log[-500:], "connects": self.connects,
                                  "pongs": self.pongs, "sockets": sockets})


async def info(_request):
    return web.json_response({"version": "7.0.0-test-double", "success": True})


class Conn:
    def __init__(self, ws, request):
        self.ws = ws
        self.request = request
        self.uid = None
        self.connected = False
        self.streams = set()
        self.last_recv = time.monotonic()
        self.ping_sent = None
        self.silent = False


def main():
    import os
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=18083)
    p.add_argument("--issuer", default=os.environ.get("PASSERELLE_TEST_ISSUER", "http://127.0.0.1:18080/realms/passerelle"))
    p.add_argument("--service", action="append", help="access-token login services (default: keycloak)")
    p.add_argument("--ping-interval", type=float, default=25.0)
    p.add_argument("--ping-timeout", type=float, default=15.0)
    p.add_argument("--no-access-token-login", action="store_true")
    args = p.parse_args()
    server = Server(args.issuer, args.service or ["keycloak"], args.ping_interval, args.ping_timeout)
    server.access_token_login = not args.no_access_token_login

    async def start():
        server.http = ClientSession()
        app = web.Application()
        app.router.add_post("/api/v1/login", server.login)
        app.router.add_get("/api/v1/me", server.me)
        app.router.add_post("/api/v1/logout", server.logout)
        app.router.add_get("/api/v1/subscriptions.get", server.subscriptions_get)
        app.router.add_get("/websocket", server.websocket)
        app.router.add_post("/_control/rooms", server.c_rooms)
        app.router.add_post("/_control/messages", server.c_messages)
        app.router.add_post("/_control/subscriptions", server.c_subscriptions)
        app.router.add_post("/_control/touch", server.c_touch)
        app.router.add_post("/_control/personal-token", server.c_personal_token)
        app.router.add_post("/_control/faults", server.c_faults)
        app.router.add_get("/_control/stats", server.c_stats)
        app.router.add_get("/api/info", info)
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
