"""``read {filePath, offset?, limit?}``: lines of a file inside the workspace, at most
:data:`MAX_READ_BYTES` per call (what the model gets is sent to whichever machine serves
it, and a context window is not a place for a whole log file)."""

from __future__ import annotations

import asyncio
from typing import Any

from gambiarra_desktop.agent.errors import ToolError
from gambiarra_desktop.agent.tools.context import ToolContext

MAX_READ_BYTES = 50 * 1024
MAX_FILE_BYTES = 8 * 1024 * 1024
"""Read whole to hash it for a later patch; a bigger file is not the agent's to edit."""
DEFAULT_LIMIT = 2000


async def read(params: Any, context: ToolContext) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise ToolError("read takes {filePath, offset?, limit?}")
    offset = _positive(params.get("offset"), "offset", 1)
    limit = _positive(params.get("limit"), "limit", DEFAULT_LIMIT)
    path = context.workspace.resolve(params.get("filePath"))
    content, size = await asyncio.to_thread(context.workspace.read_bytes, path,
                                            MAX_FILE_BYTES + 1)
    if size > MAX_FILE_BYTES or len(content) > MAX_FILE_BYTES:
        raise ToolError(f"{context.workspace.relative(path)} is larger than"
                        f" {MAX_FILE_BYTES // 1024 // 1024} MB; read a part of it with bash")
    context.reads.note(path, content)
    lines = _lines(content.decode("utf-8", errors="replace"))
    chosen: list[str] = []
    used = 0
    truncated = False
    for line in lines[offset - 1: offset - 1 + limit]:
        size_of = len(line.encode())
        if used + size_of > MAX_READ_BYTES:
            truncated = True
            break
        chosen.append(line)
        used += size_of
    end = offset - 1 + len(chosen)
    return {"filePath": context.workspace.relative(path), "content": "".join(chosen),
            "startLine": offset, "endLine": end, "totalLines": len(lines),
            "truncated": truncated}


def _positive(value: Any, name: str, default: int) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10_000_000:
        raise ToolError(f"{name} must be a whole number of lines, 1 or more")
    return value


def _lines(text: str) -> list[str]:
    """Lines split at ``\n`` only, endings kept: what diff tools (and ``patch``) call a line.
    ``str.splitlines`` would also split at form feeds, ``\r`` or U+2028, and the model's
    patch context would then never match the file."""
    lines = text.split("\n")
    last = lines.pop()
    return [line + "\n" for line in lines] + ([last] if last else [])
