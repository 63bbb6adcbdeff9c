"""Security review of issue 12's terminal API: bodies that used to get a 500 (a traceback in
the hub's log) or that could put words in the host's approval dialog and the audit.

Each test here failed on the code before its fix (see the commit that added it)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from gambiarra_desktop.hub import HubConfig, HubServer
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
