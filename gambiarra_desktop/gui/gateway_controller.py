"""Wires the Gateway page to the hosted hub's gateway API through GatewayClient.

Every screen state comes from the server's reply: after each change the page reloads what
it shows, so a rejected or partly applied change is never displayed as done. Each network
call runs as a task on the shared loop, with the page's buttons disabled and a busy label
meanwhile, and failures are shown as the server's words, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QModelIndex, QObject
from PySide6.QtGui import QGuiApplication

from gambiarra_desktop.discovery.hosting import HostedHub
from gambiarra_desktop.gateway.accounts import ADMIN_PASSWORD_FILE
from gambiarra_desktop.gateway.sizing import room_entries
from gambiarra_desktop.gateway_client import GatewayApiError, GatewayClient
from gambiarra_desktop.gui.gateway_view import ID_ROLE, GatewayPage
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot

T = TypeVar("T")
ASK_FOR_IT_TEXT = (
    "The admin password was changed with `gambiarra admin set-password`, so it is not kept"
    " in a file any more. Type it below to manage the gateway.")
NETWORK_ERRORS = (GatewayApiError,)
"""The client turns every failure (refused, timed out, not JSON, an error reply) into one."""


@dataclass(frozen=True)
class RoomModels:
    code: str
    name: str
    models: list[dict[str, Any]]
    """``{"model": name, "metadata": {...}}`` per participant, for sizing.room_entries."""
    has_password: bool = False


@dataclass(frozen=True)
class GatewayTarget:
    """What the page needs of the hub this app hosts, and nothing more."""

    hub_url: str
    data_dir: Path
    rooms: Callable[[], list[RoomModels]]


def hosted_target(hosted: HostedHub) -> GatewayTarget:
    """The hosted hub's address and data dir, and its rooms read in-process: the owner
    sees every room's models, password rooms included, without their passwords."""
    server = hosted.server

    def rooms() -> list[RoomModels]:
        found = []
        for listed in server.registry.list_rooms():
            room = server.registry.get(listed["code"])
            if room is None:
                continue
            models = [{"model": p["model"], "metadata": p.get("config") or {}}
                      for p in room.participants.values()]
            found.append(RoomModels(listed["code"], listed["name"], models,
                                    listed["hasPassword"]))
        return found

    return GatewayTarget(hosted.local_url, server.data_dir, rooms)


def error_text(exc: GatewayApiError) -> str:
    """The server's error and details in plain words: "Invalid field: id: 1-128 letters…"."""
    message = exc.message[:1].upper() + exc.message[1:]
    return f"{message}: {exc.details}" if exc.details else message


class GatewayController(QObject):
    def __init__(self, view: GatewayPage, tasks: TaskTracker) -> None:
        super().__init__()
        self.view = view
        self.tasks = tasks
        self.target: GatewayTarget | None = None
        self.client: GatewayClient | None = None
        self.password: str | None = None
        self.logged_in = False
        self.models: dict[str, dict[str, Any]] = {}
        self._busy = 0
        self._switching = asyncio.Lock()
        view.refresh_clicked.connect(self.refresh)
        view.login_clicked.connect(self.login)
        view.copy_clicked.connect(self.copy_password)
        view.model_chosen.connect(self.choose_model)
        view.new_clicked.connect(self.new_model)
        view.save_model_clicked.connect(self.save_model)
        view.delete_clicked.connect(self.delete_model)
        view.move_clicked.connect(self.move_model)
        view.enabled_toggled.connect(self.set_enabled)
        view.add_room_clicked.connect(self.add_room_models)
        view.room_combo.currentIndexChanged.connect(lambda _index: self._show_room_password())
        view.apply_config_clicked.connect(self.apply_config)
        view.provider_save.connect(self.save_provider)
        view.provider_clear.connect(self.clear_provider_key)
        self._buttons = [view.refresh_button, view.login_button, view.up_button,
                         view.down_button, view.delete_button, view.new_button,
                         view.save_button, view.add_room_button, view.apply_config_button,
                         view.tree]

    # The hosted hub comes and goes.

    async def set_target(self, target: GatewayTarget | None) -> None:
        """Point the page at the hub now hosted (``None``: hosting stopped)."""
        async with self._switching:  # Stop-then-host in quick succession stays in order.
            await self._set_target(target)

    async def _set_target(self, target: GatewayTarget | None) -> None:
        await self.close()
        self.target = target
        self.view.show_hosting(target is not None)
        self.view.error.setText("")
        if target is None:
            self.view.address.setText("")
            return
        self.view.address.setText(f"The gateway of the hub you host, at {target.hub_url}/v1")
        self.client = GatewayClient(target.hub_url)
        path = target.data_dir / ADMIN_PASSWORD_FILE
        text = await asyncio.to_thread(_read_text, path)
        self.password = text.strip() if text else None
        self.view.password.setText(self.password or "")
        self.view.copy_button.setEnabled(self.password is not None)
        self.view.password_hint.setText(
            f"Kept in {path}. Use it with `gambiarra models` or the API." if self.password
            else ASK_FOR_IT_TEXT)
        self.view.login_row.setVisible(self.password is None)
        self.view.login_button.setEnabled(True)
        if self.password is not None:
            await self._login(self.password)

    async def close(self) -> None:
        client, self.client = self.client, None
        self.logged_in = False
        self.password = None
        if client is not None:
            await client.close()

    @contextlib.asynccontextmanager
    async def _working(self, what: str) -> AsyncIterator[None]:
        self._busy += 1
        self.view.busy.setText(what)
        for widget in self._buttons:
            widget.setEnabled(False)
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self.view.busy.setText("")
                for widget in self._buttons:
                    widget.setEnabled(True)
                self.view.login_button.setEnabled(not self.logged_in)

    # Login and the password.

    @tracked_slot()
    async def login(self) -> None:
        password = self.view.login_password.text()
        if password:
            await self._login(password)

    async def _login(self, password: str) -> None:
        if self.client is None:
            return
        async with self._working("Logging in…"):
            try:
                await self.client.login(password)
            except NETWORK_ERRORS as exc:
                self.view.error.setText(f"Cannot log in to the gateway: {error_text(exc)}")
                return
            self.logged_in = True
            self.password = password
            self.view.login_password.clear()
            self.view.error.setText("")
        await self._refresh()

    async def _authorized(self, action: Callable[[GatewayClient], Awaitable[T]]) -> T:
        """``action``, logging in again once if the token is refused: it lasts 12 hours, and
        a password change elsewhere ends every token. A password that changed too leaves
        the page asking for the new one."""
        assert self.client is not None  # noqa: S101 - callers check.
        try:
            return await action(self.client)
        except GatewayApiError as exc:
            if exc.status != 401 or self.password is None:
                raise
        try:
            await self.client.login(self.password)
        except GatewayApiError as exc:
            if exc.status == 401:
                self.logged_in = False
                self.view.login_row.setVisible(True)
            raise
        return await action(self.client)

    async def authorized(self, action: Callable[[GatewayClient], Awaitable[T]]) -> T:
        """The same, for the Usage page: it shares this page's login and token."""
        return await self._authorized(action)

    def copy_password(self) -> None:
        if self.password:
            QGuiApplication.clipboard().setText(self.password)
            self.view.busy.setText("Password copied.")

    # Reading everything back.

    @tracked_slot()
    async def refresh(self) -> None:
        await self._refresh()

    async def _refresh(self) -> None:
        if self.client is None or not self.logged_in:
            return
        async with self._working("Loading…"):
            try:
                models, providers, config = await self._authorized(_read_all)
            except NETWORK_ERRORS as exc:
                self.view.error.setText(error_text(exc))
                return
            self.view.error.setText("")
            selected = self.view.selected_id()
            self.models = {m["id"]: m for m in models}
            self.view.show_models(models, selected)
            if selected is not None and selected not in self.models:  # Deleted elsewhere.
                self._clear_form()
            for provider in providers:
                self.view.provider_row(provider["id"]).fill(provider)
            self.view.show_config(config)
            self._show_rooms()

    def _show_rooms(self) -> None:
        combo = self.view.room_combo
        current = combo.currentData()
        combo.clear()
        for room in self.target.rooms() if self.target else []:
            combo.addItem(f"{room.name} ({room.code}) · {len(room.models)} participant"
                          + ("" if len(room.models) == 1 else "s"), room.code)
        if current is not None and combo.findData(current) >= 0:
            combo.setCurrentIndex(combo.findData(current))
        self._show_room_password()
        self.view.add_room_button.setEnabled(combo.count() > 0)
        if combo.count() == 0:
            self.view.room_result.setText("No rooms on this hub yet.")

    def _chosen_room(self) -> RoomModels | None:
        code = self.view.room_combo.currentData()
        return next((r for r in (self.target.rooms() if self.target else [])
                     if r.code == code), None)

    def _show_room_password(self) -> None:
        """The password field only for a password room: the hub asks for it there."""
        room = self._chosen_room()
        self.view.room_password.setVisible(room is not None and room.has_password)

    # Changes, each followed by a reload.

    async def _change(self, what: str, action: Callable[[GatewayClient], Awaitable[Any]],
                      error_label: Any = None) -> bool:
        """Run one change; show the server's words on failure; reload either way."""
        if self.client is None or not self.logged_in:
            return False
        label = error_label or self.view.error
        async with self._working(what):
            try:
                await self._authorized(action)
            except NETWORK_ERRORS as exc:
                label.setText(error_text(exc))
                ok = False
            else:
                label.setText("")
                ok = True
        await self._refresh()
        return ok

    def choose_model(self, model_id: str) -> None:
        model = self.models.get(model_id)
        if model is not None:
            self.view.form.fill(model)
            self.view.save_button.setText("Save changes")
            self.view.form_error.setText("")

    def new_model(self) -> None:
        self.view.tree.clearSelection()
        self.view.tree.setCurrentIndex(QModelIndex())
        self._clear_form()

    def _clear_form(self) -> None:
        self.view.form.clear()
        self.view.save_button.setText("Add model")
        self.view.form_error.setText("")

    @tracked_slot()
    async def save_model(self) -> None:
        entry = self.view.form.entry()
        if self.view.form.editing and entry["id"] in self.models:
            changes = {k: v for k, v in entry.items() if k not in ("id", "provider")}
            await self._change("Saving…", lambda c: c.update_model(entry["id"], changes),
                               self.view.form_error)
        elif await self._change("Adding…", lambda c: c.add_model(entry), self.view.form_error):
            self._select(entry["id"])

    def _select(self, model_id: str) -> None:
        tree = self.view.tree
        for item in self.view.model_items():
            if item.data(0, ID_ROLE) == model_id:
                tree.setCurrentItem(item)
                return

    @tracked_slot()
    async def delete_model(self) -> None:
        model_id = self.view.selected_id()
        if model_id is not None:
            await self._change("Deleting…", lambda c: c.delete_model(model_id))

    @tracked_slot(int)
    async def move_model(self, step: int) -> None:
        """Swap with the neighbour in its layer, then number the layer's priorities 0, 1, …
        in the new order, so the order shown is the order ``auto`` tries."""
        model_id = self.view.selected_id()
        model = self.models.get(model_id or "")
        if model is None:
            return
        layer = [m for m in self.models.values() if m["layer"] == model["layer"]]
        index = next(i for i, m in enumerate(layer) if m["id"] == model_id)
        other = index + step
        if not 0 <= other < len(layer):
            return
        layer[index], layer[other] = layer[other], layer[index]
        changes = [(m["id"], i) for i, m in enumerate(layer) if m["priority"] != i]

        async def renumber(client: GatewayClient) -> None:
            for entry_id, priority in changes:
                await client.update_model(entry_id, {"priority": priority})

        await self._change("Reordering…", renumber)

    @tracked_slot(str, bool)
    async def set_enabled(self, model_id: str, enabled: bool) -> None:
        await self._change("Saving…", lambda c: c.update_model(model_id, {"enabled": enabled}))

    @tracked_slot()
    async def add_room_models(self) -> None:
        room = self._chosen_room()
        if room is None:
            return
        wanted = room_entries(room.code, room.models)
        room_password = self.view.room_password.text() if room.has_password else ""
        if room_password:
            wanted = [{**entry, "roomPassword": room_password} for entry in wanted]
        new = [e for e in wanted if e["id"] not in self.models]
        added: list[str] = []

        async def add(client: GatewayClient) -> None:
            for entry in new:
                await client.add_model(entry)
                added.append(entry["id"])

        ok = await self._change("Adding the room's models…", add, self.view.room_result)
        there = len(wanted) - len(new)
        summary = (f"Added {len(added)} model" + ("" if len(added) == 1 else "s")
                   + f" from room {room.code}" + (f" ({there} already there)." if there else "."))
        if not wanted:
            summary = f"Room {room.code} has no participants, so no models to add."
        if ok:
            self.view.room_result.setText(summary)
        else:
            self.view.room_result.setText(f"{summary} {self.view.room_result.text()}")

    @tracked_slot()
    async def apply_config(self) -> None:
        changes = self.view.config_changes()
        await self._change("Saving…", lambda c: c.set_config(changes), self.view.config_error)

    @tracked_slot(str)
    async def save_provider(self, provider_id: str) -> None:
        row = self.view.provider_row(provider_id)
        base_url = row.base_url.text().strip()
        key = row.api_key.text().strip()

        async def save(client: GatewayClient) -> None:
            if key:
                await client.set_provider(provider_id, base_url=base_url, api_key=key)
            else:
                await client.set_provider(provider_id, base_url=base_url)

        await self._change("Saving…", save, self.view.provider_error)

    @tracked_slot(str)
    async def clear_provider_key(self, provider_id: str) -> None:
        await self._change("Saving…", lambda c: c.set_provider(provider_id, api_key=None),
                           self.view.provider_error)


async def _read_all(client: GatewayClient) -> tuple[list[dict[str, Any]],
                                                  list[dict[str, Any]], dict[str, Any]]:
    return await client.models(), await client.providers(), await client.config()


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None
