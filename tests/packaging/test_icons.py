"""The icon files the installers embed: every size present, really drawn, well-formed."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_MAGIC)
    width, height = struct.unpack(">II", data[16:24])  # The IHDR chunk comes first.
    return width, height


def assert_drawn(data: bytes) -> None:
    """The logo is an opaque rounded square: its centre is opaque, its corner clear."""
    image = QImage.fromData(data, "PNG")
    assert not image.isNull()
    middle = image.pixelColor(image.width() // 2, image.height() // 2)
    assert middle.alpha() == 255
    assert image.pixelColor(0, 0).alpha() == 0


@pytest.fixture(scope="module")
def icons(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("icons")
    subprocess.run([sys.executable, str(ROOT / "packaging" / "tools" / "icons.py"),
                    "--out", str(out)], check=True, timeout=120)
    return out


def test_linux_pngs_come_in_every_hicolor_size(icons: Path) -> None:
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        data = (icons / "png" / f"{size}.png").read_bytes()
        assert png_size(data) == (size, size)
        assert_drawn(data)


def test_windows_ico_holds_one_png_per_size(icons: Path) -> None:
    data = (icons / "gambiarra.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind, count) == (0, 1, 7)
    sizes = []
    for index in range(count):
        width, height, _, _, planes, bits, length, offset = struct.unpack(
            "<BBBBHHII", data[6 + 16 * index: 22 + 16 * index])
        entry = data[offset: offset + length]
        assert len(entry) == length and (planes, bits) == (1, 32)
        real = png_size(entry)
        assert real == ((width or 256), (height or 256))
        sizes.append(real[0])
    assert sizes == [16, 24, 32, 48, 64, 128, 256]


def test_macos_icns_elements_add_up_and_carry_retina_sizes(icons: Path) -> None:
    data = (icons / "gambiarra.icns").read_bytes()
    assert data[:4] == b"icns" and struct.unpack(">I", data[4:8])[0] == len(data)
    found: dict[bytes, int] = {}
    position = 8
    while position < len(data):
        kind, length = data[position: position + 4], struct.unpack(
            ">I", data[position + 4: position + 8])[0]
        found[kind] = png_size(data[position + 8: position + length])[0]
        position += length
    assert position == len(data)
    assert found == {b"icp4": 16, b"icp5": 32, b"icp6": 64, b"ic07": 128, b"ic08": 256,
                     b"ic09": 512, b"ic10": 1024}
