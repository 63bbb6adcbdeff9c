"""A live chart of the room: tokens per second of each answer over the last minutes (lines,
one per participant) and requests per participant in that window (bars), fed by the room's
``llm:complete`` events. pyqtgraph, as the Usage page (see gui/usage_charts.py).

The history is bounded twice, by age (``window_s``) and by count (``max_points``), so an
all-day room with a busy queue keeps a constant, small footprint.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import pyqtgraph as pg  # type: ignore[import-untyped]
from PySide6.QtCore import QSize, QTimer
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

WINDOW_S = 300.0
MAX_POINTS = 2000
REDRAW_MS = 10_000
"""While shown, the chart slides on by itself so old answers leave it."""
MINUTE_PX = 24
"""The least room per minute for a label every minute; less, and a label every other
minute (pyqtgraph's own choice at 800 px drew a label every ten seconds, all run together:
"-200100")."""
LABEL_OVERHANG_PX = 8
"""How far a time label may stand past the plot's ends, so "5" and "0" show at its edges."""
LABEL_ROOM_PX = (4, 10, 10, 2)
"""Around each plot (left, top, right, bottom): a tick label is centred on its tick, so the
top one stood half above the plot and was cut, and the last time label at the right."""
Y_HEADROOM = 1.15
"""The value axes go from 0 to a little above the highest value."""
COLORS = ("#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#ec4899", "#14b8a6")


@dataclass(frozen=True, slots=True)
class Answer:
    at: float
    participant: str
    tokens_per_second: float


class RoomHistory:
    """The answers of the last ``window_s`` seconds (no Qt, so tests read it directly)."""

    def __init__(self, window_s: float = WINDOW_S, max_points: int = MAX_POINTS) -> None:
        self.window_s = window_s
        self.answers: deque[Answer] = deque(maxlen=max_points)

    def add(self, participant: str, tokens_per_second: float, at: float | None = None) -> None:
        self.answers.append(Answer(time.monotonic() if at is None else at, participant,
                                   max(0.0, tokens_per_second)))

    def prune(self, now: float | None = None) -> None:
        cutoff = (time.monotonic() if now is None else now) - self.window_s
        while self.answers and self.answers[0].at < cutoff:
            self.answers.popleft()

    def clear(self) -> None:
        self.answers.clear()

    def requests(self) -> dict[str, int]:
        """Requests answered per participant, in order of first answer."""
        counts: dict[str, int] = {}
        for answer in self.answers:
            counts[answer.participant] = counts.get(answer.participant, 0) + 1
        return counts

    def rates(self, now: float) -> dict[str, tuple[list[float], list[float]]]:
        """Per participant: (seconds before ``now``, negative; tokens/s) of each answer."""
        series: dict[str, tuple[list[float], list[float]]] = {}
        for answer in self.answers:
            xs, ys = series.setdefault(answer.participant, ([], []))
            xs.append(answer.at - now)
            ys.append(answer.tokens_per_second)
        return series


class MinutesAgoAxis(pg.AxisItem):  # type: ignore[misc]  # pyqtgraph has no types.
    """The time axis: whole minutes ago (the x values are seconds, negative), a label every
    minute or every other minute, whichever the axis's width leaves room for."""

    def __init__(self, orientation: str) -> None:
        super().__init__(orientation)
        self.setStyle(hideOverlappingLabels=LABEL_OVERHANG_PX)

    def tickValues(self, minVal: float, maxVal: float,  # noqa: N802, N803 - pyqtgraph API.
                   size: float) -> list[tuple[float, list[float]]]:
        span = maxVal - minVal
        if span <= 0 or size <= 0:
            return []
        step = 60.0 if size * 60.0 / span >= MINUTE_PX else 120.0
        first = -step * int(-minVal // step)  # The tick nearest the left end, inside it.
        count = int(round((maxVal - first) // step)) + 1
        return [(step, [first + index * step for index in range(max(0, count))
                        if first + index * step <= maxVal])]

    def tickStrings(self, values: list[float], scale: float,  # noqa: N802 - pyqtgraph API.
                    spacing: float) -> list[str]:
        return [f"{abs(value) / 60:g}" for value in values]


class RoomChart(QWidget):
    """Two small plots side by side; ``names`` maps participant ids to nicknames."""

    def __init__(self) -> None:
        super().__init__()
        self.history = RoomHistory()
        self.names: dict[str, str] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel(f"<b>Last {WINDOW_S / 60:g} minutes</b>"))
        plots = QHBoxLayout()
        self.rate_plot = self._plot("tokens/s", MinutesAgoAxis("bottom"))
        self.rate_plot.getAxis("bottom").setLabel("minutes ago")
        self.rate_plot.setAccessibleName("Tokens per second of each answer")
        self.legend = self.rate_plot.addLegend(offset=(5, 5))
        self.count_plot = self._plot("requests")
        self.count_plot.setAccessibleName("Requests per participant")
        plots.addWidget(self.rate_plot, 3)
        plots.addWidget(self.count_plot, 2)
        layout.addLayout(plots)
        self.summary = QLabel("No answers yet.")
        self.summary.setObjectName("hint")
        layout.addWidget(self.summary)
        self.bars: pg.BarGraphItem | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override.
        """A modest size to ask for: pyqtgraph's plots ask for about 600×500 each, which
        made the room page taller than the window and so scroll even at full size."""
        return QSize(360, 190)

    @staticmethod
    def _plot(left: str, bottom: pg.AxisItem | None = None) -> pg.PlotWidget:
        plot = pg.PlotWidget(background=None,
                             axisItems={"bottom": bottom} if bottom is not None else None)
        plot.setMinimumHeight(110)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.getPlotItem().setMenuEnabled(False)
        plot.getAxis("left").setLabel(left)
        plot.getPlotItem().layout.setContentsMargins(*LABEL_ROOM_PX)
        return plot

    def add(self, participant: str, tokens_per_second: float) -> None:
        self.history.add(participant, tokens_per_second)
        self.redraw()

    def clear(self) -> None:
        self.history.clear()
        self.redraw()

    def redraw(self) -> None:
        now = time.monotonic()
        self.history.prune(now)
        self.rate_plot.clear()
        self.legend.clear()
        highest = 0.0
        for index, (pid, (xs, ys)) in enumerate(self.history.rates(now).items()):
            color = COLORS[index % len(COLORS)]
            self.rate_plot.plot(xs, ys, pen=pg.mkPen(color, width=2), symbol="o",
                                symbolSize=6, symbolBrush=color, name=self.names.get(pid, pid))
            highest = max(highest, *ys)
        self.rate_plot.setXRange(-self.history.window_s, 0, padding=0.02)
        # From 0, so a steady 7.1 tokens/s reads as 7, not as wild swings between 7.08 and 7.12.
        self.rate_plot.setYRange(0, highest * Y_HEADROOM if highest > 0 else 1, padding=0)
        counts = self.history.requests()
        self.count_plot.clear()
        labels = [self.names.get(pid, pid) for pid in counts]
        self.bars = pg.BarGraphItem(
            x=list(range(len(counts))), height=list(counts.values()), width=0.6,
            brushes=[COLORS[i % len(COLORS)] for i in range(len(counts))])
        self.count_plot.addItem(self.bars)
        self.count_plot.getAxis("bottom").setTicks([list(enumerate(labels))])
        self.count_plot.setXRange(-0.6, max(len(counts), 1) - 0.4, padding=0)
        self.count_plot.setYRange(0, max(counts.values(), default=0) * Y_HEADROOM + 1,
                                  padding=0)
        total = sum(counts.values())
        self.summary.setText(f"{total} answer{'s' if total != 1 else ''} from {len(counts)}"
                             f" participant{'s' if len(counts) != 1 else ''}"
                             if total else "No answers yet.")

    def bar_heights(self) -> dict[str, float]:
        """What the bars show, read back from the plot item: nickname -> requests."""
        if self.bars is None:
            return {}
        labels = [self.names.get(pid, pid) for pid in self.history.requests()]
        return dict(zip(labels, (float(h) for h in self.bars.opts["height"]), strict=True))

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override.
        super().showEvent(event)
        self.redraw()
        self._timer.start()

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 - Qt override.
        self._timer.stop()
        super().hideEvent(event)
