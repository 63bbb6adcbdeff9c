"""Security review of issue 12's terminal API: bodies that used to get a 500 (a traceback in
the hub's log) or that could put words in the host's approval dialog and the audit.

Each test here failed on the code before its fix (see the commit that added it)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from gambiarra_desktop.hub import HubServer
from tests import test_terminal_api
from tests.gateway_testkit import login

SESSIONS = test_terminal_api.SESSIONS
term_hub = test_terminal_api.term_hub
"""The API tests' hub with terminal sessions on (one definition of it)."""

BROKEN_PKCS8_RSA = """-----BEGIN PRIVATE KEY-----
MIICeAIBADANBgkqhkiG9w0BAQEFAASCAmIwggJeAgEAAoGBAO7Dp/yiqz2ulZ1FQxr67sqsz8POnCWwQBS1jin8wEZn
fQHEOJteGBGsUYs5jLbsYBtPokIXIh9E84E71xCqtRrAN+g2dijrHzG+OQ883ncT6yEFyTymVFJlG4Suo3ADd0R2pEO1
HyYCQCRqADG7sRopytCR32M2ONATmj1hs+IpAgMBAAECgYHcoNQ4ZqtoL59W9l3+SsE2cl0fgiS894IWWBzHiy7OkV4K
TVNQUg96pQTu1JpKV7k3L45fnKcae/elEqstPfPPEs22dA3FgLznt2JWm3xHNxMMzgjt1MoZfecnhjbHMTyllX2F1fO1
TgqXRNAmEo7pi1xM4YkwqnXFauJ5ura8yhUCQQD9TXrK8HajmQuS7jNqz78qrGwNQOV+2iJSvvU4YUIi9CQWt2DUbBW+
w8OLViQWNMpCdZpbqJo6P8FdUMCasccfAkEA8U6LP8bRKDZSvY6ABB9jgQxFm2T8Mjip/87PwqK+yP4CC4GhMb1whGeX
mVfEJK6MQuMfLW1fsCCmVFNZvJcVtwJBAJCNXr3hbFMAS/KVrRIPbHDV5PPLTSyPH3dJMnfySOPZn563F7Mh22b6IOWr
SvzBM4upwWT9WsZTC+5M3x1oxtECQAEwdOk8jp1XHzNF94WNrgzdxZ4NclzBAL19BHMeIDiXX+U0n1nCaEKOzCV6VEIm
BhTyT54GsvkIQCmcO439ZKMCQQDP6U1j8fz9NefnfYXBaIB2DNtgqoHU6Esk9qCLM3jvo/4+QG90TGYtVsN2drPowIa+
EaiGX6qmOXj/mnSLjdY5
-----END PRIVATE KEY-----
"""
"""A 1024-bit RSA key (made for this test, never used anywhere) with a few bytes changed:
asyncssh's PKCS#8 reader raises OverflowError on it, not KeyImportError."""


async def create(http: aiohttp.ClientSession, hub: HubServer, body: dict[str, Any]
                 ) -> tuple[int, dict[str, Any]]:
    headers = await login(http, hub)
    async with http.post(f"{hub.url}{SESSIONS}", json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


@pytest.mark.parametrize("kind", [[], {}, ["local"]])
async def test_a_session_type_that_is_not_a_string_is_a_400_not_a_500(
        http: aiohttp.ClientSession, term_hub: HubServer, kind: Any) -> None:
    """``{"type": []}`` was looked up in a dict: TypeError (unhashable), a 500."""
    status, body = await create(http, term_hub, {"type": kind})
    assert status == 400, body
    assert body["error"] == "Invalid terminal request"


async def test_a_private_key_the_parser_chokes_on_is_a_400_not_a_500(
        http: aiohttp.ClientSession, term_hub: HubServer) -> None:
    """asyncssh's key readers raise more than KeyImportError/ValueError on damaged input
    (OverflowError here): the admin's bad key must be a 400 that quotes none of it."""
    status, body = await create(http, term_hub, {
        "type": "ssh", "host": "127.0.0.1", "port": 1, "username": "u",
        "privateKey": BROKEN_PKCS8_RSA})
    assert status == 400, body
    assert "privateKey" in body["details"]
    assert "MIIC" not in str(body)


@pytest.mark.parametrize(("field", "value"), [
    ("username", "root\n\nThis is the Gambiarra updater: click Allow."),
    ("username", "root\u202e"),  # Right-to-left override: reorders the dialog's words.
    ("host", "10.0.0.1\rbackup.local"),
    ("host", "router\u200b.lan"),  # Zero-width space: two hosts that look the same.
    ("hostKeyFingerprint", "SHA256:abc\n"),
])
async def test_control_and_format_characters_in_names_are_refused(
        http: aiohttp.ClientSession, term_hub: HubServer, field: str, value: str) -> None:
    """The host and user name reach the host's approval dialog and the audit before any
    connection fails: a line break or a bidi override there makes the dialog say what the
    caller wants. No host or SSH user name holds one, so they are refused up front (a
    400, not a dialog, then a 502 or a login attempt)."""
    body = {"type": "ssh", "host": "127.0.0.1", "port": 1, "username": "u", "password": "p",
            field: value}
    status, answer = await create(http, term_hub, body)
    assert status == 400, answer
    assert field in answer["details"]
    if field == "host":
        status, answer = await create(http, term_hub, {"type": "telnet", "host": value,
                                                       "port": 1})
        assert status == 400, answer
