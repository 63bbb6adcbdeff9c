"""WCAG 2 contrast, and the colour pairs the stylesheet puts on screen, read from it.

The app's colours live in two places: the palettes (``theme.PALETTES``) and the rules of
``resources/style.qss`` that use their tokens. A check that only read the palette would
miss a rule that puts white text on the dark theme's light green (1.74:1), so the test
reads the rules themselves: for a selector and a state, which text colour lands on which
background. WCAG AA asks 4.5:1 for text, 3:1 for large text and for the boundaries and
states of controls (focus ring, checked switch, input border).
"""

from __future__ import annotations

import re

TEXT_AA = 4.5
LARGE_TEXT_AA = 3.0
UI_AA = 3.0

_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_COMMENT = re.compile(r"/\*.*?\*/", re.S)


def luminance(colour: str) -> float:
    """Relative luminance of ``#rrggbb`` (WCAG 2.x definition)."""
    value = colour.lstrip("#")
    channels = [int(value[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def ratio(first: str, second: str) -> float:
    """The contrast ratio of two colours, from 1 (same) to 21 (black on white)."""
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def rules(qss: str) -> dict[str, dict[str, str]]:
    """Each single selector of the stylesheet and its declarations, later rules winning."""
    found: dict[str, dict[str, str]] = {}
    for selectors, body in _RULE.findall(_COMMENT.sub("", qss)):
        declarations = {}
        for part in body.split(";"):
            if ":" in part:
                name, value = part.split(":", 1)
                declarations[name.strip()] = value.strip()
        for selector in selectors.split(","):
            found.setdefault(" ".join(selector.split()), {}).update(declarations)
    return found


def _colour_in(value: str) -> str | None:
    match = re.search(r"#[0-9a-fA-F]{6}\b", value)
    return match.group(0).lower() if match else None


def lookup(styles: dict[str, dict[str, str]], selector: str, prop: str) -> str | None:
    """The colour ``prop`` takes for ``selector``: its own rule, else the rule without its
    states (``:hover``...), else without its object name, as the stylesheet cascades."""
    candidates = [selector]
    base = selector.split(":", 1)[0]
    if base != selector:
        candidates.append(base)
    if "#" in base:
        candidates.append(base.split("#", 1)[0])
    candidates.append("QWidget")
    for candidate in candidates:
        declarations = styles.get(candidate, {})
        for name in (prop, "background") if prop == "background-color" else (prop,):
            if name in declarations:
                colour = _colour_in(declarations[name])
                if colour is not None:
                    return colour
                if declarations[name] in ("none", "transparent"):
                    return None
        if prop == "border-color":
            for name in ("border", "border-bottom"):
                if name in declarations:
                    return _colour_in(declarations[name])
    return None
