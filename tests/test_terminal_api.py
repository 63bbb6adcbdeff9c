"""Seed 002's terminal API from a client's side: who is refused (off, no token, a web page,
a foreign Host, a form body, a preflight) and with which status, no CORS header on any of
it, the seed's shapes for a local session's whole life, the session cap, the host's
approval, and the audit (which holds no ``send`` data)."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from gambiarra_desktop.hub import HubConfig, HubServer
from gambiarra_desktop.terminal.approvals import ApprovalDesk, ApprovalRequest
from gambiarra_desktop.terminal.errors import InvalidSessionRequestError
from gambiarra_desktop.terminal.manager import TERMINAL
from tests.conftest import HubFactory
from tests.gateway_testkit import ADMIN_PASSWORD, login

SESSIONS = "/v1/terminal/sessions"


@pytest.fixture
async def term_hub(make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch,
                   tmp_path: Any) -> HubServer:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    work = tmp_path / "work"
    work.mkdir()
    return await make_hub(HubConfig(enable_terminal=True, terminal_workdir=str(work)))


@pytest.fixture
async def admin(http: aiohttp.ClientSession, term_hub: HubServer) -> dict[str, str]:
    return await login(http, term_hub)


async def call(http: aiohttp.ClientSession, hub: HubServer, method: str, path: str,
               headers: dict[str, str] | None = None, **kwargs: Any
               ) -> tuple[int, dict[str, str], Any]:
    async with http.request(method, f"{hub.url}{path}", headers=headers, **kwargs) as response:
        text = await response.text()
        body = await response.json(content_type=None) if text else None
        return response.status, dict(response.headers), body


async def test_off_by_default_with_the_seed_s_error(
        make_hub: HubFactory, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    hub = await make_hub()
    headers = await login(http, hub)
    for method, path in (("GET", SESSIONS), ("POST", SESSIONS), ("GET", "/v1/terminal/x/output"),
                         ("DELETE", "/v1/terminal/x")):
        status, response_headers, body = await call(http, hub, method, path, headers,
                                                    json={"type": "local"})
        assert status == 403, (method, path, body)
        assert body["error"] == "Terminal sessions are disabled on this hub"
        assert "Access-Control-Allow-Origin" not in response_headers


async def test_refusals_and_no_cors(http: aiohttp.ClientSession, term_hub: HubServer,
                                    admin: dict[str, str]) -> None:
    status, headers, body = await call(http, term_hub, "GET", SESSIONS)
    assert status == 401 and "Access-Control-Allow-Origin" not in headers, body
    status, _, body = await call(http, term_hub, "GET", SESSIONS,
                                 {"Authorization": "Bearer not-a-token"})
    assert status == 401, body
    for extra in ({"Origin": "http://evil.example"}, {"Origin": term_hub.url},
                  {"Sec-Fetch-Site": "same-origin"}, {"Host": "evil.example:3000"},
                  {"Host": "attacker.test"}):
        status, headers, body = await call(http, term_hub, "GET", SESSIONS, {**admin, **extra})
        assert status == 403, (extra, body)
        assert "Access-Control-Allow-Origin" not in headers, extra
    status, headers, body = await call(http, term_hub, "POST", SESSIONS, admin,
                                       data={"type": "local"})  # A form: what a page can send.
    assert status == 415, body
    assert "Access-Control-Allow-Origin" not in headers
    status, headers, _ = await call(http, term_hub, "OPTIONS", SESSIONS, {
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert status == 403
    assert not any(name.startswith("Access-Control-") for name in headers), headers
    status, _, body = await call(http, term_hub, "GET", SESSIONS, admin)
    assert status == 200 and body == {"sessions": []}
    # The rest of the hub still speaks CORS (the Gambiarra contract).
    _, headers, _ = await call(http, term_hub, "GET", "/rooms")
    assert headers.get("Access-Control-Allow-Origin") == "*"


async def test_bad_bodies_get_clear_errors(http: aiohttp.ClientSession, term_hub: HubServer,
                                           admin: dict[str, str]) -> None:
    for body, words in (({"type": "shell"}, '"type" must be'),
                        ({"type": "local", "cmd": "x"}, "unknown field 'cmd'"),
                        ({"type": "ssh", "host": "h", "username": "u"}, '"password" or'),
                        ({"type": "ssh", "host": "h", "username": "u", "password": "p",
                          "port": 70000}, '"port"'),
                        ({"type": "telnet"}, '"host" is required'),
                        ([1, 2], "JSON object")):
        status, _, answer = await call(http, term_hub, "POST", SESSIONS, admin, json=body)
        assert status == 400, (body, answer)
        assert words in answer.get("details", "") + answer["error"], (body, answer)
    status, _, answer = await call(http, term_hub, "POST", "/v1/terminal/nope/execute", admin,
                                   json={"command": "true"})
    assert status == 404 and answer["error"] == "Terminal session not found"
    status, _, answer = await call(http, term_hub, "DELETE", "/v1/terminal/nope", admin)
    assert status == 404


async def wait_for_output(http: aiohttp.ClientSession, hub: HubServer, session_id: str,
                          headers: dict[str, str], needle: str, within_s: float = 10) -> str:
    seen = ""
    deadline = time.monotonic() + within_s
    while needle not in seen:
        assert time.monotonic() < deadline, f"no {needle!r} in {seen!r}"
        status, _, body = await call(http, hub, "GET", f"/v1/terminal/{session_id}/output",
                                     headers)
        assert status == 200, body
        seen += "".join(body["output"])
        await asyncio.sleep(0.05)
    return seen


async def test_a_local_session_s_whole_life(http: aiohttp.ClientSession, term_hub: HubServer,
                                            admin: dict[str, str]) -> None:
    status, headers, body = await call(http, term_hub, "POST", SESSIONS, admin,
                                       json={"type": "local"})
    assert status == 201, body
    assert "Access-Control-Allow-Origin" not in headers
    session = body["session"]
    assert re.fullmatch(r"term-\d{13}-[0-9a-f]{6}", session["id"]), session
    assert session["type"] == "local" and session["connected"] is True
    created = datetime.fromisoformat(session["createdAt"].replace("Z", "+00:00"))
    assert abs(created.timestamp() - time.time()) < 30
    session_id = session["id"]
    status, _, body = await call(http, term_hub, "GET", SESSIONS, admin)
    assert [s["id"] for s in body["sessions"]] == [session_id]

    status, _, body = await call(http, term_hub, "POST", f"/v1/terminal/{session_id}/execute",
                                 admin, json={"command": "echo hello; echo oops >&2; exit 3"})
    assert status == 200, body
    result = body["result"]
    assert (result["stdout"], result["stderr"], result["exitCode"]) == ("hello\n", "oops\n", 3)

    secret_typed = "echo typed-$((6*7)) # hunter2-not-in-audit\n"
    status, _, body = await call(http, term_hub, "POST", f"/v1/terminal/{session_id}/send",
                                 admin, json={"data": secret_typed})
    assert (status, body) == (200, {"success": True})
    await wait_for_output(http, term_hub, session_id, admin, "typed-42")
    # Read since the previous read: nothing new now.
    status, _, body = await call(http, term_hub, "GET", f"/v1/terminal/{session_id}/output",
                                 admin)
    assert status == 200 and "typed-42" not in "".join(body["output"])

    status, _, body = await call(http, term_hub, "DELETE", f"/v1/terminal/{session_id}", admin)
    assert (status, body) == (200, {"success": True})
    status, _, body = await call(http, term_hub, "GET", SESSIONS, admin)
    assert body == {"sessions": []}

    rows = await term_hub.app[TERMINAL].audit.rows()
    actions = [row["action"] for row in reversed(rows)]
    assert actions == ["open", "execute", "send", "close"], rows
    execute = next(row for row in rows if row["action"] == "execute")
    assert execute["command"] == "echo hello; echo oops >&2; exit 3"
    assert execute["exit_code"] == 3 and execute["actor"] == "admin"
    assert execute["peer"] == "127.0.0.1"
    sent = next(row for row in rows if row["action"] == "send")
    assert sent["bytes"] == len(secret_typed.encode()) and sent["command"] is None
    assert all("hunter2" not in repr(row) for row in rows)


async def test_at_most_the_cap_of_sessions_at_once(
        make_hub: HubFactory, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    hub = await make_hub(HubConfig(enable_terminal=True, terminal_max_sessions=3))
    admin = await login(http, hub)
    results = await asyncio.gather(*(call(http, hub, "POST", SESSIONS, admin,
                                          json={"type": "local"}) for _ in range(6)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [201] * 3 + [429] * 3, results
    refused = next(body for status, _, body in results if status == 429)
    assert "at most 3" in refused["error"]
    assert len(hub.app[TERMINAL].sessions()) == 3


async def test_an_idle_session_is_closed(
        make_hub: HubFactory, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    hub = await make_hub(HubConfig(enable_terminal=True, terminal_idle_timeout_s=0.5))
    admin = await login(http, hub)
    status, _, body = await call(http, hub, "POST", SESSIONS, admin, json={"type": "local"})
    assert status == 201, body
    deadline = time.monotonic() + 10
    while True:  # Gone from the list first, then its close is audited.
        rows = await hub.app[TERMINAL].audit.rows()
        if not hub.app[TERMINAL].sessions() and rows[0]["action"] == "close":
            break
        assert time.monotonic() < deadline, "the idle session was never closed"
        await asyncio.sleep(0.05)
    assert rows[0]["outcome"] == "idle timeout"


async def test_the_host_approves_or_denies_and_silence_is_no(
        http: aiohttp.ClientSession, term_hub: HubServer, admin: dict[str, str]) -> None:
    manager = term_hub.app[TERMINAL]
    desk = manager.approvals = ApprovalDesk(timeout_s=0.5)
    answers: list[bool] = []
    asked: list[ApprovalRequest] = []

    def on_asked(request: ApprovalRequest) -> None:
        asked.append(request)
        if answers:
            desk.answer(request.id, answers.pop(0))

    desk.subscribe(on_asked, lambda _id: None)
    answers.append(False)
    status, _, body = await call(http, term_hub, "POST", SESSIONS, admin, json={"type": "local"})
    assert status == 403 and body["error"] == "The host did not approve this session", body
    answers.append(True)
    status, _, body = await call(http, term_hub, "POST", SESSIONS, admin, json={"type": "local"})
    assert status == 201, body
    started = time.monotonic()  # Nobody answers: denied when the timeout ends.
    status, _, body = await call(http, term_hub, "POST", SESSIONS, admin, json={"type": "local"})
    assert status == 403 and 0.4 < time.monotonic() - started < 5, body
    assert [r.session_type for r in asked] == ["local"] * 3
    assert asked[0].peer == "127.0.0.1" and "local terminal" in asked[0].words
    assert desk.pending() == []
    manager.ask_for_local = False  # "Don't ask before local sessions".
    status, _, body = await call(http, term_hub, "POST", SESSIONS, admin, json={"type": "local"})
    assert status == 201 and len(asked) == 3, body
    refusals = [row for row in await manager.audit.rows() if row["action"] == "refused"]
    assert len(refusals) == 2


async def test_switched_off_while_waiting_for_the_host_opens_nothing(
        http: aiohttp.ClientSession, term_hub: HubServer, admin: dict[str, str]) -> None:
    """The host turns terminal sessions off while a request waits for approval, then the
    request is allowed: it must not slip in after the switch ended every session."""
    manager = term_hub.app[TERMINAL]
    desk = manager.approvals = ApprovalDesk(timeout_s=5)

    def on_asked(request: ApprovalRequest) -> None:
        manager.enabled = False
        desk.answer(request.id, True)

    desk.subscribe(on_asked, lambda _id: None)
    status, _, body = await call(http, term_hub, "POST", SESSIONS, admin, json={"type": "local"})
    assert status == 403 and body["error"] == "Terminal sessions are disabled on this hub", body
    assert manager.sessions() == []


async def test_ssh_through_the_hub_asks_to_trust_an_unknown_host_key(
        http: aiohttp.ClientSession, term_hub: HubServer, admin: dict[str, str],
        caplog: pytest.LogCaptureFixture) -> None:
    """The API's whole SSH flow against a real SSH server: 409 with the host key's
    fingerprint and no login tried, the same request with that fingerprint opens it, a
    command's real exit code comes back, and the password is in no log line or audit row."""
    from tests.ssh_server import PASSWORD, USER, start_ssh_server

    caplog.set_level("DEBUG")
    server = await start_ssh_server()
    try:
        body = {"type": "ssh", "host": "127.0.0.1", "port": server.port, "username": USER,
                "password": PASSWORD}
        status, _, answer = await call(http, term_hub, "POST", SESSIONS, admin, json=body)
        assert status == 409, answer
        assert answer["error"] == "Unknown SSH host key"
        assert server.fingerprint in answer["details"]
        assert server.auth.passwords_tried == 0
        status, _, answer = await call(http, term_hub, "POST", SESSIONS, admin, json={
            **body, "hostKeyFingerprint": server.fingerprint})
        assert status == 201, answer
        session = answer["session"]
        assert session["type"] == "ssh" and session["connected"] is True
        assert session["target"] == f"{USER}@127.0.0.1:{server.port}"
        status, _, answer = await call(
            http, term_hub, "POST", f"/v1/terminal/{session['id']}/execute", admin,
            json={"command": "echo over-ssh; exit 7"})
        assert status == 200, answer
        assert answer["result"]["stdout"] == "over-ssh\n" and answer["result"]["exitCode"] == 7
        status, _, _ = await call(http, term_hub, "DELETE", f"/v1/terminal/{session['id']}",
                                  admin)
        assert status == 200
        # Trusted from now on: no fingerprint needed the next time.
        status, _, answer = await call(http, term_hub, "POST", SESSIONS, admin, json=body)
        assert status == 201, answer
    finally:
        await server.stop()
    rows = await term_hub.app[TERMINAL].audit.rows()
    assert [row["action"] for row in reversed(rows)][:4] == ["refused", "open", "execute",
                                                              "close"]
    assert PASSWORD not in caplog.text and all(PASSWORD not in repr(row) for row in rows)


async def test_telnet_through_the_hub(http: aiohttp.ClientSession, term_hub: HubServer,
                                      admin: dict[str, str]) -> None:
    """A Telnet device on loopback: raw data both ways; execute is refused in words; a
    public address is refused before any connection."""
    import telnetlib3

    async def echo_shell(reader: Any, writer: Any) -> None:
        writer.write("device> ")
        for _ in range(100):
            line = await reader.readline()
            if not line:
                break
            writer.write(f"you said {line.strip()}\r\ndevice> ")
        writer.close()

    server = await telnetlib3.create_server(host="127.0.0.1", port=0, shell=echo_shell)
    port = server.sockets[0].getsockname()[1]
    try:
        status, _, answer = await call(http, term_hub, "POST", SESSIONS, admin, json={
            "type": "telnet", "host": "127.0.0.1", "port": port})
        assert status == 201, answer
        session_id = answer["session"]["id"]
        status, _, answer = await call(http, term_hub, "POST",
                                       f"/v1/terminal/{session_id}/send", admin,
                                       json={"data": "show version\r\n"})
        assert status == 200, answer
        await wait_for_output(http, term_hub, session_id, admin, "you said show version")
        status, _, answer = await call(http, term_hub, "POST",
                                       f"/v1/terminal/{session_id}/execute", admin,
                                       json={"command": "ls"})
        assert status == 400 and answer["error"] == "Not supported by this session", answer
        await call(http, term_hub, "DELETE", f"/v1/terminal/{session_id}", admin)
    finally:
        server.close()
    status, _, answer = await call(http, term_hub, "POST", SESSIONS, admin, json={
        "type": "telnet", "host": "8.8.8.8", "port": 23})
    assert status == 403 and answer["error"] == "Target not allowed", answer


async def test_a_session_runs_at_most_four_commands_at_once(
        http: aiohttp.ClientSession, term_hub: HubServer, admin: dict[str, str]) -> None:
    """Each running command may hold up to 1 MB of output: a fifth at once is 429."""
    status, _, body = await call(http, term_hub, "POST", SESSIONS, admin, json={"type": "local"})
    assert status == 201, body
    url = f"/v1/terminal/{body['session']['id']}/execute"
    slow = [asyncio.create_task(call(http, term_hub, "POST", url, admin,
                                     json={"command": "sleep 1.5; echo done"}))
            for _ in range(4)]
    await asyncio.sleep(0.5)
    status, headers, body = await call(http, term_hub, "POST", url, admin,
                                       json={"command": "echo fifth"})
    assert status == 429 and "runs 4 commands" in body["error"], body
    assert headers["Retry-After"] == "1"
    assert [(s, b["result"]["stdout"]) for s, _, b in await asyncio.gather(*slow)] == [
        (200, "done\n")] * 4
    status, _, body = await call(http, term_hub, "POST", url, admin, json={"command": "echo ok"})
    assert status == 200 and body["result"]["stdout"] == "ok\n"


async def test_the_host_trusts_an_unknown_ssh_key_in_the_app(
        http: aiohttp.ClientSession, term_hub: HubServer, admin: dict[str, str]) -> None:
    """The other way to accept a host key: the 409 leaves the key waiting in the app, the
    host trusts it there (after comparing the fingerprint), and the program's unchanged
    request then logs in. A key can be trusted once, and never next to another one."""
    from tests.ssh_server import PASSWORD, USER, start_ssh_server

    manager = term_hub.app[TERMINAL]
    server = await start_ssh_server()
    try:
        body = {"type": "ssh", "host": "127.0.0.1", "port": server.port, "username": USER,
                "password": PASSWORD}
        status, _, answer = await call(http, term_hub, "POST", SESSIONS, admin, json=body)
        assert status == 409 and "Terminal page" in answer["details"], answer
        waiting = manager.unknown_host_keys()
        assert [(k.host, k.port, k.fingerprint) for k in waiting] == [
            ("127.0.0.1", server.port, server.fingerprint)]
        trusted = await manager.trust_host_key(server.fingerprint, "desktop app")
        assert trusted.fingerprint == server.fingerprint
        assert manager.unknown_host_keys() == []
        with pytest.raises(InvalidSessionRequestError) as refused:
            await manager.trust_host_key(server.fingerprint, "desktop app")
        assert "no waiting SSH host key" in str(refused.value.details)
        status, _, answer = await call(http, term_hub, "POST", SESSIONS, admin, json=body)
        assert status == 201, answer
    finally:
        await server.stop()
    rows = await manager.audit.rows()
    trust = next(row for row in rows if row["action"] == "trust")
    assert trust["actor"] == "desktop app" and trust["outcome"] == server.fingerprint


async def test_a_session_whose_shell_exited_says_it_has_ended(
        http: aiohttp.ClientSession, term_hub: HubServer, admin: dict[str, str]) -> None:
    """`exit` in the shell: the session stays listed as not connected, its last output can
    be read, and commands or input get 409 in words (not a 502 "could not connect")."""
    status, _, body = await call(http, term_hub, "POST", SESSIONS, admin, json={"type": "local"})
    session_id = body["session"]["id"]
    status, _, body = await call(http, term_hub, "POST", f"/v1/terminal/{session_id}/send",
                                 admin, json={"data": "echo bye-$((1+1)); exit\n"})
    assert status == 200, body
    await wait_for_output(http, term_hub, session_id, admin, "bye-2")
    deadline = time.monotonic() + 10
    while True:
        _, _, body = await call(http, term_hub, "GET", SESSIONS, admin)
        if body["sessions"][0]["connected"] is False:
            break
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)
    for path, payload in (("send", {"data": "ls\n"}), ("execute", {"command": "echo x"})):
        status, _, body = await call(http, term_hub, "POST", f"/v1/terminal/{session_id}/{path}",
                                     admin, json=payload)
        assert status == 409 and body["error"] == "This terminal session has ended", body
    status, _, body = await call(http, term_hub, "DELETE", f"/v1/terminal/{session_id}", admin)
    assert status == 200, body


async def test_a_preflight_refusal_reads_like_every_other_refusal(
        http: aiohttp.ClientSession, term_hub: HubServer, admin: dict[str, str]) -> None:
    preflight = await call(http, term_hub, "OPTIONS", SESSIONS, {
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    plain = await call(http, term_hub, "GET", SESSIONS, {**admin, "Origin": "http://x.test"})
    assert preflight[0] == plain[0] == 403
    assert preflight[2] == plain[2] == {
        "error": "Terminal sessions are only for the hub's own machine",
        "details": "web pages may not use terminal sessions"}
