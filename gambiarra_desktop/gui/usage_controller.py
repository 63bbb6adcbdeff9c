"""Wires the Usage page to the gateway's /v1/usage and /v1/keys, through the Gateway page's
admin login (one login, one token, re-login on a refused token in one place).

What the page shows always comes from the hub's replies: after a key is made or revoked the
page reloads. Network calls run as tasks on the shared loop; a failure becomes the hub's
words in the page, never a frozen window or a traceback. The cost alert arrives as the
bridge's ``cost_alert`` signal: from the hosted hub's own event bus, or, for a hub elsewhere,
from ``GET /v1/events`` followed here while the page is logged in.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

from PySide6.QtCore import QObject
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox

from gambiarra_desktop.gateway_client import GatewayApiError, GatewayClient
from gambiarra_desktop.gui.bridge import CoreBridge
from gambiarra_desktop.gui.gateway_controller import error_text
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot
from gambiarra_desktop.gui.usage_view import CreateKeyDialog, KeyShownDialog, UsagePage
from gambiarra_desktop.usage_text import (
    cost_alert_text,
    day_series,
    days_between,
    group_series,
    key_request,
    model_label,
    period_range,
    person_label,
)

T = TypeVar("T")
COST_ALERT = "cost:alert"
EVENTS_RETRY_S = 5.0
PICK_A_KEY_TEXT = "Pick a key in the table first."


class AdminLogin(Protocol):
    """What the page needs of the Gateway page's login, and nothing more."""

    client: GatewayClient | None
    logged_in: bool

    async def authorized(self, action: Callable[[GatewayClient], Awaitable[T]]) -> T: ...


class UsageData:
    """One period's replies, read together so the charts and the table agree."""

    def __init__(self, keys: list[dict[str, Any]], by_day: list[dict[str, Any]],
                 by_key: list[dict[str, Any]], by_model: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.by_day = by_day
        self.by_key = by_key
        self.by_model = by_model


async def read_usage(client: GatewayClient, start: int, end: int) -> UsageData:
    async def rows(group_by: str) -> list[dict[str, Any]]:
        reply = await client.usage(group_by, start, end)
        data: list[dict[str, Any]] = reply["data"]
        return data

    keys, by_day, by_key, by_model = await asyncio.gather(
        client.keys(), rows("day"), rows("key"), rows("model"))
    return UsageData(keys, by_day, by_key, by_model)


class UsageController(QObject):
    def __init__(self, view: UsagePage, login: AdminLogin, bridge: CoreBridge,
                 tasks: TaskTracker) -> None:
        super().__init__()
        self.view = view
        self.login = login
        self.bridge = bridge
        self.tasks = tasks
        self.period = str(view.period.currentData())
        self.keys: dict[str, dict[str, Any]] = {}
        self.local_alerts = False
        """True while the hub is this app's own: its bus reaches the bridge directly."""
        self.create_dialog: CreateKeyDialog | None = None
        self.shown_dialog: KeyShownDialog | None = None
        self.confirm_box: QMessageBox | None = None
        self._generation = 0
        self._events_task: asyncio.Task[None] | None = None
        view.period_changed.connect(self.on_period)
        view.refresh_clicked.connect(self.refresh)
        view.create_clicked.connect(self.create_key)
        view.revoke_clicked.connect(self.confirm_revoke)
        bridge.cost_alert.connect(self.on_cost_alert)

    # Reading.

    def on_period(self, period: str) -> None:
        self.period = period
        self.refresh()

    @tracked_slot()
    async def refresh(self) -> None:
        await self._refresh()

    async def refresh_now(self) -> None:
        await self._refresh()

    async def _refresh(self) -> None:
        """Load the period's usage and the keys; a newer refresh wins over a slower older
        one, so switching periods quickly never leaves stale charts."""
        logged_in = self.login.client is not None and self.login.logged_in
        self.view.show_logged_in(logged_in)
        if not logged_in:
            await self.stop_events()
            return
        self._generation += 1
        generation = self._generation
        start, end = period_range(self.period, int(time.time() * 1000))
        self.view.busy.setText("Loading…")
        try:
            data = await self.login.authorized(lambda c: read_usage(c, start, end))
        except GatewayApiError as exc:
            if generation == self._generation:
                self.view.busy.setText("")
                self.view.error.setText(f"Cannot read the usage: {error_text(exc)}")
                self.view.show_logged_in(self.login.logged_in)
            return
        if generation != self._generation:
            return
        self.view.busy.setText("")
        self.view.error.setText("")
        self.view.per_day.show_series(day_series(data.by_day, days_between(start, end)))
        self.view.per_person.show_series(group_series(data.by_key, person_label))
        self.view.per_model.show_series(group_series(data.by_model, model_label))
        self.keys = {str(k.get("id")): k for k in data.keys}
        self.view.show_keys(data.keys)
        self._follow_events_if_remote()

    # Making a key: the dialog stays open until the hub made it, then the key is shown once.

    def create_key(self) -> None:
        if self.create_dialog is not None:
            self.create_dialog.raise_()
            return
        dialog = CreateKeyDialog(self.view)
        dialog.submitted.connect(self.submit_key)
        dialog.finished.connect(lambda _result: self._forget_create(dialog))
        self.create_dialog = dialog
        dialog.open()

    def _forget_create(self, dialog: CreateKeyDialog) -> None:
        if self.create_dialog is dialog:
            self.create_dialog = None
        dialog.deleteLater()

    @tracked_slot()
    async def submit_key(self) -> None:
        dialog = self.create_dialog
        if dialog is None:
            return
        try:
            request = key_request(**dialog.fields())
        except ValueError as exc:
            dialog.error.setText(str(exc))
            return
        dialog.create_button.setEnabled(False)
        dialog.error.setText("Creating…")
        try:
            created = await self.login.authorized(lambda c: c.create_key(**request))
        except GatewayApiError as exc:
            dialog.error.setText(error_text(exc))
            dialog.create_button.setEnabled(True)
            return
        dialog.accept()
        self._show_once(str(created.get("name", "")), str(created["key"]))
        await self._refresh()

    def _show_once(self, name: str, key: str) -> None:
        shown = KeyShownDialog(name, key, self.view)
        shown.copy_clicked.connect(self.copy_key)
        shown.finished.connect(lambda _result: self._forget_shown(shown))
        self.shown_dialog = shown
        shown.open()

    def copy_key(self) -> None:
        if self.shown_dialog is not None:
            QGuiApplication.clipboard().setText(self.shown_dialog.key.text())
            self.shown_dialog.copied.setText("Copied to the clipboard.")

    def _forget_shown(self, shown: KeyShownDialog) -> None:
        """The key text leaves the window with the dialog: nothing keeps it afterwards."""
        shown.key.clear()
        if self.shown_dialog is shown:
            self.shown_dialog = None
        shown.deleteLater()

    # Revoking, after a confirmation.

    def confirm_revoke(self) -> None:
        key_id = self.view.selected_key_id()
        key = self.keys.get(key_id or "")
        if key_id is None or key is None:
            self.view.error.setText(PICK_A_KEY_TEXT)
            return
        if key.get("revoked"):
            self.view.error.setText(f"“{key.get('name')}” is already revoked.")
            return
        box = QMessageBox(
            QMessageBox.Icon.Warning, "Revoke API key",
            f"Revoke “{key.get('name')}” ({key.get('prefix') or key_id})?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self.view)
        box.setInformativeText("It stops working at once: the next request with it is"
                               " refused. This cannot be undone.")
        box.setObjectName("revokeConfirm")
        box.button(QMessageBox.StandardButton.Yes).setText("Revoke")
        box.buttonClicked.connect(
            lambda button: self._on_confirm(box, box.standardButton(button), key_id))
        self.confirm_box = box
        box.open()

    def _on_confirm(self, box: QMessageBox, choice: QMessageBox.StandardButton,
                    key_id: str) -> None:
        if self.confirm_box is box:
            self.confirm_box = None
        box.deleteLater()
        if choice == QMessageBox.StandardButton.Yes:
            self.tasks.spawn(self._revoke(key_id))

    async def _revoke(self, key_id: str) -> None:
        self.view.busy.setText("Revoking…")
        try:
            await self.login.authorized(lambda c: c.revoke_key(key_id))
        except GatewayApiError as exc:
            self.view.busy.setText("")
            self.view.error.setText(f"Cannot revoke the key: {error_text(exc)}")
            return
        await self._refresh()

    # The cost alert.

    def on_cost_alert(self, data: Any) -> None:
        if isinstance(data, dict):
            self.view.alert.setText(cost_alert_text(data))
            self.view.alert.show()

    def _follow_events_if_remote(self) -> None:
        running = self._events_task is not None and not self._events_task.done()
        if self.local_alerts or running or self.login.client is None:
            return
        client = self.login.client
        self._events_task = self.tasks.spawn(self._follow_events(client.base_url, client.token))

    async def _follow_events(self, base_url: str, token: str | None) -> None:
        """``cost:alert`` from a hub elsewhere, until the token is refused or the page is
        logged out; a dropped stream is followed again a few seconds later."""
        while True:
            try:
                async for name, data in _events(base_url, token):
                    if name == COST_ALERT:
                        self.bridge.on_cost_alert(data)
            except GatewayApiError as exc:
                if exc.status in (401, 403, 404):
                    return  # Retrying cannot fix these; the next refresh starts again.
            await asyncio.sleep(EVENTS_RETRY_S)

    async def stop_events(self) -> None:
        task, self._events_task = self._events_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def set_local_alerts(self, local: bool) -> None:
        """The hub changed: its own bus (hosted here) or its /v1/events (elsewhere)."""
        self.local_alerts = local
        await self.stop_events()

    async def close(self) -> None:
        await self.stop_events()


async def _events(base_url: str, token: str | None) -> AsyncIterator[tuple[str, Any]]:
    async with GatewayClient(base_url, token=token) as client:
        async for item in client.events():
            yield item
