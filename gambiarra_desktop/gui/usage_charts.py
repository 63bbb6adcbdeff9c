"""Bar charts of usage, drawn with pyqtgraph on plain Qt widgets.

pyqtgraph is maintained, pure Python on top of Qt, and works with PySide6-Essentials;
QtCharts would need PySide6-Addons (about 200 MB more). OpenGL stays off: offscreen and in
some remote desktops it draws nothing.
"""

from __future__ import annotations

import pyqtgraph as pg  # type: ignore[import-untyped]
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from gambiarra_desktop.usage_text import Series, count, money

TOKENS_COLOR = "#3b82f6"
COST_COLOR = "#f59e0b"
BAR_WIDTH = 0.38


class UsageChart(QWidget):
    """Tokens (left axis, blue) and cost (right axis, amber) side by side per label."""

    def __init__(self, title: str) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel(f"<b>{title}</b>")
        layout.addWidget(self.title)
        self.plot = pg.PlotWidget(background=None)
        self.plot.setMinimumHeight(150)
        self.plot.setMaximumHeight(220)  # All three charts and the keys fit one screen.
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.getPlotItem().setMenuEnabled(False)
        self.plot.showAxis("right")
        self.plot.getAxis("left").setLabel("tokens")
        self.plot.getAxis("right").setLabel("USD")
        self.cost_box = pg.ViewBox()
        self.cost_box.setMouseEnabled(x=False, y=False)
        self.plot.scene().addItem(self.cost_box)
        self.plot.getAxis("right").linkToView(self.cost_box)
        self.cost_box.setXLink(self.plot.getPlotItem())
        self.plot.getViewBox().sigResized.connect(self._sync_boxes)
        layout.addWidget(self.plot)
        self.summary = QLabel("")
        self.summary.setObjectName("hint")
        layout.addWidget(self.summary)
        self.series = Series([], [], [])
        self.token_bars: pg.BarGraphItem | None = None
        self.cost_bars: pg.BarGraphItem | None = None

    def _sync_boxes(self) -> None:
        self.cost_box.setGeometry(self.plot.getViewBox().sceneBoundingRect())

    def show_series(self, series: Series) -> None:
        """Replace the bars; the x axis names each bar."""
        self.series = series
        self.plot.clear()
        self.cost_box.clear()
        xs = list(range(len(series.labels)))
        self.token_bars = pg.BarGraphItem(x=[x - BAR_WIDTH / 2 for x in xs],
                                          height=series.tokens, width=BAR_WIDTH,
                                          brush=TOKENS_COLOR)
        self.cost_bars = pg.BarGraphItem(x=[x + BAR_WIDTH / 2 for x in xs],
                                         height=series.cost, width=BAR_WIDTH,
                                         brush=COST_COLOR)
        self.plot.addItem(self.token_bars)
        self.cost_box.addItem(self.cost_bars)
        self.plot.getAxis("bottom").setTicks([list(enumerate(series.labels))])
        self.plot.setXRange(-0.6, max(len(xs), 1) - 0.4, padding=0)
        self.plot.setYRange(0, max(series.tokens, default=0) * 1.1 or 1, padding=0)
        self.cost_box.setYRange(0, max(series.cost, default=0) * 1.1 or 0.01, padding=0)
        self._sync_boxes()
        self.summary.setText(
            f"{count(sum(series.tokens))} tokens · {money(sum(series.cost))}"
            if series.labels else "Nothing used in this period.")

    def heights(self) -> tuple[list[float], list[float]]:
        """The drawn bars' heights (tokens, cost), read back from the plot items."""
        if self.token_bars is None or self.cost_bars is None:
            return [], []
        return ([float(h) for h in self.token_bars.opts["height"]],
                [float(h) for h in self.cost_bars.opts["height"]])
