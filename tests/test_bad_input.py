"""Odd values in every field of every endpoint: always a JSON error below 500, never a hang."""

from __future__ import annotations

import itertools
import json
from typing import Any

import aiohttp

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from tests.conftest import Api

ODD_VALUES: list[Any] = [
    None, 0, -1, 2**70, 1.5, float("inf"), True, "", " ", "x" * 5000, "\u0000", "🦙",
    "../../etc/passwd", "<script>", [], [1, "a"], {}, {"nested": {"deep": [None]}},
]
ENDPOINT_FIELDS = ["id", "nickname", "model", "endpoint", "password", "specs", "config"]


async def test_odd_values_in_json_fields_never_cause_server_errors(
    api: Api, upstream: FakeOpenAIServer
) -> None:
    room = await api.create_room("Fuzz")
    code = room["code"]
    base_join = {"id": "p", "nickname": "N", "model": "m", "endpoint": upstream.url}
    cases: list[tuple[str, str, dict[str, Any]]] = []
    for value in ODD_VALUES:
        cases.append(("POST", "/rooms", {"name": value}))
        cases.append(("POST", "/rooms", {"name": "ok", "password": value}))
        cases.append(("POST", f"/rooms/{code}/health", {"id": value}))
        cases.append(("POST", f"/rooms/{code}/v1/chat/completions", {"model": value}))
        cases.append(("POST", f"/rooms/{code}/v1/chat/completions",
                      {"model": "*", "stream": value, "messages": value}))
        for field in ENDPOINT_FIELDS:
            cases.append(("POST", f"/rooms/{code}/join", {**base_join, field: value}))
    for method, path, payload in cases:
        body_bytes = json.dumps(payload).encode()  # Infinity too: not JSON, must still be a 400.
        status, body = await api.call(method, path, raw=body_bytes)
        assert status < 500, (path, payload, status, body)
        if status >= 400:
            assert isinstance(body, dict) and isinstance(body.get("error"), str), (path, body)


async def test_odd_paths_and_methods_get_json_errors(
    http: aiohttp.ClientSession, api: Api
) -> None:
    room = await api.create_room()
    paths = ["/rooms/%00/join", "/rooms//join", "/rooms/" + "A" * 3000 + "/participants",
             f"/rooms/{room['code']}/leave/", f"/rooms/{room['code']}/v1/",
             "/rooms/%F0%9F%A6%99/events", "/.env", "/rooms/ABCDEF/v1/completions"]
    for path, method in itertools.product(paths, ["GET", "POST", "DELETE", "PUT", "PATCH"]):
        async with http.request(method, api.hub.url + path, data=b"{}") as response:
            assert response.status < 500, (method, path)
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            if response.status >= 400 and method != "HEAD":
                body = await response.json()
                assert isinstance(body["error"], str)
