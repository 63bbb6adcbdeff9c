"""The floor under the hub: an aiohttp server that relays every POST to one upstream with
the hub's upstream client, and does nothing else (no rooms, routing, events or checks).

The benchmark measures it beside the hub, so the table shows how much of the hub's
overhead is aiohttp and the extra hop themselves, and how much is the hub's own logic.
Run: ``python bench/bare_relay.py --port P --upstream http://127.0.0.1:U``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from gambiarra_desktop.hub.proxy.upstream_client import Target, UpstreamPool

POOL = web.AppKey("pool", UpstreamPool)
TARGET = web.AppKey("target", Target)


def wants_stream(body: bytes) -> bool:
    """Parsed, not searched: clients spell ``"stream": true`` with or without the space
    (aiohttp's ``json=`` puts one in), and a prompt may contain the words."""
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return isinstance(payload, dict) and payload.get("stream") is True


async def relay(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    upstream = await request.app[POOL].post(request.app[TARGET], body, 30)
    if wants_stream(body):
        response = web.StreamResponse(status=upstream.status)
        response.content_type = "text/event-stream"
        await response.prepare(request)
        async for chunk in upstream.iter_chunks(30):
            await response.write(chunk)
        await response.write_eof()
    else:
        body = await upstream.read(30)
        response = web.Response(body=body, status=upstream.status,
                                content_type="application/json")
    upstream.release()
    return response


async def serve(port: int, upstream: str) -> None:
    app = web.Application()
    app[POOL] = UpstreamPool(10)
    app[TARGET] = Target.parse(upstream.rstrip("/") + "/v1/chat/completions")
    app.router.add_post("/{tail:.*}", relay)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"bare relay listening on {port}", flush=True)
    await asyncio.Event().wait()


def run_fast(main: Coroutine[Any, Any, None]) -> None:
    """On uvloop where it exists, as ``gambiarra serve`` runs."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def relay_main(description: str | None,
               serve: Callable[[int, str], Coroutine[Any, Any, None]]) -> None:
    """The command line every floor relay takes: ``--port P --upstream URL``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    run_fast(serve(args.port, args.upstream))


def main() -> None:
    relay_main(__doc__, serve)


if __name__ == "__main__":
    main()
