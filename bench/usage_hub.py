"""The hub that ``bench/usage_bench.py`` measures: ``gambiarra serve``'s HubServer with two
bench-only routes, so one process can serve every row of the benchmark.

- ``POST /_bench/accounting?on=0|1``: switch the usage ledger and the rate limiter off
  (the proxy gets no ledger, which is how the core runs without one, and the limiter is a
  do-nothing one) or back on. One process for the "off" and "on" rows, so a difference
  between them is the accounting's and not a second process's luck.
- The header ``X-Bench-Accounting: off`` does the same for that one request (restored as
  it ends), so the per-request part can interleave "off" and "on" request by request.
  Only sound one request at a time, which is how that part sends them.
- ``GET /_bench/ledger``: flush, then the writer's batches and the largest batch it wrote
  (the buffer is only emptied by a flush that takes all of it, so that is the largest
  pending buffer seen) since ``POST /_bench/ledger`` reset them.

The rate limits are raised far above what a run sends, so the bench measures counting,
never refusals, and the participant (the bench's fake upstream, which sends no heartbeats)
never times out. These routes exist here only, never in the product.
Run: ``python bench/usage_hub.py --port P --data-dir DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler
from bare_relay import run_fast
from proxy_bench import start_process

from gambiarra_desktop.accounting.ledger import UsageRow
from gambiarra_desktop.accounting.rate_limits import UNLIMITED, LimitRule, RateLimiter, Verdict
from gambiarra_desktop.accounting.service import ACCOUNTING
from gambiarra_desktop.hub import HubConfig, HubServer
from gambiarra_desktop.hub.keys import PROXY

UNREACHED = 10**9


class NullLimiter(RateLimiter):
    """Admits everything and counts nothing: the "limits off" rows."""

    backend = "memory"

    async def hit(self, subject: str, requests: Sequence[LimitRule],
                  tokens: Sequence[LimitRule] = (), token_estimate: int = 0) -> Verdict:
        return UNLIMITED

    async def add_tokens(self, subject: str, rule: LimitRule, tokens: int) -> None:
        return None

    def count_tokens(self, subject: str, rule: LimitRule, tokens: int) -> None:
        return None

    async def healthy(self) -> bool:
        return True


class LedgerProbe:
    """Watches the ledger's writes (batch sizes) without touching ``record``'s path."""

    def __init__(self, app: web.Application) -> None:
        self.store = app[ACCOUNTING].ledger.store
        self.largest_batch = 0
        self.batches_before = 0
        insert = self.store.insert

        async def watched(rows: Sequence[UsageRow], alert_days: Sequence[str] = ()) -> None:
            self.largest_batch = max(self.largest_batch, len(rows))
            await insert(rows, alert_days)

        self.store.insert = watched  # type: ignore[method-assign]

    def reset(self) -> None:
        self.largest_batch, self.batches_before = 0, self.store.batches_written

    @property
    def batches(self) -> int:
        return self.store.batches_written - self.batches_before


SWITCH_HEADER = "X-Bench-Accounting"
OFF = NullLimiter()


def add_bench_routes(app: web.Application) -> None:
    accounting = app[ACCOUNTING]
    limiter, ledger = accounting.limiter, accounting.ledger
    probe = LedgerProbe(app)
    proxy = app[PROXY]

    @web.middleware
    async def off_for_one_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get(SWITCH_HEADER) != "off":
            return await handler(request)
        was = accounting.limiter, proxy.ledger
        accounting.limiter, proxy.ledger = OFF, None
        try:
            return await handler(request)
        finally:
            accounting.limiter, proxy.ledger = was

    app.middlewares.append(off_for_one_request)

    async def switch(request: web.Request) -> web.Response:
        on = request.query.get("on") == "1"
        accounting.limiter = limiter if on else NullLimiter()
        app[PROXY].ledger = ledger if on else None
        return web.json_response({"on": on})

    async def reset(request: web.Request) -> web.Response:
        await ledger.flush()
        probe.reset()
        return web.json_response({})

    async def report(request: web.Request) -> web.Response:
        await ledger.flush()
        return web.json_response({"batches": probe.batches, "largestPending": probe.largest_batch,
                                  "dropped": ledger.dropped_rows})

    app.router.add_post("/_bench/accounting", switch)
    app.router.add_post("/_bench/ledger", reset)
    app.router.add_get("/_bench/ledger", report)


def start_bench_hub(port: int, data_dir: str, password: str) -> subprocess.Popen[str]:
    """``bench/usage_hub.py``, its gateway admin's password given (the bench logs in)."""
    return start_process([sys.executable, str(Path(__file__).with_name("usage_hub.py")),
                          "--port", str(port), "--data-dir", data_dir], "listening",
                         {**os.environ, "GAMBIARRA_ADMIN_PASSWORD": password})


async def serve(port: int, data_dir: Path) -> None:
    config = HubConfig(rate_limit_per_address_per_minute=UNREACHED,
                       rate_limit_per_key_per_hour=UNREACHED,
                       participant_timeout_s=UNREACHED)  # Its participant sends no heartbeats.
    server = HubServer(data_dir, "127.0.0.1", port, config=config)
    add_bench_routes(server.app)
    await server.start()
    print(f"usage bench hub listening on {server.port}", flush=True)
    await asyncio.Event().wait()  # Until the bench terminates this process.


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    run_fast(serve(args.port, args.data_dir))


if __name__ == "__main__":
    main()
