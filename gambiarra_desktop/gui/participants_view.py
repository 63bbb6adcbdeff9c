"""The room's Participants tab: who shares what, how busy each is and how many requests
wait, what they served, a live chart of the last minutes, and the activity log."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QSplitter,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from gambiarra_desktop.gui.room_chart import RoomChart
from gambiarra_desktop.gui.room_widgets import framed_card

PARTICIPANT_COLUMNS = ["Nickname", "Model", "Status", "Transport", "Machine", "Served",
                       "Running", "Last tok/s"]
HEADER_PADDING_PX = 28
"""The header's padding and a bold font's extra width around each column's name."""
MACHINE_COLUMN = PARTICIPANT_COLUMNS.index("Machine")
RUNNING_COLUMN = PARTICIPANT_COLUMNS.index("Running")
SERVED_BY_ME_COLUMNS = ["Person", "Requests", "Tokens"]


class ParticipantsTab(QWidget):
    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        splitter = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, len(PARTICIPANT_COLUMNS))
        self.table.setTabKeyNavigation(False)  # Tab leaves; arrows move within.
        self.table.setHorizontalHeaderLabels(PARTICIPANT_COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        # No header is ever cut: below the width they all need, the table scrolls sideways.
        widest = max(header.fontMetrics().horizontalAdvance(c) for c in PARTICIPANT_COLUMNS)
        header.setMinimumSectionSize(widest + HEADER_PADDING_PX)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)  # Full text in tooltips.
        self.table.setWordWrap(False)
        running = self.table.horizontalHeaderItem(RUNNING_COLUMN)
        if running is not None:
            running.setToolTip("Requests this participant is answering right now")
        self.table.setAccessibleName("Participants")
        self.queue_line = QLabel("")
        self.queue_line.setObjectName("hint")
        self.queue_line.setAccessibleName("Requests waiting for a free model")
        self.queue_line.hide()
        self.empty = QLabel("Nobody shares a model in this room yet. Open “Share my model”.")
        self.empty.setObjectName("hint")
        activity_card, activity_layout = framed_card()
        activity_layout.addWidget(QLabel("<b>Activity</b>"))
        self.activity = QListWidget()
        self.activity.setObjectName("activity")
        self.activity.setAccessibleName("Room activity")
        # Long lines wrap instead of hiding behind a sideways scroll bar.
        self.activity.setWordWrap(True)
        self.activity.setResizeMode(QListView.ResizeMode.Adjust)
        self.activity.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        activity_layout.addWidget(self.activity)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.table)
        top_layout.addWidget(self.queue_line)
        top_layout.addWidget(self.empty)
        self.served_panel = QWidget()  # Shown while this machine shares into the room.
        served_layout = QVBoxLayout(self.served_panel)
        served_layout.setContentsMargins(0, 0, 0, 0)
        served_layout.addWidget(QLabel("<b>Served by my machine</b>"))
        self.served = QTableWidget(0, len(SERVED_BY_ME_COLUMNS))
        self.served.setTabKeyNavigation(False)  # Tab leaves; arrows move within.
        self.served.setHorizontalHeaderLabels(SERVED_BY_ME_COLUMNS)
        self.served.setAccessibleName("People served by my machine")
        self.served.verticalHeader().hide()
        self.served.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.served.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.served.setMaximumHeight(150)
        served_layout.addWidget(self.served)
        self.served_hint = QLabel("")
        self.served_hint.setObjectName("hint")
        self.served_hint.setWordWrap(True)
        served_layout.addWidget(self.served_hint)
        self.served_panel.hide()
        top_layout.addWidget(self.served_panel)
        chart_card, chart_layout = framed_card()
        self.chart = RoomChart()
        chart_layout.addWidget(self.chart)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(chart_card)
        bottom.addWidget(activity_card)
        bottom.setSizes([300, 300])
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        splitter.setSizes([300, 200])
        layout.addWidget(splitter)
