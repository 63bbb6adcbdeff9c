"""Terminal errors in words; ``hub/api/responses.py`` maps them to HTTP like every other
domain error (the seed's ``{"error", "details"}`` shape)."""

from __future__ import annotations

from gambiarra_desktop.gateway.errors import GatewayError
from gambiarra_desktop.hub.errors import RetryLaterError

DISABLED = "Terminal sessions are disabled on this hub"


class TerminalError(GatewayError):
    """Base of the terminal's errors."""


class TerminalDisabledError(TerminalError):  # 403
    def __init__(self) -> None:
        super().__init__(DISABLED, "turn them on on the app's Terminal page or with"
                                   " `gambiarra serve --enable-terminal`")


class TerminalForbiddenError(TerminalError):  # 403
    """Not from the hub's own machine, a web page's ``Origin``, or a foreign ``Host``."""

    def __init__(self, details: str) -> None:
        super().__init__("Terminal sessions are only for the hub's own machine", details)


class TerminalNeedsJsonError(TerminalError):  # 415
    def __init__(self) -> None:
        super().__init__("Unsupported media type", "send the body as application/json")


class SessionNotFoundError(TerminalError):  # 404
    def __init__(self, session_id: str) -> None:
        super().__init__("Terminal session not found", f"no session with id {session_id!r}")


class SessionEndedError(TerminalError):  # 409
    """Its shell exited or its connection closed: it is listed (``connected: false``) until
    someone deletes it or it idles out, but it can run nothing more."""

    def __init__(self, session_id: str) -> None:
        super().__init__("This terminal session has ended",
                         f"{session_id} is no longer connected; delete it and open another")


class TooManySessionsError(RetryLaterError):  # 429
    def __init__(self, limit: int) -> None:
        super().__init__(f"Too many terminal sessions (at most {limit}); close one first",
                         retry_after_s=1)


class TooManyCommandsError(RetryLaterError):  # 429
    def __init__(self, limit: int) -> None:
        super().__init__(f"This session already runs {limit} commands; wait for one to end",
                         retry_after_s=1)


class InvalidSessionRequestError(TerminalError):  # 400
    """A bad field: ``details`` names it."""

    def __init__(self, details: str) -> None:
        super().__init__("Invalid terminal request", details)


class NotSupportedHereError(TerminalError):  # 400
    """e.g. ``execute`` on a Telnet session (it has no exit codes)."""

    def __init__(self, details: str) -> None:
        super().__init__("Not supported by this session", details)


class TargetRefusedError(TerminalError):  # 403
    """The address actually connected to is not allowed (link-local, metadata, or for
    Telnet anything outside the private ranges)."""

    def __init__(self, details: str) -> None:
        super().__init__("Target not allowed", details)


class TargetUnreachableError(TerminalError):  # 502
    def __init__(self, details: str) -> None:
        super().__init__("Could not connect", details)


class HostKeyUnknownError(TerminalError):  # 409
    """The SSH host's key is not in the hub's known_hosts: the admin must accept it."""

    def __init__(self, host: str, port: int, fingerprint: str, *, address: str = "",
                 key: object = None) -> None:
        super().__init__("Unknown SSH host key",
                         f"{host}:{port} offers {fingerprint}; resend with"
                         f' "hostKeyFingerprint": "{fingerprint}" to trust it, or trust it'
                         " on the app's Terminal page")
        self.fingerprint = fingerprint
        self.host, self.port = host, port
        self.address = address
        """The address the key was fetched from (known_hosts is keyed by it)."""
        self.key = key
        """The offered ``asyncssh.SSHKey``, so the host can trust it in the app."""


class HostKeyMismatchError(TerminalError):  # 409
    """The SSH host's key differs from the one trusted before (or from the fingerprint the
    admin accepted): possibly a machine in the middle. Never connected."""

    def __init__(self, host: str, port: int, fingerprint: str) -> None:
        super().__init__("SSH host key mismatch",
                         f"{host}:{port} now offers {fingerprint}, not the key trusted for it")
        self.fingerprint = fingerprint


class SshAuthError(TerminalError):  # 403: the admin is authenticated; the target refused
    def __init__(self, details: str) -> None:
        super().__init__("SSH login failed", details)


class ApprovalDeniedError(TerminalError):  # 403
    def __init__(self, details: str) -> None:
        super().__init__("The host did not approve this session", details)
