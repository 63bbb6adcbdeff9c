"""Reading QR codes back in tests: from a PNG, and from the block characters the CLI prints."""

from __future__ import annotations

from pathlib import Path

import zxingcpp
from PIL import Image

TOP = "\u2588\u2580"  # A full block or an upper half: the upper module is light.
BOTTOM = "\u2588\u2584"


def decode_image(path: Path) -> list[zxingcpp.Barcode]:
    with Image.open(path) as image:
        return list(zxingcpp.read_barcodes(image))


def decode_png(path: Path) -> str:
    """The text of the one full (not Micro) QR code in the picture."""
    found = decode_image(path)
    assert len(found) == 1, found
    assert found[0].format == zxingcpp.BarcodeFormat.QRCode, found[0].format
    return str(found[0].text)


def terminal_qr_lines(output: str, after: str) -> list[str]:
    """The QR code's lines printed after the line containing ``after``: the block-character
    lines up to the next blank line, their common indent removed."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) + 1
    while start < len(lines) and not lines[start].strip():
        start += 1
    block: list[str] = []
    for line in lines[start:]:
        if not line.strip():
            break
        block.append(line)
    indent = min(len(line) - len(line.lstrip(" ")) for line in block)
    return [line[indent:] for line in block]


def decode_terminal(lines: list[str], tmp: Path, scale: int = 8) -> str:
    """Paint the characters as modules (light where a block is drawn), with a light quiet
    zone, and decode the picture."""
    width = max(len(line) for line in lines)
    rows: list[list[bool]] = []
    for line in lines:
        line = line.ljust(width)
        rows.append([c in TOP for c in line])
        rows.append([c in BOTTOM for c in line])
    margin = 4
    size_x, size_y = width + 2 * margin, len(rows) + 2 * margin
    image = Image.new("L", (size_x * scale, size_y * scale), 255)
    for y, row in enumerate(rows):
        for x, light in enumerate(row):
            if not light:
                left, top = (x + margin) * scale, (y + margin) * scale
                image.paste(0, (left, top, left + scale, top + scale))
    path = tmp / "terminal-qr.png"
    image.save(path)
    return decode_png(path)
