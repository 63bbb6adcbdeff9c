"""HTTP/1.1 response bytes, written straight to a transport by the chat front end.

Built by hand, once per response, because building aiohttp's response objects and running
its signals cost more than the rest of a proxied request. What every hub response carries
is added here too: ``Access-Control-Allow-Origin: *`` (the hook ``add_cors_header`` adds on
aiohttp's side) and a rate-limited call's ``X-RateLimit-*`` headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from http import HTTPStatus

from aiohttp import web

CORS_LINE = b"Access-Control-Allow-Origin: *\r\n"
LAST_CHUNK = b"0\r\n\r\n"


@lru_cache(maxsize=128)
def status_line(status: int, version: tuple[int, int] = (1, 1)) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:  # A model server's own code, passed through as aiohttp would.
        reason = "Unknown"
    return f"HTTP/{version[0]}.{version[1]} {status} {reason}\r\n".encode("ascii")


def _lines(headers: Iterable[tuple[str, str]]) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in headers).encode("latin-1")


def _common(rate_headers: Mapping[str, str] | None, keep_alive: bool,
            version: tuple[int, int]) -> bytes:
    lines = CORS_LINE
    if rate_headers:
        lines += _lines(rate_headers.items())
        lines += _lines([("Access-Control-Expose-Headers", ", ".join(rate_headers))])
    if not keep_alive:
        lines += b"Connection: close\r\n"
    elif version < (1, 1):
        lines += b"Connection: keep-alive\r\n"
    return lines


def _whole(status: int, header_lines: bytes, data: bytes,
           rate_headers: Mapping[str, str] | None, keep_alive: bool,
           version: tuple[int, int]) -> bytes:
    return (status_line(status, version) + header_lines + b"Content-Length: %d\r\n" % len(data)
            + _common(rate_headers, keep_alive, version) + b"\r\n" + data)


def whole_response(response: web.Response, rate_headers: Mapping[str, str] | None,
                   keep_alive: bool, version: tuple[int, int]) -> bytes:
    """An unsent aiohttp response (the proxy's and the error mapping's kind) as bytes."""
    body = response.body
    data = bytes(body) if isinstance(body, (bytes, bytearray, memoryview)) else b""
    lines = _lines((name, value) for name, value in response.headers.items()
                   if name.lower() not in ("content-length", "transfer-encoding", "connection"))
    return _whole(response.status, lines, data, rate_headers, keep_alive, version)


def whole_answer(status: int, headers: Mapping[str, str], content_type: str, data: bytes,
                 rate_headers: Mapping[str, str] | None, keep_alive: bool,
                 version: tuple[int, int]) -> bytes:
    """A proxied whole answer as bytes, from its parts (no response object)."""
    lines = _lines(headers.items())
    if content_type:
        lines += b"Content-Type: " + content_type.encode("latin-1") + b"\r\n"
    return _whole(status, lines, data, rate_headers, keep_alive, version)


def stream_head(status: int, headers: Mapping[str, str], rate_headers: Mapping[str, str] | None,
                keep_alive: bool, version: tuple[int, int]) -> bytes:
    """The head of a streamed answer: chunked on HTTP/1.1, else delimited by the close."""
    chunked = version >= (1, 1)
    head = status_line(status, version) + _lines(headers.items())
    if chunked:
        head += b"Transfer-Encoding: chunked\r\n"
    return head + _common(rate_headers, keep_alive and chunked, version) + b"\r\n"


def chunk_frame(chunk: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(chunk), chunk)
