"""Where and how the hub reaches a participant's model server."""

from __future__ import annotations

from urllib.parse import urlsplit

ALLOWED_ENDPOINT_SCHEMES = frozenset({"http", "https"})


def is_valid_endpoint(endpoint: str) -> bool:
    """Only plain http(s) URLs with a host: no ``file:``, no ``unix:``, no credentials."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port  # Raises ValueError for a malformed port.
    except ValueError:
        return False
    del port
    return (
        parts.scheme.lower() in ALLOWED_ENDPOINT_SCHEMES
        and bool(parts.hostname)
        and parts.username is None
        and not parts.query
        and not parts.fragment
    )


def chat_completions_url(endpoint: str) -> str:
    """The upstream chat URL. ``http://h:1234`` and ``http://h:1234/v1`` both work, since
    users copy either form from their model server's settings."""
    base = endpoint.rstrip("/")
    if base.endswith("/v1"):
        return f"{base}/chat/completions"
    return f"{base}/v1/chat/completions"
