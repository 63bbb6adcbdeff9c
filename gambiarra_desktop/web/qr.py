"""QR codes of the guests' web address, for the app's room page and the terminal.

segno: one maintained, dependency-free library that writes PNG itself. Always a full QR
code (``micro=False``): a short URL would otherwise become a Micro QR, which most phone
cameras do not read.
"""

from __future__ import annotations

import io

import segno


def _code(url: str) -> segno.QRCode:
    return segno.make(url, micro=False, error="m")


def qr_png(url: str, scale: int = 6, border: int = 4) -> bytes:
    """A black-on-white PNG of ``url``, ``scale`` pixels per module and the standard
    four-module quiet zone that scanners need."""
    return _png(_code(url), scale, border)


def qr_png_near(url: str, width_px: int, border: int = 4) -> bytes:
    """``url`` as a PNG about ``width_px`` wide (quiet zone included), at a whole number of
    pixels per module: a smoothed QR code blurs, and cameras read a crisp one from further."""
    code = _code(url)
    modules, _ = code.symbol_size(scale=1, border=border)
    return _png(code, max(1, round(width_px / max(1, modules))), border)


def _png(code: segno.QRCode, scale: int, border: int) -> bytes:
    out = io.BytesIO()
    code.save(out, kind="png", scale=scale, border=border)
    return out.getvalue()


def qr_terminal_text(url: str) -> str:
    """``url`` as a QR code of Unicode half blocks, two rows of modules per line, light
    modules drawn, so it scans in both light and dark terminals (dark text on a light
    background is inverted: the blocks are the light part, with a light quiet zone)."""
    matrix = [list(row) for row in _code(url).matrix]
    border = 2
    size = len(matrix) + 2 * border
    light = [[True] * size for _ in range(size)]
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            light[y + border][x + border] = not dark
    if size % 2:
        light.append([True] * size)
    lines = []
    for y in range(0, len(light), 2):
        top, bottom = light[y], light[y + 1]
        lines.append("".join(
            "\u2588" if t and b else "\u2580" if t else "\u2584" if b else " "
            for t, b in zip(top, bottom, strict=True)))
    return "\n".join(lines)


def can_print(text: str, encoding: str | None) -> bool:
    """Whether a stream with ``encoding`` can print ``text`` (a Windows console in a
    legacy code page cannot print block characters)."""
    try:
        text.encode(encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True
