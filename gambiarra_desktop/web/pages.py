"""The web page's files, read once from the package, with the headers every one carries.

A small fixed set, looked up by exact name: no path from a request ever reaches the file
system. Each file is read when the hub is built (a missing one fails loudly there, not on a
guest's first visit) and served from memory with a strong ETag, so a phone that reloads the
page gets ``304`` instead of the bytes again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none';"
    " frame-ancestors 'none'"
)
"""Scripts, styles and connections from this hub only, no inline script or style: a
nickname a participant chose can never run as code, and the room's password, which the
page sends with its API calls, can only go to the hub that served the page."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-cache",  # Revalidate (cheap, by ETag): a new hub's page shows at once.
}

MEDIA_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}

PAGE = "index.html"
ASSETS = ("app.js", "api.js", "rooms.js", "room.js", "chat.js", "snippets.js", "copy.js",
          "style.css", "icon.svg")
"""Everything under ``/web/``. A file added to ``static/`` is served once it is named here."""


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str

    def matches(self, if_none_match: str | None) -> bool:
        """Whether the browser's cached copy (``If-None-Match``) is this one."""
        if not if_none_match:
            return False
        return any(tag.strip().removeprefix("W/") in (self.etag, "*")
                   for tag in if_none_match.split(","))


def load_files() -> dict[str, StaticFile]:
    """The page and its assets by name, read from the installed package."""
    folder = resources.files(__package__) / "static"
    files: dict[str, StaticFile] = {}
    for name in (PAGE, *ASSETS):
        body = (folder / name).read_bytes()
        suffix = name[name.rindex("."):]
        digest = hashlib.sha256(body).hexdigest()[:32]
        files[name] = StaticFile(body, MEDIA_TYPES[suffix], f'"{digest}"')
    return files
