"""Fuzz every route of a real hub: random methods, path segments, headers and JSON bodies
of random shape and depth. Never a 5xx from a bug, and every error is ``{"error": str}``.

Routes are read from the app's router, so a new route is fuzzed without editing this file.
One hub and one fake model server (real sockets) serve all the cases; a participant is
joined up front so that chats can succeed too. 502/503/508 are the documented answers of
the proxy (model server failed, participant offline, request loop), never a 500.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubServer

EXAMPLES = int(os.environ.get("GAMBIARRA_FUZZ_EXAMPLES", "300"))
"""A few hundred in the suite; set the variable for a longer hunt."""
METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]
PROXY_STATUSES = {502, 503, 508}
FIELDS = ["name", "password", "id", "nickname", "model", "endpoint", "specs", "config",
          "transport", "messages", "stream", "loading", "max_tokens", "temperature"]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain",
                 "application/x-www-form-urlencoded", "application/merge-patch+json",
                 "multipart/form-data; boundary=x", "", "application/octet-stream"]
MOSTLY_JSON = ["application/json"] * 6 + ["application/json; charset=utf-8", "other"]
ENCODINGS = [*([None] * 12), "gzip", "deflate", "br", "identity", "chunked", "x-unknown"]
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
"""What a client can put in a header at all (aiohttp refuses control characters)."""
TEXT = st.text(st.characters(codec="utf-8"), max_size=30) | st.sampled_from(
    ["", " ", "\x00", "\x1b[2J", "\u202e", "🦙", "../..", "%00", "*", "llama3.2:3b",
     "http://127.0.0.1:1", "http://[::1]:9/v1", "direct", "tunnel", "p1", "x" * 3000])
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | TEXT)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(FIELDS) | TEXT, children, max_size=4),
    max_leaves=20,
)


@st.composite
def deep_values(draw: st.DrawFn) -> Any:
    """A value wrapped in up to 40 levels of lists and objects."""
    value = draw(SCALARS)
    for _ in range(draw(st.integers(0, 40))):
        value = [value] if draw(st.booleans()) else {draw(st.sampled_from(FIELDS)): value}
    return value


BODIES = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES | deep_values(), max_size=6),
    JSON_VALUES,
    deep_values(),
    st.binary(max_size=200),
)


@dataclass
class Target:
    """The hub under test and what the cases found."""

    url: str
    code: str
    routes: list[tuple[str, list[str]]]
    session: aiohttp.ClientSession
    statuses: dict[int, int] = field(default_factory=dict)


@dataclass
class Case:
    route: str
    method: str
    segments: dict[str, str]
    body: Any
    content_type: str | None
    encoding: str | None


def path_for(route: str, segments: dict[str, str], code: str) -> str:
    def fill(match: re.Match[str]) -> str:
        value = segments.get(match.group(1), "")
        return code if value == "<room>" else aiohttp.helpers.quote(value or "x", safe="")

    return re.sub(r"\{(\w+)\}", fill, route)


async def send(target: Target, case: Case) -> None:
    headers = {}
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    if case.encoding is not None:
        headers["Content-Encoding"] = case.encoding
    if isinstance(case.body, bytes):
        data = case.body
    elif case.body is None:
        data = None
    else:
        data = json.dumps(case.body).encode()
    url = target.url + path_for(case.route, case.segments, target.code)
    async with target.session.request(case.method, url, data=data, headers=headers,
                                      skip_auto_headers=["Content-Type"]) as response:
        status = response.status
        target.statuses[status] = target.statuses.get(status, 0) + 1
        context = (case, status)
        assert status < 500 or status in PROXY_STATUSES, context
        if response.content_type == "text/event-stream":
            return  # An open stream (events, or a chat's tokens): the status is the answer.
        text = await asyncio.wait_for(response.text(errors="replace"), 10)
        if status >= 400 and case.method != "HEAD":
            body = json.loads(text)
            assert isinstance(body, dict) and isinstance(body.get("error"), str), (context, text)


async def start(data_dir: Path, upstream: FakeOpenAIServer) -> tuple[HubServer, Target]:
    hub = HubServer(data_dir)
    await hub.start()
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
    async with session.post(hub.url + "/rooms", json={"name": "Fuzz"}) as response:
        code = (await response.json())["room"]["code"]
    async with session.post(f"{hub.url}/rooms/{code}/join", json={
            "id": "p1", "nickname": "Fuzzer", "model": "llama3.2:3b",
            "endpoint": upstream.url}) as response:
        assert response.status == 201, await response.text()
    routes: dict[str, set[str]] = {}
    for resource in hub.app.router.resources():
        info = resource.get_info()
        route = str(info.get("path") or info.get("formatter"))
        routes.setdefault(route, set()).update(r.method for r in resource)
    listed = [(route, sorted(methods)) for route, methods in sorted(routes.items())]
    return hub, Target(hub.url, code, listed, session)


def test_no_route_answers_a_server_error(tmp_path: Path) -> None:
    with asyncio.Runner() as runner:
        upstream = FakeOpenAIServer(models=("llama3.2:3b",))
        runner.run(upstream.start())
        hub, target = runner.run(start(tmp_path / "hub", upstream))
        assert len(target.routes) >= 10, target.routes
        try:
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture,
                                             HealthCheck.too_slow])
            @given(data=st.data())
            def fuzz(data: st.DataObject) -> None:
                route, methods = data.draw(st.sampled_from(target.routes))
                names = re.findall(r"\{(\w+)\}", route)
                segments = {name: data.draw(st.sampled_from(["<room>", "<room>", "p1", "?"])
                                            .flatmap(lambda s: TEXT if s == "?" else st.just(s)))
                            for name in names}
                case = Case(
                    route=route,
                    method=data.draw(st.sampled_from([*methods, *methods, *methods, "?"]).flatmap(
                        lambda m: st.sampled_from(METHODS) if m == "?" else st.just(m))),
                    segments=segments,
                    body=data.draw(BODIES),
                    content_type=data.draw(st.sampled_from(MOSTLY_JSON).flatmap(
                        lambda kind: st.just(kind) if kind != "other"
                        else st.sampled_from(CONTENT_TYPES) | st.none() | HEADER_TEXT)),
                    encoding=data.draw(st.sampled_from(ENCODINGS)),
                )
                runner.run(send(target, case))

            fuzz()
        finally:
            runner.run(target.session.close())
            runner.run(hub.stop())
            runner.run(upstream.stop())
    print(f"\nfuzzed {sum(target.statuses.values())} requests over {len(target.routes)}"
          f" routes; statuses: {dict(sorted(target.statuses.items()))}")
