"""Issue 14, a window that holds: WCAG AA contrast in both themes, arrows on combo and spin
boxes, and a focus that shows without moving anything.

The contrast checks read the palettes and the rules of style.qss (see gui/contrast.py): for
each state a user meets, the text colour on its background, and the boundary of a control
or its state against what surrounds it.
"""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStyle,
    QStyleOptionComboBox,
    QStyleOptionSpinBox,
    QVBoxLayout,
    QWidget,
)
from pytestqt.qtbot import QtBot

from gambiarra_desktop.gui import contrast
from gambiarra_desktop.gui.contrast import LARGE_TEXT_AA, TEXT_AA, UI_AA, lookup, ratio
from gambiarra_desktop.gui.main_window import MainWindow
from gambiarra_desktop.gui.resources import resource_text
from gambiarra_desktop.gui.theme import PALETTES, apply_theme, stylesheet
from tests.gui.conftest import eventually, finish
from tests.gui.test_flows import host_and_create_room

THEMES = ("light", "dark")

# (what the user sees, text selector, background selector or palette token, needed ratio)
TEXT_PAIRS = [
    ("page text", "QWidget", "window", TEXT_AA),
    ("text on a card", "QWidget", "card", TEXT_AA),
    ("hint on the sidebar", "QLabel#hint", "sidebar", TEXT_AA),
    ("hint on a card", "QLabel#hint", "card", TEXT_AA),
    ("section title", "QLabel#sectionTitle", "sidebar", TEXT_AA),
    ("error text", "QLabel#errorText", "card", TEXT_AA),
    ("room code (large)", "QLabel#roomCode", "window", LARGE_TEXT_AA),
    ("button", "QPushButton", "QPushButton", TEXT_AA),
    ("button, hover", "QPushButton:hover", "QPushButton:hover", TEXT_AA),
    ("button, disabled", "QPushButton:disabled", "QPushButton:disabled", TEXT_AA),
    ("primary button", "QPushButton#primary", "QPushButton#primary", TEXT_AA),
    ("primary button, hover", "QPushButton#primary:hover", "QPushButton#primary:hover",
     TEXT_AA),
    ("primary button, focus", "QPushButton#primary:focus", "QPushButton#primary:focus",
     TEXT_AA),
    ("primary button, disabled", "QPushButton#primary:disabled",
     "QPushButton#primary:disabled", TEXT_AA),
    ("switch, checked", "QPushButton#switch:checked", "QPushButton#switch:checked", TEXT_AA),
    ("switch, off", "QPushButton#switch", "QPushButton#switch", TEXT_AA),
    ("pill: sharing", 'QLabel#statusPill[state="sharing"]',
     'QLabel#statusPill[state="sharing"]', TEXT_AA),
    ("pill: starting", 'QLabel#statusPill[state="starting"]',
     'QLabel#statusPill[state="starting"]', TEXT_AA),
    ("pill: failed", 'QLabel#statusPill[state="failed"]',
     'QLabel#statusPill[state="failed"]', TEXT_AA),
    ("pill: stopped", 'QLabel#statusPill[state="stopped"]',
     'QLabel#statusPill[state="stopped"]', TEXT_AA),
    ("tab", "QTabBar::tab", "window", TEXT_AA),
    ("tab, selected", "QTabBar::tab:selected", "window", TEXT_AA),
    ("tab, focus", "QTabBar::tab:focus", "window", TEXT_AA),
    ("selected list item", "QListWidget::item:selected", "QListWidget::item:selected", TEXT_AA),
    ("input text", "QLineEdit", "QLineEdit", TEXT_AA),
    ("table header", "QHeaderView::section", "QHeaderView::section", TEXT_AA),
]

# (what, colour selector and property, against token, needed ratio): boundaries and states.
UI_PAIRS = [
    ("input border", "QLineEdit", "border-color", "input", UI_AA),
    ("button border", "QPushButton", "border-color", "card", UI_AA),
    ("focus ring on an input", "QLineEdit:focus", "border-color", "input", UI_AA),
    ("focus ring on a button", "QPushButton:focus", "border-color", "card", UI_AA),
    ("primary button's fill", "QPushButton#primary", "background-color", "window", UI_AA),
    ("checked switch's fill", "QPushButton#switch:checked", "background-color", "card", UI_AA),
    ("focus on the hub list", "QListWidget:focus", "border-color", "input", UI_AA),
    ("focused list item", "QListWidget::item:focus", "border-color", "input", UI_AA),
]


def _styles(theme: str) -> dict[str, dict[str, str]]:
    return contrast.rules(stylesheet(theme))


def _background(styles: dict[str, dict[str, str]], theme: str, where: str) -> str:
    if where in PALETTES[theme]:
        return PALETTES[theme][where]
    colour = lookup(styles, where, "background-color")
    return colour or PALETTES[theme]["window"]


@pytest.mark.parametrize("theme", THEMES)
def test_text_meets_wcag_aa_in_every_state(theme: str) -> None:
    styles = _styles(theme)
    failures = []
    for what, text_selector, background, needed in TEXT_PAIRS:
        fg = lookup(styles, text_selector, "color")
        assert fg is not None, what
        bg = _background(styles, theme, background)
        if ratio(fg, bg) < needed:
            failures.append(f"{what}: {fg} on {bg} is {ratio(fg, bg):.2f}:1 < {needed}")
    assert not failures, f"{theme}: " + "; ".join(failures)


@pytest.mark.parametrize("theme", THEMES)
def test_control_boundaries_and_states_meet_3_to_1(theme: str) -> None:
    styles = _styles(theme)
    failures = []
    for what, selector, prop, against, needed in UI_PAIRS:
        colour = lookup(styles, selector, prop)
        bg = PALETTES[theme][against]
        if colour is None or ratio(colour, bg) < needed:
            failures.append(f"{what}: {colour} on {bg}"
                            f" is {ratio(colour, bg) if colour else 1:.2f}:1")
    assert not failures, f"{theme}: " + "; ".join(failures)


@pytest.mark.parametrize("theme", THEMES)
def test_participant_status_colours_and_disabled_primary_look(theme: str) -> None:
    colours = PALETTES[theme]
    for token in ("online", "offline"):
        assert ratio(colours[token], colours["input"]) >= TEXT_AA, token
    # A disabled primary button does not keep the accent fill: it must look disabled.
    styles = _styles(theme)
    enabled = lookup(styles, "QPushButton#primary", "background-color")
    disabled = lookup(styles, "QPushButton#primary:disabled", "background-color")
    assert disabled is not None and enabled is not None
    assert ratio(enabled, disabled) >= UI_AA


def test_contrast_arithmetic_matches_wcag() -> None:
    assert round(ratio("#000000", "#ffffff"), 2) == 21.0
    assert round(ratio("#777777", "#ffffff"), 2) == 4.48
    assert "QPushButton#primary:hover" in contrast.rules(resource_text("style.qss"))


def _styled(qtbot: QtBot, theme: str, *widgets: QWidget) -> QWidget:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    apply_theme(app, theme)  # type: ignore[arg-type]
    host = QWidget()
    host.setObjectName("page")
    layout = QVBoxLayout(host)
    for widget in widgets:
        layout.addWidget(widget)
    qtbot.addWidget(host)
    host.resize(320, 240)
    host.show()
    return host


def _distinct_pixels(image: QImage, rect: object, background: QColor) -> int:
    count = 0
    for x in range(rect.left(), rect.right() + 1):  # type: ignore[attr-defined]
        for y in range(rect.top(), rect.bottom() + 1):  # type: ignore[attr-defined]
            pixel = image.pixelColor(x, y)
            if abs(pixel.lightness() - background.lightness()) > 60:
                count += 1
    return count


@pytest.mark.parametrize("theme", THEMES)
def test_combo_and_spin_boxes_draw_their_arrows(qtbot: QtBot, theme: str) -> None:
    combo = QComboBox()
    combo.addItems(["llama3.2:3b", "qwen2.5:7b"])
    spin = QSpinBox()
    spin.setRange(1024, 65535)
    host = _styled(qtbot, theme, combo, spin)
    qtbot.waitExposed(host)
    background = QColor(PALETTES[theme]["input"])

    option = QStyleOptionComboBox()
    combo.initStyleOption(option)
    arrow = combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                         QStyle.SubControl.SC_ComboBoxArrow, combo)
    assert arrow.width() > 0 and arrow.height() > 0
    image = combo.grab().toImage()
    assert _distinct_pixels(image, arrow, background) >= 6, "the combo box shows no arrow"

    spin_option = QStyleOptionSpinBox()
    spin.initStyleOption(spin_option)
    for control in (QStyle.SubControl.SC_SpinBoxUp, QStyle.SubControl.SC_SpinBoxDown):
        rect = spin.style().subControlRect(QStyle.ComplexControl.CC_SpinBox, spin_option,
                                           control, spin)
        assert rect.width() > 0 and rect.height() > 0
        image = spin.grab().toImage()
        assert _distinct_pixels(image, rect, background) >= 4, f"no {control} arrow"
    apply_theme(QApplication.instance(), "light")  # type: ignore[arg-type]


@pytest.mark.parametrize("theme", THEMES)
def test_focus_shows_without_moving_anything(qtbot: QtBot, theme: str) -> None:
    button = QPushButton("Stop hosting")
    primary = QPushButton("Join room")
    primary.setObjectName("primary")
    edit = QLineEdit("Friday hack")
    spin = QSpinBox()
    combo = QComboBox()
    combo.addItem("llama3.2:3b")
    widgets = (button, primary, edit, spin, combo)
    host = _styled(qtbot, theme, QPushButton("before"), *widgets)
    qtbot.waitExposed(host)
    host.activateWindow()
    for widget in widgets:
        widget.clearFocus()
        QApplication.processEvents()
        hint, geometry = widget.sizeHint(), widget.geometry()
        before = widget.grab().toImage()
        widget.setFocus(Qt.FocusReason.TabFocusReason)
        QApplication.processEvents()
        assert widget.hasFocus(), widget
        assert widget.sizeHint() == hint, (type(widget).__name__, widget.text()
                                           if isinstance(widget, QPushButton) else "")
        assert widget.geometry() == geometry
        assert widget.grab().toImage() != before, f"focus on {widget} is invisible"
    apply_theme(QApplication.instance(), "light")  # type: ignore[arg-type]


async def test_focus_on_the_hub_list_is_visible(qtbot: QtBot, window: MainWindow) -> None:
    # Given the hub list with this computer's hub in it, and focus elsewhere
    await host_and_create_room(qtbot, window, "Focus")
    hub_list = window.sidebar.hub_list
    await eventually(lambda: hub_list.count() >= 1)
    window.activateWindow()
    window.sidebar.add_hub_button.setFocus()
    hub_list.setCurrentRow(0)
    await asyncio.sleep(0.1)
    geometry = hub_list.geometry()
    item_rect = hub_list.visualItemRect(hub_list.item(0))
    before = hub_list.grab().toImage()

    # When the list takes the keyboard focus
    hub_list.setFocus(Qt.FocusReason.TabFocusReason)
    await asyncio.sleep(0.1)

    # Then it looks different (ring and focused item), and nothing moved
    assert hub_list.hasFocus()
    after = hub_list.grab().toImage()
    assert after != before
    changed = [QPoint(x, y) for x in range(0, after.width(), 2)
               for y in range(item_rect.top(), item_rect.bottom(), 2)
               if after.pixel(x, y) != before.pixel(x, y)]
    assert changed, "the focused item looks like an unfocused one"
    assert hub_list.geometry() == geometry
    assert hub_list.visualItemRect(hub_list.item(0)) == item_rect
    await finish(window)
