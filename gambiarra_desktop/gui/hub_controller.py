"""A hub's page: list its rooms, create one, open one (asking for the password only
when the room has one), and delete one this user may delete.

A room opens only once its hub answered for it: a hub that does not answer is said here,
with a Retry, and a wrong or missing password is asked for again in place (the field
focused, its text selected), never by opening an empty room."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QListWidgetItem, QMessageBox

from gambiarra_desktop.gui.hub_view import HubPage
from gambiarra_desktop.gui.models import HubEntry, RoomSession
from gambiarra_desktop.gui.resources import icon
from gambiarra_desktop.gui.settings import AppSettings
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot
from gambiarra_desktop.hub_client import HubApiError, HubClient, HubUnreachableError

ROOM_ROLE = Qt.ItemDataRole.UserRole


class HubController(QObject):
    room_opened = Signal(object)  # RoomSession
    rooms_counted = Signal(str, int)  # hub key, number of rooms

    def __init__(
        self, view: HubPage, settings: AppSettings, tasks: TaskTracker,
        owner_token: Callable[[HubEntry], str | None] = lambda _entry: None,
    ) -> None:
        """``owner_token(entry)`` is the hub owner's token when ``entry`` is the hub this
        app hosts (its owner may delete any room there)."""
        super().__init__()
        self.tasks = tasks
        self.view = view
        self.settings = settings
        self.owner_token = owner_token
        self.entry: HubEntry | None = None
        self._confirm: QMessageBox | None = None
        view.join_clicked.connect(self.join)
        view.create_clicked.connect(self.create)
        view.delete_clicked.connect(self.ask_delete)
        view.retry_clicked.connect(self.retry)
        view.room_list.currentItemChanged.connect(self._on_room_changed)

    async def show(self, entry: HubEntry) -> None:
        self.entry = entry
        self.view.title.setText(entry.name)
        self.view.address.setText(entry.url)
        self.view.error.setText("")
        await self.refresh()

    @tracked_slot()
    async def retry(self) -> None:
        self.view.retry_button.setEnabled(False)
        self.view.unreachable_text.setText("Trying again…")
        await self.refresh()

    async def refresh(self) -> None:
        entry = self.entry
        if entry is None:
            return
        try:
            async with HubClient(entry.url, timeout_s=5) as hub:
                rooms = await hub.list_rooms()
        except HubUnreachableError as exc:  # Before HubApiError: the gateway's is both.
            self.view.show_unreachable(str(exc))
            return
        except HubApiError as exc:
            self.view.show_unreachable(f"The hub refused to list its rooms: {exc}")
            return
        self.view.show_reachable()
        self.view.room_list.clear()
        lock = icon("lock")  # An icon, not the emoji: not every font has a lock glyph.
        for room in rooms:
            people = room.get("participantCount", 0)
            word = " · password" if room.get("hasPassword") else ""
            item = QListWidgetItem(f"{room['name']}    {room['code']}    · {people} sharing{word}")
            if room.get("hasPassword"):
                item.setIcon(lock)
            item.setData(ROOM_ROLE, room)
            self.view.room_list.addItem(item)
        self.view.no_rooms.setVisible(not rooms)
        self.view.join_button.setEnabled(bool(rooms))
        if rooms:
            self.view.room_list.setCurrentRow(0)
        self.rooms_counted.emit(entry.key, len(rooms))

    def _selected_room(self) -> dict[str, Any] | None:
        item = self.view.room_list.currentItem()
        data = item.data(ROOM_ROLE) if item is not None else None
        return data if isinstance(data, dict) else None

    def _delete_credential(self, room: dict[str, Any] | None) -> str | None:
        if room is None or self.entry is None:
            return None
        return (self.settings.creator_secret(self.entry.url, str(room["code"]))
                or self.owner_token(self.entry))

    def _on_room_changed(self, *_: object) -> None:
        room = self._selected_room()
        self.view.delete_button.setEnabled(self._delete_credential(room) is not None)
        needs_password = bool(room and room.get("hasPassword"))
        self.view.join_password.setVisible(needs_password)
        if needs_password:
            self.view.join_password.setFocus()

    @tracked_slot()
    async def join(self) -> None:
        room = self._selected_room()
        entry = self.entry
        if room is None or entry is None:
            return
        password = self.view.join_password.text()
        if room.get("hasPassword") and not password:
            self._ask_password("This room has a password: type it next to Join room.")
            return
        # Ask the hub first: a wrong password or a hub that does not answer would open an
        # empty room; a room the list showed without a password may still want one.
        try:
            async with HubClient(entry.url, timeout_s=5, room_password=password or None) as hub:
                await hub.participants(str(room["code"]))
        except HubUnreachableError as exc:
            self.view.show_unreachable(str(exc))
            return
        except HubApiError as exc:
            if exc.status in (401, 403):
                self._ask_password("Wrong password for this room." if password
                                   else "This room has a password: type it next to Join room.")
            else:
                self.view.error.setText(f"Cannot open the room: {exc}")
            return
        self.view.error.setText("")
        self.view.show_reachable()
        self.room_opened.emit(RoomSession(
            entry.name, entry.url, str(room["code"]), str(room["name"]),
            bool(room.get("hasPassword")) or bool(password), password))
        self.view.join_password.clear()

    def _ask_password(self, text: str) -> None:
        """In place: the field shown and focused, what was typed selected for retyping."""
        self.view.error.setText(text)
        self.view.join_password.show()
        self.view.join_password.setFocus()
        self.view.join_password.selectAll()

    @tracked_slot()
    async def create(self) -> None:
        entry = self.entry
        name = self.view.room_name.text().strip()
        if entry is None:
            return
        if not name:
            self.view.error.setText("Give the room a name.")
            self.view.room_name.setFocus()
            return
        password = self.view.room_password.text()
        # Focus stays in the form: the disabled button would pass it on down the chain,
        # to the sidebar's Stop hosting, where a stray Space stops the hub for everyone.
        self.view.room_name.setFocus()
        self.view.create_button.setEnabled(False)
        try:
            async with HubClient(entry.url) as hub:
                created = await hub.create_room(name, password or None)
        except HubUnreachableError as exc:
            self.view.show_unreachable(str(exc))
            return
        except HubApiError as exc:
            self.view.error.setText(f"Could not create the room: {exc}")
            return
        finally:
            self.view.create_button.setEnabled(True)
        room = created["room"]
        self.settings.remember_hosted_room(room["code"])
        if isinstance(created.get("creatorSecret"), str):
            self.settings.remember_creator_secret(entry.url, room["code"],
                                                  created["creatorSecret"])
        self.view.room_name.clear()
        self.view.room_password.clear()
        self.view.error.setText("")
        await self.refresh()
        self.room_opened.emit(RoomSession(entry.name, entry.url, room["code"], room["name"],
                                          bool(room.get("hasPassword")), password))

    def ask_delete(self) -> None:
        """Confirm first: deleting a room removes everyone from it, for good. The box is
        opened with ``open()`` (no nested event loop) and answers through a signal."""
        room = self._selected_room()
        if room is None or self._delete_credential(room) is None:
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "Delete room",
                          f"Delete the room “{room['name']}” ({room['code']})?",
                          QMessageBox.StandardButton.Cancel, self.view)
        box.setInformativeText("Everyone in it stops sharing with it, and its code stops"
                               " working. This cannot be undone.")
        delete = box.addButton("Delete room", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(lambda _result: self._on_confirm(box, delete, room))
        self._confirm = box
        box.open()

    def _on_confirm(self, box: QMessageBox, delete: object, room: dict[str, Any]) -> None:
        self._confirm = None
        if box.clickedButton() is delete:
            self.tasks.spawn(self.delete(room))

    async def delete(self, room: dict[str, Any]) -> None:
        entry = self.entry
        credential = self._delete_credential(room)
        if entry is None or credential is None:
            return
        code = str(room["code"])
        self.view.delete_button.setEnabled(False)
        try:
            async with HubClient(entry.url, timeout_s=5) as hub:
                await hub.delete_room(code, credential)
        except (HubUnreachableError, HubApiError) as exc:
            if isinstance(exc, HubUnreachableError) or exc.status != 404:
                self.view.error.setText(f"Could not delete the room: {exc}")
                self.view.delete_button.setEnabled(True)
                return
        self.settings.forget_creator_secret(entry.url, code)
        self.view.error.setText("")
        await self.refresh()
