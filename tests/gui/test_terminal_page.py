"""The Terminal page and the approval dialog (issue 12): real widgets clicked against the
terminal manager of the hub this window hosts, with real shells; every outcome checked on
the manager too, not only on screen."""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtWidgets import QApplication, QCheckBox, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from gambiarra_desktop.gui.approval_dialog import ApprovalDialog
from gambiarra_desktop.gui.main_window import MainWindow
from gambiarra_desktop.gui.settings import AppSettings
from gambiarra_desktop.gui.terminal_controller import MAX_OUTPUT_CHARS, printable
from gambiarra_desktop.gui.terminal_view import DISABLED_TEXT, NOT_HOSTING_TEXT
from gambiarra_desktop.terminal.approvals import ApprovalDesk, ApprovalRequest
from gambiarra_desktop.terminal.errors import ApprovalDeniedError
from gambiarra_desktop.terminal.manager import TERMINAL, TerminalManager
from tests.gui.conftest import eventually, finish

LEFT = Qt.MouseButton.LeftButton


def click(qtbot: QtBot, widget: QWidget) -> None:
    assert widget.isEnabled(), f"{widget.objectName() or widget} is disabled"
    # A check box takes clicks on its box and words only, not across the whole row.
    where = QPoint(8, widget.height() // 2) if isinstance(widget, QCheckBox) else QPoint()
    qtbot.mouseClick(widget, LEFT, pos=where if not where.isNull() else widget.rect().center())


async def host(qtbot: QtBot, window: MainWindow) -> TerminalManager:
    click(qtbot, window.sidebar.host_button)
    await eventually(lambda: window.host.hosted is not None)
    await eventually(lambda: window.stack.currentWidget() is window.hub_page)  # Its rooms.
    hosted = window.host.hosted
    assert hosted is not None
    return hosted.server.app[TERMINAL]


async def open_terminal_page(qtbot: QtBot, window: MainWindow, *, enable: bool = True
                             ) -> TerminalManager:
    """Host, show the page, tick "Allow terminal sessions" like the host would."""
    manager = await host(qtbot, window)
    click(qtbot, window.sidebar.terminal_button)
    page = window.terminal_page
    assert window.stack.currentWidget() is page
    if enable:
        click(qtbot, page.enable_box)
        await eventually(lambda: manager.enabled and page.content.isVisible())
    return manager


def desk_of(manager: TerminalManager) -> ApprovalDesk:
    assert manager.approvals is not None, "a hub the app hosts must ask its host"
    return manager.approvals


def dialogs() -> list[ApprovalDialog]:
    return [w for w in QApplication.topLevelWidgets()
            if isinstance(w, ApprovalDialog) and w.isVisible()]


def pane_lines(window: MainWindow) -> list[str]:
    return window.terminal_page.output.toPlainText().splitlines()


async def test_off_until_the_host_turns_it_on_and_the_setting_is_kept(
        qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    # Given a window that is not hosting: the page says a hub is needed
    click(qtbot, window.sidebar.terminal_button)
    page = window.terminal_page
    assert page.state.isVisible() and page.state.text() == NOT_HOSTING_TEXT
    assert not page.content.isVisible()
    assert not page.enable_box.isChecked() and not page.skip_local_box.isChecked()

    # When it hosts, the hub's terminal is off and the page links to the setting
    manager = await host(qtbot, window)
    click(qtbot, window.sidebar.terminal_button)
    assert manager.enabled is False
    await eventually(lambda: page.state.text() == DISABLED_TEXT)
    assert page.state.isVisible() and not page.content.isVisible()
    page.state.linkActivated.emit("#enable")
    assert page.enable_box.hasFocus()

    # Then ticking both boxes changes the running hub at once, and the settings file
    click(qtbot, page.enable_box)
    click(qtbot, page.skip_local_box)
    await eventually(lambda: manager.enabled and page.content.isVisible())
    assert manager.ask_for_local is False
    assert window.settings.terminal_enabled and window.settings.terminal_skip_local_approval
    window.settings.sync()
    stored = AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    assert stored.terminal_enabled and stored.terminal_skip_local_approval

    # And a hub hosted again starts with the terminal on (HubConfig.enable_terminal)
    click(qtbot, window.sidebar.host_button)
    await eventually(lambda: window.host.hosted is None
                     and window.sidebar.host_button.isEnabled())
    manager = await host(qtbot, window)
    assert manager.enabled and manager.ask_for_local is False
    assert window.host.hosted is not None
    assert window.host.hosted.server.app[TERMINAL] is manager
    await finish(window)


async def test_a_session_is_listed_shows_live_output_takes_input_and_ends(
        qtbot: QtBot, window: MainWindow) -> None:
    manager = await open_terminal_page(qtbot, window)
    page = window.terminal_page

    # Given a session opened through the manager (as the HTTP route does)
    info = await manager.create({"type": "local"}, "test", approved=True)
    await eventually(lambda: page.table.rowCount() == 1)
    assert [page.table.item(0, c).text() for c in (0, 1, 2, 4)] == [
        info.id, "local", "local", "yes"]

    # When the host picks it, types a line and clicks Send
    page.table.selectRow(0)
    assert page.selected_session() == info.id
    qtbot.keyClicks(page.input, "echo $((40 + 2)) hi")
    click(qtbot, page.send_button)

    # Then the shell ran it: its answer is a line of its own in the pane (not the echo)
    await eventually(lambda: "42 hi" in pane_lines(window))
    assert page.input.text() == ""
    assert page.error.text() == ""

    # And End asks first; Cancel keeps the session
    click(qtbot, page.end_button)
    box = page.confirm_box
    assert box is not None and box.isVisible()
    box.button(QMessageBox.StandardButton.Cancel).click()
    await eventually(lambda: page.confirm_box is None)
    assert [s.id for s in manager.sessions()] == [info.id]

    # End session ends it on the hub, and the row goes
    click(qtbot, page.end_button)
    box = page.confirm_box
    assert box is not None
    next(b for b in box.buttons() if b.text() == "End session").click()
    await eventually(lambda: manager.sessions() == [] and page.table.rowCount() == 0)
    assert not page.send_button.isEnabled() and not page.end_button.isEnabled()
    await finish(window)


async def test_new_local_session_button_opens_a_selected_shell_without_a_dialog(
        qtbot: QtBot, window: MainWindow) -> None:
    manager = await open_terminal_page(qtbot, window)
    page = window.terminal_page
    assert manager.ask_for_local  # The host clicking the button is the approval itself.

    click(qtbot, page.new_button)
    await eventually(lambda: len(manager.sessions()) == 1 and page.table.rowCount() == 1)
    (info,) = manager.sessions()
    assert info.type == "local" and info.connected
    assert page.selected_session() == info.id
    assert dialogs() == []

    page.input.setText("echo ready-$((6 * 7))")
    page.input.returnPressed.emit()  # Enter sends too.
    await eventually(lambda: "ready-42" in pane_lines(window))

    # Turning terminal sessions off ends the open ones, not only new ones
    click(qtbot, page.enable_box)
    await eventually(lambda: manager.sessions() == [] and not manager.enabled)
    await eventually(lambda: page.state.isVisible() and page.state.text() == DISABLED_TEXT)
    await finish(window)


async def test_errors_show_in_the_page(qtbot: QtBot, window: MainWindow) -> None:
    manager = await open_terminal_page(qtbot, window)
    page = window.terminal_page
    manager.enabled = False  # Behind the page's back (say, the hub's own switch).
    click(qtbot, page.new_button)
    await eventually(lambda: page.error.text() != "")
    assert page.error.text().startswith(
        "Could not open a local session: Terminal sessions are disabled on this hub")
    assert manager.sessions() == []
    assert page.new_button.isEnabled()
    await finish(window)


async def ask_from_a_program(manager: TerminalManager, kind: str = "ssh",
                             target: str = "admin@10.0.0.5:22") -> asyncio.Task[bool]:
    desk = desk_of(manager)
    request = ApprovalRequest(desk.new_id(), kind, target, "127.0.0.1")  # type: ignore[arg-type]
    return asyncio.get_running_loop().create_task(desk.ask(request))


async def test_approval_dialog_allow_and_deny(qtbot: QtBot, window: MainWindow) -> None:
    manager = await open_terminal_page(qtbot, window)

    # Given a program asking for an SSH session: the dialog says what and to where
    asked = await ask_from_a_program(manager)
    await eventually(lambda: len(dialogs()) == 1)
    (dialog,) = dialogs()
    assert not dialog.isModal()
    assert dialog.message.text() == (
        "A program on this computer wants to open an SSH session to admin@10.0.0.5:22.")
    assert window.host.hosted is not None and window.host.hosted.server.port  # Still serving.

    # When the host clicks Allow, ask() says yes and the dialog goes
    click(qtbot, dialog.allow_button)
    assert await asyncio.wait_for(asked, 5) is True
    await eventually(lambda: dialogs() == [])

    # Deny says no
    asked = await ask_from_a_program(manager, "telnet", "10.0.0.9:23")
    await eventually(lambda: len(dialogs()) == 1)
    (dialog,) = dialogs()
    assert "Telnet session to 10.0.0.9:23" in dialog.message.text()
    click(qtbot, dialog.deny_button)
    assert await asyncio.wait_for(asked, 5) is False
    await eventually(lambda: dialogs() == [])

    # Esc says no too: deny is the default
    asked = await ask_from_a_program(manager)
    await eventually(lambda: len(dialogs()) == 1)
    qtbot.keyClick(dialogs()[0], Qt.Key.Key_Escape)
    assert await asyncio.wait_for(asked, 5) is False

    # And closing the window says no
    asked = await ask_from_a_program(manager)
    await eventually(lambda: len(dialogs()) == 1)
    dialogs()[0].close()
    assert await asyncio.wait_for(asked, 5) is False
    await eventually(lambda: dialogs() == [])
    assert desk_of(manager).pending() == []
    await finish(window)


async def test_unanswered_request_times_out_as_no_and_its_dialog_closes(
        qtbot: QtBot, window: MainWindow) -> None:
    manager = await open_terminal_page(qtbot, window)
    desk_of(manager).timeout_s = 0.5
    asked = await ask_from_a_program(manager)
    await eventually(lambda: len(dialogs()) == 1)
    assert await asyncio.wait_for(asked, 5) is False
    await eventually(lambda: dialogs() == [] and window.terminal.dialogs == {})
    await finish(window)


async def test_a_local_session_from_a_program_waits_for_the_host(
        qtbot: QtBot, window: MainWindow) -> None:
    manager = await open_terminal_page(qtbot, window)
    page = window.terminal_page
    loop = asyncio.get_running_loop()

    # Given a program asking the hub for a shell (as POST /v1/terminal/sessions does)
    creating = loop.create_task(manager.create({"type": "local"}, "admin", peer="127.0.0.1"))
    await eventually(lambda: len(dialogs()) == 1)
    assert "a local terminal" in dialogs()[0].message.text()
    assert manager.sessions() == []  # Nothing runs before the host says yes.
    click(qtbot, dialogs()[0].deny_button)
    try:
        await asyncio.wait_for(creating, 5)
    except ApprovalDeniedError:
        pass
    else:
        raise AssertionError("a denied session opened")
    assert manager.sessions() == []

    # When the host ticks "Don't ask before local sessions", the next one opens unasked
    click(qtbot, page.skip_local_box)
    info = await asyncio.wait_for(
        manager.create({"type": "local"}, "admin", peer="127.0.0.1"), 10)
    assert dialogs() == []
    await eventually(lambda: page.table.rowCount() == 1)
    assert page.table.item(0, 0).text() == info.id

    # But SSH is always asked about
    asked = await ask_from_a_program(manager)
    await eventually(lambda: len(dialogs()) == 1)
    click(qtbot, dialogs()[0].deny_button)
    assert await asyncio.wait_for(asked, 5) is False
    await finish(window)


async def test_output_is_bounded_and_stripped_of_escape_codes(
        qtbot: QtBot, window: MainWindow) -> None:
    manager = await open_terminal_page(qtbot, window)
    page = window.terminal_page
    info = await manager.create({"type": "local"}, "test", approved=True)
    await eventually(lambda: page.table.rowCount() == 1)
    page.table.selectRow(0)
    controller = window.terminal
    line = "x" * 999 + "\n"
    for _ in range(3 * MAX_OUTPUT_CHARS // len(line)):  # 600 kB through the bridge
        window.bridge.on_terminal_output(info.id, line)
    window.bridge.on_terminal_output(info.id, "\x1b[31mred\x1b[0m\r\nend\n")
    await eventually(lambda: pane_lines(window)[-1:] == ["end"])
    assert len(controller.outputs[info.id]) <= MAX_OUTPUT_CHARS
    assert page.output_chars() <= MAX_OUTPUT_CHARS * 5 // 4 + 1
    assert pane_lines(window)[-2] == "red"
    assert printable("a\x1b]0;title\x07b\x08c\r\n") == "abc\n"
    await finish(window)


def test_approval_dialog_shows_the_target_as_plain_text(qtbot: QtBot) -> None:
    """The target is the caller's text (an SSH user name may hold ``<``/``>``): a QLabel
    left on AutoText renders it as HTML, so a caller could hide the real target or add its
    own bold "this is safe" lines to the host's Allow/Deny question."""
    from PySide6.QtGui import Qt as QtGui

    target = '<h1>Gambiarra update</h1><span style="font-size:1px">root</span>@10.0.0.5:22'
    dialog = ApprovalDialog(ApprovalRequest("r1", "ssh", target, "127.0.0.1"))
    qtbot.addWidget(dialog)
    assert QtGui.mightBeRichText(dialog.message.text())  # Would be HTML on AutoText.
    assert dialog.message.textFormat() == Qt.TextFormat.PlainText
    assert target in dialog.message.text()


async def test_an_unknown_ssh_host_key_is_trusted_from_the_page_after_asking(
        qtbot: QtBot, window: MainWindow) -> None:
    """Issue 12: a program's SSH request refused for an unknown host key leaves the key
    waiting; the page lists it, asks before trusting (Cancel by default), and once trusted
    the same request logs in. Against a real SSH server on 127.0.0.1."""
    from gambiarra_desktop.terminal.errors import HostKeyUnknownError
    from tests.ssh_server import PASSWORD, USER, start_ssh_server

    manager = await open_terminal_page(qtbot, window)
    page = window.terminal_page
    assert not page.keys_card.isVisible()  # Nothing waits: no box.
    server = await start_ssh_server()
    try:
        body = {"type": "ssh", "host": "127.0.0.1", "port": server.port, "username": USER,
                "password": PASSWORD}

        # Given a request refused for the server's unknown key
        try:
            await manager.create(dict(body), "admin", approved=True)
        except HostKeyUnknownError as refused:
            assert refused.fingerprint == server.fingerprint
        else:
            raise AssertionError("an unknown host key was accepted unasked")
        assert server.auth.passwords_tried == 0

        # Then the page shows it, as plain text, with a Trust… button
        await eventually(lambda: page.keys_card.isVisible())
        assert [label.text() for label in page.key_labels] == [
            f"127.0.0.1:{server.port}  {server.fingerprint}"]
        assert page.key_labels[0].textFormat() == Qt.TextFormat.PlainText

        # When the host clicks Trust…, a question names the key; Cancel (the default) keeps it
        click(qtbot, page.trust_buttons[0])
        box = page.trust_box
        assert box is not None and box.isVisible()
        assert box.text() == f"Trust the key {server.fingerprint} for 127.0.0.1:{server.port}?"
        assert "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub" in box.informativeText()
        assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Cancel).click()
        await eventually(lambda: page.trust_box is None)
        await asyncio.sleep(0.2)  # A trust started by mistake would have run by now.
        assert [k.fingerprint for k in manager.unknown_host_keys()] == [server.fingerprint]
        assert page.keys_card.isVisible()

        # And Yes trusts it: the box goes, and the program's same request logs in
        click(qtbot, page.trust_buttons[0])
        box = page.trust_box
        assert box is not None
        box.button(QMessageBox.StandardButton.Yes).click()
        await eventually(lambda: manager.unknown_host_keys() == []
                         and not page.keys_card.isVisible())
        assert page.error.text() == ""
        info = await asyncio.wait_for(manager.create(dict(body), "admin", approved=True), 15)
        assert info.type == "ssh" and info.connected
        await manager.close(info.id, "test")
    finally:
        await server.stop()
    rows = await manager.audit.rows()
    trust = next(row for row in rows if row["action"] == "trust")
    assert trust["actor"] == "desktop app" and trust["outcome"] == server.fingerprint
    await finish(window)


async def test_trusting_a_key_no_longer_waiting_says_so_in_the_page(
        qtbot: QtBot, window: MainWindow) -> None:
    """The key can stop waiting while the question is open (trusted another way, or pushed
    out by newer ones): the answer is the core's words in the error label, not a crash."""
    import pytest

    from gambiarra_desktop.terminal.errors import HostKeyUnknownError
    from tests.ssh_server import PASSWORD, USER, start_ssh_server

    manager = await open_terminal_page(qtbot, window)
    page = window.terminal_page
    server = await start_ssh_server()
    try:
        body = {"type": "ssh", "host": "127.0.0.1", "port": server.port, "username": USER,
                "password": PASSWORD}
        with pytest.raises(HostKeyUnknownError):
            await manager.create(body, "admin", approved=True)
        await eventually(lambda: page.keys_card.isVisible())
        click(qtbot, page.trust_buttons[0])
        box = page.trust_box
        assert box is not None
        await manager.trust_host_key(server.fingerprint, "elsewhere")  # Meanwhile.
        await eventually(lambda: not page.keys_card.isVisible())
        box.button(QMessageBox.StandardButton.Yes).click()
        await eventually(lambda: page.error.text() != "")
        assert page.error.text() == (
            "Could not trust the SSH host key: Invalid terminal request"
            f" (no waiting SSH host key {server.fingerprint})")
    finally:
        await server.stop()
    await finish(window)
