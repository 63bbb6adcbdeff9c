"""The guests' web address in the terminal: a line with the link, then its QR code, which a
phone scans to open the page with nothing installed (``serve`` and ``create`` print it)."""

from __future__ import annotations

import sys
from typing import TextIO

from gambiarra_desktop.commands.terminal_text import terminal_safe
from gambiarra_desktop.web.qr import can_print, qr_terminal_text

NO_LAN_ADDRESS = "no LAN address found on this computer"
LOOPBACK_ONLY = "the hub listens on this computer only (--host); use --host 0.0.0.0 to share it"


def print_web_link(label: str, url: str | None, why_not: str, local_url: str, *,
                   qr: bool = True, indent: str = "  ", out: TextIO | None = None) -> None:
    """``label: url`` and the QR code of ``url``; where guests cannot reach the hub (``url``
    is ``None``), the address this computer can use and why others cannot."""
    out = out or sys.stdout
    if url is None:
        print(f"{indent}{label} {terminal_safe(local_url)} (on this computer only: {why_not})",
              file=out, flush=True)
        return
    print(f"{indent}{label} {terminal_safe(url)}", file=out, flush=True)
    if not qr:
        return
    code = qr_terminal_text(url)
    if not can_print(code, getattr(out, "encoding", None)):
        print(f"{indent}(this terminal cannot draw the QR code; open the link instead)",
              file=out, flush=True)
        return
    print("", file=out)
    print("\n".join(indent + line for line in code.splitlines()), file=out, flush=True)
    print("", file=out, flush=True)
