"""Network failures told as sentences a user can act on.

Why one module: the hub client, the gateway client and the model-server probe each used to
put the library's own text in their exceptions ("…ssl:default [Name or service not
known]", a server's raw HTML 404 page, "TransferEncodingError: 400"), and every window
showed ``str(exc)``. Here each kind of failure becomes one sentence that says what happened
and what to do; the technical details go to the log (at INFO, never shown), without
headers, so no password or token is ever logged. A server's own seed-format ``{"error":
...}`` text is not rewritten anywhere: it is the API's contract and already plain.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl

import aiohttp
from yarl import URL

log = logging.getLogger(__name__)

HUB = "the hub"
MODEL_SERVER = "the model server"

_ROLES = {HUB: "a Gambiarra hub", MODEL_SERVER: "a model server"}


def address_of(url: str) -> str:
    """``http://10.0.0.5:3000/x`` -> ``10.0.0.5:3000``: what a user typed, without the
    scheme and path they did not think about."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return url
    if not parsed.host:
        return url
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{host}:{parsed.port}" if parsed.port else host


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes, innermost last (bounded: a cycle cannot loop forever)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _os_errno(exc: BaseException) -> int | None:
    for part in _chain(exc):
        if isinstance(part, aiohttp.ClientOSError) and part.errno:
            return part.errno
        if isinstance(part, aiohttp.ClientConnectorError) and part.os_error.errno:
            return part.os_error.errno
        if isinstance(part, OSError) and part.errno:
            return part.errno
    return None


def unreachable_text(what: str, url: str, exc: BaseException) -> str:
    """The sentence for a request to ``what`` at ``url`` that got no usable answer.

    ``what`` is :data:`HUB` or :data:`MODEL_SERVER` (it names the program to check)."""
    log.info("request to %s at %s failed: %s: %s", what, url, type(exc).__name__, exc)
    where = address_of(url)
    chain = _chain(exc)
    if any(isinstance(e, aiohttp.InvalidUrlClientError | aiohttp.NonHttpUrlClientError)
           for e in chain):
        return (f"“{url}” is not an address this app can use. Type it like"
                " http://192.168.1.20:3000.")
    if any(isinstance(e, aiohttp.ClientConnectorDNSError | socket.gaierror) for e in chain):
        host = URL(url).host or where
        return (f"Cannot find {host}: no computer answers to that name. Check the address"
                f" for typos, or type {what}'s IP address instead.")
    if any(isinstance(e, aiohttp.ClientSSLError | ssl.SSLError) for e in chain):
        return (f"Cannot open a secure connection to {where}: its certificate is not trusted"
                " or it does not speak HTTPS. Check whether the address starts with http://"
                " or https://.")
    if any(isinstance(e, TimeoutError | aiohttp.ServerTimeoutError) for e in chain):
        return (f"No answer from {where} in time. Check that {what} is running and not"
                " overloaded, and that the network between you works.")
    code = _os_errno(exc)
    if any(isinstance(e, aiohttp.ClientConnectorError) for e in chain):
        if code == errno.ECONNREFUSED:
            return (f"Cannot reach {where}: nothing answers there. Check that {what} is"
                    " running and that you are on the same network.")
        if code in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
            return (f"Cannot reach {where}: this computer has no way to that address."
                    f" Check that you are connected to the same network as {what}.")
        return (f"Cannot reach {where}. Check that {what} is running and that you are on"
                " the same network.")
    if any(isinstance(e, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError
                      | aiohttp.ClientResponseError | ConnectionResetError)
           for e in chain) or code == errno.ECONNRESET:
        # A reply cut short, or garbled on the way ("TransferEncodingError: 400").
        return (f"The reply from {where} broke off or arrived garbled. Try again; if it"
                f" keeps happening, check {what} and the network (a proxy in the way?).")
    return (f"Cannot talk to {where}: the connection failed. Try again; if it keeps"
            f" happening, check {what} and the network.")


def not_ours_text(what: str, url: str, status: int) -> str:
    """The sentence for an answer that is not ``what``'s (an HTML page, another program's
    404, a captive portal): the body is never shown."""
    log.info("%s at %s answered HTTP %s with a body that is not its API's", what, url, status)
    role = _ROLES.get(what, what)
    return (f"The server at {address_of(url)} answered, but not as {role} does"
            f" (HTTP {status})."
            " Check the address and port: another program, or a Wi-Fi login page,"
            " may be answering there.")


def no_model_server_text(endpoint: str, exc: BaseException) -> str:
    """The sentence for a model-server address that got no answer: "nothing listens"
    names the programs a user may have meant to start."""
    if _os_errno(exc) == errno.ECONNREFUSED:
        log.info("model server at %s refused: %s", endpoint, exc)
        return (f"No model server answers at {address_of(endpoint)}. Start Ollama, LM Studio"
                " or llama.cpp's server, or check the address and port.")
    return unreachable_text(MODEL_SERVER, endpoint, exc)


def no_models_text(endpoint: str) -> str:
    return (f"The model server at {address_of(endpoint)} answered but lists no models."
            " Load or pull a model in it, then check again.")
