"""Who may drive the agent: a program on this machine holding the agent token, never a web
page. Checked on every request, in this order (security rule 2):

1. The socket's peer is loopback (403): the API is unreachable from the LAN even when the
   socket is bound wider.
2. No browser markers (``Origin``, ``Sec-Fetch-*``) (403): web pages may not run commands.
3. ``Host`` is a loopback name (403): defeats DNS rebinding.
4. ``Authorization: Bearer <agent token>`` (401).
5. A ``POST`` body is ``application/json`` (415): an HTML form cannot send that; and not
   compressed (415): it is never inflated.

No response carries CORS headers, and a preflight is answered 403, so a browser never lets
a page read anything from here.
"""

from __future__ import annotations

from aiohttp import web

from gambiarra_desktop.agent.errors import (
    AgentForbiddenError,
    AgentNeedsJsonError,
    AgentUnauthorizedError,
)
from gambiarra_desktop.agent.token import TokenCheck
from gambiarra_desktop.hub.api import body_checks
from gambiarra_desktop.hub.api.bearer import bearer_value
from gambiarra_desktop.local_callers import from_a_browser, is_loopback_host, is_loopback_peer


def admit(request: web.Request, token: TokenCheck) -> None:
    if not is_loopback_peer(request.remote):
        raise AgentForbiddenError("the agent API answers only programs on this machine")
    if from_a_browser(request.headers) or request.method == "OPTIONS":
        raise AgentForbiddenError("web pages may not use the agent API")
    if not is_loopback_host(request.headers.get("Host", "")):
        raise AgentForbiddenError("call the agent API as localhost or 127.0.0.1")
    if not token.matches(bearer_value(request.headers)):
        raise AgentUnauthorizedError
    if request.method == "POST" and request.content_type != "application/json":
        raise AgentNeedsJsonError
    if (refusal := body_checks.encoding_refusal(request.headers)) is not None:
        raise AgentNeedsJsonError(refusal)
