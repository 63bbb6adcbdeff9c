"""Browsers: cross-origin writes always need a preflight, and Private Network Access is
granted only to pages that are themselves on a private network or this machine."""

from __future__ import annotations

import aiohttp
import pytest

from gambiarra_desktop.hub.api.private_origins import is_private_origin
from tests.conftest import Api


async def _preflight(http: aiohttp.ClientSession, api: Api, origin: str) -> aiohttp.ClientResponse:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
        "Access-Control-Request-Private-Network": "true",
    }
    async with http.options(api.hub.url + "/rooms", headers=headers) as response:
        await response.read()
        return response


async def test_internet_origin_gets_no_private_network_grant(
    http: aiohttp.ClientSession, api: Api
) -> None:
    response = await _preflight(http, api, "https://evil.example")
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Private-Network" not in response.headers


async def test_lan_origin_gets_the_private_network_grant(
    http: aiohttp.ClientSession, api: Api
) -> None:
    response = await _preflight(http, api, "http://192.168.1.5:8080")
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Private-Network"] == "true"


@pytest.mark.parametrize(
    ("origin", "private"),
    [
        ("http://localhost:5173", True), ("http://app.localhost", True),
        ("http://printer.local", True), ("http://127.0.0.1", True), ("http://10.1.2.3", True),
        ("http://172.16.0.9:3000", True), ("http://[::1]:8000", True),
        ("http://169.254.10.10", True), ("http://[fe80::1]", True), ("http://[fd00::5]", True),
        ("https://evil.example", False), ("null", False), ("", False),
        ("http://8.8.8.8", False), ("http://localhost.evil.example", False),
        ("http://local", False), ("http://0.0.0.0", False), ("file://", False),
        ("http://[::ffff:8.8.8.8]", False), ("http://[::ffff:192.168.0.1]", True),
        ("http://[not-an-ip", False),
    ],
)
def test_private_origin_classification(origin: str, private: bool) -> None:
    assert is_private_origin(origin) is private


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"name": "Sneaky"}'),
        ("application/x-www-form-urlencoded", b"name=Sneaky"),
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="name"'
                                            b"\r\n\r\nSneaky\r\n--x--\r\n"),
        (None, b'{"name": "Sneaky"}'),
    ],
)
async def test_simple_cross_origin_posts_are_refused(
    http: aiohttp.ClientSession, api: Api, content_type: str | None, body: bytes
) -> None:
    headers = {"Origin": "https://evil.example"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    async with http.post(api.hub.url + "/rooms", data=body, headers=headers,
                         skip_auto_headers=["Content-Type"]) as response:
        assert response.status == 415
        assert await response.json() == {"error": "Content-Type must be application/json"}
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    status, listing = await api.call("GET", "/rooms")
    assert status == 200 and listing["rooms"] == []


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON",
     "application/merge-patch+json"],
)
async def test_json_bodies_are_accepted(
    http: aiohttp.ClientSession, api: Api, content_type: str
) -> None:
    async with http.post(api.hub.url + "/rooms", data=b'{"name": "Fine"}',
                         headers={"Content-Type": content_type}) as response:
        assert response.status == 201, await response.text()


async def test_malformed_content_types_are_refused_not_a_500(
    http: aiohttp.ClientSession, api: Api
) -> None:
    # Found by the fuzz test: aiohttp's own parser raises IndexError on ";0*".
    for content_type in (";0*", ";", "application/json;;;=", "/"):
        async with http.get(api.hub.url + "/health",
                            headers={"Content-Type": content_type}) as response:
            assert response.status == 200, content_type
        async with http.post(api.hub.url + "/rooms", data=b'{"name": "x"}',
                             headers={"Content-Type": content_type}) as response:
            expected = 201 if content_type.startswith("application/json") else 415
            assert response.status == expected, (content_type, await response.text())
