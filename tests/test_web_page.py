"""The guests' web page over HTTP: what the hub serves, with which headers, and what the
page's own files may and may not contain (no inline script, no other origin)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest

from gambiarra_desktop.hub import HubServer
from gambiarra_desktop.web.pages import ASSETS, CONTENT_SECURITY_POLICY, PAGE
from tests.raw_http import RawConnection, request_bytes

STATIC = Path(__file__).resolve().parents[1] / "gambiarra_desktop" / "web" / "static"


async def test_the_page_is_served_at_the_root_and_for_a_room(
        hub: HubServer, http: aiohttp.ClientSession) -> None:
    for path in ("/", "/r/ABC234", "/r/abc234"):
        async with http.get(hub.url + path) as response:
            assert response.status == 200, path
            assert response.content_type == "text/html"
            assert await response.read() == (STATIC / PAGE).read_bytes()


async def test_every_answer_carries_a_policy_that_forbids_inline_script_and_other_origins(
        hub: HubServer, http: aiohttp.ClientSession) -> None:
    for path in ("/", "/r/ABC234", *(f"/web/{name}" for name in ASSETS)):
        async with http.get(hub.url + path) as response:
            assert response.status == 200, path
            policy = response.headers["Content-Security-Policy"]
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Referrer-Policy"] == "no-referrer"
            assert response.headers["X-Frame-Options"] == "DENY"
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert policy == CONTENT_SECURITY_POLICY
    assert directives["default-src"] == "'none'"
    for name in ("script-src", "style-src", "connect-src"):
        assert directives[name] == "'self'", name  # Not 'unsafe-inline', no other host.
    assert directives["frame-ancestors"] == "'none'"


@pytest.mark.parametrize(("name", "media_type"), [
    ("app.js", "text/javascript"), ("style.css", "text/css"), ("icon.svg", "image/svg+xml")])
async def test_files_have_their_media_types_and_revalidate_by_etag(
        hub: HubServer, http: aiohttp.ClientSession, name: str, media_type: str) -> None:
    async with http.get(f"{hub.url}/web/{name}") as response:
        assert response.content_type == media_type
        assert await response.read() == (STATIC / name).read_bytes()
        etag = response.headers["ETag"]
        assert response.headers["Cache-Control"] == "no-cache"
    async with http.get(f"{hub.url}/web/{name}", headers={"If-None-Match": etag}) as again:
        assert again.status == 304
        assert await again.read() == b""
    async with http.get(f"{hub.url}/web/{name}", headers={"If-None-Match": '"other"'}) as miss:
        assert miss.status == 200


@pytest.mark.parametrize("path", [
    "/web/nothing.js", "/web/pages.py", "/web/..%2fpages.py", "/web/%2e%2e/routes.py",
    "/web/APP.JS", "/web/", "/r/", "/r/bad-code!", "/r/" + "A" * 33, "/index.html"])
async def test_anything_else_is_a_plain_not_found(
        hub: HubServer, http: aiohttp.ClientSession, path: str) -> None:
    async with http.get(hub.url + path) as response:
        assert response.status == 404, path
        assert await response.json() == {"error": "Not found"}


async def test_head_and_wrong_methods(hub: HubServer, http: aiohttp.ClientSession) -> None:
    async with http.head(hub.url + "/") as response:
        assert response.status == 200
    async with http.post(hub.url + "/", json={}) as response:
        assert response.status == 405
        assert (await response.json())["error"] == "Method not allowed"


async def test_the_page_comes_through_the_hubs_front_end_on_a_kept_alive_connection(
        hub: HubServer) -> None:
    """The hub's own HTTP front end hands every request but a chat to aiohttp: two page
    requests on one connection both get the page."""
    connection = await RawConnection.open(hub.port)
    try:
        for _ in range(2):
            await connection.send(request_bytes("GET", "/r/ABC234"))
            response = await connection.read_response()
            assert response.status == 200
            assert response.body == (STATIC / PAGE).read_bytes()
            assert response.header("Content-Security-Policy") == CONTENT_SECURITY_POLICY
    finally:
        await connection.close()


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self.attributes: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes += [name for name, _ in attrs]
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True
        if tag == "style":
            self.inline.append("<style>")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False if tag == "script" else self._in_script

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)


def test_the_page_has_no_inline_script_style_or_handler() -> None:
    markup = _Markup()
    markup.feed((STATIC / PAGE).read_text(encoding="utf-8"))
    assert markup.scripts == [{"type": "module", "src": "/web/app.js"}]
    assert markup.inline == []
    assert not [a for a in markup.attributes if a.startswith("on") or a == "style"]


def test_every_file_is_served_and_every_file_the_page_loads_is_there() -> None:
    on_disk = {p.name for p in STATIC.iterdir()}
    assert on_disk == {PAGE, *ASSETS}  # A file added to static/ must be named in ASSETS.
    wanted = set(re.findall(r'(?:href|src)="/web/([^"]+)"', (STATIC / PAGE).read_text()))
    for name in ASSETS:
        if name.endswith(".js"):
            wanted |= set(re.findall(r'from "\./([^"]+)"', (STATIC / name).read_text()))
    assert wanted <= set(ASSETS), wanted - set(ASSETS)
    assert {"app.js", "style.css", "icon.svg", "room.js", "chat.js"} <= wanted


def test_the_scripts_never_write_markup_or_reach_another_host() -> None:
    """Text from participants (nicknames, model names, answers) only ever goes in as text;
    nothing is fetched from anywhere but this hub (no CDN: the LAN may have no internet)."""
    for name in (PAGE, *ASSETS):
        text = (STATIC / name).read_text(encoding="utf-8")
        if name.endswith(".js"):
            for risky in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                          "eval(", "new Function", "new EventSource"):
                assert risky not in text, (name, risky)
            if name != "api.js":
                assert "fetch(" not in text, name  # One door out: api.js's call().
        links = re.findall(r"https?://[^\s\"')]+", text)
        assert [link for link in links if link != "http://www.w3.org/2000/svg"] == [], name
