"""The words the Agent page shows for a tool call, its result and its approval.

Plain functions of the core's values (no widgets), so the card, the transcript and the tray
say the same thing for the same call, and the tests can read them without a window.
Everything here is shown as plain text: a command, a diff or a model's words are never
markup.
"""

from __future__ import annotations

import json
from typing import Any

from gambiarra_desktop.agent.permissions import Rule

PARAM_SHOWN = {"bash": "command", "read": "filePath", "patch": "patch", "agent": "task"}
"""The one parameter that says exactly what a call will do."""
TOOL_WORDS = {"bash": "run a command", "read": "read a file", "patch": "change files",
              "agent": "start a sub-agent"}
ASKED_EVERY_TIME = {
    "bash": "This command chains, pipes, redirects or expands something, so it cannot become"
            " a rule: it is asked every time.",
    "read": "This path cannot become a rule (it is outside the workspace or unusable), so"
            " it is asked every time.",
    "patch": "This patch cannot become a rule (its files could not be read from it), so it"
             " is asked every time.",
}
NOTIFY_CHARS = 200
"""A tray bubble is small: the card holds the whole text."""
MAX_SHOWN_OUTPUT_CHARS = 20_000
"""A tool card shows this much of an output; the model got it all (the core caps it)."""


def call_text(tool: str, params: Any) -> str:
    """The exact command, file, diff or task of a call; other arguments as JSON."""
    key = PARAM_SHOWN.get(tool)
    if key is not None and isinstance(params, dict) and isinstance(params.get(key), str):
        return str(params[key])
    return json.dumps(params, ensure_ascii=False, indent=1)


def notify_text(tool: str, params: Any) -> str:
    """``<command or file>`` on one line, cut for a tray bubble."""
    text = " ".join(call_text(tool, params).split())
    return text if len(text) <= NOTIFY_CHARS else text[:NOTIFY_CHARS - 1] + "…"


def tool_heading(tool: str) -> str:
    words = TOOL_WORDS.get(tool)
    return f"{tool}: {words}" if words else tool


def ask_heading(tool: str) -> str:
    """An approval card's title: "run a command (bash)"."""
    words = TOOL_WORDS.get(tool)
    return f"{words} ({tool})" if words else f"use the tool {tool}"


def proposed_by(who: str | None, base_url: str) -> str:
    """Whose model asked: a room participant's machine, or the model server itself."""
    return f"Proposed by {who}" if who else f"Proposed by the model at {base_url}"


def rule_text(tool: str, rule: Rule | None) -> str:
    """What "Always allow" would store, or why this call can only be allowed once."""
    if rule is not None:
        return f"Always allow = {rule.words}"
    return ASKED_EVERY_TIME.get(tool, "This call is asked every time.")


def result_text(output: Any) -> tuple[str, str]:
    """``(kind, text)`` of a tool result: kind is "ok", "denied" or "error"."""
    if isinstance(output, dict):
        if output.get("status") == "denied":
            return "denied", f"Denied: {output.get('reason') or 'denied by the user'}"
        if set(output) == {"error"}:
            return "error", f"Error: {output['error']}"
        if "exitCode" in output:
            return "ok", _shown(_command_output(output))
        if "content" in output and isinstance(output["content"], str):
            return "ok", _shown(output["content"])
        if "result" in output and isinstance(output["result"], str):
            return "ok", _shown(output["result"])
    return "ok", _shown(json.dumps(output, ensure_ascii=False, indent=1))


def _command_output(output: dict[str, Any]) -> str:
    parts = [str(output.get("stdout") or "")]
    if output.get("stderr"):
        parts.append(f"[stderr]\n{output['stderr']}")
    status = f"[exit code {output.get('exitCode')}]"
    if output.get("timedOut"):
        status += " [timed out]"
    if output.get("truncated"):
        status += " [output cut]"
    parts.append(status)
    return "\n".join(part.rstrip("\n") for part in parts if part)


def _shown(text: str) -> str:
    if len(text) <= MAX_SHOWN_OUTPUT_CHARS:
        return text
    return text[:MAX_SHOWN_OUTPUT_CHARS] + f"\n…[{len(text) - MAX_SHOWN_OUTPUT_CHARS} more" \
        " characters not shown]"
