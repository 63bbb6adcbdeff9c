"""The guests' web address (a LAN address, never 127.0.0.1) and its QR codes: the PNG the
app shows, and the block characters ``gambiarra serve`` and ``create`` print."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from gambiarra_desktop.web.links import guest_hub_url, hub_page_url, room_page_url
from gambiarra_desktop.web.qr import can_print, qr_png, qr_terminal_text
from tests.qr_decode import decode_png, decode_terminal, terminal_qr_lines
from tests.test_cli import CLI, run_cli

LAN = ["192.168.1.20", "10.0.0.7"]


@pytest.mark.parametrize(("hub_url", "expected"), [
    ("http://127.0.0.1:3000", "http://192.168.1.20:3000"),
    ("http://localhost:3000/", "http://192.168.1.20:3000"),
    ("http://127.0.0.2:4100", "http://192.168.1.20:4100"),
    ("http://[::1]:3000", "http://192.168.1.20:3000"),
    ("http://0.0.0.0:3000", "http://192.168.1.20:3000"),
    ("http://192.168.1.99:3000", "http://192.168.1.99:3000"),  # Another machine: as it is.
    ("http://hub.local:3000/", "http://hub.local:3000"),
])
def test_guests_get_a_lan_address_for_a_hub_on_this_machine(hub_url: str,
                                                            expected: str) -> None:
    assert guest_hub_url(hub_url, LAN) == expected


def test_credentials_and_queries_never_reach_a_guest_link() -> None:
    secret = "http://user:s3cret@192.168.1.5:3000/?token=abc#frag"
    assert guest_hub_url(secret, LAN) == "http://192.168.1.5:3000"
    assert room_page_url(secret, "ABC123") == "http://192.168.1.5:3000/r/ABC123"
    assert hub_page_url(secret) == "http://192.168.1.5:3000/"
    local = "http://admin:pw@127.0.0.1:3000/?k=v"
    assert guest_hub_url(local, LAN) == "http://192.168.1.20:3000"


def test_no_address_when_guests_cannot_reach_the_hub() -> None:
    assert guest_hub_url("http://127.0.0.1:3000", []) is None
    assert guest_hub_url("http://127.0.0.1:3000", LAN, listens_on_lan=False) is None
    assert guest_hub_url("http://[fe80::1]:3000", ["fe80::2"]) == "http://[fe80::1]:3000"
    assert guest_hub_url("http://localhost:3000", ["fd00::5"]) == "http://[fd00::5]:3000"


def test_page_addresses_carry_the_code_and_nothing_else() -> None:
    assert room_page_url("http://192.168.1.20:3000/", "ABC234") == (
        "http://192.168.1.20:3000/r/ABC234")
    assert room_page_url("http://h:1", "A/B?c") == "http://h:1/r/A%2FB%3Fc"
    assert hub_page_url("http://192.168.1.20:3000") == "http://192.168.1.20:3000/"


def test_the_png_is_a_full_qr_code_of_the_address(tmp_path: Path) -> None:
    url = "http://192.168.1.20:3000/r/ABC234"
    path = tmp_path / "room.png"
    path.write_bytes(qr_png(url))
    assert decode_png(path) == url  # decode_png also rejects a Micro QR.
    short = tmp_path / "short.png"
    short.write_bytes(qr_png("http://h/"))  # Short data would be a Micro QR by default.
    assert decode_png(short) == "http://h/"


def test_the_terminal_drawing_decodes_to_the_address(tmp_path: Path) -> None:
    url = "http://10.0.0.7:3000/r/XYZ789"
    lines = qr_terminal_text(url).splitlines()
    assert len({len(line) for line in lines}) == 1  # A square of whole lines.
    assert decode_terminal(lines, tmp_path) == url


def test_a_terminal_that_cannot_draw_blocks_is_told_apart() -> None:
    drawing = qr_terminal_text("http://h/")
    assert can_print(drawing, "utf-8")
    assert not can_print(drawing, "cp1252")
    assert not can_print(drawing, None)  # Unknown: ASCII assumed.
    assert not can_print(drawing, "no-such-codec")


def test_create_prints_the_room_page_and_its_qr_code(
        served_hub: tuple[str, subprocess.Popen[str]], tmp_path: Path) -> None:
    url, _process = served_hub
    created = run_cli("create", "--name", "Phones welcome", "--hub", url,
                      "--interface", "127.0.0.1")
    assert created.returncode == 0, created.stderr
    code = re.search(r"Code: ([A-Z0-9]{6})", created.stdout)
    assert code, created.stdout
    page = f"{url}/r/{code.group(1)}"
    assert f"Room page (phones and browsers, nothing to install): {page}\n" in created.stdout
    lines = terminal_qr_lines(created.stdout, "Room page")
    assert decode_terminal(lines, tmp_path) == page

    quiet = run_cli("create", "--name", "No drawing", "--hub", url, "--interface",
                    "127.0.0.1", "--no-qr")
    assert quiet.returncode == 0, quiet.stderr
    assert "\u2588" not in quiet.stdout and "/r/" in quiet.stdout


def test_serve_prints_its_web_page_and_qr_code_or_why_not(tmp_path: Path) -> None:
    """Bound to every address, it names the chosen one (here loopback, to stay on this
    machine); bound to loopback only, it draws nothing and says guests cannot reach it."""
    shown = _serve_output(tmp_path / "all", "--host", "0.0.0.0", "--interface", "127.0.0.1")
    port = re.search(r"listening on 0\.0\.0\.0:(\d+)", shown)
    assert port, shown
    page = f"http://127.0.0.1:{port.group(1)}/"
    assert f"  Web page:  {page}\n" in shown
    assert decode_terminal(terminal_qr_lines(shown, "Web page:"), tmp_path) == page

    local = _serve_output(tmp_path / "local", "--host", "127.0.0.1")
    assert "Web page:  http://127.0.0.1:" in local
    assert "(on this computer only: the hub listens on this computer only" in local
    assert "\u2588" not in local


def _serve_output(data_dir: Path, *args: str) -> str:
    process = subprocess.Popen(
        [*CLI, "serve", "--port", "0", "--data-dir", str(data_dir), "--log-level", "error",
         *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        encoding="utf-8")
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for _ in range(200):  # The banner, then the QR code, then a blank line.
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Web page:" in line and "this computer only" in line:
                break
            if len(lines) > 3 and lines[-1] == "\n" and "\u2588" in lines[-2]:
                break
    finally:
        process.kill()
        process.wait(timeout=10)
    return "".join(lines)
