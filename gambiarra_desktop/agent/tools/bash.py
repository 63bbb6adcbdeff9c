"""``bash {command, timeout?}``: one command in the workspace, through the one safe runner
(timeout, process-group kill, output cap, scrubbed environment; security rule 6), audited
before it runs. ``timeout`` is in seconds, capped by the server's limit."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from gambiarra_desktop.agent.errors import ToolError
from gambiarra_desktop.agent.tools.context import ToolContext
from gambiarra_desktop.execution.audit import AuditEntry
from gambiarra_desktop.execution.runner import run_command

DEFAULT_TIMEOUT_S = 60.0
MAX_COMMAND_CHARS = 16 * 1024
ACTOR = "agent"


async def bash(params: Any, context: ToolContext) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise ToolError("bash takes {command, timeout?}")
    command = params.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ToolError("command must be a non-empty string")
    if len(command) > MAX_COMMAND_CHARS or "\x00" in command:
        raise ToolError(f"command must be at most {MAX_COMMAND_CHARS} characters of text")
    timeout = params.get("timeout", DEFAULT_TIMEOUT_S)
    if timeout is None:
        timeout = DEFAULT_TIMEOUT_S
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) \
            or not math.isfinite(timeout) or timeout <= 0:
        raise ToolError("timeout must be a positive number of seconds")
    timeout_s = min(float(timeout), context.bash_timeout_cap_s)
    row = None
    if context.audit is not None:  # Written before it runs: what cannot be audited won't run.
        row = await context.audit.record(AuditEntry(
            ACTOR, context.peer, "execute", session_id=context.session_id,
            session_type="agent", target=str(context.workspace.root), command=command))
    try:
        result = await run_command(command, cwd=context.workspace.root, timeout_s=timeout_s,
                                   max_output_bytes=context.bash_max_output_bytes)
    except asyncio.CancelledError:
        if row is not None and context.audit is not None:
            await asyncio.shield(context.audit.finish(row, None, "cancelled"))
        raise
    except OSError as exc:
        if row is not None and context.audit is not None:
            await context.audit.finish(row, None, f"could not start: {exc.strerror}")
        raise ToolError(f"could not start the command: {exc.strerror or exc}") from exc
    if row is not None and context.audit is not None:
        outcome = "timed out" if result.timed_out else (
            "truncated" if result.truncated else "ok")
        await context.audit.finish(row, result.exit_code, outcome)
    return result.to_json()
