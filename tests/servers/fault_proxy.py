"""A fault-injecting HTTP proxy for the drive tests. It forwards to an upstream WebDAV server and,
every EVERY-th request, injects the next fault of FAULTS in turn: 500, 503, reset (connection
dropped), stall (no answer for 30 s), 401 (only the first time), truncate (a body cut short).
Usage: fault_proxy.py UPSTREAM [FAULTS] [EVERY] [ROUNDS]. Prints its port (it binds port 0)."""
import asyncio
import sys

from aiohttp import ClientSession, web

UPSTREAM = sys.argv[1].rstrip("/")
FAULTS = (sys.argv[2] if len(sys.argv) > 2 else "500,503,reset,stall,401,truncate").split(",")
EVERY = int(sys.argv[3]) if len(sys.argv) > 3 else 3
# Each fault is injected this many times, then the proxy is clean (so convergence is testable).
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 2
state = {"n": 0, "next": 0, "gave_401": False, "log": []}
HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}


async def handle(request: web.Request):
    state["n"] += 1
    fault = None
    if state["n"] % EVERY == 0 and state["next"] < ROUNDS * len(FAULTS):
        fault = FAULTS[state["next"] % len(FAULTS)]
        state["next"] += 1
        if fault == "401":
            if state["gave_401"]:
                fault = None
            state["gave_401"] = True
    body = await request.read()
    if fault:
        print(f"fault {fault} on {request.method} {request.path}", file=sys.stderr, flush=True)
    if fault in ("500", "503"):
        return web.Response(status=int(fault), text="injected")
    if fault == "401":
        return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="x"'})
    if fault == "reset":
        if request.transport:
            request.transport.abort()
        return web.Response(status=500)
    if fault == "stall":
        await asyncio.sleep(30)
        if request.transport:
            request.transport.abort()
        return web.Response(status=500)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
    # MOVE/COPY name their target by URL: point it at the upstream, not at us.
    for k in list(headers):
        if k.lower() == "destination":
            from urllib.parse import urlsplit
            headers[k] = UPSTREAM + urlsplit(headers[k]).path
    async with ClientSession(auto_decompress=False) as session:
        async with session.request(request.method, UPSTREAM + request.path_qs, headers=headers,
                                   data=body if body else None, allow_redirects=False) as up:
            data = await up.read()
            out_headers = {k: v for k, v in up.headers.items() if k.lower() not in HOP}
            if fault == "truncate" and len(data) > 1:
                resp = web.StreamResponse(status=up.status, headers=out_headers)
                resp.content_length = len(data)
                await resp.prepare(request)
                await resp.write(data[: len(data) // 2])
                if request.transport:
                    request.transport.abort()
                return resp
            return web.Response(status=up.status, headers=out_headers, body=data)


async def main():
    app = web.Application(client_max_size=1 << 30)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
