"""The Gateway page: real widgets clicked against the hub this window hosts, every change
checked on the server, not only on screen (issue 10, "Desktop app")."""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.gateway_client import GatewayClient
from gambiarra_desktop.gui.gateway_controller import ASK_FOR_IT_TEXT
from gambiarra_desktop.gui.gateway_view import ENABLED_COLUMN, NOT_HOSTING_TEXT
from gambiarra_desktop.gui.main_window import MainWindow
from gambiarra_desktop.gui.playground_controller import GATEWAY_AUTO
from tests.gui.conftest import eventually, finish
from tests.gui.test_flows import TOKENS, host_and_create_room, share_model

LEFT = Qt.MouseButton.LeftButton


def click(qtbot: QtBot, widget: QWidget) -> None:
    assert widget.isEnabled(), f"{widget.objectName() or widget} is disabled"
    qtbot.mouseClick(widget, LEFT)


async def open_gateway(qtbot: QtBot, window: MainWindow) -> None:
    """Click the sidebar's Gateway button; wait until the page has logged in and loaded."""
    click(qtbot, window.sidebar.gateway_button)
    await eventually(lambda: window.stack.currentWidget() is window.gateway_page)
    await eventually(lambda: window.gateway.logged_in and window.gateway_page.busy.text() == ""
                     and window.gateway_page.tree.topLevelItemCount() == 4)


def shown_ids(window: MainWindow) -> list[str]:
    return [item.text(0) for item in window.gateway_page.model_items()]


def layer_of(window: MainWindow, model_id: str) -> str:
    for item in window.gateway_page.model_items():
        if item.text(0) == model_id:
            parent = item.parent()
            assert parent is not None
            return parent.text(0).split(" ")[0]
    raise AssertionError(f"{model_id} is not shown")


def password_of(window: MainWindow) -> str:
    return (window.config.data_dir / "admin-password").read_text().strip()


async def server_models(window: MainWindow) -> dict[str, dict[str, object]]:
    assert window.host.hosted is not None
    async with GatewayClient(window.host.hosted.local_url) as client:
        return {m["id"]: m for m in await client.models()}


async def admin_client(window: MainWindow) -> GatewayClient:
    assert window.host.hosted is not None
    client = GatewayClient(window.host.hosted.local_url)
    await client.login(password_of(window))
    return client


async def test_not_hosting_says_so(qtbot: QtBot, window: MainWindow) -> None:
    click(qtbot, window.sidebar.gateway_button)
    page = window.gateway_page
    assert window.stack.currentWidget() is page
    assert page.not_hosting.isVisible() and page.not_hosting.text() == NOT_HOSTING_TEXT
    assert not page.scroll_area.isVisible()
    await finish(window)


async def test_room_models_password_and_model_editing(
        qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer) -> None:
    # Given a hosted hub with a room where I share llama3.2:3b
    await host_and_create_room(qtbot, window, "Gateway lab")
    code = window.room_page.code.text()
    await share_model(qtbot, window, upstream)
    page = window.gateway_page

    # When I open the Gateway page, it logs in by itself with the first-run password
    await open_gateway(qtbot, window)
    assert page.password.text() == password_of(window)
    assert page.password.echoMode() == page.password.EchoMode.Password
    assert not page.login_row.isVisible()
    click(qtbot, page.copy_button)
    assert QGuiApplication.clipboard().text() == password_of(window)

    # And "Add this room's models" adds llama3.2:3b to L0 (3B), on the server too
    room_id = f"room-{code.lower()}-llama3.2-3b"
    assert page.room_combo.currentData() == code
    click(qtbot, page.add_room_button)
    await eventually(lambda: page.room_result.text() != "" and page.busy.text() == "")
    assert page.room_result.text() == f"Added 1 model from room {code}."
    assert layer_of(window, room_id) == "L0"
    stored = (await server_models(window))[room_id]
    assert stored["room"] == code and stored["apiModelName"] == "llama3.2:3b"

    # And a second click adds nothing twice
    page.room_result.setText("")
    click(qtbot, page.add_room_button)
    await eventually(lambda: page.room_result.text() != "" and page.busy.text() == "")
    assert page.room_result.text() == f"Added 0 models from room {code} (1 already there)."
    assert shown_ids(window) == [room_id]

    # When I add a model with a bad id, the server's words are shown next to the form
    click(qtbot, page.new_button)
    page.form.model_id.setText("bad id!")
    page.form.provider.setCurrentText("oss-local")
    page.form.api_model_name.setText("qwen2.5:7b")
    page.form.layer.setCurrentText("L1")
    click(qtbot, page.save_button)
    await eventually(lambda: page.form_error.text() != "" and page.busy.text() == "")
    assert page.form_error.text().startswith("Invalid field: id: ")
    assert "Traceback" not in page.form_error.text()
    assert "bad id!" not in await server_models(window)

    # When I fix it and add a second one, both show in L1 in the server's order
    for model_id in ("b-local", "a-local"):
        click(qtbot, page.new_button)
        page.form.model_id.setText(model_id)
        page.form.provider.setCurrentText("oss-local")
        page.form.api_model_name.setText("qwen2.5:7b")
        page.form.layer.setCurrentText("L1")
        click(qtbot, page.save_button)
        await eventually(lambda m=model_id: m in shown_ids(window) and page.busy.text() == "")
        assert page.form_error.text() == ""
        assert page.selected_id() == model_id  # Selected, ready to edit.
    assert shown_ids(window) == [room_id, "a-local", "b-local"]  # Same priority: by id.

    # When I move b-local up, it runs first: the server numbered the layer's priorities
    page.tree.setCurrentItem(page.model_items()[2])
    assert page.selected_id() == "b-local" and page.save_button.text() == "Save changes"
    click(qtbot, page.up_button)
    await eventually(lambda: shown_ids(window) == [room_id, "b-local", "a-local"])
    models = await server_models(window)
    assert (models["b-local"]["priority"], models["a-local"]["priority"]) == (0, 1)

    # When I edit b-local's layer in the form, it moves to L2 on the server and on screen
    page.form.layer.setCurrentText("L2")
    click(qtbot, page.save_button)
    await eventually(lambda: layer_of(window, "b-local") == "L2")
    assert (await server_models(window))["b-local"]["layer"] == "L2"

    # When I untick a-local's Enabled box, the server disables it
    item = next(i for i in page.model_items() if i.text(0) == "a-local")
    item.setCheckState(ENABLED_COLUMN, Qt.CheckState.Unchecked)
    await eventually(lambda: page.busy.text() == "" and not window.gateway.models["a-local"]
                     ["enabled"])
    assert (await server_models(window))["a-local"]["enabled"] is False

    # When I delete a-local, it is gone from the server and the page
    page.tree.setCurrentItem(next(i for i in page.model_items() if i.text(0) == "a-local"))
    click(qtbot, page.delete_button)
    await eventually(lambda: "a-local" not in shown_ids(window))
    assert "a-local" not in await server_models(window)
    await finish(window)


async def test_configuration_and_provider_keys(
        qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer) -> None:
    await host_and_create_room(qtbot, window, "Config lab")
    await open_gateway(qtbot, window)
    page = window.gateway_page

    # Given a token the hub no longer takes (12 hours later, say), Refresh logs in again
    assert window.gateway.client is not None
    window.gateway.client.token = "expired.or.forged"
    click(qtbot, page.refresh_button)
    client = window.gateway.client
    await eventually(lambda: client.token != "expired.or.forged" and page.busy.text() == "")
    assert page.error.text() == "" and window.gateway.logged_in

    # When I change the switches and apply, the server keeps them
    page.default_layer.setCurrentText("L1")
    page.max_layer.setCurrentText("L2")
    page.cross_check.setChecked(not page.cross_check.isChecked())
    wanted_cross_check = page.cross_check.isChecked()
    page.cost_alert.setValue(7.5)
    click(qtbot, page.apply_config_button)
    await eventually(lambda: page.busy.text() == "")
    client = await admin_client(window)
    try:
        config = await client.config()
        assert config["defaultLayer"] == "L1" and config["maxEscalationLayer"] == "L2"
        assert config["enableCrossCheck"] is wanted_cross_check
        assert config["costAlertThreshold"] == 7.5
        assert page.config_error.text() == ""

        # When I give openai a base URL and a key, the page says "key set", never the key
        row = page.provider_rows["openai"]
        assert row.api_key.echoMode() == row.api_key.EchoMode.Password
        row.base_url.setText(upstream.url + "/v1")
        row.api_key.setText("sk-gui-secret-123")
        click(qtbot, row.save_button)
        await eventually(lambda: page.busy.text() == "" and row.api_key.text() == "")
        assert page.provider_error.text() == ""
        assert row.api_key.placeholderText() == "key set"
        assert row.base_url.text() == upstream.url + "/v1"
        assert row.clear_button.isEnabled()
        described = {p["id"]: p for p in await client.providers()}["openai"]
        assert described["hasKey"] is True and described["keySource"] == "admin"
        assert described["healthy"] is True  # The fake server answered the probe…
        assert row.health.property("state") == "running"  # …and the dot says so.
        texts = [w.text() for w in page.findChildren(QWidget) if hasattr(w, "text")
                 and isinstance(w.text(), str)]
        assert not any("sk-gui-secret-123" in text for text in texts)

        # When I clear the key, the server forgets it
        click(qtbot, row.clear_button)
        await eventually(lambda: page.busy.text() == "" and row.api_key.placeholderText()
                         == "API key")
        described = {p["id"]: p for p in await client.providers()}["openai"]
        assert described["hasKey"] is False
    finally:
        await client.close()
    await finish(window)


async def test_a_changed_password_is_asked_for(qtbot: QtBot, window: MainWindow) -> None:
    # Given a hub whose admin-password file is gone (changed with the CLI)
    await host_and_create_room(qtbot, window, "Password lab")
    await eventually(lambda: window.gateway.logged_in)
    password = password_of(window)
    click(qtbot, window.sidebar.host_button)  # Stop hosting…
    await eventually(lambda: window.host.hosted is None)
    await eventually(lambda: not window.gateway_page.scroll_area.isVisibleTo(window.gateway_page))
    await asyncio.to_thread((window.config.data_dir / "admin-password").unlink)
    await eventually(window.sidebar.host_button.isEnabled)
    click(qtbot, window.sidebar.host_button)  # …and host again.
    await eventually(lambda: window.host.hosted is not None)

    # When I open the page, it asks for the password instead of showing one
    click(qtbot, window.sidebar.gateway_button)
    page = window.gateway_page
    await eventually(lambda: page.password_hint.text() == ASK_FOR_IT_TEXT)
    assert page.login_row.isVisible() and not page.copy_button.isEnabled()
    assert page.password.text() == ""

    # Then a wrong one is refused in plain words, and the right one logs in
    page.login_password.setText("not the password")
    click(qtbot, page.login_button)
    await eventually(lambda: page.error.text() != "")
    assert page.error.text() == "Cannot log in to the gateway: Invalid credentials"
    assert not window.gateway.logged_in
    page.login_password.setText(password)
    click(qtbot, page.login_button)
    await eventually(lambda: window.gateway.logged_in and page.busy.text() == "")
    assert page.error.text() == "" and page.login_password.text() == ""
    assert page.room_combo.count() == 1
    await finish(window)


async def test_playground_offers_auto_and_says_who_answered(
        qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer) -> None:
    # Given a hosted hub whose gateway knows the model I share in my room
    await host_and_create_room(qtbot, window, "Auto lab")
    code = window.room_page.code.text()
    await share_model(qtbot, window, upstream)
    client = await admin_client(window)
    try:
        await client.add_model({"id": "mine", "provider": "gambiarra", "room": code,
                                "apiModelName": "llama3.2:3b", "layer": "L1"})
    finally:
        await client.close()

    # When I pick auto in the playground and send
    playground = window.room_page.playground
    window.room_page.tabs.setCurrentWidget(playground)
    click(qtbot, playground.refresh_button)
    await eventually(lambda: playground.model_combo.findData(GATEWAY_AUTO) >= 0)
    assert not playground.cross_check.isVisible()
    playground.model_combo.setCurrentIndex(playground.model_combo.findData(GATEWAY_AUTO))
    assert playground.cross_check.isVisible()
    playground.prompt.setPlainText("Hello, whoever you are")
    click(qtbot, playground.send_button)

    # Then the answer shows, with the entry and layer that gave it
    await eventually(lambda: playground.answered_by.text() != "")
    assert playground.output.toPlainText() == TOKENS
    assert playground.answered_by.text().startswith("Answered by mine (L1), participant ")
    assert playground.error.text() == ""

    # And asked to cross-check with no second model, the verdict says it could not be done
    playground.cross_check.setChecked(True)
    playground.answered_by.setText("")
    playground.prompt.setPlainText("Hello again")  # Sending empties the prompt box.
    click(qtbot, playground.send_button)
    await eventually(lambda: playground.answered_by.text() != "")
    assert "Cross-check by " in playground.answered_by.text()
    assert ": unavailable" in playground.answered_by.text()
    await finish(window)


async def test_playground_shows_the_gateway_error_in_words(
        qtbot: QtBot, window: MainWindow) -> None:
    # Given a hosted hub whose gateway has no model at all
    await host_and_create_room(qtbot, window, "Empty gateway")
    playground = window.room_page.playground
    window.room_page.tabs.setCurrentWidget(playground)
    click(qtbot, playground.refresh_button)
    await eventually(lambda: playground.model_combo.findData(GATEWAY_AUTO) >= 0)
    playground.model_combo.setCurrentIndex(playground.model_combo.findData(GATEWAY_AUTO))
    playground.prompt.setPlainText("Anyone?")
    click(qtbot, playground.send_button)
    await eventually(lambda: playground.error.text() != "")
    assert playground.error.text().startswith("No model available")
    assert playground.send_button.isEnabled() and playground.answered_by.text() == ""
    await finish(window)


async def test_a_password_rooms_models_need_its_password(
        qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer) -> None:
    # Given a hosted hub with a password room where someone shares llama3.2:3b
    await host_and_create_room(qtbot, window, "Open lab")
    assert window.host.hosted is not None
    url = window.host.hosted.local_url
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/rooms",
                             json={"name": "Private lab", "password": "room-secret"}) as r:
            code = (await r.json())["room"]["code"]
        join = {"id": "p1", "nickname": "Ana", "model": "llama3.2:3b",
                "endpoint": upstream.url, "password": "room-secret"}
        async with http.post(f"{url}/rooms/{code}/join", json=join) as r:
            assert r.status == 201
    page = window.gateway_page
    await open_gateway(qtbot, window)
    click(qtbot, page.refresh_button)
    await eventually(lambda: page.busy.text() == "" and page.room_combo.findData(code) >= 0)

    # When I choose the password room, the page asks for its password
    page.room_combo.setCurrentIndex(page.room_combo.findData(code))
    assert page.room_password.isVisible()
    assert page.room_password.echoMode() == page.room_password.EchoMode.Password

    # And without it, the hub's words say why nothing was added
    click(qtbot, page.add_room_button)
    await eventually(lambda: page.room_result.text() != "" and page.busy.text() == "")
    assert "roomPassword" in page.room_result.text() and "has a password" in page.room_result.text()
    assert shown_ids(window) == []

    # With it, the room's model is added, and the password is kept nowhere on the server
    page.room_result.setText("")
    page.room_password.setText("room-secret")
    click(qtbot, page.add_room_button)
    await eventually(lambda: page.room_result.text() != "" and page.busy.text() == "")
    assert page.room_result.text() == f"Added 1 model from room {code}."
    stored = await server_models(window)
    assert [m["room"] for m in stored.values()] == [code]
    assert "room-secret" not in str(stored)
    await finish(window)
