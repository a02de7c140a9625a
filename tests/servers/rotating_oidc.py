#!/usr/bin/env python3
"""A HOSTILE-TIMING OpenID provider for the refresh race of issue 12 (item 9). NOT Keycloak.

It serves only what a refresh needs: the discovery document of issuer
http://127.0.0.1:PORT/realms/rot and its token endpoint, with refresh-token rotation as Keycloak
does it when "Revoke Refresh Token" is on and "Refresh Token Max Reuse" is 0 (services.md): every
refresh returns a new refresh token and the old one dies; a dead one gets 400
{"error":"invalid_grant","error_description":"Stale token"}.

To make the race certain rather than likely, the first refresh with the live token is held
until a second refresh request arrives (or --hold seconds pass): then the first rotates, and the
second, which carries the same token, is refused. A client that serialises its refreshes never
sends the second one while the first is held, so it only waits --hold seconds.

It prints its port as its first line, then serves until killed. GET /_count gives the number of
refresh requests.
"""
import argparse
import asyncio
import json
import sys

from aiohttp import web


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hold", type=float, default=3.0)
    args = ap.parse_args()
    state = {"live": "r1", "n": 1, "count": 0, "holder": None, "done": None}

    async def discovery(request):
        base = f"http://{request.host}/realms/rot"
        return web.json_response({
            "issuer": base,
            "authorization_endpoint": base + "/protocol/openid-connect/auth",
            "token_endpoint": base + "/protocol/openid-connect/token",
            "jwks_uri": base + "/protocol/openid-connect/certs",
            "revocation_endpoint": base + "/protocol/openid-connect/revoke",
            "end_session_endpoint": base + "/protocol/openid-connect/logout",
        })

    async def token(request):
        form = await request.post()
        state["count"] += 1
        presented = form.get("refresh_token")
        if state["holder"] is not None:
            # A second refresh while the first is held: let the first rotate, then judge.
            state["holder"].set()
            await state["done"].wait()
        elif presented == state["live"]:
            state["holder"], state["done"] = asyncio.Event(), asyncio.Event()
            try:
                await asyncio.wait_for(state["holder"].wait(), args.hold)
            except asyncio.TimeoutError:
                pass
            state["n"] += 1
            state["live"] = f"r{state['n']}"
            answer = {"access_token": f"a{state['n']}", "expires_in": 300, "refresh_token": state["live"],
                      "token_type": "Bearer"}
            state["done"].set()
            state["holder"] = None
            return web.json_response(answer)
        if presented != state["live"]:
            return web.json_response({"error": "invalid_grant", "error_description": "Stale token"}, status=400)
        state["n"] += 1
        state["live"] = f"r{state['n']}"
        return web.json_response({"access_token": f"a{state['n']}", "expires_in": 300, "refresh_token": state["live"]})

    async def count(_request):
        return web.json_response({"refreshes": state["count"], "live": state["live"]})

    app = web.Application()
    app.router.add_get("/realms/rot/.well-known/openid-configuration", discovery)
    app.router.add_post("/realms/rot/protocol/openid-connect/token", token)
    app.router.add_get("/_count", count)

    async def run():
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
