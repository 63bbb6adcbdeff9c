"""What an agent server is configured with, in one frozen value the CLI, the desktop app
and the tests build the same way."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 4000
DEFAULT_HOST = "127.0.0.1"
DEFAULT_HUB_BASE_URL = "http://127.0.0.1:3000/v1"
"""The local hub's root gateway, where ``auto`` routing lives."""
RELAY_TIMEOUT_S = 300.0
"""A pending permission counts as denied after this (security rule 4)."""
HEARTBEAT_S = 15.0
DEFAULT_MAX_ITERATIONS = 10
MAX_ITERATIONS_CAP = 50
MAX_SESSIONS = 8
MAX_DEPTH = 2
"""Agents below the top one: a sub-agent may start one more, that one none."""
MODEL_TIMEOUT_S = 300.0
"""One model call, first byte to last: a local model may be slow, never endless."""


@dataclass(frozen=True, slots=True)
class AgentConfig:
    workspace: Path
    """The folder the tools work in; nothing outside it is read or patched."""
    data_dir: Path
    """Where the token, the permission rules and the audit are kept."""
    base_url: str = DEFAULT_HUB_BASE_URL
    default_model: str | None = None
    api_key: str | None = None
    """Sent to ``base_url`` (a hub API key, or a room password) when set."""
    relay_timeout_s: float = RELAY_TIMEOUT_S
    heartbeat_s: float = HEARTBEAT_S
    write_timeout_s: float = 60.0
    """A client that stops reading for this long is gone: its session (one of a few slots)
    is freed rather than held by a full socket buffer."""
    default_max_iterations: int = DEFAULT_MAX_ITERATIONS
    max_sessions: int = MAX_SESSIONS
    model_timeout_s: float = MODEL_TIMEOUT_S
    bash_timeout_cap_s: float = 300.0
    bash_max_output_bytes: int = 256 * 1024

    def replace(self, **changes: object) -> AgentConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
