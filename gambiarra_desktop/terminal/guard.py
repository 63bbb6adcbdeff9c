"""Who may use terminal sessions: the admin, on the hub's own machine, from a program (not
a web page). Security rule 2, checked on every terminal request, in this order:

1. Turned on (off by default): else 403 "Terminal sessions are disabled on this hub".
2. The socket's peer address is loopback (never a header such as ``X-Forwarded-For``).
3. No browser markers: any ``Origin`` or ``Sec-Fetch-*`` header means a web page sent it,
   and web pages (even the hub's own) may not run commands.
4. ``Host`` names this machine's loopback (``localhost``, ``127.x``, ``[::1]``): a page on
   a DNS-rebound name that resolves to 127.0.0.1 sends its own name there.
5. The admin's token (401 without a valid one).
6. A body, where there is one, is JSON (415 otherwise): an HTML form cannot send that.

The routes also carry no CORS headers (``responses.add_cors_header`` skips them) and answer
a preflight with 403, so a browser never even lets a page read a refusal.
"""

from __future__ import annotations

from aiohttp import web

from gambiarra_desktop.gateway.routes import require_admin
from gambiarra_desktop.local_callers import from_a_browser, is_loopback_host, is_loopback_peer
from gambiarra_desktop.terminal.errors import TerminalForbiddenError, TerminalNeedsJsonError
from gambiarra_desktop.terminal.manager import TERMINAL, TerminalManager


async def admit(request: web.Request) -> tuple[TerminalManager, str]:
    """The manager and the actor's name, or the refusal (see the module's order)."""
    manager = request.app[TERMINAL]
    manager.require_enabled()
    if not is_loopback_peer(request.remote):
        raise TerminalForbiddenError("terminal sessions answer only programs on the hub's"
                                     " own machine")
    if from_a_browser(request.headers):
        raise TerminalForbiddenError("web pages may not use terminal sessions")
    if not is_loopback_host(request.headers.get("Host", "")):
        raise TerminalForbiddenError("call the hub as localhost or 127.0.0.1")
    claims = await require_admin(request)
    if request.method == "POST" and request.content_type != "application/json":
        raise TerminalNeedsJsonError
    return manager, claims.username
