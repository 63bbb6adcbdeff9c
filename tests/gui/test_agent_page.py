"""The Agent page (issue 13): real widgets clicked against a real in-process agent server
whose model is a scripted fake model server (real aiohttp on loopback), running real
commands. Every outcome is checked on the core too (rules, sessions, processes), and a
program's chat is driven over HTTP with the server's token, as a client would."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import psutil
import pytest
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from gambiarra_desktop.agent.server import AgentServer
from gambiarra_desktop.devtools.scripted_model import ScriptedCall, ScriptedModel, ScriptedReply
from gambiarra_desktop.gui.agent_controller import PORT_BUSY
from gambiarra_desktop.gui.agent_view import NOTE_TEXT, OFF_TEXT, AgentPage
from gambiarra_desktop.gui.agent_widgets import ApprovalCard, fixed_font
from gambiarra_desktop.gui.main_window import MainWindow
from gambiarra_desktop.gui.settings import AppSettings
from gambiarra_desktop.gui.tray import APPROVAL_TITLE, Tray
from tests.agent_kit import process_gone
from tests.gui.conftest import eventually, finish
from tests.sse_client import SseReader

LEFT = Qt.MouseButton.LeftButton


def click(qtbot: QtBot, widget: QWidget) -> None:
    assert widget.isEnabled(), f"{widget.objectName() or widget} is disabled"
    qtbot.mouseClick(widget, LEFT, pos=QPoint(widget.width() // 2, widget.height() // 2))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder.resolve()  # As the core names it (rules are per resolved workspace).


async def scripted(*replies: ScriptedReply) -> ScriptedModel:
    model = ScriptedModel(list(replies))
    await model.start()
    return model


@pytest.fixture
async def models() -> AsyncIterator[list[ScriptedModel]]:
    started: list[ScriptedModel] = []
    yield started
    for model in started:
        await model.stop()


async def agent_on(qtbot: QtBot, window: MainWindow, base_url: str, workspace: Path
                   ) -> AgentServer:
    """Show the page, type the model address and the folder, flip the switch (port 0:
    tests never take 4000)."""
    window.settings.agent_port = 0
    click(qtbot, window.sidebar.agent_button)
    page = window.agent_page
    assert window.stack.currentWidget() is page
    page.base_url.setText(base_url)
    page.base_url.editingFinished.emit()
    page.workspace.setText(str(workspace))
    page.workspace.editingFinished.emit()
    assert page.state.text() == OFF_TEXT and not page.switch.isChecked()
    click(qtbot, page.switch)
    await eventually(lambda: window.agent.server is not None and page.switch.isChecked())
    server = window.agent.server
    assert server is not None
    return server


def send(qtbot: QtBot, page: AgentPage, prompt: str) -> None:
    page.prompt.setText(prompt)
    click(qtbot, page.send_button)


async def one_card(page: AgentPage) -> ApprovalCard:
    await eventually(lambda: len(page.cards) == 1 and page.approvals_area.isVisible())
    (card,) = page.cards.values()
    return card


def transcript(page: AgentPage) -> str:
    return page.transcript.plain_text()


async def test_allow_once_runs_the_exact_command_and_the_tray_says_so(
        qtbot: QtBot, window: MainWindow, workspace: Path, models: list[ScriptedModel]
) -> None:
    # Given the agent on, a model (served by alice's machine) that asks for `echo hi`,
    # and a tray icon (offscreen has none; the window uses one where there is)
    model = await scripted(
        ScriptedReply(reasoning="The user wants a greeting.", text="Let me run it.",
                      calls=(ScriptedCall("bash", {"command": "echo hi"}, "c1"),)),
        ScriptedReply(text="It printed hi."))
    models.append(model)
    tray = Tray(window)
    window.tray = tray
    server = await agent_on(qtbot, window, model.url, workspace)
    page = window.agent_page
    assert page.note.text() == NOTE_TEXT and page.note.isVisible()

    # When the user sends a prompt
    send(qtbot, page, "say hi")

    # Then a card shows the exact command, the tool, who proposed it and the rule
    card = await one_card(page)
    assert card.exact.toPlainText() == "echo hi"
    assert card.exact.isReadOnly()
    assert card.accessibleName() == "Approval: run a command (bash)"
    assert "Proposed by alice" in card.proposed.text()
    assert "this page's chat" in card.proposed.text()
    assert card.always_button.isEnabled()
    assert card.always_button.toolTip() == "Always allow = always run exactly: echo hi"
    assert tray.last_message == (APPROVAL_TITLE, "bash: echo hi")
    assert page.stop_button.isEnabled() and not page.send_button.isEnabled()
    assert "waiting for your answer" in transcript(page)

    # When Allow once is clicked
    click(qtbot, card.once_button)

    # Then the command ran, its output and the model's streamed words are in the transcript
    await eventually(lambda: "It printed hi." in transcript(page))
    shown = transcript(page)
    assert "You: say hi" in shown
    assert "The user wants a greeting." in shown and "Let me run it." in shown
    assert "bash: run a command (done)\necho hi\nhi\n[exit code 0]" in shown
    assert page.cards == {} and not page.approvals_area.isVisible()
    await eventually(lambda: window.agent.chat_task is None)
    assert server.service.session_count() == 0
    assert page.send_button.isEnabled() and not page.stop_button.isEnabled()
    # Allowed once: nothing was stored
    assert server.service.rules.rules(workspace) == []
    # The model got the output, tied to its call
    assert '"stdout": "hi\\n"' in model.requests[1]["messages"][-1]["content"]
    # A click on the tray's message brings the window back on this page
    window.show_terminal()
    tray.messageClicked.connect(window._on_tray_message_clicked)
    tray.messageClicked.emit()
    assert window.stack.currentWidget() is page
    window.tray = None
    await finish(window)


async def test_always_allow_stores_the_rule_listed_with_remove(
        qtbot: QtBot, window: MainWindow, workspace: Path, models: list[ScriptedModel]
) -> None:
    model = await scripted(
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "echo always"}, "c1"),)),
        ScriptedReply(text="done once"),
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "echo always"}, "c2"),)),
        ScriptedReply(text="done twice"))
    models.append(model)
    server = await agent_on(qtbot, window, model.url, workspace)
    page = window.agent_page
    root = workspace
    assert page.rule_texts() == []

    # Given the model asks for `echo always`: When Always allow is clicked
    send(qtbot, page, "first")
    card = await one_card(page)
    click(qtbot, card.always_button)

    # Then it ran, and the exact rule is stored and listed for this workspace
    await eventually(lambda: "done once" in transcript(page))
    await eventually(lambda: len(page.rule_texts()) == 1)
    assert "always run exactly: echo always" in page.rule_texts()[0]
    assert [rule.key for rule, _ in server.service.rules.rules(root)] == [("echo", "always")]

    # And the same command later runs without a card
    await eventually(lambda: window.agent.chat_task is None)
    send(qtbot, page, "again")
    await eventually(lambda: "done twice" in transcript(page))
    assert page.cards == {}
    assert transcript(page).count("always\n[exit code 0]") == 2

    # When the rule is selected and removed, it is gone from the list and the core
    page.rules.setCurrentRow(0)
    click(qtbot, page.remove_rule_button)
    await eventually(lambda: page.rule_texts() == [])
    assert server.service.rules.rules(root) == []
    await finish(window)


async def test_deny_shows_the_denial_and_nothing_runs(
        qtbot: QtBot, window: MainWindow, workspace: Path, models: list[ScriptedModel]
) -> None:
    model = await scripted(
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "touch made && ls | wc"},
                                          "c1"),)),
        ScriptedReply(text="Understood, I will not."))
    models.append(model)
    await agent_on(qtbot, window, model.url, workspace)
    page = window.agent_page
    send(qtbot, page, "make a file")

    # Given a chained command: it can never become a rule, and the card says why
    card = await one_card(page)
    assert card.exact.toPlainText() == "touch made && ls | wc"
    assert not card.always_button.isEnabled()
    assert "asked every time" in card.rule.text()

    # When Deny is clicked: the transcript shows the denial, and nothing ran
    click(qtbot, card.deny_button)
    await eventually(lambda: "Understood, I will not." in transcript(page))
    assert "Denied: denied in the app" in transcript(page)
    assert not (workspace / "made").exists()
    assert '"denied in the app"' in model.requests[1]["messages"][-1]["content"]
    await finish(window)


async def test_a_programs_relay_gets_a_card_too_and_either_side_settles_it(
        qtbot: QtBot, window: MainWindow, workspace: Path, models: list[ScriptedModel]
) -> None:
    model = await scripted(
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "echo from-app"}, "c1"),)),
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "echo from-client"}, "c2"),)),
        ScriptedReply(text="all done"))
    models.append(model)
    server = await agent_on(qtbot, window, model.url, workspace)
    page = window.agent_page
    headers = {"Authorization": f"Bearer {server.token}"}
    async with aiohttp.ClientSession() as http:
        # Given a program's /chat over HTTP, with the server's token
        response = await http.post(f"{server.url}/chat", headers=headers, json={
            "model": "scripted", "messages": [{"role": "user", "content": "go"}]})
        assert response.status == 200
        reader = SseReader(response)
        first = await reader.events_until("relay")
        session_id = first[0][1]["sessionId"]

        # Then the app shows its card, saying it came from a program
        card = await one_card(page)
        assert card.exact.toPlainText() == "echo from-app"
        assert "a program using the agent API" in card.proposed.text()

        # When the app allows it, the client's stream carries the result
        click(qtbot, card.once_button)
        result = (await reader.events_until("tool_result"))[-1][1]
        assert result["output"]["stdout"] == "from-app\n"
        async with http.post(f"{server.url}/chat/relay/{first[-1][1]['id']}",
                             headers=headers, json={"sessionId": session_id,
                                                    "response": {"approved": False}}) as late:
            assert late.status == 404  # Settled by the app: the client is too late.

        # When the client answers the next one itself, the app's card goes away
        second = (await reader.events_until("relay"))[-1][1]
        card = await one_card(page)
        assert card.exact.toPlainText() == "echo from-client"
        async with http.post(f"{server.url}/chat/relay/{second['id']}", headers=headers,
                             json={"sessionId": session_id,
                                   "response": {"approved": True}}) as answered:
            assert answered.status == 200
        await eventually(lambda: page.cards == {})
        result = (await reader.events_until("tool_result"))[-1][1]
        assert result["output"]["stdout"] == "from-client\n"
        response.close()
    assert transcript(page).count("from-") == 0  # A program's chat is its own, not the page's.
    await finish(window)


async def test_stop_kills_the_running_command_and_frees_the_session(
        qtbot: QtBot, window: MainWindow, workspace: Path, models: list[ScriptedModel]
) -> None:
    model = await scripted(
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "echo $$ > pid; exec sleep 60",
                                                   "timeout": 120}, "c1"),)),
        ScriptedReply(text="never reached"))
    models.append(model)
    server = await agent_on(qtbot, window, model.url, workspace)
    page = window.agent_page
    send(qtbot, page, "wait a minute")
    click(qtbot, (await one_card(page)).once_button)

    # Given the command is running
    pid_file = workspace / "pid"
    await eventually(lambda: pid_file.exists() and pid_file.read_text().strip(), within_s=10)
    pid = int(pid_file.read_text())
    assert psutil.Process(pid).name() == "sleep"
    assert server.service.session_count() == 1

    # When Stop is clicked
    click(qtbot, page.stop_button)

    # Then its process is gone, the session freed, and the page can send again
    await eventually(lambda: process_gone(pid), within_s=10)
    await eventually(lambda: window.agent.chat_task is None)
    assert server.service.session_count() == 0
    assert "Stopped." in transcript(page)
    assert page.send_button.isEnabled() and not page.stop_button.isEnabled()
    assert len(model.requests) == 1
    await finish(window)


async def test_a_busy_port_is_said_in_place_and_another_one_works(
        qtbot: QtBot, window: MainWindow, workspace: Path, models: list[ScriptedModel]
) -> None:
    model = await scripted()
    models.append(model)
    page = window.agent_page
    with socket.socket() as taken:
        # Given another program holds the configured port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        window.settings.agent_port = busy
        click(qtbot, window.sidebar.agent_button)
        page.workspace.setText(str(workspace))
        page.workspace.editingFinished.emit()
        page.base_url.setText(model.url)
        page.base_url.editingFinished.emit()

        # When the switch is flipped, the page says so and offers another port
        click(qtbot, page.switch)
        await eventually(lambda: page.error.text() != "")
        assert page.error.text() == PORT_BUSY.format(port=busy)
        assert window.agent.server is None
        assert not page.switch.isChecked() and page.state.text() == OFF_TEXT
        assert page.port_row.isVisible()
        assert page.switch.text() == f"Agent API on 127.0.0.1:{busy}"

        # Then another free port works; it is remembered
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        page.port_spin.setValue(free)
        click(qtbot, page.port_button)
        await eventually(lambda: window.agent.server is not None)
    server = window.agent.server
    assert server is not None and server.port == free
    assert page.switch.isChecked() and page.switch.text() == f"Agent API on 127.0.0.1:{free}"
    assert page.error.text() == "" and not page.port_row.isVisible()
    assert window.settings.agent_port == free and window.settings.agent_enabled
    # The state names the token's file, never the token
    assert str(server.token_file) in page.state.text()
    assert server.token not in page.state.text()

    # And the switch turns it off for real (the port is free again)
    click(qtbot, page.switch)
    await eventually(lambda: window.agent.server is None and page.state.text() == OFF_TEXT)
    assert not window.settings.agent_enabled
    with socket.socket() as again:
        again.bind(("127.0.0.1", free))
    await finish(window)


async def test_models_are_listed_after_auto_and_errors_show_in_place(
        qtbot: QtBot, window: MainWindow, workspace: Path, models: list[ScriptedModel]
) -> None:
    model = await scripted()
    model.models = ("scripted", "other")
    models.append(model)
    page = window.agent_page
    click(qtbot, window.sidebar.agent_button)
    # Off: Refresh and Send say the switch is needed, in place
    click(qtbot, page.refresh_button)
    await eventually(lambda: "Turn on the agent" in page.model_error.text())
    send(qtbot, page, "hello")
    assert "Turn on the agent" in page.error.text()

    await agent_on(qtbot, window, model.url, workspace)
    await eventually(lambda: page.model.count() == 3)
    assert [page.model.itemText(i) for i in range(3)] == ["auto", "scripted", "other"]
    assert page.model.currentText() == "auto"
    page.model.setCurrentText("other")
    assert window.settings.agent_model == "other"

    # A model server that is gone: its error is shown next to the picker
    await model.stop()
    click(qtbot, page.refresh_button)
    await eventually(lambda: page.model_error.text() != "")
    assert page.model_error.text().startswith(f"cannot reach the model server at {model.url}")
    await finish(window)


async def test_quitting_stops_the_chat_and_the_server(
        qtbot: QtBot, window: MainWindow, workspace: Path, models: list[ScriptedModel]
) -> None:
    model = await scripted(
        ScriptedReply(calls=(ScriptedCall("bash", {"command": "echo late"}, "c1"),)))
    models.append(model)
    server = await agent_on(qtbot, window, model.url, workspace)
    page = window.agent_page
    send(qtbot, page, "go")
    await one_card(page)
    port = server.port

    await finish(window)  # Quit: the same shutdown the app runs.

    assert window.agent.server is None and window.agent.chat_task is None
    assert server.service.desk.pending() == [] and server.service.session_count() == 0
    assert page.cards == {}
    with socket.socket() as again:  # The site is closed.
        again.bind(("127.0.0.1", port))
    assert not (workspace / "late").exists()


async def test_a_patch_card_shows_the_exact_diff_and_its_rule(
        qtbot: QtBot, window: MainWindow, workspace: Path, models: list[ScriptedModel]
) -> None:
    diff = "--- a/notes.txt\n+++ b/notes.txt\n@@ -1 +1 @@\n-old\n+new\n"
    model = await scripted(
        ScriptedReply(calls=(ScriptedCall("patch", {"patch": diff}, "p1"),)),
        ScriptedReply(text="left as is"))
    models.append(model)
    (workspace / "notes.txt").write_text("old\n")
    await agent_on(qtbot, window, model.url, workspace)
    page = window.agent_page
    send(qtbot, page, "change the notes")

    card = await one_card(page)
    assert card.exact.toPlainText() == diff
    assert card.exact.font().family() == fixed_font().family()  # Columns line up.
    assert card.accessibleName() == "Approval: change files (patch)"
    assert card.rule.text() == "Always allow = always patch exactly: notes.txt"
    click(qtbot, card.deny_button)
    await eventually(lambda: "left as is" in transcript(page))
    assert (workspace / "notes.txt").read_text() == "old\n"
    await finish(window)


async def test_a_hosted_hub_serves_the_models_and_an_idle_agent_follows_it(
        qtbot: QtBot, window: MainWindow, workspace: Path, models: list[ScriptedModel]
) -> None:
    model = await scripted()
    models.append(model)
    first = await agent_on(qtbot, window, model.url, workspace)
    page = window.agent_page
    assert first.service.config.base_url == model.url and not page.base_url.isReadOnly()

    # When this app hosts a hub, the agent (idle) is restarted on the hub's gateway
    click(qtbot, window.sidebar.host_button)
    await eventually(lambda: window.host.hosted is not None)
    hosted = window.host.hosted
    assert hosted is not None
    hub_url = f"{hosted.server.url}/v1"
    await eventually(lambda: window.agent.server not in (None, first))
    server = window.agent.server
    assert server is not None and server.service.config.base_url == hub_url
    assert page.base_url.text() == hub_url and page.base_url.isReadOnly()
    await eventually(lambda: hub_url in page.state.text())

    # And when it stops hosting, the address from the settings is back
    await eventually(lambda: window.sidebar.host_button.isEnabled())
    click(qtbot, window.sidebar.host_button)
    await eventually(lambda: window.host.hosted is None)
    await eventually(lambda: window.agent.server not in (None, server))
    again = window.agent.server
    assert again is not None and again.service.config.base_url == model.url
    assert page.base_url.text() == model.url and not page.base_url.isReadOnly()
    await finish(window)


async def test_the_switch_is_remembered_and_the_agent_comes_back_on_at_start(
        qtbot: QtBot, window: MainWindow, workspace: Path, models: list[ScriptedModel],
        tmp_path: Path) -> None:
    model = await scripted()
    models.append(model)
    await agent_on(qtbot, window, model.url, workspace)
    await finish(window)  # Quit with the agent on.
    window.settings.sync()

    # Given the settings file of that run: a new window starts the agent by itself
    stored = AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    assert stored.agent_enabled and stored.agent_workspace == str(workspace)
    assert stored.agent_base_url == model.url
    again = MainWindow(window.config, stored)
    try:
        await again.start()
        await eventually(lambda: again.agent.server is not None)
        server = again.agent.server
        assert server is not None
        assert server.service.config.workspace == workspace
        assert server.service.config.base_url == model.url
        assert again.agent_page.switch.isChecked()
        assert again.agent_page.workspace.text() == str(workspace)
    finally:
        await finish(again)
        again.close()
        again.deleteLater()
    assert again.agent.server is None
