"""Hub settings. Intervals are configurable so tests can run the offline timeout in a second."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

from gambiarra_desktop.hub.proxy.chunk_inbox import DEFAULT_MAX_BODY_BYTES
from gambiarra_desktop.protocol import (
    HEALTH_CHECK_INTERVAL_S,
    PARTICIPANT_TIMEOUT_S,
    SSE_HEARTBEAT_S,
)

APP_DIR_NAME = "gambiarra-desktop"
DATABASE_FILE_NAME = "hub.sqlite3"


def default_data_dir() -> Path:
    """The platform's per-user data dir, where the embedded SQLite database lives."""
    return Path(user_data_dir(APP_DIR_NAME, appauthor=False))


@dataclass(frozen=True, slots=True)
class HubConfig:
    health_check_interval_s: float = HEALTH_CHECK_INTERVAL_S
    participant_timeout_s: float = PARTICIPANT_TIMEOUT_S
    sse_heartbeat_s: float = SSE_HEARTBEAT_S
    max_body_bytes: int = 10 * 1024 * 1024
    """Larger request bodies get 413; chat prompts with images stay well below this."""
    upstream_connect_timeout_s: float = 10.0
    upstream_first_byte_timeout_s: float = 300.0
    """A CPU model can take minutes to read a long prompt before its first token."""
    upstream_idle_timeout_s: float = 300.0
    """Longest silence between two chunks; a stream that keeps producing never times out."""
    queue_max_per_room: int = 64
    """Requests that may wait for a free participant in one room; more get 429."""
    queue_max_wait_s: float = 30.0
    """Longest wait in the queue before a 429 with Retry-After."""
    failover_retries: int = 2
    """Other participants tried when one fails before the first byte reached the client."""
    degrade_after_failures: int = 2
    degraded_cooldown_s: float = 15.0
    loading_grace_factor: float = 4.0
    """A participant loading its model may stay silent this many times longer."""
    max_rooms: int = 1000
    """Cap on rooms, so a script cannot fill the disk (they are deleted by their creator or
    the hub's owner, or expire when idle)."""
    max_participants_per_room: int = 256
    room_idle_ttl_s: float = 7 * 24 * 3600.0
    """A room in which nobody has been online for this long is deleted."""
    max_rooms_per_address: int = 50
    max_participants_per_address: int = 32
    """Per client address: rooms it holds, seats it holds in one room (one script cannot
    take every room, or fill someone else's)."""
    participant_forget_s: float = 24 * 3600.0
    """A participant offline for this long is removed from its room."""
    password_max_failures: int = 5
    password_failure_window_s: float = 60.0
    """Wrong room passwords allowed per client address within the window; more get 429
    before any argon2 time is spent."""
    owner_token_hash: str | None = None
    """SHA-256 of the hub owner's token (the ``owner-token`` file in the data dir): it may
    delete any room. ``HubServer`` fills it in."""
    sse_queue_size: int = 1000
    """Events buffered per SSE listener; a listener that falls this far behind is dropped."""
    sse_buffer_bytes: int = 1024 * 1024
    """Bytes buffered per SSE listener: with large events the event count alone lets a
    listener that reads nothing hold megabytes; over either bound it is dropped."""
    max_event_listeners: int = 2000
    max_event_listeners_per_address: int = 64
    """Open SSE streams per hub and per client address; more get 503 / 429."""
    max_connections: int = 0
    """Open HTTP connections per hub; more get a quick 503 and are closed. 0 derives it from
    the open-file limit, keeping a reserve for model-server sockets, files and SQLite, so
    idle connections can never lock everyone out by using up file descriptors."""
    max_connections_per_address: int = 256
    """Open HTTP connections per client address; more get a quick 429 and are closed."""
    header_timeout_s: float = 10.0
    """A connection must send a complete request head within this time (slowloris)."""
    # Memory bounds against hostile model servers and slow clients.
    max_upstream_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """A non-streamed answer from a model larger than this fails (502, or the next
    participant): it is held in memory whole. Streamed answers are not capped."""
    body_read_timeout_s: float = 30.0
    """A request body must arrive whole within this time, or 408 (a trickled body)."""
    body_read_budget_bytes: int = 256 * 1024 * 1024
    """Request-body bytes the hub reads at once, all clients together (each request counts
    its Content-Length, or ``max_body_bytes`` when unknown); over it, 503 with Retry-After."""
    gateway_probe_interval_s: float = 30.0
    """How often the gateway asks each configured provider for its model list (health)."""
    login_max_failures: int = 5
    login_failure_window_s: float = 15 * 60.0
    """Failed admin logins allowed per client address within the window; more get 429."""
    rate_limit_per_address_per_minute: int = 100
    """Keyless requests to the gateway root per client address (an IPv6 /64) per minute;
    0 is no limit. Keyless room routes are never limited (the Gambiarra contract)."""
    rate_limit_per_key_per_hour: int = 1000
    """Requests per API key per hour on every route (a key's own rpm/tpm come on top); 0 is
    no limit."""
    redis_url: str | None = None
    """Where rate-limit counters live when several hubs share them; ``None``: in memory."""
    enable_terminal: bool = False
    """Terminal sessions (seed 002): off unless the host turns them on; even then only the
    admin, from this machine, can use them (``terminal/guard.py``)."""
    terminal_workdir: str | None = None
    """The folder local sessions and commands start in; ``None``: the user's home."""
    terminal_max_sessions: int = 8
    terminal_idle_timeout_s: float = 15 * 60.0
