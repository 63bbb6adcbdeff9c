"""The tools as the model is told about them (OpenAI ``tools`` JSON schemas)."""

from __future__ import annotations

from typing import Any

from gambiarra_desktop.agent.tools.read import MAX_READ_BYTES


def _function(name: str, description: str, properties: dict[str, Any],
              required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required}}}


BASH = _function(
    "bash", "Run a shell command in the workspace folder and get its stdout, stderr and exit"
    " code. Each call needs the user's permission.",
    {"command": {"type": "string", "description": "The command line"},
     "timeout": {"type": "number", "description": "Seconds before it is stopped (default 60)"}},
    ["command"])
READ = _function(
    "read", f"Read lines of a text file inside the workspace (at most {MAX_READ_BYTES // 1024}"
    " KB per call). A file must be read before it is patched.",
    {"filePath": {"type": "string", "description": "Path relative to the workspace"},
     "offset": {"type": "integer", "description": "First line to read, from 1"},
     "limit": {"type": "integer", "description": "How many lines to read"}},
    ["filePath"])
PATCH = _function(
    "patch", "Apply a unified diff (as `diff -u` or `git diff` writes it) to files inside the"
    " workspace. Read each file first; new files need no read.",
    {"patch": {"type": "string", "description": "The unified diff"}}, ["patch"])
AGENT = _function(
    "agent", "Give a self-contained task to a sub-agent with the same tools; get its final"
    " answer back.",
    {"task": {"type": "string", "description": "What the sub-agent should do"}}, ["task"])


def tool_specs(may_delegate: bool) -> list[dict[str, Any]]:
    return [BASH, READ, PATCH, *([AGENT] if may_delegate else [])]
