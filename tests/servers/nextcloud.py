#!/usr/bin/env python3
"""A Nextcloud TEST DOUBLE. This is NOT Nextcloud.

It is a small aiohttp server that reproduces, for Passerelle's tests, exactly the Nextcloud
behaviours observed on a real Nextcloud 34.0.1 (the developers' runs, named below by their section):

- /status.php; OCS capabilities and cloud/user, 412 "CSRF check failed" without
  `OCS-APIRequest: true`;
- WebDAV under /remote.php/dav/files/USER/: PROPFIND Depth 0/1 with d:getetag,
  d:getlastmodified, d:getcontentlength, d:resourcetype, oc:fileid, oc:id, oc:permissions,
  oc:size, d:quota-used-bytes, d:quota-available-bytes (only the asked properties, unknown
  ones in a 404 propstat); folder ETags propagate to every ancestor; GET, PUT (201/204 with
  ETag, OC-ETag, OC-FileId; X-OC-Mtime -> `X-OC-MTime: accepted`; If-Match / If-None-Match),
  MKCOL, MOVE (keeps the file id), COPY, DELETE (into the trash);
- quota (157286400 bytes by default): 507 with a Sabre InsufficientStorage body, and the
  observed hole: an upload without Content-Length (chunked transfer-encoding) is not checked;
- chunked upload v2 under /remote.php/dav/uploads/USER/<id> (MKCOL with Destination and
  OC-Total-Length, numbered chunk PUTs, MOVE .file; 400 on a wrong total; 507 on the first chunk
  when the total does not fit; PROPFIND lists the chunks);
- bulk upload, POST /remote.php/dav/bulk, multipart/related, per-file JSON answer, 411 without a
  part Content-Length, 400 on an md5 mismatch (with the files written so far);
- Login Flow v2 (poll 404 until granted, then 200 once), app passwords with Basic auth, their
  revocation by DELETE /ocs/v2.php/core/apppassword;
- bearer tokens checked against the REAL Keycloak userinfo endpoint (user = preferred_username),
  as user_oidc does with --check-bearer=1, switchable off to exercise the 401 fallback;
- trashbin and versions DAV endpoints with restore;
- public links (OCS files_sharing shares: list by path, create type 3, delete), the sharing
  capabilities and their admin switches (links off, sharing off, password enforced, expiry
  default and enforced), the password policy's refusals and the creation rate limit; each
  answer observed on Nextcloud 34.0.1 (see the "shares" section below).

Behaviours observed on a real Nextcloud 34.0.1 (issue 11), each marked where it is coded:
capabilities' dav/files entries only for an authenticated caller; chunk assembly preconditions
checked against the source `.file`; the uploads root answering 405 to PROPFIND; an upload
folder's listing including `.file`; chunk PUTs without ETag; 507 on a chunk reading
"Insufficient space in /"; bulk: 400 for a part without Content-Length, `[]` when nothing was
written, answers sent as text/html, "Could not create path ..." for a missing parent; quota
properties cached (stale) for --quota-cache seconds (300 by default, about what was observed);
every ancestor getting the same new folder ETag; backslash, names over 250 bytes, control
characters and `../` refused with 400, NFD folded into NFC; PROPFIND Depth: infinity answered;
Login Flow v2 poll 404 `[]` until granted, 200 once, then 404.

files_lock (observed on Nextcloud 34.0.1, run "ncperf"): `LOCK` /
`UNLOCK` with `X-User-Lock: 1` and `X-User-Lock-Type` (0 user, 1 app); a locked file answers 423
with Sabre's `Locked` body (which names nobody) to PUT, DELETE, MOVE of it, MOVE/COPY onto it
and the chunked assembly; the `nc:lock*` properties say who holds it; taking or releasing a
lock gives the file (and its ancestors) a new ETag, size and date unchanged.

Read-only shares are simulated by setting a permission string on a subtree (control endpoint).

Test control endpoints live under /_test/ and are never counted:
  GET  /_test/stats                      {"requests": n, "methods": {...}, "chunk_puts": [...], "bulk_posts": n}
  POST /_test/stats/reset
  POST /_test/bearer      {"enabled": bool}
  POST /_test/login-flow/grant  {"login": "<login url or its last segment>", "user": "alice"}
  POST /_test/login-flow/expire {"login": ...}
  POST /_test/users       {"user": "...", "app_password": "...", "quota": bytes}   (create/reset a user)
  POST /_test/seed        {"user", "files": n, "per_folder": k, "size": bytes, "prefix": "seed"}
  POST /_test/permissions {"user", "path", "permissions"}   (subtree, e.g. "SRGDNV" = read-only share)
  POST /_test/fail        {"user", "path"[, "mode": "checksum"|"precondition", "times": n]}
                          next write of that path fails (precondition: its next n PUTs get 412)
                          (bulk: per-file error; mode checksum: its bulk part fails the md5 check)
  POST /_test/capabilities {"bulkupload": bool, "chunking": bool}
  POST /_test/lock        {"user", "path", "type": 0|1, "owner", "displayname", "editor"}
                          someone else's lock on a file (a colleague's user lock, an online
                          editor's app lock); POST /_test/unlock {"user", "path"} ends it
  POST /_test/quota-cache  {"seconds": n}   how long quota properties stay stale (0: always fresh)
  POST /_test/hold-chunks  {"from": n}      chunk PUTs numbered n and up wait before reading
                          their body, until POST /_test/release-chunks (a test's "kill it
                          here" point that does not depend on the machine's speed)
  POST /_test/sharing      {"api": bool, "links": bool, "password_enforced": bool, "expire_default":
                          bool, "expire_days": n, "expire_enforced": bool, "rate_limit": n}
                          the admin's sharing settings (Nextcloud: occ config:app:set core shareapi_*)
  GET  /_test/shares?user=U the user's links, passwords in clear (for assertions)
  GET /_test/stats also gives "in_flight": requests being served now (so a test can wait until
  an aborted client's requests are over before it looks)

Usage: nextcloud.py --port 18085 --data DIR [--issuer URL] [--user alice:APP_PASSWORD ...]
It prints the port it listens on as its first line of output, then serves until killed.
"""
import argparse
import asyncio
import datetime
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import time
import unicodedata
import urllib.parse
from email.utils import formatdate
from xml.etree import ElementTree as ET

from aiohttp import ClientSession, web

DAV = "DAV:"
OC = "http://owncloud.org/ns"
NC = "http://nextcloud.org/ns"
SABRE = "http://sabredav.org/ns"
NS = {DAV: "d", OC: "oc", NC: "nc", SABRE: "s"}
DEFAULT_QUOTA = 157286400
# Nextcloud's defaults (sharing on, links on, nothing enforced) and the creation limit of
# ShareAPIController::createShare, #[UserRateLimit(limit: 20, period: 600)].
DEFAULT_SHARING = {"api": True, "links": True, "password_enforced": False, "expire_default": False,
                   "expire_days": 7, "expire_enforced": False, "rate_limit": 20}
CHUNK_MAX = 10000

DEFAULT_PROPS = [
    (DAV, "getlastmodified"), (DAV, "getcontentlength"), (DAV, "resourcetype"), (DAV, "getetag"),
    (DAV, "quota-used-bytes"), (DAV, "quota-available-bytes"), (DAV, "getcontenttype"),
]


# Passwords the double's password policy calls common (a stand-in for password_policy's list of a
# million; "short" was refused as common on 34.0.1).
COMMON_PASSWORDS = {"short", "123456", "password", "qwerty", "azerty", "motdepasse", "1234567890"}


def folder_etag():
    # Nextcloud folder ETags are uniqid()-like (13 hex); file ETags are 32 hex.
    return secrets.token_hex(7)[:13]


def file_etag():
    return secrets.token_hex(16)


class Node:
    __slots__ = ("name", "is_dir", "children", "fileid", "etag", "mtime", "size", "blob", "perms", "parent")

    def __init__(self, store, name, is_dir, parent):
        self.name = name
        self.is_dir = is_dir
        self.children = {} if is_dir else None
        self.fileid = store.next_fileid()
        self.etag = folder_etag() if is_dir else file_etag()
        self.mtime = int(time.time())
        self.size = 0
        self.blob = None
        self.perms = None  # None: default for the type
        self.parent = parent

    def permissions(self):
        if self.perms is not None:
            return self.perms
        return "RGDNVCK" if self.is_dir else "RGDNVW"

    def tree_size(self):
        if not self.is_dir:
            return self.size
        return sum(c.tree_size() for c in self.children.values())


class FutureFile:
    """The `.file` of an upload folder as Sabre's precondition check sees it: a file whose ETag
    is the upload folder's (apps/dav/lib/Upload/FutureFile.php)."""
    is_dir = False

    def __init__(self, etag):
        self.etag = etag


class User:
    def __init__(self, store, name, quota):
        self.name = name
        self.quota = quota
        self.root = Node(store, "", True, None)
        self.used = 0
        self.uploads = {}  # id -> {"dest": [...], "total": int|None, "chunks": {n: (blob, size)}, "mtime": t}
        self.trash = []  # list of dicts
        self.versions = {}  # fileid -> list of {"ts", "blob", "size", "etag"}
        self.quota_seen = None  # (monotonic time, used) of the figure served by PROPFIND

    def free(self):
        return max(0, self.quota - self.used)


class Store:
    def __init__(self, data):
        self.data = data
        os.makedirs(os.path.join(data, "blobs"), exist_ok=True)
        self._fileid = 100
        self._blob = 0
        self.instance = "oc" + secrets.token_hex(5)
        self.users = {}
        self.app_passwords = {}  # password -> user
        self.flows = {}  # login token -> {"poll": token, "user": None|name, "expired": bool}
        self.polls = {}  # poll token -> login token
        self.bearer = True
        self.caps = {"bulkupload": True, "chunking": True}
        self.quota_cache = 300
        self.fail_next = set()  # (user, path)
        self.bad_checksum = set()  # (user, path): the next bulk part for it fails its md5 check
        self.refuse_412 = {}  # (user, path) -> how many more PUTs of it answer 412
        self.shares = []  # dicts, see Server.share_create
        self._share_id = 0
        self.sharing = dict(DEFAULT_SHARING)
        self.share_posts = {}  # user -> monotonic times of recent POSTs (the rate limit)
        self.reset_stats()
        self.userinfo_cache = {}
        self.in_flight = 0
        self.hold_from = None
        self.released = None  # asyncio.Event, made in the server's loop by /_test/hold-chunks
        init_recover(self)

    def reset_stats(self):
        self.stats = {"requests": 0, "methods": {}, "chunk_puts": [], "bulk_posts": 0, "puts": 0}

    def next_fileid(self):
        self._fileid += 1
        return self._fileid

    def new_blob_path(self):
        self._blob += 1
        return os.path.join(self.data, "blobs", str(self._blob))

    def user(self, name, quota=DEFAULT_QUOTA):
        if name not in self.users:
            self.users[name] = User(self, name, quota)
        return self.users[name]


# ---------------------------------------------------------------- helpers

def split(path):
    return [p for p in path.split("/") if p != ""]


def decode_segments(raw):
    return [urllib.parse.unquote(s) for s in raw.split("/") if s != ""]


def invalid_name(segs):
    """Why Nextcloud refuses these names, or None, with its words. Observed on Nextcloud 34.0.1
    (observed on Nextcloud 34.0.1, run section 8; the checks are lib/private/Files/FilenameValidator.php's):
    a backslash, a name over 250 bytes, control characters and `../` get 400."""
    for seg in segs:
        if seg in (".", "..") or "/" in seg:
            return 'Invalid path "/' + "/".join(segs) + '"'
        if len(seg.encode("utf-8")) > 250:
            return "Filename is too long"
        if "\\" in seg:
            return '"\\" is not allowed inside a file or folder name.'
        if any(ord(c) < 0x20 or ord(c) == 0x7f for c in seg):
            return "Filename contains at least one invalid character"
    return None


def invalid_path(message):
    # The envelope of OCA\DAV\Connector\Sabre\Exception\InvalidPath (observed on 34.0.1).
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns" xmlns:o="http://owncloud.org/ns">\n'
        "  <s:exception>OCA\\DAV\\Connector\\Sabre\\Exception\\InvalidPath</s:exception>\n"
        f"  <s:message>{xml_escape(message)}</s:message>\n"
        '  <o:retry xmlns:o="o:">false</o:retry>\n'
        f'  <o:reason xmlns:o="o:">{xml_escape(message)}</o:reason>\n'
        "</d:error>\n"
    )
    return web.Response(status=400, body=body.encode(), content_type="application/xml", charset="utf-8")


def href(prefix, segments, is_dir):
    # Nextcloud writes lower-case percent escapes in hrefs (observed on 34.0.1: caf%c3%a9.txt).
    quoted = [re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), urllib.parse.quote(s, safe="")) for s in segments]
    h = prefix + "/".join(quoted)
    if is_dir and not h.endswith("/"):
        h += "/"
    return h


def http_date(ts):
    return formatdate(ts, usegmt=True)


def sabre_error(status, exception, message, headers=None, exception_class=None):
    cls = exception_class or f"Sabre\\DAV\\Exception\\{exception}"
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">\n'
        f"  <s:exception>{cls}</s:exception>\n"
        f"  <s:message>{xml_escape(message)}</s:message>\n"
        "</d:error>\n"
    )
    return web.Response(status=status, body=body.encode(), content_type="application/xml",
                        charset="utf-8", headers=headers or {})


def xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def ocs(data, status=200, statuscode=200, message="OK"):
    doc = {"ocs": {"meta": {"status": "ok" if statuscode < 300 else "failure", "statuscode": statuscode,
                            "message": message}, "data": data}}
    return web.json_response(doc, status=status)


def lookup(root, segments):
    node = root
    for s in segments:
        if not node.is_dir or s not in node.children:
            return None
        node = node.children[s]
    return node


def propagate(node):
    """A change below a folder gives it, and every ancestor, the same new ETag (observed on
    Nextcloud 34.0.1: the propagator writes one new value up the whole path)."""
    etag = folder_etag()
    n = node
    while n is not None:
        if n.is_dir:
            n.etag = etag
        n = n.parent


def recount(user):
    user.used = user.root.tree_size()


def parse_propfind(body):
    """The properties asked for, as (ns, name) pairs; None for allprop / empty body."""
    if not body.strip():
        return None
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise web.HTTPBadRequest(text="malformed PROPFIND body")
    props = []
    for el in root.iter():
        if el.tag == f"{{{DAV}}}allprop":
            return None
    for prop in root.iter(f"{{{DAV}}}prop"):
        for child in prop:
            tag = child.tag
            if tag.startswith("{"):
                ns, name = tag[1:].split("}", 1)
            else:
                ns, name = "", tag
            props.append((ns, name))
    return props


def multistatus(responses):
    """responses: list of (href, found: list[(ns,name,value-xml)], missing: list[(ns,name)])."""
    out = ['<?xml version="1.0"?>\n<d:multistatus xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns" '
           'xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">']
    for h, found, missing in responses:
        out.append(f"<d:response><d:href>{xml_escape(h)}</d:href>")
        if found:
            out.append("<d:propstat><d:prop>")
            for ns, name, value in found:
                p = NS.get(ns)
                if p is None:
                    out.append(f'<x:{name} xmlns:x="{ns}">{value}</x:{name}>')
                elif value is None or value == "":
                    out.append(f"<{p}:{name}/>")
                else:
                    out.append(f"<{p}:{name}>{value}</{p}:{name}>")
            out.append("</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>")
        if missing:
            out.append("<d:propstat><d:prop>")
            for ns, name in missing:
                p = NS.get(ns)
                out.append(f"<{p}:{name}/>" if p else f'<x:{name} xmlns:x="{ns}"/>')
            out.append("</d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>")
        out.append("</d:response>")
    out.append("</d:multistatus>")
    return web.Response(status=207, body="".join(out).encode(), content_type="application/xml", charset="utf-8")


# ---------------------------------------------------------------- files_lock (ncperf)
# Observed on Nextcloud 34.0.1 with files_lock 34.0.0 (run "ncperf"); where
# only the source was read, it says so. Locks are kept by file id, as files_lock does.

def lock_table(store):
    return store.__dict__.setdefault("locks", {})


def lock_of(store, node):
    if node is None or node.is_dir:
        return None
    return lock_table(store).get(node.fileid)


def locks_out(lock, user):
    """Whether `user`'s WebDAV requests are refused by the lock (files_lock's
    LockWrapper::isFileLocked): a user lock (0) spares its owner, an app lock (1) spares
    nobody outside the app's own scope (observed: the owner's own PUT got 423)."""
    if lock is None:
        return False
    if lock["type"] == 0:
        return lock["owner"] != user
    return lock["type"] == 1


def locked_answer(user, segs):
    """The 423 exactly as sent (observed): usual headers only, no Lock-Token, no Retry-After;
    an empty s:message; the href without /remote.php/dav/."""
    path = "/".join(["files", user] + list(segs))
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">\n'
        "  <s:exception>Sabre\\DAV\\Exception\\Locked</s:exception>\n"
        "  <s:message/>\n"
        "  <d:lock-token-submitted>\n"
        f"    <d:href>{xml_escape(path)}</d:href>\n"
        "  </d:lock-token-submitted>\n"
        "</d:error>\n"
    )
    return web.Response(status=423, body=body.encode(), content_type="application/xml", charset="utf-8")


def lock_prop(store, node, name):
    """nc:lock* of a file (a folder: 404, observed). Unlocked: nc:lock empty (observed), the
    others 404 (not checked on the real server). An app lock has no nc:lock-owner in the 200
    propstat and an empty display name (observed; the real one names the app, which the test
    may give as "displayname")."""
    if node.is_dir:
        return None
    lock = lock_of(store, node)
    if name == "lock":
        return "1" if lock else ""
    if lock is None:
        return None
    values = {
        "lock-owner-type": str(lock["type"]),
        "lock-owner": lock["owner"] if lock["type"] != 1 else None,
        "lock-owner-displayname": xml_escape(lock.get("displayname") or ""),
        "lock-owner-editor": xml_escape(lock.get("editor") or lock["owner"]),
        "lock-time": str(lock["time"]),
        "lock-timeout": "-60",
        "lock-token": lock["token"],
    }
    return values.get(name)


def set_lock(store, node, lock):
    """Takes (lock) or releases (None) a lock: the file gets a new, uniqid-like ETag and its
    ancestors too, size and date unchanged (observed: "3a57…" -> "6b0ca947642aa" on LOCK, then
    "6b0ca9480fc1b" on UNLOCK, getlastmodified the same)."""
    if lock is None:
        lock_table(store).pop(node.fileid, None)
    else:
        lock_table(store)[node.fileid] = lock
    node.etag = folder_etag()
    propagate(node.parent)


def lock_props_xml(store, node, lock):
    """The body of a LOCK/UNLOCK answer (observed; unquoted getetag)."""
    def v(x):
        return f">{x}</" if x not in (None, "") else "/>"
    rows = [("d", "getetag", node.etag)]
    if lock is None:
        rows += [("nc", n, "") for n in ("lock", "lock-owner-type", "lock-owner", "lock-owner-displayname",
                                           "lock-owner-editor", "lock-time", "lock-timeout", "lock-token")]
    else:
        rows += [("nc", "lock", "1"), ("nc", "lock-owner-type", str(lock["type"])), ("nc", "lock-owner", lock["owner"]),
                 ("nc", "lock-owner-displayname", xml_escape(lock.get("displayname") or "")),
                 ("nc", "lock-owner-editor", xml_escape(lock.get("editor") or lock["owner"])),
                 ("nc", "lock-time", str(lock["time"])), ("nc", "lock-timeout", "-60"), ("nc", "lock-token", lock["token"])]
    inner = "".join(f"\n <{p}:{n}{v(x)}{p}:{n}>" if x not in (None, "") else f"\n <{p}:{n}/>" for p, n, x in rows)
    return ('<?xml version="1.0"?>\n<d:prop xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns" '
            'xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">' + inner + "\n</d:prop>\n")


# ---------------------------------------------------------------- the application

class Server:
    def __init__(self, store, issuer):
        self.store = store
        self.issuer = issuer.rstrip("/") if issuer else None
        self.http = None

    # ------------------------------------------------ auth

    async def authenticate(self, request):
        """The user name, or None. Basic with an app password, or Bearer through userinfo."""
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            import base64
            try:
                login, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except Exception:
                return None
            user = self.store.app_passwords.get(password)
            if user is not None and user == login:
                request["app_password"] = password
                return user
            return None
        if auth.startswith("Bearer "):
            if not self.store.bearer or not self.issuer:
                return None
            token = auth[7:].strip()
            cached = self.store.userinfo_cache.get(token)
            now = time.monotonic()
            if cached and cached[1] > now:
                return cached[0]
            if self.http is None:
                self.http = ClientSession()
            try:
                async with self.http.get(f"{self.issuer}/protocol/openid-connect/userinfo",
                                         headers={"Authorization": f"Bearer {token}"}) as r:
                    if r.status != 200:
                        return None
                    info = await r.json()
            except Exception:
                return None
            name = info.get("preferred_username")
            if not name:
                return None
            # user_oidc caches the userinfo answer briefly; a few seconds keeps tests honest
            # about expiry (the test realm's tokens live 20 s).
            self.store.userinfo_cache[token] = (name, now + 5)
            self.store.user(name)
            return name
        return None

    # ---- session cookie (ncperf) ----
    # Observed on Nextcloud 34.0.1 (run "ncperf"): a request that logs in
    # with Basic auth gets four cookies (oc_sessionPassphrase, nc_sameSiteCookielax,
    # nc_sameSiteCookiestrict, oc<instanceid> = the PHP session id); a request that sends them
    # back is taken as the logged-in session and skips the app password login (105 ms -> 56 ms
    # a PROPFIND there), and gets no new cookies. From the source (apps/dav/.../Auth.php,
    # not observed): a cookie-authenticated POST fails the CSRF check (a non-official client)
    # and the session is logged out, then the Basic credentials log in again; a revoked app
    # password ends its sessions (Session::validateSession). Stats: "app_password_logins",
    # "session_requests", "csrf_logouts".
    def session_user(self, request):
        st = self.store
        sessions = st.__dict__.setdefault("sessions", {})
        sid = request.cookies.get(st.instance)
        entry = sessions.get(sid) if sid else None
        if entry is None or request.cookies.get("oc_sessionPassphrase") != entry["passphrase"]:
            return None
        if st.app_passwords.get(entry["app_password"]) != entry["user"]:
            del sessions[sid]
            return None
        if request.method == "POST":
            del sessions[sid]
            st.stats["csrf_logouts"] = st.stats.get("csrf_logouts", 0) + 1
            return None
        st.stats["session_requests"] = st.stats.get("session_requests", 0) + 1
        return entry["user"]

    def new_session(self, request, response, user):
        st = self.store
        password = request.get("app_password")
        if password is None or getattr(response, "prepared", False):
            return  # bearer: user_oidc's own session handling is not modelled
        st.stats["app_password_logins"] = st.stats.get("app_password_logins", 0) + 1
        sid, passphrase = secrets.token_hex(13), secrets.token_urlsafe(96)
        st.__dict__.setdefault("sessions", {})[sid] = {"user": user, "app_password": password, "passphrase": passphrase}
        for c in (f"oc_sessionPassphrase={passphrase}; path=/; HttpOnly; SameSite=Lax",
                  "nc_sameSiteCookielax=true; path=/; httponly;expires=Fri, 31-Dec-2100 23:59:59 GMT; SameSite=lax",
                  "nc_sameSiteCookiestrict=true; path=/; httponly;expires=Fri, 31-Dec-2100 23:59:59 GMT; SameSite=strict",
                  f"{st.instance}={sid}; path=/; HttpOnly; SameSite=Lax"):
            response.headers.add("Set-Cookie", c)
    # ---- end of session cookie ----

    def unauthorized(self):
        return sabre_error(401, "NotAuthenticated", "No public access to this resource., No 'Authorization: Basic' header found. Either the client didn't send one, or the server is misconfigured, Bearer token was incorrect",
                           headers={"WWW-Authenticate": 'Basic realm="Nextcloud", charset="UTF-8"'})

    # ------------------------------------------------ middleware and routing

    @web.middleware
    async def middleware(self, request, handler):
        if request.path.startswith("/_test/"):
            return await handler(request)
        st = self.store.stats
        st["requests"] += 1
        st["methods"][request.method] = st["methods"].get(request.method, 0) + 1
        self.store.in_flight += 1
        try:
            return await handler(request)
        finally:
            self.store.in_flight -= 1

    async def dispatch(self, request):
        path = request.rel_url.raw_path
        m = request.method
        if path == "/status.php":
            return self.status(request)
        if path.startswith("/_test/"):
            return await self.control(request, path)
        if path == "/index.php/login/v2" and m == "POST":
            return self.flow_start(request)
        if path == "/index.php/login/v2/poll" and m == "POST":
            return await self.flow_poll(request)
        if path.startswith("/index.php/login/v2/flow/") and m == "GET":
            return web.Response(text="Nextcloud test double: grant this login with POST /_test/login-flow/grant",
                                content_type="text/html")
        if path.startswith("/ocs/"):
            return await self.ocs(request, path)
        if path.startswith("/index.php/s/") and m == "GET":
            return self.public_page(path[len("/index.php/s/"):])
        if path.startswith("/remote.php/dav"):
            # ---- session cookie (ncperf) ----
            user = self.session_user(request)
            logged_in = user is None
            # ---- end of session cookie ----
            if user is None:
                user = await self.authenticate(request)
            if user is None:
                return self.unauthorized()
            request["user"] = user
            response = await self.dav(request, path[len("/remote.php/dav"):], user)
            if logged_in:
                self.new_session(request, response, user)  # session cookie (ncperf)
            return response
        if path == "/remote.php/webdav" or path.startswith("/remote.php/webdav/"):
            user = await self.authenticate(request)
            if user is None:
                return self.unauthorized()
            return await self.dav(request, "/files/" + user + path[len("/remote.php/webdav"):], user)
        return web.Response(status=404, text="not found")

    def status(self, request):
        return web.json_response({
            "installed": True, "maintenance": False, "needsDbUpgrade": False,
            "version": "34.0.1.2", "versionstring": "34.0.1", "edition": "",
            "productname": "Nextcloud", "extendedSupport": False,
        })

    # ------------------------------------------------ OCS

    async def ocs(self, request, path):
        if request.headers.get("OCS-APIRequest", "").lower() != "true":
            return web.json_response({"message": "CSRF check failed"}, status=412)
        route = path.split("?")[0]
        for prefix in ("/ocs/v2.php", "/ocs/v1.php"):
            if route.startswith(prefix):
                route = route[len(prefix):]
        user = await self.authenticate(request)
        if route == "/cloud/capabilities" and request.method == "GET":
            return ocs(self.capabilities(user is not None))
        if user is None:
            return ocs([], status=401, statuscode=997, message="Current user is not logged in")
        if route == "/cloud/user" and request.method == "GET":
            u = self.store.user(user)
            recount(u)
            return ocs({"id": user, "enabled": True, "displayname": user.capitalize(),
                        "quota": {"free": u.free(), "used": u.used, "total": u.quota,
                                  "relative": round(100.0 * u.used / u.quota, 2) if u.quota else 0,
                                  "quota": u.quota}})
        if route.startswith("/apps/files_sharing/api/v1/shares"):
            return await self.shares_api(request, route[len("/apps/files_sharing/api/v1/shares"):], user)
        if route == "/core/apppassword" and request.method == "DELETE":
            pw = request.get("app_password")
            if pw is None:
                return ocs([], status=403, statuscode=403, message="Password confirmation is required")
            self.store.app_passwords.pop(pw, None)
            return ocs([])
        mine = self.recover_ocs(request, route, user)
        if mine is not None:
            return mine
        return ocs([], status=404, statuscode=998, message="Invalid query")

    def capabilities(self, authenticated):
        version = {"major": 34, "minor": 0, "micro": 1, "string": "34.0.1", "edition": "", "extendedSupport": False}
        if not authenticated:
            # Observed on Nextcloud 34.0.1: an anonymous caller sees only app_api, bruteforce
            # and theming; dav, files and the rest need an authenticated request.
            return {"version": version, "capabilities": {
                "app_api": {"loglevel": 2, "version": "34.0.0"},
                "bruteforce": {"delay": 0, "allow-listed": False},
                "theming": {"name": "Nextcloud", "url": "https://nextcloud.com", "slogan": "a safe home for all your data",
                            "color": "#00679e", "color-text": "#ffffff", "background-plain": False},
            }}
        dav = {}
        if self.store.caps["chunking"]:
            dav["chunking"] = "1.0"
        if self.store.caps["bulkupload"]:
            dav["bulkupload"] = "1.0"
        return {
            "version": version,
            "capabilities": {
                "core": {"pollinterval": 60, "webdav-root": "remote.php/webdav"},
                "dav": dav,
                "files": {"bigfilechunking": True, "versioning": True, "undelete": True,
                          "chunked_upload": {"max_size": 104857600, "max_parallel_count": 5}},
                "files_sharing": self.sharing_capabilities(),
                "password_policy": {"minLength": 10, "enforceNonCommonPassword": True,
                                    "enforceNumericCharacters": False, "enforceSpecialCharacters": False,
                                    "enforceUpperLowerCase": False},
            },
        }

    # ------------------------------------------------ shares (public links)
    #
    # Each answer below was observed on Nextcloud 34.0.1 (curl, 2026-11-29, run
    # section "share") unless marked otherwise; the logic follows
    # apps/files_sharing/lib/Controller/ShareAPIController.php and lib/private/Share20/Manager.php.

    def sharing_capabilities(self):
        sh = self.store.sharing
        if not sh["api"]:
            # Observed with shareapi_enabled=no: api_enabled false, public {"enabled": false}.
            return {"api_enabled": False, "public": {"enabled": False}, "user": {"send_mail": False},
                    "resharing": False}
        public = {"enabled": sh["links"]}
        if sh["links"]:
            # Observed: with links off, `public` is only {"enabled": false}.
            public["password"] = {"enforced": sh["password_enforced"], "askForOptionalPassword": False}
            public["expire_date"] = {"enabled": sh["expire_default"]}
            if sh["expire_default"]:
                public["expire_date"]["days"] = sh["expire_days"]
                public["expire_date"]["enforced"] = sh["expire_enforced"]
            public.update({"multiple_links": True, "expire_date_internal": {"enabled": False},
                           "expire_date_remote": {"enabled": False}, "send_mail": False, "upload": True,
                           "upload_files_drop": True, "custom_tokens": False})
        return {"api_enabled": True, "public": public, "resharing": True, "user": {"send_mail": False,
                "expire_date": {"enabled": True}}, "group_sharing": True, "default_permissions": 31}

    def node_path(self, node):
        segs = []
        while node is not None and node.parent is not None:
            segs.append(node.name)
            node = node.parent
        return "/" + "/".join(reversed(segs))

    def node_alive(self, u, node):
        # A share of a deleted item is gone (Nextcloud deletes it with the file).
        while node.parent is not None:
            if node.parent.children.get(node.name) is not node:
                return False
            node = node.parent
        return node is u.root

    def share_json(self, request, s, created=False):
        node = s["node"]
        # The password never comes back: "redacted" when there is one (observed), and then
        # share_with too.
        return {
            "id": str(s["id"]), "share_type": 3, "uid_owner": s["user"], "displayname_owner": s["user"].capitalize(),
            "permissions": s["permissions"], "can_edit": True, "can_delete": True, "stime": s["stime"],
            "parent": None, "expiration": f"{s['expiration']} 23:59:59" if s["expiration"] else None,
            "token": s["token"], "uid_file_owner": s["user"], "note": "", "label": "",
            "displayname_file_owner": s["user"].capitalize(), "path": self.node_path(node),
            "item_type": "folder" if node.is_dir else "file", "item_permissions": 31 if node.is_dir else 27,
            "is-mount-root": False, "mount-type": "",
            "mimetype": "httpd/unix-directory" if node.is_dir else "application/octet-stream",
            "has_preview": False, "storage_id": f"home::{s['user']}", "storage": 3,
            "item_source": node.fileid, "file_source": node.fileid,
            "file_parent": node.parent.fileid if node.parent else None, "file_target": "/" + node.name,
            "item_size": node.tree_size(), "item_mtime": node.mtime,
            "share_with": "redacted" if s["password"] else None, "share_with_displayname": "(Shared link)",
            "password": "redacted" if s["password"] else None, "send_password_by_talk": False,
            "url": f"{self.base(request)}/index.php/s/{s['token']}",
            "mail_send": 1 if created else 0, "hide_download": 0, "attributes": None,
        }

    def check_share_password(self, password):
        # password_policy with its defaults on 34.0.1 (minLength 10, non-common): both reasons in
        # one message, the common one first (observed for "short").
        reasons = []
        if password.lower() in COMMON_PASSWORDS:
            reasons.append("Password is among the 1,000,000 most common ones. Please make it unique.")
        if len(password) < 10:
            reasons.append("Password needs to be at least 10 characters long.")
        return " ".join(reasons) or None

    async def shares_api(self, request, rest, user):
        st = self.store
        u = st.user(user)
        m = request.method
        if not st.sharing["api"]:
            # Observed on GET and POST with shareapi_enabled=no.
            return ocs([], status=404, statuscode=404, message="Share API is disabled")
        if rest in ("", "/") and m == "GET":
            path = request.query.get("path")
            if path is None:
                # Without a path: every share of the user (ShareAPIController::getShares).
                mine = [s for s in st.shares if s["user"] == user and self.node_alive(u, s["node"])]
                return ocs([self.share_json(request, s) for s in mine if st.sharing["links"]])
            node = lookup(u.root, split(path))
            if node is None:
                return ocs([], status=404, statuscode=404, message="Wrong path, file/folder does not exist")
            # Observed: with links off, an existing link is no longer listed ("data": []).
            found = [s for s in st.shares if s["user"] == user and s["node"] is node] if st.sharing["links"] else []
            return ocs([self.share_json(request, s) for s in found])
        if rest in ("", "/") and m == "POST":
            return await self.share_create(request, u)
        sid = rest.strip("/")
        share = next((s for s in st.shares if str(s["id"]) == sid and s["user"] == user), None)
        if m == "DELETE":
            if share is None:
                # ShareAPIController::deleteShare (not observed here).
                return ocs([], status=404, statuscode=404, message="Wrong share ID, share does not exist")
            st.shares.remove(share)
            return ocs([])
        return ocs([], status=404, statuscode=998, message="Invalid query")

    async def share_create(self, request, u):
        st = self.store
        sh = st.sharing
        now = time.monotonic()
        recent = [t for t in st.share_posts.get(u.name, []) if now - t < 600]
        if len(recent) >= sh["rate_limit"]:
            # Observed: the 21st POST within 10 minutes, 429 with an empty text/html body.
            st.share_posts[u.name] = recent
            return web.Response(status=429, body=b"", content_type="text/html", charset="UTF-8")
        recent.append(now)
        st.share_posts[u.name] = recent
        form = await request.post()
        path = form.get("path", "")
        node = lookup(u.root, split(path)) if path else None
        if node is None or node is u.root:
            return ocs([], status=404, statuscode=404, message="Wrong path, file/folder does not exist")
        if str(form.get("shareType", "")) != "3":
            # Only links are simulated (not verified on a real server for other types).
            return ocs([], status=400, statuscode=400, message="Unknown share type")
        if not sh["links"]:
            return ocs([], status=404, statuscode=404, message="Public link sharing is disabled by the administrator")
        if "R" not in node.permissions():
            # Observed on 34.0.1 for a file shared with the user with permissions=1 (no reshare).
            return ocs([], status=404, statuscode=404, message=f"You are not allowed to share {node.name}")
        password = form.get("password") or None
        if password is not None:
            refused = self.check_share_password(password)
            if refused:
                return ocs([], status=400, statuscode=400, message=refused)
        elif sh["password_enforced"]:
            return ocs([], status=403, statuscode=403, message="Passwords are enforced for link and mail shares")
        today = datetime.date.today()
        default = today + datetime.timedelta(days=sh["expire_days"]) if sh["expire_default"] else None
        if "expireDate" in form:
            raw = form.get("expireDate", "")
            if raw == "":
                # Observed: an empty expireDate is "no expiry", unless enforced (then the default).
                expiration = default if sh["expire_enforced"] else None
            else:
                try:
                    expiration = datetime.date.fromisoformat(raw[:10])
                    if len(raw) < 10:
                        raise ValueError
                except ValueError:
                    return ocs([], status=404, statuscode=404, message="Invalid date. Format must be YYYY-MM-DD")
                if expiration < today:
                    return ocs([], status=404, statuscode=404, message="Expiration date is in the past")
                if sh["expire_default"] and sh["expire_enforced"] and expiration > default:
                    return ocs([], status=404, statuscode=404,
                               message=f"Cannot set expiration date more than {sh['expire_days']} days in the future")
        else:
            # Observed: no expireDate gets the default when one is set (enforced or not).
            expiration = default
        st._share_id += 1
        # Read-only link: PERMISSION_READ | PERMISSION_SHARE = 17 (observed for files and folders).
        share = {"id": st._share_id, "user": u.name, "node": node, "token": secrets.token_urlsafe(11)[:15].replace("-", "x").replace("_", "y"),
                 "password": password, "expiration": expiration.isoformat() if expiration else None,
                 "permissions": 17, "stime": int(time.time())}
        st.shares.append(share)
        return ocs(self.share_json(request, share, created=True))

    def public_page(self, token):
        # The public page of a link, reduced to "it exists" (not Nextcloud's page).
        if any(s["token"] == token for s in self.store.shares):
            return web.Response(text="<html><body>Nextcloud test double: a shared link</body></html>", content_type="text/html")
        return web.Response(status=404, text="not found")

    # ------------------------------------------------ Login Flow v2

    def base(self, request):
        return f"{request.scheme}://{request.host}"

    def flow_start(self, request):
        login = secrets.token_hex(32)
        poll = secrets.token_hex(64)
        self.store.flows[login] = {"poll": poll, "user": None, "expired": False}
        self.store.polls[poll] = login
        base = self.base(request)
        return web.json_response({"poll": {"token": poll, "endpoint": f"{base}/index.php/login/v2/poll"},
                                  "login": f"{base}/index.php/login/v2/flow/{login}"})

    async def flow_poll(self, request):
        form = await request.post()
        poll = form.get("token", "")
        login = self.store.polls.get(poll)
        flow = self.store.flows.get(login) if login else None
        if flow is None or flow["expired"] or flow["user"] is None:
            return web.json_response([], status=404)
        # 200 once: the flow is consumed.
        del self.store.polls[poll]
        del self.store.flows[login]
        password = secrets.token_urlsafe(48)
        self.store.app_passwords[password] = flow["user"]
        return web.json_response({"server": self.base(request), "loginName": flow["user"], "appPassword": password})

    # ------------------------------------------------ control

    async def control(self, request, path):
        st = self.store
        body = {}
        if request.method == "POST" and request.can_read_body:
            try:
                body = await request.json()
            except Exception:
                body = {}
        if path == "/_test/stats":
            return web.json_response(dict(st.stats, in_flight=st.in_flight))
        # ---- files_lock (ncperf) ----
        if path in ("/_test/lock", "/_test/unlock"):
            return self.lock_control(dict(body, unlock=path == "/_test/unlock"))
        # ---- end of files_lock ----
        if path == "/_test/hold-chunks":
            body = await request.json()
            st.hold_from, st.released = int(body["from"]), asyncio.Event()
            return web.json_response({})
        if path == "/_test/release-chunks":
            if st.released is not None:
                st.released.set()
            st.hold_from = None
            return web.json_response({})
        if path == "/_test/stats/reset":
            st.reset_stats()
            return web.json_response({})
        if path == "/_test/bearer":
            st.bearer = bool(body.get("enabled", True))
            st.userinfo_cache.clear()
            return web.json_response({"enabled": st.bearer})
        if path in ("/_test/login-flow/grant", "/_test/login-flow/expire"):
            login = body.get("login", "").rstrip("/").rsplit("/", 1)[-1]
            flow = st.flows.get(login)
            if flow is None:
                return web.json_response({"error": "no such flow"}, status=404)
            if path.endswith("grant"):
                flow["user"] = body.get("user", "alice")
                st.user(flow["user"])
            else:
                flow["expired"] = True
            return web.json_response({})
        if path == "/_test/users":
            name = body["user"]
            st.users.pop(name, None)
            u = st.user(name, int(body.get("quota", DEFAULT_QUOTA)))
            if body.get("app_password"):
                st.app_passwords[body["app_password"]] = name
            return web.json_response({"user": u.name, "quota": u.quota})
        if path == "/_test/seed":
            return self.seed(body)
        if path == "/_test/permissions":
            u = st.user(body["user"])
            node = lookup(u.root, split(body["path"]))
            if node is None:
                return web.json_response({"error": "no such path"}, status=404)
            stack = [node]
            while stack:
                n = stack.pop()
                n.perms = body["permissions"]
                if n.is_dir:
                    stack.extend(n.children.values())
            return web.json_response({})
        if path == "/_test/fail":
            key = (body["user"], "/" + "/".join(split(body["path"])))
            if body.get("mode") == "checksum":
                st.bad_checksum.add(key)
            elif body.get("mode") == "precondition":
                st.refuse_412[key] = int(body.get("times", 1))
            else:
                st.fail_next.add(key)
            return web.json_response({})
        if path == "/_test/quota-cache":
            st.quota_cache = float(body.get("seconds", 300))
            for u in st.users.values():
                u.quota_seen = None
            return web.json_response({"seconds": st.quota_cache})
        if path == "/_test/sharing":
            for k in DEFAULT_SHARING:
                if k in body:
                    st.sharing[k] = type(DEFAULT_SHARING[k])(body[k])
            if body.get("reset"):
                st.sharing = dict(DEFAULT_SHARING)
                st.share_posts.clear()
            return web.json_response(st.sharing)
        if path == "/_test/shares":
            user = request.query.get("user")
            return web.json_response([
                {"id": s["id"], "user": s["user"], "path": self.node_path(s["node"]), "token": s["token"],
                 "password": s["password"], "expiration": s["expiration"], "permissions": s["permissions"]}
                for s in st.shares if user is None or s["user"] == user])
        if path == "/_test/capabilities":
            for k in ("bulkupload", "chunking"):
                if k in body:
                    st.caps[k] = bool(body[k])
            return web.json_response(st.caps)
        mine = self.recover_control(path, body)
        if mine is not None:
            return mine
        return web.Response(status=404)

    def seed(self, body):
        """Makes a tree of small files quickly, straight in the store (for 10,000-file tests)."""
        u = self.store.user(body["user"])
        n = int(body.get("files", 1000))
        per = int(body.get("per_folder", 100))
        size = int(body.get("size", 16))
        prefix = body.get("prefix", "seed")
        top = u.root.children.get(prefix)
        if top is None:
            top = Node(self.store, prefix, True, u.root)
            u.root.children[prefix] = top
        for i in range(n):
            dname = f"d{i // per:04d}"
            d = top.children.get(dname)
            if d is None:
                d = Node(self.store, dname, True, top)
                top.children[dname] = d
            content = (f"{prefix}/{dname}/f{i:05d}\n" * (size // 16 + 1)).encode()[:size]
            f = Node(self.store, f"f{i:05d}.txt", False, d)
            f.blob = self.store.new_blob_path()
            with open(f.blob, "wb") as fh:
                fh.write(content)
            f.size = len(content)
            d.children[f.name] = f
        propagate(top)
        recount(u)
        return web.json_response({"files": n})

    # ------------------------------------------------ DAV

    async def dav(self, request, rest, user):
        segs = decode_segments(rest)
        if not segs:
            return web.Response(status=404)
        kind = segs[0]
        if kind == "bulk" and len(segs) == 1 and request.method == "POST":
            if not self.store.caps["bulkupload"]:
                return sabre_error(405, "MethodNotAllowed", "Bulk upload is disabled")
            return await self.bulk(request, user)
        if len(segs) >= 2 and segs[1] != user:
            return sabre_error(403, "Forbidden", "Principal mismatch")
        u = self.store.user(user)
        if kind == "files":
            return await self.files(request, u, segs[2:])
        if kind == "uploads":
            return await self.uploads(request, u, segs[2:])
        if kind == "trashbin":
            return await self.trashbin(request, u, segs[2:])
        if kind == "versions":
            return await self.versions(request, u, segs[2:])
        return sabre_error(404, "NotFound", "File not found")

    def files_prefix(self, user):
        return f"/remote.php/dav/files/{urllib.parse.quote(user, safe='')}/"

    def props_for(self, u, node, segs, asked, prefix):
        found, missing = [], []
        for ns, name in (asked if asked is not None else DEFAULT_PROPS):
            v = self.prop_value(u, node, ns, name)
            if v is None:
                missing.append((ns, name))
            else:
                found.append((ns, name, v))
        return (href(prefix, segs, node.is_dir), found, missing)

    def prop_value(self, u, node, ns, name):
        if ns == DAV:
            if name == "getetag":
                return f"&quot;{node.etag}&quot;"
            if name == "getlastmodified":
                return http_date(node.mtime)
            if name == "getcontentlength" and not node.is_dir:
                return str(node.size)
            if name == "resourcetype":
                return "<d:collection/>" if node.is_dir else ""
            if name == "getcontenttype" and not node.is_dir:
                return "application/octet-stream"
            if name == "quota-used-bytes" and node.is_dir:
                return str(self.quota_figures(u)[0] if node is u.root else node.tree_size())
            if name == "quota-available-bytes" and node.is_dir:
                return str(self.quota_figures(u)[1])
            return None
        if ns == OC:
            if name == "fileid":
                return str(node.fileid)
            if name == "id":
                return f"{node.fileid:08d}{self.store.instance}"
            if name == "permissions":
                return node.permissions()
            if name == "size":
                return str(node.tree_size())
            return None
        # ---- files_lock (ncperf) ----
        if ns == NC and name.startswith("lock"):
            return lock_prop(self.store, node, name)
        # ---- end of files_lock ----
        return None

    def quota_figures(self, u):
        """(used, free) as the quota properties give them: a figure read within the last
        --quota-cache seconds is served again unchanged. Observed on Nextcloud 34.0.1:
        quota-used-bytes still said 0 after a 100 MiB upload, for up to about 5 minutes. The
        507 checks on PUT and chunks use the true figures (QuotaPlugin::checkQuota)."""
        now = time.monotonic()
        seen = u.quota_seen
        if seen is None or now - seen[0] >= self.store.quota_cache:
            recount(u)
            u.quota_seen = seen = (now, u.used)
        used = seen[1]
        return used, max(0, u.quota - used)

    async def propfind(self, request, u, node, segs, prefix):
        depth = request.headers.get("Depth", "1").lower()
        if depth not in ("0", "1", "infinity"):
            return sabre_error(400, "BadRequest", "The HTTP Depth header may only be \"0\", \"1\" or \"infinity\"")
        asked = parse_propfind(await request.text())
        responses = [self.props_for(u, node, segs, asked, prefix)]
        # Depth: infinity is answered (observed on Nextcloud 34.0.1), the whole subtree.
        def below(n, at):
            for name in sorted(n.children):
                child = n.children[name]
                responses.append(self.props_for(u, child, at + [name], asked, prefix))
                if depth == "infinity" and child.is_dir:
                    below(child, at + [name])
        if depth != "0" and node.is_dir:
            below(node, segs)
        return multistatus(responses)

    def dest_segments(self, request, u):
        """The Destination header as segments under the user's files root, or None."""
        dest = request.headers.get("Destination")
        if not dest:
            return None
        p = urllib.parse.urlsplit(dest).path
        prefix = f"/remote.php/dav/files/{u.name}/"
        raw = urllib.parse.unquote(p)
        if not (raw + "/").startswith(prefix):
            return None
        return [unicodedata.normalize("NFC", x) for x in decode_segments(p)[4:]]

    def file_headers(self, node, mtime_accepted=False):
        h = {"ETag": f'"{node.etag}"', "OC-ETag": f'"{node.etag}"', "OC-FileId": f"{node.fileid:08d}{self.store.instance}"}
        if mtime_accepted:
            h["X-OC-MTime"] = "accepted"
        return h

    def check_preconditions(self, request, node):
        if_match = request.headers.get("If-Match")
        if if_match is not None:
            if node is None:
                return sabre_error(412, "PreconditionFailed", "An If-Match header was specified, but none of the specified ETags matched.")
            tags = [t.strip() for t in if_match.split(",")]
            if "*" not in tags and f'"{node.etag}"' not in tags:
                return sabre_error(412, "PreconditionFailed", "An If-Match header was specified, but none of the specified ETags matched.")
        if_none = request.headers.get("If-None-Match")
        if if_none is not None and node is not None:
            tags = [t.strip() for t in if_none.split(",")]
            if "*" in tags or f'"{node.etag}"' in tags:
                return sabre_error(412, "PreconditionFailed", "An If-None-Match header was specified, but the ETag matched (or * was specified).")
        return None

    def check_if_header(self, request, u):
        """The RFC 4918 `If:` header with tagged lists of ETags, as Sabre evaluates it
        (3rdparty/sabre/dav/lib/DAV/Server.php checkPreconditions/getIfConditions): each
        `<uri> (["etag"])` needs the node at uri to be a file with that ETag; `Not` negates;
        a tagged URI with nothing there throws NotFound (404)."""
        header = request.headers.get("If")
        if not header:
            return None
        import re
        for m in re.finditer(r'<([^>]*)>\s*\(([^)]*)\)', header):
            uri, cond = m.group(1), m.group(2)
            negate = cond.strip().lower().startswith("not")
            em = re.search(r'\[([^\]]*)\]', cond)
            if not em:
                continue
            etag = em.group(1)
            p = urllib.parse.urlsplit(uri).path
            segs = decode_segments(p)
            if segs[:4] != ["remote.php", "dav", "files", u.name]:
                continue
            target = lookup(u.root, [unicodedata.normalize("NFC", x) for x in segs[4:]])
            if target is None:
                return sabre_error(404, "NotFound", f"File with name {'/'.join(segs[4:])} could not be located")
            valid = (not target.is_dir) and f'"{target.etag}"' == etag
            if valid == negate:
                return sabre_error(412, "PreconditionFailed", f"Failed to find a valid token/etag combination for {uri}")
        return None

    def add_version(self, u, node):
        if node.blob is None:
            return
        keep = self.store.new_blob_path()
        shutil.copyfile(node.blob, keep)
        vs = u.versions.setdefault(node.fileid, [])
        ts = node.mtime
        # Versions are named by timestamp; two in the same second would collide.
        while any(v["ts"] == ts for v in vs):
            ts += 1
        vs.append({"ts": ts, "blob": keep, "size": node.size, "etag": node.etag, "author": author_of(self.store, u, node)})

    def place_file(self, u, parent, name, blob, size, mtime):
        """Puts content at parent/name (creating or overwriting); returns (node, created)."""
        existing = parent.children.get(name)
        if existing is not None and not existing.is_dir:
            self.add_version(u, existing)
            node, created = existing, False
            old = node.blob
            node.blob = blob
            if old and os.path.exists(old):
                os.remove(old)
            node.etag = file_etag()
        else:
            node = Node(self.store, name, False, parent)
            node.blob = blob
            if parent.perms is not None:
                node.perms = parent.perms
            parent.children[name] = node
            created = True
        node.size = size
        node.mtime = mtime if mtime is not None else int(time.time())
        wrote(self.store, u, node, created)
        propagate(parent)
        recount(u)
        return node, created

    def parse_mtime(self, request):
        v = request.headers.get("X-OC-Mtime")
        if v is None:
            return None
        try:
            return int(float(v))
        except ValueError:
            return None

    async def files(self, request, u, segs):
        m = request.method
        prefix = self.files_prefix(u.name)
        if m in ("PUT", "MKCOL") and segs:
            bad = invalid_name(segs[-1:])
            if bad:
                await request.read()
                return invalid_path(bad)
        if m in ("MOVE", "COPY"):
            dest = self.dest_segments(request, u)
            bad = invalid_name(dest[-1:]) if dest else None
            if bad:
                return invalid_path(bad)
        if any(x in (".", "..") or "/" in x for x in segs):
            return invalid_path(invalid_name(segs))
        # Names are stored in NFC: an NFD spelling reaches the NFC item (observed on
        # Nextcloud 34.0.1: a PUT of the NFD twin overwrote the NFC file).
        segs = [unicodedata.normalize("NFC", x) for x in segs]
        node = lookup(u.root, segs)
        # ---- files_lock (ncperf) ----
        locked = await self.files_lock(request, u, segs, node)
        if locked is not None:
            return locked
        # ---- end of files_lock ----
        if m == "PROPFIND":
            if node is None:
                return sabre_error(404, "NotFound", f"File with name {'/'.join(segs)} could not be located")
            return await self.propfind(request, u, node, segs, prefix)
        if m in ("GET", "HEAD"):
            if node is None:
                return sabre_error(404, "NotFound", f"File with name {'/'.join(segs)} could not be located")
            # ---- folder as a tar (ncperf) ----
            if m == "GET" and node.is_dir:
                archive = self.folder_tar(request, u, node, segs)
                if archive is not None:
                    return archive
            # ---- end of folder as a tar ----
            if node.is_dir:
                return web.Response(status=200, text="")
            headers = self.file_headers(node)
            headers["Last-Modified"] = http_date(node.mtime)
            if m == "HEAD":
                return web.Response(status=200, headers={**headers, "Content-Length": str(node.size)})
            return web.FileResponse(node.blob, headers=headers)
        if m == "PUT":
            return await self.put(request, u, segs, node)
        if m == "MKCOL":
            if node is not None:
                return sabre_error(405, "MethodNotAllowed", "The resource you tried to create already exists")
            parent = lookup(u.root, segs[:-1])
            if parent is None or not parent.is_dir:
                return sabre_error(409, "Conflict", "Parent node does not exist")
            if "K" not in parent.permissions():
                return sabre_error(403, "Forbidden", "Could not create directory")
            d = Node(self.store, segs[-1], True, parent)
            if parent.perms is not None:
                d.perms = parent.perms
            parent.children[segs[-1]] = d
            propagate(parent)
            # OC-FileId on MKCOL, no ETag (observed on 34.0.1; FilesPlugin::sendFileIdHeader on afterBind).
            return web.Response(status=201, headers={"OC-FileId": f"{d.fileid:08d}{self.store.instance}"})
        if m == "DELETE":
            if node is None or not segs:
                return sabre_error(404, "NotFound", "File not found")
            if "D" not in node.permissions():
                return sabre_error(403, "Forbidden", "Could not delete file")
            parent = node.parent
            del parent.children[node.name]
            u.trash.append({"name": node.name, "node": node, "location": "/".join(segs[:-1]),
                            "deleted": int(time.time()), "key": f"{node.name}.d{int(time.time())}{secrets.token_hex(2)}",
                            "by": u.name})
            record_activity(self.store, u, "file_deleted", u.name, "/".join(segs), node.fileid)
            propagate(parent)
            recount(u)
            return web.Response(status=204)
        if m in ("MOVE", "COPY"):
            if node is None or not segs:
                return sabre_error(404, "NotFound", "File not found")
            dest = self.dest_segments(request, u)
            if not dest:
                return sabre_error(400, "BadRequest", "The destination header was not supplied or is invalid")
            dparent = lookup(u.root, dest[:-1])
            if dparent is None or not dparent.is_dir:
                return sabre_error(409, "Conflict", "The destination node is not found")
            existing = dparent.children.get(dest[-1])
            if existing is not None and request.headers.get("Overwrite", "T").upper() == "F":
                return sabre_error(412, "PreconditionFailed", "The destination node already exists, and the overwrite header is set to false")
            if m == "MOVE" and ("N" not in node.permissions() or "D" not in node.parent.permissions() and False):
                return sabre_error(403, "Forbidden", "Could not rename")
            if existing is not None:
                del dparent.children[dest[-1]]
            if m == "MOVE":
                old_parent = node.parent
                del old_parent.children[node.name]
                node.name = dest[-1]
                node.parent = dparent
                dparent.children[node.name] = node
                # A renamed file keeps its ETag, in the MOVE answer and in listings (observed on
                # Nextcloud 34.0.1, PUT then MOVE then PROPFIND).
                propagate(old_parent)
                target = node
            else:
                target = self.copy_tree(node, dparent, dest[-1])
                dparent.children[target.name] = target
            propagate(dparent)
            recount(u)
            # A folder's MOVE answers OC-FileId and no ETag (observed on 34.0.1).
            headers = self.file_headers(target) if not target.is_dir else {"OC-FileId": f"{target.fileid:08d}{self.store.instance}"}
            return web.Response(status=204 if existing is not None else 201, headers=headers)
        if m == "OPTIONS":
            return web.Response(status=200, headers={"DAV": "1, 3, extended-mkcol", "Allow": "OPTIONS, GET, HEAD, DELETE, PROPFIND, PUT, PROPPATCH, COPY, MOVE, REPORT"})
        if m == "PROPPATCH":
            return multistatus([(href(prefix, segs, node.is_dir if node else False), [], [])])
        return sabre_error(405, "MethodNotAllowed", f"{m} is not allowed")

    # ---- folder as a tar (ncperf) ----
    def folder_tar(self, request, u, node, segs):
        """apps/dav/lib/Connector/Sabre/ZipFolderPlugin.php: GET on a folder with `Accept:
        application/x-tar` (or `accept=tar`) and a `files` JSON array of child names answers a
        tar of those children. Observed on 34.0.1: 200, `Content-Type: application/x-tar`,
        `Content-Disposition: attachment; filename*=UTF-8''<folder>.tar; filename="<folder>.tar"`;
        ustar entries, mode 0777, uid/gid 0, the server's mtime; a name not in the folder makes
        the whole answer 404 (Sabre NotFound); several `X-NC-Files` headers are NOT split
        (PHP joins them with ", ": 404). The real server puts "/" in the ustar prefix field
        (`tar tv` shows //name); here the name field holds //name: both read as the same name.
        A whole-folder download (no filter) broke mid-stream on 34.0.1 (TypeError): not
        modelled, the filter is the only use."""
        import io
        import tarfile
        accept = request.headers.get("Accept", "") + "," + request.query.get("accept", "")
        if "application/x-tar" not in accept and "tar" not in [a.strip() for a in accept.split(",")]:
            return None
        raw = request.query.get("files")
        if raw is None:
            return None
        try:
            names = json.loads(raw)
        except ValueError:
            return None
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return None
        children = []
        for name in names:
            child = node.children.get(unicodedata.normalize("NFC", name))
            if child is None:
                return sabre_error(404, "NotFound", f"File with name /{'/'.join(segs + [name])} could not be located")
            children.append(child)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for child in children:
                if child.is_dir:
                    continue  # not used by the client; the real one recurses
                info = tarfile.TarInfo("//" + child.name)
                info.size, info.mtime, info.mode = child.size, child.mtime, 0o777
                with open(child.blob, "rb") as f:
                    tar.addfile(info, f)
        self.store.stats["tar_downloads"] = self.store.stats.get("tar_downloads", 0) + 1
        folder = segs[-1] if segs else "download"
        quoted = urllib.parse.quote(folder)
        return web.Response(status=200, body=buf.getvalue(), headers={
            "Content-Type": "application/x-tar",
            "Content-Disposition": f"attachment; filename*=UTF-8''{quoted}.tar; filename=\"{folder}.tar\""})
    # ---- end of folder as a tar ----

    # ---- files_lock (ncperf) ----
    async def files_lock(self, request, u, segs, node):
        """LOCK/UNLOCK with X-User-Lock (files_lock's LockPlugin::httpLock), and the 423 that a
        locked file gives to whatever would change it. None: not ours, carry on."""
        m = request.method
        if m in ("LOCK", "UNLOCK") and request.headers.get("X-User-Lock"):
            if node is None or node.is_dir:
                return sabre_error(404, "NotFound", "File not found")
            kind = int(request.headers.get("X-User-Lock-Type", "0"))
            current = lock_of(self.store, node)
            if m == "LOCK":
                if current is not None and (current["owner"] != u.name or current["type"] != kind):
                    return web.Response(status=423, text=lock_props_xml(self.store, node, current),
                                        content_type="application/xml", charset="utf-8")
                lock = current or {"type": kind, "owner": u.name, "displayname": "", "editor": u.name,
                                   "time": int(time.time()), "token": f"files_lock/{secrets.token_hex(16)}"}
                if current is None:
                    set_lock(self.store, node, lock)
                return web.Response(status=200, text=lock_props_xml(self.store, node, lock),
                                    content_type="application/xml", charset="utf-8")
            if current is not None:
                set_lock(self.store, node, None)
            return web.Response(status=200, text=lock_props_xml(self.store, node, None),
                                content_type="application/xml", charset="utf-8")
        if m in ("PUT", "DELETE", "MOVE") and locks_out(lock_of(self.store, node), u.name):
            await request.read()
            return locked_answer(u.name, segs)
        if m in ("MOVE", "COPY"):
            dest = self.dest_segments(request, u)
            target = lookup(u.root, dest) if dest else None
            if locks_out(lock_of(self.store, target), u.name):
                return locked_answer(u.name, dest)
        return None

    def lock_control(self, body):
        """/_test/lock and /_test/unlock: someone else's lock, as another user or an online
        editor would take it."""
        u = self.store.user(body["user"])
        node = lookup(u.root, split(body["path"]))
        if node is None or node.is_dir:
            return web.json_response({"error": "no such file"}, status=404)
        if body.get("unlock"):
            set_lock(self.store, node, None)
        else:
            set_lock(self.store, node, {"type": int(body.get("type", 0)), "owner": body.get("owner", "bob"),
                                        "displayname": body.get("displayname", ""), "editor": body.get("editor", ""),
                                        "time": int(time.time()), "token": f"files_lock/{secrets.token_hex(16)}"})
        return web.json_response({"etag": node.etag})
    # ---- end of files_lock ----

    def copy_tree(self, node, parent, name):
        n = Node(self.store, name, node.is_dir, parent)
        n.mtime = node.mtime
        n.perms = node.perms
        if node.is_dir:
            for c in node.children.values():
                n.children[c.name] = self.copy_tree(c, n, c.name)
        else:
            n.blob = self.store.new_blob_path()
            shutil.copyfile(node.blob, n.blob)
            n.size = node.size
        return n

    async def receive_body(self, request, limit=None):
        """Streams the body to a new blob; returns (path, size) or raises on a short body."""
        path = self.store.new_blob_path()
        size = 0
        with open(path, "wb") as fh:
            async for chunk in request.content.iter_chunked(1 << 20):
                fh.write(chunk)
                size += len(chunk)
        return path, size

    async def put(self, request, u, segs, node):
        self.store.stats["puts"] += 1
        if not segs:
            return sabre_error(405, "MethodNotAllowed", "Cannot PUT on the root")
        if node is not None and node.is_dir:
            return sabre_error(405, "MethodNotAllowed", "A folder exists at this path")
        parent = lookup(u.root, segs[:-1])
        if parent is None or not parent.is_dir:
            return sabre_error(409, "Conflict", "Parent node does not exist")
        if node is not None and "W" not in node.permissions():
            return sabre_error(403, "Forbidden", "Could not write file")
        if node is None and "C" not in parent.permissions():
            return sabre_error(403, "Forbidden", "Could not create file")
        pre = self.check_preconditions(request, node)
        if pre is not None:
            return pre
        key = (u.name, "/" + "/".join(segs))
        if self.store.refuse_412.get(key, 0) > 0:
            # Test switch: a server that refuses the precondition whatever is sent (as the
            # assembly MOVE with If-None-Match did on Nextcloud 34.0.1).
            self.store.refuse_412[key] -= 1
            await request.read()
            return sabre_error(412, "PreconditionFailed", "An If-None-Match header was specified, but the ETag matched (or * was specified).")
        if key in self.store.fail_next:
            self.store.fail_next.discard(key)
            await request.read()
            return sabre_error(500, "ServiceUnavailable", "Injected failure")
        length = request.headers.get("Content-Length")
        # The observed hole: without Content-Length there is nothing to check up front.
        if length is not None:
            recount(u)
            if int(length) > u.free():
                await request.read()
                return sabre_error(507, "InsufficientStorage",
                                   f"Insufficient space in /{'/'.join(segs)}")
        blob, size = await self.receive_body(request)
        if length is not None and size != int(length):
            os.remove(blob)
            return sabre_error(400, "BadRequest", f"Expected filesize of {length} bytes but read (from Nextcloud client) and wrote (to Nextcloud storage) {size} bytes. Could either be a network problem on the sending side or a problem writing to the storage on the server side.")
        mtime = self.parse_mtime(request)
        node, created = self.place_file(u, parent, segs[-1], blob, size, mtime)
        return web.Response(status=201 if created else 204, headers=self.file_headers(node, mtime is not None))

    # ------------------------------------------------ chunking v2

    async def uploads(self, request, u, segs):
        m = request.method
        prefix = f"/remote.php/dav/uploads/{u.name}/"
        if not segs:
            # UploadHome::getChildren throws MethodNotAllowed (apps/dav/lib/Upload/UploadHome.php),
            # observed on Nextcloud 34.0.1 as 405 to a PROPFIND of the uploads root.
            if m == "PROPFIND" and request.headers.get("Depth", "1") == "0":
                return multistatus([(prefix, [(DAV, "resourcetype", "<d:collection/>")], [])])
            return sabre_error(405, "MethodNotAllowed", "Listing members of this collection is disabled")
        uid = segs[0]
        up = u.uploads.get(uid)
        if len(segs) == 1:
            if m == "MKCOL":
                if up is not None:
                    return sabre_error(405, "MethodNotAllowed", "The resource you tried to create already exists")
                dest = self.dest_segments(request, u)
                total = request.headers.get("OC-Total-Length")
                u.uploads[uid] = {"dest": dest, "total": int(total) if total and total.isdigit() else None,
                                  "chunks": {}, "mtime": int(time.time()), "etag": folder_etag()}
                return web.Response(status=201)
            if up is None:
                return sabre_error(404, "NotFound", "Upload not found")
            if m == "PROPFIND":
                depth = request.headers.get("Depth", "1")
                out = [(prefix + urllib.parse.quote(uid) + "/", [(DAV, "resourcetype", "<d:collection/>"),
                                                                  (DAV, "getetag", f"&quot;{up['etag']}&quot;")], [])]
                if depth == "1":
                    # The listing includes the FutureFile `.file` (observed on Nextcloud 34.0.1;
                    # apps/dav/lib/Upload/UploadFolder.php adds it to the children), whose ETag is
                    # the upload folder's (FutureFile::getETag).
                    total = sum(size for _, size in up["chunks"].values())
                    out.append((prefix + urllib.parse.quote(uid) + "/.file",
                                [(DAV, "getcontentlength", str(total)), (DAV, "resourcetype", ""),
                                 (DAV, "getetag", f"&quot;{up['etag']}&quot;"),
                                 (DAV, "getlastmodified", http_date(up["mtime"]))], []))
                    for n in sorted(up["chunks"]):
                        blob, size = up["chunks"][n]
                        md5 = up.get("md5", {}).get(n, "")
                        out.append((prefix + urllib.parse.quote(uid) + "/" + f"{n:05d}",
                                    [(DAV, "getcontentlength", str(size)), (DAV, "resourcetype", ""),
                                     (DAV, "getetag", f"&quot;{md5}&quot;")], []))
                return multistatus(out)
            if m == "DELETE":
                for blob, _ in up["chunks"].values():
                    if os.path.exists(blob):
                        os.remove(blob)
                del u.uploads[uid]
                return web.Response(status=204)
            return sabre_error(405, "MethodNotAllowed", "Not allowed")
        if up is None:
            return sabre_error(404, "NotFound", "Upload not found")
        name = segs[1]
        if name == ".file" and m == "MOVE":
            return await self.assemble(request, u, uid, up)
        if m == "PUT":
            try:
                n = int(name)
            except ValueError:
                return sabre_error(400, "BadRequest", "Chunk name must be a number")
            if not 1 <= n <= CHUNK_MAX:
                return sabre_error(400, "BadRequest", "Chunk number out of range")
            recount(u)
            # Over quota: MKCOL succeeded, the first chunk gets 507 reading "Insufficient space
            # in /": no figures (observed on Nextcloud 34.0.1; QuotaPlugin::checkQuota).
            if up["total"] is not None and up["total"] > u.free():
                await request.read()
                return sabre_error(507, "InsufficientStorage", "Insufficient space in /")
            self.store.stats["chunk_puts"].append(n)
            if self.store.hold_from is not None and n >= self.store.hold_from:
                await self.store.released.wait()
            blob, size = await self.receive_body(request)
            length = request.headers.get("Content-Length")
            if length is not None and size != int(length):
                os.remove(blob)
                return sabre_error(400, "BadRequest", "Expected filesize mismatch")
            old = up["chunks"].get(n)
            if old and os.path.exists(old[0]):
                os.remove(old[0])
            up["chunks"][n] = (blob, size)
            # A chunk's listed ETag is the md5 of its bytes (observed on 34.0.1).
            digest = hashlib.md5()
            with open(blob, "rb") as fh:
                for piece in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(piece)
            up.setdefault("md5", {})[n] = digest.hexdigest()
            up["etag"] = folder_etag()
            # No ETag on a chunk PUT (observed on Nextcloud 34.0.1).
            return web.Response(status=201)
        if m == "GET":
            c = up["chunks"].get(int(name)) if name.isdigit() else None
            if c is None:
                return sabre_error(404, "NotFound", "Chunk not found")
            return web.FileResponse(c[0])
        return sabre_error(405, "MethodNotAllowed", "Not allowed")

    async def assemble(self, request, u, uid, up):
        dest = self.dest_segments(request, u) or up["dest"]
        if not dest:
            return sabre_error(400, "BadRequest", "The destination header was not supplied or is invalid")
        total = sum(size for _, size in up["chunks"].values())
        expected = request.headers.get("OC-Total-Length")
        expected = int(expected) if expected and expected.isdigit() else up["total"]
        if expected is not None and expected != total:
            return sabre_error(400, "BadRequest", f"Chunks on server do not sum up to {expected} but to {total} bytes")
        parent = lookup(u.root, dest[:-1])
        if parent is None or not parent.is_dir:
            return sabre_error(409, "Conflict", "Parent node does not exist")
        node = parent.children.get(dest[-1])
        # ---- files_lock (ncperf): the assembly onto a locked file is 423 (observed) ----
        if locks_out(lock_of(self.store, node), u.name):
            return locked_answer(u.name, dest)
        # Sabre's Server::checkPreconditions runs on the request URI, the source `.file`
        # (a FutureFile whose ETag is the upload folder's): If-None-Match: * always fails, and
        # If-Match with the target's ETag fails too (observed on Nextcloud 34.0.1: 412).
        pre = self.check_preconditions(request, FutureFile(up["etag"]))
        if pre is not None:
            return pre
        # What Sabre does evaluate on the destination: the RFC 4918 `If:` header's tagged
        # lists (Server::checkPreconditions, the ETag of the node at each tagged URI; a URI with
        # nothing there is a 404 NotFound from Tree::getNodeForPath) and `Overwrite: F`
        # (Server::getCopyAndMoveInfo: 412 when the destination exists), both before the
        # chunking plugin's beforeMove (CorePlugin::httpMove).
        tagged = self.check_if_header(request, u)
        if tagged is not None:
            return tagged
        if node is not None and request.headers.get("Overwrite", "T").upper() == "F":
            return sabre_error(412, "PreconditionFailed", "The destination node already exists, and the overwrite header is set to false", )
        if node is not None and node.is_dir:
            return sabre_error(409, "Conflict", "A folder exists at the destination")
        recount(u)
        if total > u.free() + (node.size if node else 0):
            return sabre_error(507, "InsufficientStorage", f"Insufficient space in /{'/'.join(dest)}")
        blob = self.store.new_blob_path()
        with open(blob, "wb") as out:
            for n in sorted(up["chunks"]):
                with open(up["chunks"][n][0], "rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
                os.remove(up["chunks"][n][0])
        del u.uploads[uid]
        mtime = self.parse_mtime(request)
        node, created = self.place_file(u, parent, dest[-1], blob, total, mtime)
        return web.Response(status=201 if created else 204, headers=self.file_headers(node, mtime is not None))

    # ------------------------------------------------ bulk upload

    async def bulk(self, request, user):
        self.store.stats["bulk_posts"] += 1
        u = self.store.user(user)
        ctype = request.headers.get("Content-Type", "")
        # Observed on 34.0.1: a wrong Content-Type or no boundary is a Sabre 400 (XML).
        if not ctype.startswith("multipart/related") or "boundary=" not in ctype:
            return sabre_error(400, "BadRequest", "Error while parsing boundary in Content-Type header.")
        boundary = None
        for part in ctype.split(";"):
            part = part.strip()
            if part.startswith("boundary="):
                boundary = part[len("boundary="):].strip('"')
        if not boundary:
            return sabre_error(400, "BadRequest", "Error while parsing boundary in Content-Type header.")
        body = await request.read()
        written = {}
        delim = b"--" + boundary.encode()
        pos = 0

        def php_json(written):
            # PHP's json_encode of an empty array is `[]` (observed: nothing written gives `[]`).
            return (json.dumps(written) if written else "[]").encode()

        def bad(status, msg):
            # BulkUploadPlugin::httpPost: a parse error answers 400 with the files written so
            # far; the body goes out as text/html (observed on Nextcloud 34.0.1). `msg` is only
            # logged by the server.
            return web.Response(status=status, body=php_json(written), content_type="text/html")

        # Skip to the first boundary.
        i = body.find(delim, pos)
        if i < 0:
            return bad(400, "no boundary in body")
        pos = i
        while True:
            if body.startswith(delim + b"--", pos):
                break
            if not body.startswith(delim, pos):
                return bad(400, "expected a boundary")
            pos += len(delim)
            if body.startswith(b"\r\n", pos):
                pos += 2
            else:
                return bad(400, "expected CRLF after the boundary")
            headers = {}
            while True:
                end = body.find(b"\r\n", pos)
                if end < 0:
                    return bad(400, "unterminated headers")
                line = body[pos:end]
                pos = end + 2
                if line == b"":
                    break
                k, _, v = line.decode("utf-8", "replace").partition(":")
                headers[k.strip().lower()] = v.strip()
            if "content-length" not in headers:
                # MultipartRequestParser throws LengthRequired, but httpPost turns every parse
                # error into 400 (observed on Nextcloud 34.0.1: 400, not 411).
                return bad(400, "The Content-Length header must not be null.")
            length = int(headers["content-length"])
            content = body[pos:pos + length]
            if len(content) != length:
                return bad(400, "body shorter than its Content-Length")
            pos += length
            if body.startswith(b"\r\n", pos):
                pos += 2
            checksum = headers.get("oc-checksum", "")
            md5 = None
            if checksum.lower().startswith("md5:"):
                md5 = checksum[4:].strip().lower()
            elif headers.get("x-file-md5"):
                md5 = headers["x-file-md5"].strip().lower()
            if md5 is None:
                return bad(400, "The X-File-MD5 header must not be null.")
            fpath = headers.get("x-file-path")
            if not fpath:
                return bad(400, "The X-File-Path header must not be null.")
            ck = (u.name, "/" + "/".join(split(fpath)))
            if ck in self.store.bad_checksum:
                # Simulates bytes damaged on the way: the md5 no longer matches.
                self.store.bad_checksum.discard(ck)
                content = content[:-1] + bytes([content[-1] ^ 1]) if content else b"x"
            if hashlib.md5(content).hexdigest() != md5:
                return bad(400, "Computed md5 hash is incorrect.")
            written[fpath] = self.bulk_write(u, fpath, content, headers.get("x-oc-mtime"))
        # 200 with the per-file answers, as text/html (observed on Nextcloud 34.0.1).
        return web.Response(status=200, body=php_json(written), content_type="text/html")

    def bulk_write(self, u, fpath, content, mtime):
        segs = split(fpath)
        key = (u.name, "/" + "/".join(segs))
        if key in self.store.fail_next:
            self.store.fail_next.discard(key)
            return {"error": True, "message": "Injected failure"}
        if not segs:
            return {"error": True, "message": "Invalid path"}
        # Bulk names (observed on 34.0.1): `..` gives "Invalid path", a backslash becomes a slash
        # (then usually "Could not create path").
        if any(x in (".", "..") for x in segs):
            return {"error": True, "message": f'Invalid path "{fpath}"'}
        segs = [unicodedata.normalize("NFC", x) for x in split("/".join(segs).replace("\\", "/"))]
        parent = lookup(u.root, segs[:-1])
        if parent is None or not parent.is_dir:
            # Folder::newFile (lib/private/Files/Node/Folder.php), observed on Nextcloud 34.0.1.
            return {"error": True, "message": f'Could not create path "/{u.name}/files/{"/".join(segs)}"'}
        node = parent.children.get(segs[-1])
        if node is not None and node.is_dir:
            return {"error": True, "message": f"{fpath} is a folder"}
        if (node is not None and "W" not in node.permissions()) or (node is None and "C" not in parent.permissions()):
            return {"error": True, "message": "Could not write file: read-only"}
        recount(u)
        if len(content) > u.free():
            # Bulk never answers 507: a part that does not fit gets the same words as a missing
            # parent (observed on 34.0.1).
            return {"error": True, "message": f'Could not create path "/{u.name}/files/{"/".join(segs)}"'}
        blob = self.store.new_blob_path()
        with open(blob, "wb") as fh:
            fh.write(content)
        try:
            mt = int(float(mtime)) if mtime else None
        except ValueError:
            mt = None
        node, _ = self.place_file(u, parent, segs[-1], blob, len(content), mt)
        return {"error": False, "etag": node.etag, "fileid": f"{node.fileid:08d}{self.store.instance}",
                "permissions": node.permissions()}

    # ------------------------------------------------ trashbin

    async def trashbin(self, request, u, segs):
        m = request.method
        prefix = f"/remote.php/dav/trashbin/{u.name}/"
        if segs[:1] == ["trash"]:
            if len(segs) == 1:
                if m == "PROPFIND":
                    asked = parse_propfind(await request.text())
                    out = [(prefix + "trash/", [(DAV, "resourcetype", "<d:collection/>")], [])]
                    if request.headers.get("Depth", "1") == "1":
                        for item in u.trash:
                            out.append(self.trash_props(prefix, item, asked))
                    return multistatus(out)
                if m == "DELETE":
                    u.trash.clear()
                    return web.Response(status=204)
                return sabre_error(405, "MethodNotAllowed", "Not allowed")
            item = next((t for t in u.trash if t["key"] == segs[1]), None)
            if item is None:
                # An empty <s:message/> (observed on Nextcloud 34.0.1: MOVE of a missing trash item).
                return sabre_error(404, "NotFound", "")
            if m == "PROPFIND":
                return multistatus([self.trash_props(prefix, item, parse_propfind(await request.text()))])
            if m == "DELETE":
                u.trash.remove(item)
                return web.Response(status=204)
            if m == "MOVE":
                dest = urllib.parse.unquote(urllib.parse.urlsplit(request.headers.get("Destination", "")).path)
                if not dest.startswith(prefix + "restore/"):
                    return sabre_error(400, "BadRequest", "Restore destination must be the restore folder")
                u.trash.remove(item)
                node = item["node"]
                parent = lookup(u.root, split(item["location"]))
                if parent is None or not parent.is_dir:
                    parent = u.root  # the original folder is gone: restore at the root, as Nextcloud does
                name = node.name
                if name in parent.children:
                    base, dot, ext = name.rpartition(".")
                    name = f"{base} (restored).{ext}" if dot and base else f"{name} (restored)"
                node.name = name
                node.parent = parent
                parent.children[name] = node
                propagate(parent)
                recount(u)
                record_activity(self.store, u, "file_restored", u.name, path_of(node), node.fileid)
                return web.Response(status=201)
            return sabre_error(405, "MethodNotAllowed", "Not allowed")
        return sabre_error(404, "NotFound", "Not found")

    def trash_props(self, prefix, item, asked):
        node = item["node"]
        values = {
            (DAV, "resourcetype"): "<d:collection/>" if node.is_dir else "",
            (DAV, "getcontentlength"): str(node.tree_size()),
            (DAV, "getetag"): f"&quot;{node.etag}&quot;",
            (DAV, "getlastmodified"): http_date(node.mtime),
            (OC, "fileid"): str(node.fileid),
            (OC, "size"): str(node.tree_size()),
            (NC, "trashbin-filename"): xml_escape(item["name"]),
            (NC, "trashbin-original-location"): xml_escape("/".join(split(item["location"]) + [item["name"]])),
            (NC, "trashbin-deletion-time"): str(item["deleted"]),
            # Who deleted it (observed on Nextcloud 34.0.1: id and display name).
            (NC, "trashbin-deleted-by-id"): xml_escape(item.get("by", "")),
            (NC, "trashbin-deleted-by-display-name"): xml_escape(display_name(item.get("by", ""))),
        }
        keys = asked if asked is not None else list(values)
        found = [(ns, n, values[(ns, n)]) for ns, n in keys if (ns, n) in values]
        missing = [(ns, n) for ns, n in keys if (ns, n) not in values]
        return (prefix + "trash/" + urllib.parse.quote(item["key"], safe="") + ("/" if node.is_dir else ""), found, missing)

    # ------------------------------------------------ versions

    def find_by_id(self, u, fileid):
        stack = [u.root]
        while stack:
            n = stack.pop()
            if n.fileid == fileid:
                return n
            if n.is_dir:
                stack.extend(n.children.values())
        return None

    async def versions(self, request, u, segs):
        m = request.method
        prefix = f"/remote.php/dav/versions/{u.name}/"
        if segs[:1] != ["versions"] or len(segs) < 2:
            return sabre_error(404, "NotFound", "Not found")
        try:
            fileid = int(segs[1])
        except ValueError:
            return sabre_error(404, "NotFound", "Not found")
        node = self.find_by_id(u, fileid)
        if node is None or node.is_dir:
            return sabre_error(404, "NotFound", "File not found")
        vs = u.versions.get(fileid, [])
        base = f"{prefix}versions/{fileid}/"
        if len(segs) == 2:
            if m != "PROPFIND":
                return sabre_error(405, "MethodNotAllowed", "Not allowed")
            asked = parse_propfind(await request.text())
            out = [(base, [(DAV, "resourcetype", "<d:collection/>")], [])]
            if request.headers.get("Depth", "1") == "1":
                # The current content is listed too, named by the file's mtime
                # (apps/files_versions/lib/Versions/LegacyVersionsBackend.php getVersionsForFile).
                current = {"ts": node.mtime, "size": node.size, "etag": node.etag, "blob": node.blob,
                           "author": author_of(self.store, u, node)}
                listed = [current] + [v for v in vs if v["ts"] != node.mtime]
                for v in sorted(listed, key=lambda v: -v["ts"]):
                    values = {(DAV, "getcontentlength"): str(v["size"]), (DAV, "getlastmodified"): http_date(v["ts"]),
                              (DAV, "getetag"): f"&quot;{v['etag']}&quot;", (DAV, "resourcetype"): "",
                              (DAV, "getcontenttype"): "application/octet-stream",
                              # The user id of who wrote that content; no nc:version-label
                              # unless one was set (observed on Nextcloud 34.0.1).
                              (NC, "version-author"): xml_escape(v.get("author") or u.name)}
                    keys = asked if asked is not None else list(values)
                    out.append((base + str(v["ts"]), [(ns, n, values[(ns, n)]) for ns, n in keys if (ns, n) in values],
                                [(ns, n) for ns, n in keys if (ns, n) not in values]))
            return multistatus(out)
        v = next((v for v in vs if str(v["ts"]) == segs[2]), None)
        if v is None:
            return sabre_error(404, "NotFound", "Version not found")
        if m == "GET":
            return web.FileResponse(v["blob"])
        if m == "MOVE":
            dest = urllib.parse.unquote(urllib.parse.urlsplit(request.headers.get("Destination", "")).path)
            if not dest.startswith(prefix + "restore"):
                return sabre_error(400, "BadRequest", "Restore destination must be the restore folder")
            vs.remove(v)
            blob = self.store.new_blob_path()
            shutil.copyfile(v["blob"], blob)
            os.remove(v["blob"])
            self.place_file(u, node.parent, node.name, blob, v["size"], v["ts"])
            # 201 Created (observed on Nextcloud 34.0.1); the replaced content stays listed as
            # a version and the restored one becomes the current content (named by its mtime).
            return web.Response(status=201)
        return sabre_error(405, "MethodNotAllowed", "Not allowed")

# ================================================================ recover: authors, activity, notifications
# (issue 15, "Recover what was lost" and "What changed". Kept in one block, apart from the shares'.)
#
# Checked against a real Nextcloud 34.0.1 on 127.0.0.1:8034 (run "recover"):
# - versions: `nc:version-author` is the user id of who wrote the content; the current content is
#   listed too; restore (MOVE to restore/target) answers 201 and keeps the replaced content as a
#   version;
# - trash: `nc:trashbin-deleted-by-id` / `-display-name`;
# - activity (apps/activity/lib/Controller/APIv2Controller.php): `user` is who acted, the rich
#   subject names another actor as {user}; `object_name` has a leading slash; ETag is
#   md5(json_encode(ids)), unquoted; If-None-Match equal, or no activity at all, gives 304;
#   `since` gives the ones older than that id (sort desc). Not reproduced: the grouping of
#   several files in one activity ("You created {file2} and {file1}"), and which writes the
#   server leaves out of the stream (not every PUT shows as "changed").
# - notifications (apps/notifications/lib/Controller/EndpointController.php): ETag is
#   "md5(json_encode(ids))", quoted; If-None-Match must be the quoted value (unquoted: 200);
#   304 carries the ETag and no body; DELETE /notifications/{id} answers 200 `[]` even for an id
#   that is gone; a colleague's share, with the activity notification setting on, reads
#   {actor} shared {file} with you (app files_sharing, object_type activity_notification).
#
# Control:
#   POST /_test/write-as      {"user", "actor", "path", "content"}  a colleague writes a file of
#                             the user's space (a shared file): version author and activity
#   POST /_test/activity      {"user", "actor", "type", "path"}     one more activity
#   POST /_test/notifications {"user", "kind": "share", "actor", "path"} or
#                             {"user", "app", "subject"}            a new notification; answers its id
#   GET  /_test/stats         also "ocs": {"<route> <status>": n} for these routes

def init_recover(store):
    store.writing_as = None        # the author of the write in progress (None: the user)
    store.authors = {}             # (user, fileid) -> who wrote the current content
    store.activity = {}            # user -> [activity dicts], oldest first
    store.notifications = {}       # user -> [notification dicts], oldest first
    store.next_activity = 8000
    store.next_notification = 1


def display_name(user):
    # The double's display names are the ids capitalised (as /cloud/user says).
    return user.capitalize() if user else ""


def path_of(node):
    parts = []
    while node is not None and node.parent is not None:
        parts.append(node.name)
        node = node.parent
    return "/".join(reversed(parts))


def author_of(store, u, node):
    return store.authors.get((u.name, node.fileid), u.name)


def wrote(store, u, node, created):
    actor = store.writing_as or u.name
    store.authors[(u.name, node.fileid)] = actor
    record_activity(store, u, "file_created" if created else "file_changed", actor, path_of(node), node.fileid)


def record_activity(store, u, kind, actor, path, fileid):
    store.next_activity += 1
    store.activity.setdefault(u.name, []).append(
        {"id": store.next_activity, "type": kind, "actor": actor, "path": path.strip("/"), "fileid": fileid,
         "ts": int(time.time())})


def count_ocs(store, route, status):
    key = f"{route} {status}"
    ocs_counts = store.stats.setdefault("ocs", {})
    ocs_counts[key] = ocs_counts.get(key, 0) + 1


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


VERBS = {"file_created": "created", "file_changed": "changed", "file_deleted": "deleted", "file_restored": "restored"}


def activity_json(base, user, a):
    name = a["path"].rsplit("/", 1)[-1]
    file_param = {"type": "file", "id": str(a["fileid"]), "name": name, "path": a["path"],
                  "link": f"{base}/index.php/f/{a['fileid']}"}
    verb = VERBS.get(a["type"], a["type"])
    if a["actor"] == user:
        rich = [f"You {verb} {{file}}", {"file": file_param}]
        subject = f"You {verb} {a['path']}"
    else:
        rich = [f"{{user}} {verb} {{file}}", {"file": file_param,
                                             "user": {"type": "user", "id": a["actor"], "name": display_name(a["actor"])}}]
        subject = f"{display_name(a['actor'])} {verb} {a['path']}"
    folder = "/" + a["path"].rsplit("/", 1)[0] if "/" in a["path"] else "/"
    return {"activity_id": a["id"], "app": "files", "type": a["type"], "user": a["actor"], "subject": subject,
            "subject_rich": rich, "message": "", "message_rich": ["", []], "object_type": "files",
            "object_id": a["fileid"], "object_name": "/" + a["path"], "objects": {str(a["fileid"]): "/" + a["path"]},
            "link": f"{base}/index.php/apps/files/?dir={folder}", "icon": f"{base}/apps/files/img/add-color.svg",
            "datetime": iso(a["ts"])}


def php_ids(ids):
    # PHP's json_encode of a list of ints: no spaces.
    return "[" + ",".join(str(i) for i in ids) + "]"


def recover_ocs(self, request, route, user):
    store = self.store
    base = self.base(request)
    m = request.method
    if route in ("/apps/activity/api/v2/activity/files", "/apps/activity/api/v2/activity") and m == "GET":
        q = request.rel_url.query
        limit = int(q.get("limit", "50"))
        since = int(q.get("since", "0") or 0)
        items = sorted(store.activity.get(user, []), key=lambda a: -a["id"])
        if since:
            items = [a for a in items if a["id"] < since]
        page = items[:limit]
        etag = hashlib.md5(php_ids([a["id"] for a in page]).encode()).hexdigest()
        headers = {"ETag": etag}
        if page:
            headers["X-Activity-First-Known"] = str(items[0]["id"])
            headers["X-Activity-Last-Given"] = str(page[-1]["id"])
        if not page or request.headers.get("If-None-Match") == etag:
            count_ocs(store, "activity", 304)
            return web.Response(status=304, headers=headers)
        count_ocs(store, "activity", 200)
        doc = {"ocs": {"meta": {"status": "ok", "statuscode": 200, "message": "OK"},
                       "data": [activity_json(base, user, a) for a in page]}}
        return web.json_response(doc, headers=headers)
    if route == "/apps/notifications/api/v2/notifications" and m == "GET":
        items = sorted(store.notifications.get(user, []), key=lambda n: -n["notification_id"])
        etag = '"' + hashlib.md5(php_ids([n["notification_id"] for n in items]).encode()).hexdigest() + '"'
        headers = {"ETag": etag, "X-Nextcloud-User-Status": "online"}
        if request.headers.get("If-None-Match") == etag:
            count_ocs(store, "notifications", 304)
            return web.Response(status=304, headers={"ETag": etag})
        count_ocs(store, "notifications", 200)
        doc = {"ocs": {"meta": {"status": "ok", "statuscode": 200, "message": "OK"}, "data": items}}
        return web.json_response(doc, headers=headers)
    if route == "/apps/notifications/api/v2/notifications" and m == "DELETE":
        store.notifications[user] = []
        count_ocs(store, "notifications-delete-all", 200)
        return ocs([])
    hit = re.fullmatch(r"/apps/notifications/api/v2/notifications/(\d+)", route)
    if hit and m == "DELETE":
        nid = int(hit.group(1))
        store.notifications[user] = [n for n in store.notifications.get(user, []) if n["notification_id"] != nid]
        count_ocs(store, "notifications-delete", 200)
        return ocs([])
    return None


def recover_control(self, path, body):
    store = self.store
    if path == "/_test/write-as":
        u = store.user(body["user"])
        segs = split(body["path"])
        parent = lookup(u.root, segs[:-1])
        if parent is None or not parent.is_dir:
            return web.json_response({"error": "no such folder"}, status=404)
        blob = store.new_blob_path()
        content = body.get("content", "").encode()
        with open(blob, "wb") as fh:
            fh.write(content)
        store.writing_as = body["actor"]
        try:
            node, _ = self.place_file(u, parent, segs[-1], blob, len(content), None)
        finally:
            store.writing_as = None
        return web.json_response({"fileid": node.fileid})
    if path == "/_test/activity":
        u = store.user(body["user"])
        node = lookup(u.root, split(body["path"]))
        record_activity(store, u, body.get("type", "file_changed"), body.get("actor", u.name), body["path"],
                        node.fileid if node is not None else store.next_fileid())
        return web.json_response({"id": store.next_activity})
    if path == "/_test/notifications":
        user = body["user"]
        nid = store.next_notification
        store.next_notification += 1
        base = body.get("base", "")
        if body.get("kind") == "share":
            actor, fpath = body.get("actor", "bob"), body["path"].strip("/")
            u = store.user(user)
            node = lookup(u.root, split(fpath))
            fid = str(node.fileid if node is not None else store.next_fileid())
            name = fpath.rsplit("/", 1)[-1]
            folder = "/" + fpath.rsplit("/", 1)[0] if "/" in fpath else "/"
            n = {"notification_id": nid, "app": "files_sharing", "user": user, "datetime": iso(int(time.time())),
                 "object_type": "activity_notification", "object_id": fid,
                 "subject": f"@{actor} shared {name} with you", "message": "",
                 "link": f"{base}/index.php/apps/files/?dir={folder}",
                 "subjectRich": "{actor} shared {file} with you",
                 "subjectRichParameters": {
                     "file": {"type": "file", "id": fid, "name": name, "path": fpath, "link": f"{base}/index.php/f/{fid}"},
                     "actor": {"type": "user", "id": actor, "name": display_name(actor)}},
                 "messageRich": "", "messageRichParameters": [], "icon": f"{base}/core/img/actions/share.svg",
                 "shouldNotify": True, "actions": []}
        else:
            n = {"notification_id": nid, "app": body.get("app", "admin_notifications"), "user": user,
                 "datetime": iso(int(time.time())), "object_type": body.get("object_type", "admin_notifications"),
                 "object_id": str(nid), "subject": body.get("subject", ""), "message": body.get("message", ""),
                 "link": body.get("link", ""), "subjectRich": "", "subjectRichParameters": [], "messageRich": "",
                 "messageRichParameters": [], "icon": "", "shouldNotify": True, "actions": []}
        store.notifications.setdefault(user, []).append(n)
        return web.json_response({"id": nid})
    return None


Server.recover_ocs = recover_ocs
Server.recover_control = recover_control


def main():
    ap = argparse.ArgumentParser(description="Nextcloud test double (not Nextcloud)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--data", required=True)
    ap.add_argument("--issuer", default=os.environ.get("PASSERELLE_TEST_ISSUER"))
    ap.add_argument("--user", action="append", default=[], help="USER:APP_PASSWORD[:QUOTA]")
    ap.add_argument("--no-bearer", action="store_true")
    ap.add_argument("--quota-cache", type=float, default=300,
                    help="seconds the quota properties stay stale (observed: up to about 5 minutes)")
    args = ap.parse_args()

    shutil.rmtree(args.data, ignore_errors=True)
    store = Store(args.data)
    store.bearer = not args.no_bearer
    store.quota_cache = args.quota_cache
    for spec in args.user:
        name, pw, *rest = spec.split(":")
        store.user(name, int(rest[0]) if rest else DEFAULT_QUOTA)
        store.app_passwords[pw] = name
    server = Server(store, args.issuer)
    app = web.Application(middlewares=[server.middleware], client_max_size=256 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", server.dispatch)

    async def run():
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
