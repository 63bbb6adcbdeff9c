"""Render ``resources/icons/gambiarra.svg`` into every icon file the installers need.

One SVG is the single source of the app icon; this writes, into ``--out``:
  ``png/<size>.png``     for Linux's hicolor theme (16 … 512 px)
  ``gambiarra.ico``      Windows: the .exe and the Inno Setup installer
  ``gambiarra.icns``     macOS: the .app bundle

Qt (already a dependency) rasterises the SVG. The ICO and ICNS containers are written
here, with PNG-compressed entries, because Qt's own writers store only one size per file
and the OS picks the sharpest of several.

Usage: ``python packaging/tools/icons.py --out build/icons``
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "resources" / "icons" / "gambiarra.svg"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS element types that hold PNG data, by pixel size (Apple's ``icns`` format).
ICNS_TYPES = {16: b"icp4", 32: b"icp5", 64: b"icp6", 128: b"ic07", 256: b"ic08",
              512: b"ic09", 1024: b"ic10"}


def render_png(svg: Path, size: int) -> bytes:
    """The SVG drawn on a transparent ``size``×``size`` canvas, as PNG bytes."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])  # noqa: F841
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"icons: cannot read {svg}")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")  # type: ignore[call-overload]  # PySide6 wants str at run time.
    buffer.close()
    return bytes(data.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """An ICO file with one PNG entry per size (Windows Vista and later read these)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    directory, payload = b"", b""
    for size in sizes:
        png = pngs[size]
        dimension = 0 if size >= 256 else size  # 0 means 256 in an ICO directory.
        directory += struct.pack("<BBBBHHII", dimension, dimension, 0, 0, 1, 32,
                                 len(png), offset + len(payload))
        payload += png
    return header + directory + payload


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    """An ICNS file whose elements are PNGs: a big-endian length-prefixed list."""
    elements = b"".join(
        ICNS_TYPES[size] + struct.pack(">I", 8 + len(png)) + png
        for size, png in sorted(pngs.items())
    )
    return b"icns" + struct.pack(">I", 8 + len(elements)) + elements


def write_icons(out: Path, svg: Path = SOURCE) -> None:
    sizes = sorted(set(PNG_SIZES) | set(ICO_SIZES) | set(ICNS_TYPES))
    pngs = {size: render_png(svg, size) for size in sizes}
    (out / "png").mkdir(parents=True, exist_ok=True)
    for size in PNG_SIZES:
        (out / "png" / f"{size}.png").write_bytes(pngs[size])
    (out / "gambiarra.ico").write_bytes(ico_bytes({s: pngs[s] for s in ICO_SIZES}))
    (out / "gambiarra.icns").write_bytes(icns_bytes({s: pngs[s] for s in ICNS_TYPES}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    args = parser.parse_args()
    write_icons(args.out)
    print(f"icons: wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
