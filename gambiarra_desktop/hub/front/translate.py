"""A parsed request turned back into bytes, for aiohttp.

Once a chat connection sends a request the front end does not serve itself (another route,
a chunked body, ``Expect``), aiohttp serves it and every later request on the connection.
The front end's parser has already consumed those bytes, and where one request ends inside
a TCP segment the parser cannot say at which byte; so the request is written again from
what was parsed: its request line and headers as received, and its body in the framing it
came in (re-chunked when it was chunked). aiohttp reads the same request.
"""

from __future__ import annotations


def request_head(method: bytes, url: bytes, version: str,
                 headers: list[tuple[bytes, bytes]]) -> bytes:
    lines = [method + b" " + url + b" HTTP/" + version.encode("ascii")]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def body_piece(piece: bytes, chunked: bool) -> bytes:
    return b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece


def body_end(chunked: bool) -> bytes:
    return b"0\r\n\r\n" if chunked else b""
