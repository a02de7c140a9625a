"""A deliberately hostile WebDAV server for the drive tests: its PROPFIND lists names that try
to escape the sync root or that a disk cannot hold. Read-only, no auth. Prints its port on the
first line of stdout (it binds port 0)."""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

ROOT = "/dav/"
NFD = "e\u0301te\u0301.txt"  # "été.txt" decomposed
NFC = "\u00e9t\u00e9.txt"
# (href as sent, is folder, content)
ITEMS = [
    (ROOT + "ok.txt", False, b"fine"),
    (ROOT + "..%2F..%2Fescape.txt", False, b"escape"),
    (ROOT + "..%5C..%5Cwin-escape.txt", False, b"escape"),
    (ROOT + "a%5Cb.txt", False, b"backslash"),
    (ROOT + "%2Fetc%2Fpasswd", False, b"absolute"),
    ("/elsewhere/outside.txt", False, b"outside"),
    ("http://evil.example/dav/other-host.txt", False, b"other host"),
    (ROOT + "..", True, b""),
    (ROOT + "nul%00byte.txt", False, b"nul"),
    (ROOT + quote("L" * 300 + ".txt"), False, b"long"),
    (ROOT + quote(NFC), False, b"nfc"),
    (ROOT + quote(NFD), False, b"nfd"),
    (ROOT + "Readme.md", False, b"case 1"),
    (ROOT + "README.md", False, b"case 2"),
    (ROOT + "con.txt", False, b"windows reserved"),
    (ROOT + "sub/", True, b""),
]
SUB = [(ROOT + "sub/..%2F..%2F..%2Fdeep-escape.txt", False, b"deep"), (ROOT + "sub/inner.txt", False, b"inner")]


def entry(href, folder, content):
    rt = "<d:resourcetype><d:collection/></d:resourcetype>" if folder else "<d:resourcetype/>"
    size = "" if folder else f"<d:getcontentlength>{len(content)}</d:getcontentlength>"
    etag = f'<d:getetag>"{abs(hash(href)) % 10**8}"</d:getetag>'
    return (f"<d:response><d:href>{href}</d:href><d:propstat><d:prop>{rt}{size}{etag}"
            f"<d:getlastmodified>Sun, 06 Nov 1994 08:49:37 GMT</d:getlastmodified>"
            f"</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_PROPFIND(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        path = self.path
        if path.rstrip("/") == ROOT.rstrip("/"):
            items = [(ROOT, True, b"")] + ITEMS
        elif path.rstrip("/") == ROOT + "sub":
            items = [(ROOT + "sub/", True, b"")] + SUB
        else:
            self.send_response(404)
            self.end_headers()
            return
        body = ('<?xml version="1.0"?><d:multistatus xmlns:d="DAV:">' + "".join(entry(*i) for i in items)
                + "</d:multistatus>").encode()
        self.send_response(207)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        for href, folder, content in ITEMS + SUB:
            if not folder and unquote(href) == unquote(self.path):
                self.send_response(200)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
                return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
