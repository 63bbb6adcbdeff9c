"""Issue 14, slice E: queueing is visible (Running column, "N waiting" line, the
playground's place in line), the playground keeps a conversation and says who answered and
how fast, a live chart of the room, and the machine column's full text in a tooltip.

A real window hosting a real hub, real fake model servers, participants that join through
the hub's API (direct, so a test can give one ``maxConcurrent: 1``)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.gui.main_window import MainWindow
from gambiarra_desktop.gui.participants_view import MACHINE_COLUMN, RUNNING_COLUMN
from tests.gui.conftest import eventually, finish
from tests.gui.test_flows import TOKENS, ask_the_room, host_and_create_room, share_model

LONG_SPECS = {"gpu": "NVIDIA GeForce RTX 4090 Laptop GPU (engineering sample)", "vram": 16,
              "ram": 64, "cpu": "AMD Ryzen 9 7945HX with Radeon Graphics"}


async def join(http: aiohttp.ClientSession, window: MainWindow, pid: str, nickname: str,
               upstream: FakeOpenAIServer, **extra: Any) -> None:
    session = window.room.session
    assert session is not None
    payload = {"id": pid, "nickname": nickname, "model": "llama3.2:3b",
               "endpoint": upstream.url, **extra}
    async with http.post(f"{session.hub_url}/rooms/{session.code}/join",
                         json=payload) as response:
        assert response.status in (200, 201), await response.text()


async def chat(http: aiohttp.ClientSession, window: MainWindow, model: str) -> int:
    session = window.room.session
    assert session is not None
    async with http.post(f"{session.openai_base_url}/chat/completions",
                         json={"model": model, "messages": [{"role": "user",
                                                             "content": "hi"}]}) as response:
        await response.read()
        return response.status


async def one_slot_room(qtbot: QtBot, window: MainWindow, http: aiohttp.ClientSession,
                        upstream: FakeOpenAIServer) -> None:
    """A room whose one participant takes one request at a time."""
    await host_and_create_room(qtbot, window, "Queue room")
    await join(http, window, "solo", "Solo", upstream, config={"maxConcurrent": 1})
    table = window.room_page.participants.table
    await eventually(lambda: table.rowCount() == 1)


async def occupy_the_only_slot(window: MainWindow, http: aiohttp.ClientSession,
                               upstream: FakeOpenAIServer) -> asyncio.Future[int]:
    """Keep the one slot busy with a slow request (from someone else)."""
    upstream.behaviour.first_token_delay_s = 2.0
    blocker = asyncio.ensure_future(chat(http, window, "*"))
    await eventually(lambda: upstream.in_flight == 1)
    return blocker


async def test_queue_position_in_playground_and_counts_in_table(
    qtbot: QtBot, window: MainWindow, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    # Given the room's only slot is busy
    await one_slot_room(qtbot, window, http, upstream)
    blocker = await occupy_the_only_slot(window, http, upstream)
    participants = window.room_page.participants
    # Then the table shows the participant running one request, and nobody waiting
    await eventually(lambda: participants.table.item(0, RUNNING_COLUMN).text() == "1")
    assert participants.queue_line.isHidden()

    # When I send from the playground
    playground = window.room_page.playground
    window.room_page.tabs.setCurrentWidget(playground)
    qtbot.mouseClick(playground.refresh_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: playground.model_combo.count() >= 2)
    playground.prompt.setPlainText("Is anyone free?")
    qtbot.mouseClick(playground.send_button, Qt.MouseButton.LeftButton)

    # Then it says it waits for a free model, with its place; the table counts the waiter
    await eventually(lambda: playground.waiting.isVisible())
    assert playground.waiting.text() == "Waiting for a free model (position 1)…"
    assert not playground.send_button.isEnabled()
    await eventually(lambda: participants.queue_line.text()
                     == "1 request waiting for a free model")
    assert not participants.queue_line.isHidden()

    # And when the slot frees, the reply comes and the waiting line goes
    upstream.behaviour.first_token_delay_s = 0.0
    assert await blocker == 200
    await eventually(lambda: playground.output.toPlainText() == TOKENS)
    await eventually(lambda: playground.send_button.isEnabled())  # The reply is done.
    assert not playground.waiting.isVisible()
    await eventually(lambda: participants.queue_line.isHidden())
    await eventually(lambda: participants.table.item(0, RUNNING_COLUMN).text() == "0")
    assert "waited" in playground.reply_numbers.text()
    await finish(window)


async def test_playground_keeps_the_conversation_and_says_who_and_how_fast(
    qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer
) -> None:
    # Given a room I share my model into
    await host_and_create_room(qtbot, window, "Chat room")
    await share_model(qtbot, window, upstream)
    playground = window.room_page.playground
    upstream.behaviour.token_delay_s = 0.01

    # When I ask twice
    await ask_the_room(qtbot, window, "First question")
    await eventually(lambda: playground.send_button.isEnabled())
    numbers = playground.reply_numbers.text()
    assert numbers.startswith("First token after "), numbers
    assert " tokens/s · 16 tokens" in numbers
    rate = float(numbers.split(" · ")[1].split()[0])
    assert rate > 0
    assert playground.answered_by.text().startswith("Answered by ")
    assert "(llama3.2:3b)" in playground.answered_by.text()
    await ask_the_room(qtbot, window, "Second question")

    # Then the second request carries both earlier turns, and the transcript shows them
    assert upstream.requests[-1]["messages"] == [
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": TOKENS},
        {"role": "user", "content": "Second question"},
    ]
    transcript = playground.transcript.toPlainText()
    assert transcript.index("First question") < transcript.index("tok15") < transcript.index(
        "Second question")
    assert "tokens/s" in transcript  # Each earlier reply keeps its numbers.

    # And New chat starts over: the next request carries one turn
    await eventually(lambda: playground.send_button.isEnabled())
    qtbot.mouseClick(playground.new_chat_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: playground.transcript.isHidden())
    assert playground.output.toPlainText() == "" and playground.reply_numbers.text() == ""
    await ask_the_room(qtbot, window, "Fresh start")
    assert upstream.requests[-1]["messages"] == [{"role": "user", "content": "Fresh start"}]
    await finish(window)


async def test_send_is_disabled_while_a_reply_streams(
    qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer
) -> None:
    await host_and_create_room(qtbot, window, "Slow room")
    await share_model(qtbot, window, upstream)
    upstream.behaviour.token_delay_s = 0.1
    playground = window.room_page.playground
    window.room_page.tabs.setCurrentWidget(playground)
    playground.prompt.setPlainText("Take your time")
    qtbot.mouseClick(playground.send_button, Qt.MouseButton.LeftButton)
    await eventually(lambda: playground.output.toPlainText().startswith("tok0"))
    assert not playground.send_button.isEnabled()
    playground.prompt.setPlainText("Again")
    qtbot.mouseClick(playground.send_button, Qt.MouseButton.LeftButton)  # Ignored.
    await eventually(lambda: playground.output.toPlainText() == TOKENS)
    assert [m["content"] for m in upstream.requests[-1]["messages"]] == ["Take your time"]
    await finish(window)


async def test_live_chart_counts_requests_per_participant(
    qtbot: QtBot, window: MainWindow, http: aiohttp.ClientSession
) -> None:
    # Given two participants, each on its own model server
    await host_and_create_room(qtbot, window, "Chart room")
    async with FakeOpenAIServer(("llama3.2:3b",)) as first, \
            FakeOpenAIServer(("llama3.2:3b",)) as second:
        await join(http, window, "ann-1", "Ann", first)
        await join(http, window, "bob-2", "Bob", second)
        await eventually(lambda: window.room_page.participants.table.rowCount() == 2)
        # When each answers one request (the second one twice)
        assert [await chat(http, window, pid) for pid in ("ann-1", "bob-2", "bob-2")] == [
            200, 200, 200]
        chart = window.room_page.participants.chart
        # Then the chart holds both participants with the right counts
        await eventually(lambda: sum(chart.history.requests().values()) == 3)
        assert chart.history.requests() == {"ann-1": 1, "bob-2": 2}
        assert chart.bar_heights() == {"Ann": 1.0, "Bob": 2.0}
        assert set(chart.history.rates(0.0)) == {"ann-1", "bob-2"}
        assert chart.summary.text() == "3 answers from 2 participants"
    await finish(window)


async def test_chart_history_is_bounded_by_age_and_count() -> None:
    from gambiarra_desktop.gui.room_chart import RoomHistory

    history = RoomHistory(window_s=60, max_points=3)
    for at in (0.0, 10.0, 50.0, 70.0):
        history.add("p", 1.0, at=at)
    assert [a.at for a in history.answers] == [10.0, 50.0, 70.0]
    history.prune(now=100.0)
    assert [a.at for a in history.answers] == [50.0, 70.0]


async def test_machine_column_has_the_full_specs_in_a_tooltip(
    qtbot: QtBot, window: MainWindow, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    await host_and_create_room(qtbot, window, "Specs room")
    await join(http, window, "big-1", "Big", upstream, specs=LONG_SPECS)
    table = window.room_page.participants.table
    await eventually(lambda: table.rowCount() == 1)
    item = table.item(0, MACHINE_COLUMN)
    tooltip = item.toolTip()
    for value in LONG_SPECS.values():
        assert str(value) in tooltip
    assert "AMD Ryzen 9" not in item.text()  # The cell keeps its summary…
    assert table.textElideMode() == Qt.TextElideMode.ElideRight  # …elided, not cut.
    assert table.item(0, 0).toolTip() == "Big"
    await finish(window)


async def test_online_status_is_readable_on_the_table(
    qtbot: QtBot, window: MainWindow, http: aiohttp.ClientSession, upstream: FakeOpenAIServer
) -> None:
    """The "online" green was #1fa463 on white, 3.2:1; the theme's token meets AA."""
    from gambiarra_desktop.gui.contrast import ratio
    from gambiarra_desktop.gui.theme import token

    await host_and_create_room(qtbot, window, "Green room")
    await join(http, window, "g-1", "Gus", upstream)
    table = window.room_page.participants.table
    await eventually(lambda: table.rowCount() == 1)
    status = table.item(0, 2)
    assert status.text() == "● online"
    colour = status.foreground().color().name()
    assert colour == token("online")
    assert ratio(colour, token("input")) >= 4.5
    await finish(window)
