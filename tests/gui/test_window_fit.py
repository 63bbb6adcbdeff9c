"""Issue 14, a window that holds: long titles, 800×600, the Connect tab's snippets, "Copied".

Given/When/Then against the real window and a real in-process hub.
"""

from __future__ import annotations

import asyncio

from pyqtgraph import PlotWidget  # type: ignore[import-untyped]
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QAbstractScrollArea, QApplication, QScrollArea, QWidget
from pytestqt.qtbot import QtBot

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.gui.main_window import MainWindow
from tests.gui.conftest import eventually, finish
from tests.gui.test_flows import host_and_create_room

LONG_NAME = ("The quarterly planning session for the distributed inference cluster team "
             "in Porto Alegre 2026")[:96].ljust(96, "x")


def _fits(size: QSize, width: int, height: int) -> bool:
    return size.width() <= width and size.height() <= height


async def test_a_96_character_room_name_does_not_widen_the_window(
        qtbot: QtBot, window: MainWindow) -> None:
    # Given a window of the usual size
    window.resize(1180, 760)
    assert len(LONG_NAME) == 96

    # When I create and open a room with a 96-character name
    await host_and_create_room(qtbot, window, LONG_NAME)
    title = window.room_page.title
    await eventually(lambda: title.text() == LONG_NAME)
    await asyncio.sleep(0.1)

    # Then the window asks for no more than its usual width, and stays that wide
    assert window.minimumSizeHint().width() <= 1180, window.minimumSizeHint()
    assert window.sizeHint().width() <= 1180, window.sizeHint()
    assert window.width() <= 1180
    # And the title is shortened on screen, with the full name in its tooltip
    assert title.minimumSizeHint().width() < 120
    assert title.toolTip() == LONG_NAME
    assert title.accessibleName() == LONG_NAME

    # And back on the hub page, still not wider
    qtbot.mouseClick(window.room_page.leave, Qt.MouseButton.LeftButton)
    await eventually(lambda: window.stack.currentWidget() is window.hub_page)
    await asyncio.sleep(0.1)
    assert window.width() <= 1180
    assert window.minimumSizeHint().width() <= 1180
    window.hub_page.title.setText("h" * 120)
    await asyncio.sleep(0.05)
    assert window.minimumSizeHint().width() <= 1180
    assert window.hub_page.title.toolTip() == "h" * 120
    await finish(window)


async def test_every_page_fits_in_800_by_600(qtbot: QtBot, window: MainWindow) -> None:
    # Given an open room
    await host_and_create_room(qtbot, window, "Small screen")

    # When the window is made 800×600
    window.resize(800, 600)
    await asyncio.sleep(0.1)

    # Then it really is 800×600, and no page asks for more
    assert (window.width(), window.height()) == (800, 600)
    for index in range(window.stack.count()):
        window.stack.setCurrentIndex(index)
        await asyncio.sleep(0.05)
        page = window.stack.widget(index)
        assert _fits(window.minimumSizeHint(), 800, 600), (type(page).__name__,
                                                           window.minimumSizeHint())
        assert (window.width(), window.height()) == (800, 600), type(page).__name__

    # And the room page's tabs fit without scrolling sideways: nothing cut off
    window.stack.setCurrentWidget(window.room_page)
    area = window.stack.parentWidget().parentWidget()
    assert isinstance(area, QScrollArea)
    for index in range(window.room_page.tabs.count()):
        window.room_page.tabs.setCurrentIndex(index)
        await asyncio.sleep(0.05)
        wanted = window.room_page.minimumSizeHint()
        assert wanted.width() <= area.width(), (index, wanted, area.size())
        assert wanted.height() <= area.height(), (index, wanted, area.size())

    # And the sidebar narrows, with all its rows fitting (the port row and address row too)
    sidebar = window.sidebar
    assert sidebar.width() <= 250
    sidebar.port_row.show()
    sidebar.address_row.show()
    await asyncio.sleep(0.05)
    margins = sidebar.layout().contentsMargins()
    room = sidebar.width() - margins.left() - margins.right()
    for row in (sidebar.port_row, sidebar.address_row, sidebar.host_button,
                sidebar.gateway_button, sidebar.usage_button, sidebar.terminal_button,
                sidebar.agent_button):
        assert row.minimumSizeHint().width() <= room, (row, row.minimumSizeHint(), room)
    assert sidebar.terminal_button.text() == "Terminal"
    assert sidebar.terminal_button.accessibleName().startswith("Terminal: ")

    # And it widens back on a wide window
    window.resize(1180, 760)
    await asyncio.sleep(0.05)
    assert sidebar.width() == 300
    assert sidebar.terminal_button.text().startswith("Terminal: ")
    await finish(window)


async def test_snippets_show_every_line_and_copy_says_copied(
        qtbot: QtBot, window: MainWindow) -> None:
    # Given an open room's Connect tab
    await host_and_create_room(qtbot, window, "Snippets")
    connect = window.room_page.connect_tab
    window.room_page.tabs.setCurrentWidget(connect)
    await eventually(lambda: "import" in connect.snippets["Python (openai SDK)"].toPlainText())
    await asyncio.sleep(0.1)

    # Then every snippet box shows all its lines: none scrolls vertically
    for title, box in connect.snippets.items():
        assert box.document().blockCount() >= 1
        assert box.verticalScrollBar().maximum() == 0, title

    # When I click a snippet's Copy
    button = connect.copy_buttons["Python (openai SDK)"]
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)

    # Then it says "Copied ✓" and the snippet is on the clipboard, then says Copy again
    assert button.text() == "Copied ✓"
    assert QApplication.clipboard().text() == \
        connect.snippets["Python (openai SDK)"].toPlainText()
    await eventually(lambda: button.text() == "Copy", within_s=3)

    # And the room code's Copy says it too
    window.room_page.tabs.setCurrentIndex(0)
    code_button = window.room_page.copy_code
    qtbot.mouseClick(code_button, Qt.MouseButton.LeftButton)
    assert code_button.text() == "Copied ✓"
    assert QApplication.clipboard().text() == window.room_page.code.text()
    await eventually(lambda: code_button.text() == "Copy code", within_s=3)
    await finish(window)


async def test_a_room_fits_its_window_without_scrolling_and_no_header_is_cut(
        qtbot: QtBot, window: MainWindow) -> None:
    # Given an open room at the usual size, with the room notice showing
    window.resize(1180, 760)
    await host_and_create_room(qtbot, window, "Fits")
    window.room_page.notice.reconnecting("The hub closed the connection: it may be restarting.")
    await asyncio.sleep(0.1)

    # Then the page fills the window without a vertical scroll bar (the live chart once
    # asked for 500 px more than it needed, and the whole room scrolled)
    area = window.stack.parentWidget().parentWidget()
    assert isinstance(area, QScrollArea)
    page = window.room_page
    assert page.height() <= area.viewport().height(), (page.size(), area.viewport().size())
    assert area.verticalScrollBar().maximum() == 0

    # When the window is made 800×600
    window.resize(800, 600)
    await asyncio.sleep(0.1)

    # Then every column header of the participants table is whole (the table scrolls
    # sideways instead of cutting "Nickname" to "icknam")
    header = window.room_page.participants.table.horizontalHeader()
    for column in range(header.count()):
        name = window.room_page.participants.table.horizontalHeaderItem(column).text()
        needed = header.fontMetrics().horizontalAdvance(name)
        assert header.sectionSize(column) >= needed, (name, header.sectionSize(column), needed)
    await finish(window)


def _page_area(window: MainWindow) -> QScrollArea:
    area = window.stack.parentWidget().parentWidget()
    assert isinstance(area, QScrollArea)
    return area


def _sideways_cut(area: QScrollArea) -> list[str]:
    """What of the page lies right of the visible viewport: a sideways scroll bar (the
    page's, or a scroll area's inside it, as the Connect tab's), or a shown widget whose
    right edge is past the viewport's (clipped). Text boxes and tables inside their own
    scroll areas may scroll sideways (a long snippet line, a wide table)."""
    problems = []
    if area.horizontalScrollBar().maximum() != 0:
        problems.append(f"sideways scroll bar: max {area.horizontalScrollBar().maximum()}")
    viewport = area.viewport()
    right = viewport.width()
    page = area.widget()
    assert page is not None
    for child in page.findChildren(QWidget):
        if not child.isVisibleTo(page) or child.width() <= 0:
            continue
        if isinstance(child, QScrollArea) and child.horizontalScrollBar().maximum() != 0:
            problems.append(f"{child.accessibleName() or type(child).__name__} scrolls sideways")
        edge = child.mapTo(viewport, QPoint(child.width(), 0)).x()
        inner = child.parentWidget()
        while inner is not None and inner is not page:  # Inside its own scroll area: fine.
            if isinstance(inner, QAbstractScrollArea):
                break
            inner = inner.parentWidget()
        if inner is not None and inner is not page:
            continue
        if edge > right + 1:
            problems.append(f"{type(child).__name__} {child.objectName() or child.accessibleName()}"
                            f" ends at {edge} > {right}")
    return problems


async def test_every_room_tab_and_the_agent_page_fit_800_wide_while_sharing(
        qtbot: QtBot, window: MainWindow, upstream: FakeOpenAIServer) -> None:
    from tests.gui.test_flows import share_model

    # Given a room I share a model with (the share banner shows above the page)
    await host_and_create_room(qtbot, window, "Small screen")
    await share_model(qtbot, window, upstream)
    await eventually(lambda: window.share_banner.isVisible())

    # When the window is made 800×600
    window.resize(800, 600)
    await asyncio.sleep(0.1)
    assert (window.width(), window.height()) == (800, 600)
    area = _page_area(window)

    # Then no room tab scrolls sideways, and nothing is cut at the right edge
    for index in range(window.room_page.tabs.count()):
        window.room_page.tabs.setCurrentIndex(index)
        await asyncio.sleep(0.1)
        assert _sideways_cut(area) == [], window.room_page.tabs.tabText(index)

    # And the Agent page neither
    window.show_agent()
    await asyncio.sleep(0.1)
    assert window.stack.currentWidget() is window.agent_page
    assert _sideways_cut(area) == [], "Agent"
    # And its prompt is in sight without scrolling down (the transcript and the rules list
    # asked for ~190 px each, and the page was ~95 px taller than the window)
    assert area.verticalScrollBar().maximum() == 0, window.agent_page.size()
    await finish(window)


def _tick_labels(plot: PlotWidget, side: str) -> list[tuple[QRect, str]]:
    """The tick labels the axis draws (pyqtgraph's own draw specs), in the plot widget's
    pixels: what is on screen, not what the tick maths would like."""
    axis = plot.getAxis(side)
    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        if axis.style["tickFont"]:
            painter.setFont(axis.style["tickFont"])
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    assert specs is not None
    return [(plot.mapFromScene(axis.mapRectToScene(rect)).boundingRect(), text)
            for rect, _flags, text in specs[2]]


async def test_the_room_chart_labels_fit_at_800_by_600(
        qtbot: QtBot, window: MainWindow) -> None:
    # Given a room's chart in an 800×600 window, with an answer in it
    await host_and_create_room(qtbot, window, "Chart")
    window.resize(800, 600)
    chart = window.room_page.participants.chart
    await eventually(lambda: chart.isVisible())
    chart.add("someone", 7.1)
    await asyncio.sleep(0.3)

    # Then the time axis shows a few labels, apart from each other ("-200100" once)
    labels = sorted(_tick_labels(chart.rate_plot, "bottom"), key=lambda item: item[0].left())
    assert 2 <= len(labels) <= 4, [text for _rect, text in labels]
    for (left, left_text), (right, right_text) in zip(labels, labels[1:], strict=False):
        assert right.left() - left.right() >= 8, (left_text, right_text, left, right)

    # And every label of both plots lies whole inside its plot (the top one was cut in half)
    for plot in (chart.rate_plot, chart.count_plot):
        for side in ("left", "bottom"):
            drawn = _tick_labels(plot, side)
            if side == "left" or plot is chart.rate_plot:  # A long nickname may not show.
                assert len(drawn) >= 2, (plot.accessibleName(), side, drawn)
            for rect, text in drawn:
                assert plot.rect().contains(rect), (plot.accessibleName(), side, text, rect,
                                                    plot.rect())
    await finish(window)


async def test_long_server_and_model_names_do_not_widen_the_share_tab(
        qtbot: QtBot, window: MainWindow) -> None:
    # Given a room at 800×600, whose detected model server and model have long names (a
    # CI machine found one), known before the Share tab is first shown
    await host_and_create_room(qtbot, window, "Long names")
    window.resize(800, 600)
    share = window.room_page.share
    share.server_combo.insertItem(0, "Fake OpenAI-compatible server — http://127.0.0.1:45123")
    share.model_combo.addItem("hf.co/bartowski/Meta-Llama-3.1-8B-Instruct-GGUF:Q4_K_M")
    share.model_combo.setCurrentIndex(share.model_combo.count() - 1)

    # When I open the Share tab
    window.room_page.tabs.setCurrentWidget(share)
    await asyncio.sleep(0.1)

    # Then the tab still fits: no sideways scroll bar, nothing cut; the name is a tooltip
    assert _sideways_cut(_page_area(window)) == []
    assert share.model_combo.toolTip() == "hf.co/bartowski/Meta-Llama-3.1-8B-Instruct-GGUF:Q4_K_M"
    await finish(window)
