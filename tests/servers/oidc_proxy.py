#!/usr/bin/env python3
"""A hostile man-in-the-middle in front of the real Keycloak, for the login refusal tests.

This is NOT an identity provider: it forwards every request to Keycloak unchanged (keeping the
Host header, so Keycloak names the proxy as its issuer) and spoils exactly one thing, chosen by
--mode:
  tamper-id-token   flips a character of the ID token's payload in token responses, so its
                    signature no longer matches;
  wrong-issuer      rewrites the discovery document's "issuer" to another server.
It prints the port it listens on as its first line of output, then serves until killed.
"""
import argparse
import asyncio
import base64
import json
import sys

from aiohttp import ClientSession, web

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


def tamper(id_token: str) -> str:
    header, payload, signature = id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["name"] = "Mallory"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return ".".join([header, forged, signature])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--mode", choices=["tamper-id-token", "wrong-issuer"], required=True)
    args = ap.parse_args()

    async def forward(request: web.Request):
        url = args.upstream.rstrip("/") + request.path_qs
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        async with ClientSession(auto_decompress=True) as s:
            async with s.request(request.method, url, data=body, headers=headers, allow_redirects=False) as r:
                payload = await r.read()
                # A list, not a dict: Keycloak sends several Set-Cookie headers.
                out = [(k, v) for k, v in r.headers.items() if k.lower() not in HOP]
                if args.mode == "tamper-id-token" and request.path.endswith("/protocol/openid-connect/token"):
                    doc = json.loads(payload)
                    if "id_token" in doc:
                        doc["id_token"] = tamper(doc["id_token"])
                    payload = json.dumps(doc).encode()
                if args.mode == "wrong-issuer" and request.path.endswith("/.well-known/openid-configuration"):
                    doc = json.loads(payload)
                    doc["issuer"] = "https://sso.attacker.example/realms/passerelle"
                    payload = json.dumps(doc).encode()
                resp = web.Response(status=r.status, body=payload)
                for k, v in out:
                    resp.headers.add(k, v)
                return resp

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)

    runner = web.AppRunner(app)
    async def run():
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
