"""Text from a hub made safe to print on a terminal.

Room names, nicknames, model names and LAN hub names come from other people. Printed raw,
an escape sequence in one could clear the screen, retitle the window or fake other output,
and a bidi override could reverse what the reader sees. So every character that is not
printable is shown as a Python-style escape (``\\x1b``, ``\\u202e``) instead.
"""

from __future__ import annotations


def terminal_safe(value: object) -> str:
    """``str(value)`` with each non-printable character written as ``\\xNN``, ``\\uNNNN`` or
    ``\\UNNNNNNNN``, and backslashes left alone (the result is for eyes, not parsers)."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(ord(c)) for c in text)


def _escape(code: int) -> str:
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
