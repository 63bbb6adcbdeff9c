"""The Usage page (issue 11, "Desktop app"): real widgets clicked offscreen, against a real
HTTP server on 127.0.0.1 that speaks the accounting contract (/v1/keys, /v1/usage,
/v1/events), and the main window's own hosted hub for the cost alert's in-process path."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.events import Event, EventType
from gambiarra_desktop.gateway_client import GatewayClient
from gambiarra_desktop.gui.bridge import CoreBridge
from gambiarra_desktop.gui.main_window import MainWindow
from gambiarra_desktop.gui.tasks import TaskTracker
from gambiarra_desktop.gui.tray import COST_ALERT_TITLE, Tray
from gambiarra_desktop.gui.usage_controller import UsageController
from gambiarra_desktop.gui.usage_view import (
    LOGGED_OUT_TEXT,
    REVOKED_COLUMN,
    SHOWN_ONCE_TEXT,
    UsagePage,
)
from gambiarra_desktop.hub.keys import BUS
from gambiarra_desktop.usage_text import days_between, period_range
from tests.gui.conftest import eventually, finish
from tests.gui.test_flows import host_and_create_room, share_model

T = TypeVar("T")
ADMIN = "admin-token-for-the-contract-server"
LEFT = Qt.MouseButton.LeftButton


class ContractHub:
    """The accounting routes as the contract describes them, over real HTTP: the GUI's
    side is checked here while the hub's side is checked by its own tests."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}
        self.rows: dict[str, list[dict[str, Any]]] = {"day": [], "key": [], "model": []}
        self.usage_queries: list[dict[str, str]] = []
        self.events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.app = web.Application()
        self.app.add_routes([
            web.get("/v1/keys", self.list_keys), web.post("/v1/keys", self.create_key),
            web.delete("/v1/keys/{id}", self.revoke_key), web.get("/v1/usage", self.usage),
            web.get("/v1/events", self.event_stream)])
        self.runner = web.AppRunner(self.app, handler_cancellation=True, shutdown_timeout=0.5)
        self.url = ""

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    @staticmethod
    def _admin(request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {ADMIN}":
            raise web.HTTPUnauthorized(text=json.dumps({"error": "Unauthorized"}),
                                       content_type="application/json")

    async def list_keys(self, request: web.Request) -> web.Response:
        self._admin(request)
        return web.json_response({"data": [
            {k: v for k, v in key.items() if k not in ("key", "hash")}
            for key in self.keys.values()]})

    async def create_key(self, request: web.Request) -> web.Response:
        self._admin(request)
        body = await request.json()
        if body.get("name") == "taken":
            return web.json_response({"error": "Invalid field: name",
                                      "details": "a live key already has this name"},
                                     status=400)
        key_id = secrets.token_hex(6)
        text = f"gk-{key_id}_{secrets.token_urlsafe(32)}"
        self.keys[key_id] = {
            "id": key_id, "name": body["name"], "key": text, "prefix": f"gk-{key_id}",
            "hash": hashlib.sha256(text.encode()).hexdigest(), "rpm": body.get("rpm"),
            "tpm": body.get("tpm"), "budget": body.get("budget"),
            "budgetPeriod": body.get("budgetPeriod", "month"), "rooms": body.get("rooms", []),
            "priority": body.get("priority", 0), "createdAt": 1_700_000_000_000,
            "revoked": False, "lastUsedAt": None,
            "usage": {"requests": 0, "promptTokens": 0, "completionTokens": 0, "cost": 0,
                      "periodCost": 0}}
        return web.json_response({k: v for k, v in self.keys[key_id].items()
                                  if k not in ("hash", "revoked", "usage", "lastUsedAt")},
                                 status=201)

    async def revoke_key(self, request: web.Request) -> web.Response:
        self._admin(request)
        key = self.keys.get(request.match_info["id"])
        if key is None:
            return web.json_response({"error": "API key not found"}, status=404)
        key["revoked"] = True
        return web.json_response({"success": True, "id": key["id"]})

    async def usage(self, request: web.Request) -> web.Response:
        self._admin(request)
        self.usage_queries.append(dict(request.query))
        group = request.query.get("groupBy", "key")
        return web.json_response({"groupBy": group, "from": request.query.get("from"),
                                  "to": request.query.get("to"), "data": self.rows[group]})

    async def event_stream(self, request: web.Request) -> web.StreamResponse:
        self._admin(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b": connected\n\n")
        while True:
            name, data = await self.events.get()
            await response.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())


class AdminLogin:
    """The Gateway page's login as the Usage page sees it, around a real client."""

    def __init__(self, client: GatewayClient | None, logged_in: bool = True) -> None:
        self.client = client
        self.logged_in = logged_in

    async def authorized(self, action: Callable[[GatewayClient], Awaitable[T]]) -> T:
        assert self.client is not None
        return await action(self.client)


@pytest.fixture
async def contract() -> AsyncIterator[ContractHub]:
    hub = ContractHub()
    await hub.start()
    yield hub
    await hub.runner.cleanup()


class Page:
    def __init__(self, view: UsagePage, controller: UsageController, bridge: CoreBridge,
                 tasks: TaskTracker, client: GatewayClient) -> None:
        self.view, self.controller, self.bridge = view, controller, bridge
        self.tasks, self.client = tasks, client

    async def close(self) -> None:
        await self.controller.close()
        await self.tasks.cancel_all()
        await self.client.close()


@pytest.fixture
async def page(qtbot: QtBot, contract: ContractHub) -> AsyncIterator[Page]:
    view = UsagePage()
    qtbot.addWidget(view)
    view.show()
    bridge, tasks = CoreBridge(), TaskTracker()
    client = GatewayClient(contract.url, token=ADMIN)
    controller = UsageController(view, AdminLogin(client), bridge, tasks)
    controller.local_alerts = True  # The remote-events test turns it off itself.
    result = Page(view, controller, bridge, tasks, client)
    yield result
    await result.close()


def click(qtbot: QtBot, widget: QWidget) -> None:
    assert widget.isVisible() and widget.isEnabled(), f"{widget} cannot be clicked"
    qtbot.mouseClick(widget, LEFT)


def table_text(page: Page) -> list[list[str]]:
    table = page.view.keys
    return [[table.item(r, c).text() for c in range(table.columnCount())]
            for r in range(table.rowCount())]


async def loaded(page: Page) -> None:
    await page.controller.refresh_now()
    assert page.view.error.text() == ""


async def test_create_copy_and_revoke_a_key(qtbot: QtBot, page: Page,
                                            contract: ContractHub) -> None:
    # Given the page, logged in, with no keys yet
    await loaded(page)
    assert page.view.scroll_area.isVisible() and page.view.keys.rowCount() == 0
    assert "No API keys yet" in page.view.keys_hint.text()

    # When I create a key with a name, limits and a budget
    click(qtbot, page.view.create_button)
    dialog = page.controller.create_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.name.setText("alice-laptop")
    dialog.rpm.setText("60")
    dialog.budget.setText("5")
    dialog.period.setCurrentIndex(dialog.period.findData("day"))
    dialog.priority.setValue(3)
    click(qtbot, dialog.create_button)
    await eventually(lambda: page.controller.shown_dialog is not None)

    # Then the key is shown once, read-only, with the warning, and Copy puts it on the clipboard
    (stored,) = contract.keys.values()
    assert (stored["rpm"], stored["budget"], stored["budgetPeriod"], stored["priority"]) == (
        60, 5.0, "day", 3)
    shown = page.controller.shown_dialog
    assert shown.key.text() == stored["key"] and shown.key.isReadOnly()
    assert shown.warning.text() == SHOWN_ONCE_TEXT
    click(qtbot, shown.copy_button)
    assert QGuiApplication.clipboard().text() == stored["key"]
    assert page.controller.create_dialog is None  # The form closed once the key was made.

    # And the table lists the key by name and prefix, never its secret
    await eventually(lambda: page.view.keys.rowCount() == 1)
    (row,) = table_text(page)
    assert row[0] == "alice-laptop" and row[1] == stored["prefix"]
    assert "60 req/min" in row[2] and row[3] == "$0.00 of $5.00 per day"
    assert stored["key"] not in " ".join(row) and row[REVOKED_COLUMN] == ""
    shown.accept()
    await eventually(lambda: page.controller.shown_dialog is None)
    assert shown.key.text() == ""  # Closing the dialog drops the text.

    # When I revoke it and confirm
    page.view.keys.selectRow(0)
    click(qtbot, page.view.revoke_button)
    box = page.controller.confirm_box
    assert box is not None and "alice-laptop" in box.text()
    click(qtbot, box.button(QMessageBox.StandardButton.Yes))

    # Then the hub revoked it and the table says so
    await eventually(lambda: table_text(page)[0][REVOKED_COLUMN] == "revoked")
    assert stored["revoked"] is True


async def test_revoke_cancelled_and_errors_in_words(qtbot: QtBot, page: Page,
                                                   contract: ContractHub) -> None:
    # Given one key
    await page.client.create_key("bob")
    await loaded(page)

    # Revoke with nothing picked says what to do; a cancelled confirmation changes nothing
    click(qtbot, page.view.revoke_button)
    assert page.view.error.text() == "Pick a key in the table first."
    page.view.keys.selectRow(0)
    click(qtbot, page.view.revoke_button)
    box = page.controller.confirm_box
    assert box is not None
    click(qtbot, box.button(QMessageBox.StandardButton.Cancel))
    await asyncio.sleep(0.2)
    assert not next(iter(contract.keys.values()))["revoked"]

    # A field the dialog can check is refused before sending; the hub's refusal is in words
    click(qtbot, page.view.create_button)
    dialog = page.controller.create_dialog
    assert dialog is not None
    dialog.name.setText("carol")
    dialog.tpm.setText("lots")
    click(qtbot, dialog.create_button)
    await eventually(lambda: "Tokens per minute" in dialog.error.text())
    assert len(contract.keys) == 1
    dialog.tpm.setText("")
    dialog.name.setText("taken")
    click(qtbot, dialog.create_button)
    await eventually(lambda: dialog.error.text().startswith("Invalid field: name"))
    assert "already has this name" in dialog.error.text() and dialog.isVisible()
    assert dialog.create_button.isEnabled()
    dialog.reject()

    # A hub that went away is an error in the page, not a frozen window or a traceback
    await contract.runner.cleanup()
    await page.controller.refresh_now()
    text = page.view.error.text()
    assert text.startswith("Cannot read the usage: Cannot reach 127.0.0.1:"), text
    assert "nothing answers there" in text and "Check that the hub is running" in text


async def test_charts_show_the_ledger_rows(page: Page, contract: ContractHub) -> None:
    # Given the ledger's rows for the last 7 days
    now = int(time.time() * 1000)
    days = days_between(*period_range("7d", now))
    contract.rows["day"] = [{"day": days[-1], "requests": 2, "totalTokens": 300, "cost": 0.5},
                            {"day": days[0], "requests": 1, "totalTokens": 40, "cost": 0.0}]
    contract.rows["key"] = [{"key": "alice", "keyId": "a" * 12, "totalTokens": 200,
                             "cost": 0.5},
                            {"key": None, "keyId": None, "address": "10.0.0.9",
                             "totalTokens": 140, "cost": 0.0}]
    contract.rows["model"] = [{"model": "gpt-4o-mini", "totalTokens": 300, "cost": 0.5},
                              {"model": "llama3.2:3b", "totalTokens": 40, "cost": 0.0}]

    # When the page loads the period
    await loaded(page)

    # Then the bars have the ledger's heights, a bar per day of the week (zeros between)
    tokens, cost = page.view.per_day.heights()
    assert tokens == [40, 0, 0, 0, 0, 0, 300] and cost == [0, 0, 0, 0, 0, 0, 0.5]
    assert page.view.per_person.series.labels == ["alice", "10.0.0.9"]
    assert page.view.per_person.heights() == ([200, 140], [0.5, 0.0])
    assert page.view.per_model.heights()[0] == [300, 40]
    assert page.view.per_day.summary.text() == "340 tokens · $0.50"
    assert {q["groupBy"] for q in contract.usage_queries} == {"day", "key", "model"}

    # When I pick "Today", only today's whole UTC day is asked for and drawn
    contract.usage_queries.clear()
    page.view.period.setCurrentIndex(page.view.period.findData("today"))
    await eventually(lambda: len(page.view.per_day.series.labels) == 1)
    assert int(contract.usage_queries[0]["from"]) % 86_400_000 == 0
    assert page.view.per_day.heights()[0] == [300]


async def test_logged_out_page_points_to_the_gateway_page(qtbot: QtBot,
                                                          window: MainWindow) -> None:
    # Given the app, hosting nothing (so no gateway login)
    click(qtbot, window.sidebar.usage_button)
    page = window.usage_page
    assert window.stack.currentWidget() is page
    await eventually(lambda: page.logged_out.isVisible())
    assert page.logged_out_text.text() == LOGGED_OUT_TEXT and not page.scroll_area.isVisible()

    # When I follow the page's button, the Gateway page opens
    click(qtbot, page.gateway_button)
    assert window.stack.currentWidget() is window.gateway_page
    await finish(window)


async def test_hosted_hub_logs_in_and_its_cost_alert_reaches_the_tray(
        qtbot: QtBot, window: MainWindow) -> None:
    # Given a hosted hub (the Gateway page logs in by itself) and a tray icon
    await host_and_create_room(qtbot, window, "Usage lab")
    await eventually(lambda: window.gateway.logged_in)
    tray = Tray(window)  # Offscreen has no system tray; the window uses one where there is.
    window.tray = tray
    window.bridge.cost_alert.connect(tray.notify_cost_alert)
    click(qtbot, window.sidebar.usage_button)
    await eventually(lambda: window.usage_page.scroll_area.isVisible()
                     and window.usage_page.busy.text() == "")

    # When the hub's own bus publishes the day's cost alert
    assert window.host.hosted is not None
    bus = window.host.hosted.server.app[BUS]
    alert = {"day": "2026-03-10", "cost": 12.5, "threshold": 10.0}
    bus.publish(Event(EventType.COST_ALERT, "", alert))

    # Then the tray says so, and so does the Usage page
    words = "The gateway's cost on 2026-03-10 reached $12.50, past the alert threshold of $10.00."
    assert tray.last_message == (COST_ALERT_TITLE, words)
    assert window.usage_page.alert.text() == words and window.usage_page.alert.isVisible()
    # A room event on the same bus is not an alert
    tray.last_message = None
    bus.publish(Event(EventType.ROOM_CREATED, "ABCDEF", {"code": "ABCDEF"}))
    assert tray.last_message is None
    window.tray = None
    tray.hide()
    await finish(window)


async def test_a_remote_hubs_cost_alert_comes_from_its_events_stream(
        page: Page, contract: ContractHub) -> None:
    # Given the page logged in to a hub elsewhere
    received: list[Any] = []
    page.bridge.cost_alert.connect(received.append)
    await page.controller.set_local_alerts(False)
    await loaded(page)

    # When its /v1/events says the day's cost passed the threshold
    await contract.events.put(("llm:complete", {"ignored": True}))
    await contract.events.put(("cost:alert", {"day": "2026-03-10", "cost": 3, "threshold": 2}))

    # Then the bridge turns it into the cost_alert signal, and the page shows it
    await eventually(lambda: received)
    assert received == [{"day": "2026-03-10", "cost": 3, "threshold": 2}]
    assert "reached $3.00" in page.view.alert.text()


async def test_real_hub_key_from_the_page_and_served_by_my_machine(
        qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer) -> None:
    # Given a hosted hub, a room, and my model shared into it (asked about often, for the test)
    window.share.served_poll_s = 0.2
    await host_and_create_room(qtbot, window, "Served lab")
    await share_model(qtbot, window, upstream)
    code = window.room_page.code.text()
    served = window.room_page.participants
    await eventually(lambda: served.served_panel.isVisibleTo(window.room_page))
    assert served.served.rowCount() == 0

    # When I make a key on the Usage page (the Gateway page logged in by itself)
    await eventually(lambda: window.gateway.logged_in)
    click(qtbot, window.sidebar.usage_button)
    page = window.usage_page
    await eventually(lambda: page.scroll_area.isVisible() and page.busy.text() == "")
    click(qtbot, page.create_button)
    dialog = window.usage.create_dialog
    assert dialog is not None
    dialog.name.setText("alice")
    click(qtbot, dialog.create_button)
    await eventually(lambda: window.usage.shown_dialog is not None)
    key = window.usage.shown_dialog.key.text()
    assert key.startswith("gk-")
    window.usage.shown_dialog.accept()
    await eventually(lambda: page.keys.rowCount() == 1 and page.busy.text() == "")
    assert page.keys.item(0, 0).text() == "alice" and key not in page.keys.item(0, 1).text()

    # And someone uses the room with that key
    assert window.host.hosted is not None
    async with aiohttp.ClientSession() as http, http.post(
            f"{window.host.hosted.local_url}/rooms/{code}/v1/chat/completions",
            json={"model": "llama3.2:3b", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {key}"}) as response:
        assert response.status == 200, await response.text()
        await response.read()

    # Then my machine's panel names the key's holder, and the charts count the request
    await eventually(lambda: served.served.rowCount() == 1)
    assert served.served.item(0, 0).text() == "alice"
    assert served.served.item(0, 1).text() == "1"
    await window.usage.refresh_now()
    assert page.per_person.series.labels == ["alice"]
    assert page.per_person.heights()[0][0] > 0
    assert page.per_model.series.labels == ["llama3.2:3b"]
    assert "1 request ·" in page.keys.item(0, 4).text()

    # When I stop sharing, the panel goes away
    window.stack.setCurrentWidget(window.room_page)
    window.room_page.tabs.setCurrentWidget(window.room_page.share)
    click(qtbot, window.room_page.share.share_switch)
    await eventually(lambda: not served.served_panel.isVisibleTo(window.room_page))
    await finish(window)
