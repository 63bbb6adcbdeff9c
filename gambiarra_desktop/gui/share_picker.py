"""The share tab's model server picker: detected servers, a typed address with Check, and
the models the chosen server lists. Apart from the share switch, which it never touches."""

from __future__ import annotations

import aiohttp
from PySide6.QtCore import QObject

from gambiarra_desktop.gui.settings import AppSettings
from gambiarra_desktop.gui.share_view import ShareTab
from gambiarra_desktop.gui.tasks import TaskTracker, tracked_slot
from gambiarra_desktop.share.local_servers import (
    DetectedServer,
    ModelServerError,
    detect_local_servers,
    list_models,
)


class ServerPicker(QObject):
    def __init__(self, view: ShareTab, settings: AppSettings, tasks: TaskTracker) -> None:
        super().__init__()
        self.view = view
        self.settings = settings
        self.tasks = tasks
        self.servers: list[DetectedServer] = []
        view.endpoint.setText(settings.last_endpoint)
        view.detect_clicked.connect(self.detect)
        view.check_clicked.connect(self.check)
        view.server_combo.currentIndexChanged.connect(self._on_server_chosen)

    @tracked_slot()
    async def detect(self) -> None:
        await self.look(keep_choice=False)

    async def look(self, keep_choice: bool) -> None:
        """Detect the model servers here. ``keep_choice`` (a share runs): list what was
        found but leave the address and model as they are."""
        self.view.detect_hint.setText("Looking for model servers on this computer…")
        extra = [self.settings.last_endpoint] if self.settings.last_endpoint else []
        typed_before = self.view.endpoint.text()
        self.servers = await detect_local_servers(extra)
        # Detection takes a moment; never swap the picker under a user who typed an
        # address meanwhile or is already sharing: just list what was found.
        keep_choice = keep_choice or self.view.endpoint.text() != typed_before
        combo = self.view.server_combo
        combo.blockSignals(True)
        combo.clear()
        for server in self.servers:
            combo.addItem(f"{server.name} — {server.endpoint}")
        combo.addItem("Another address…")
        combo.blockSignals(False)
        if self.servers:
            self.view.detect_hint.setText(
                f"Found {len(self.servers)} model server(s). Pick a model and flip the switch.")
            if keep_choice:
                combo.blockSignals(True)
                combo.setCurrentIndex(len(self.servers))  # Another address…
                combo.blockSignals(False)
            else:
                combo.setCurrentIndex(0)
                self._on_server_chosen(0)
        elif keep_choice:
            self.view.detect_hint.setText(
                "No model server found on the usual ports; using the address you typed.")
        else:
            self.view.detect_hint.setText(
                "No model server found on the usual ports (Ollama 11434, LM Studio 1234,"
                " llama.cpp 8080, vLLM 8000). Start one, or type its address and press Check.")

    def _on_server_chosen(self, index: int) -> None:
        if 0 <= index < len(self.servers):
            server = self.servers[index]
            self.view.endpoint.setText(server.endpoint)
            self._fill_models(list(server.models))

    def _fill_models(self, models: list[str]) -> None:
        self.view.model_combo.clear()
        self.view.model_combo.addItems(models)
        if self.settings.last_model in models:
            self.view.model_combo.setCurrentText(self.settings.last_model)

    @tracked_slot()
    async def check(self) -> None:
        endpoint = self.view.endpoint.text().strip()
        if not endpoint:
            return
        try:
            async with aiohttp.ClientSession() as session:
                models = await list_models(session, endpoint)
        except ModelServerError as exc:
            self.view.detect_hint.setText(str(exc))
            return
        self._fill_models(models)
        self.view.detect_hint.setText(f"{endpoint} serves {len(models)} model(s).")
