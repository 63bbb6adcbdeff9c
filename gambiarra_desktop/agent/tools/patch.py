"""``patch {patch}``: a unified diff applied inside the workspace, all files or none.

Each file it changes must have been read in this session (``read``) and be unchanged since,
so the model edits what is really there; a new file needs no read, but may not exist yet.
Every result is computed before anything is written; then each file is replaced through a
temporary file and a rename (its mode kept), so a reader never sees half a file. The
files written become the session's new "read" state, so a follow-up patch needs no re-read.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from gambiarra_desktop.agent.errors import ToolError
from gambiarra_desktop.agent.tools.context import ToolContext
from gambiarra_desktop.agent.tools.read import MAX_FILE_BYTES
from gambiarra_desktop.agent.unified_diff import (
    FilePatch,
    PatchError,
    apply_file_patch,
    parse_patch,
)
from gambiarra_desktop.execution.audit import AuditEntry

Change = tuple[Path, str, bytes | None, FilePatch]
"""(path, its workspace name, the new bytes or None to delete, the patch)."""


async def patch(params: Any, context: ToolContext) -> dict[str, Any]:
    if not isinstance(params, dict) or not isinstance(params.get("patch"), str):
        raise ToolError("patch takes {patch}: a unified diff as text")
    try:
        files = parse_patch(params["patch"])
        changes = await asyncio.to_thread(lambda: [_plan(file, context) for file in files])
    except PatchError as exc:
        raise ToolError(exc.message) from exc
    if len({path for path, *_ in changes}) != len(changes):
        raise ToolError("the patch changes the same file twice; send one diff per file")
    if context.audit is not None:
        await context.audit.record(AuditEntry(
            "agent", context.peer, "patch", session_id=context.session_id,
            session_type="agent", target=str(context.workspace.root),
            command=", ".join(name for _, name, *_ in changes), outcome="ok"))
    await asyncio.to_thread(_write_all, changes)
    summary = []
    for path, name, new, file in changes:
        if new is not None:
            context.reads.note(path, new)
        else:
            context.reads.seen.pop(path, None)
        summary.append({"path": name, "action": _action(file, new), **_counts(file)})
    return {"status": "applied", "files": summary}


def _plan(file: FilePatch, context: ToolContext) -> Change:
    if file.old_path is not None and file.new_path is not None and \
            _clean(file.old_path) != _clean(file.new_path):
        raise ToolError(f"renaming {file.old_path} to {file.new_path} is not supported; patch"
                        " the file in place, then move it with bash")
    workspace = context.workspace
    path = workspace.resolve(_clean(file.path))
    name = workspace.relative(path)
    exists = path.exists()
    original: str | None = None
    if not exists and file.old_path is not None:
        raise ToolError(f"{name} does not exist; a new file's diff starts with --- /dev/null")
    if exists:
        content, size = workspace.read_bytes(path, MAX_FILE_BYTES + 1)
        if size > MAX_FILE_BYTES:
            raise ToolError(f"{name} is too large to patch")
        seen = context.reads.unchanged(path, content)
        if seen is None:
            raise ToolError(f"read {name} before patching it (use the read tool)")
        if not seen:
            raise ToolError(f"{name} changed since it was read; read it again, then patch")
        try:
            original = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ToolError(f"{name} is not UTF-8 text; it cannot be patched") from exc
    result = apply_file_patch(original, file)
    if result is not None and not path.parent.is_dir():
        raise ToolError(f"the folder of {name} does not exist; create it with bash first")
    return path, name, None if result is None else result.encode("utf-8"), file


def _clean(name: str) -> str:
    return name.strip()


def _write_all(changes: list[Change]) -> None:
    for path, _, new, _ in changes:
        if new is None:
            path.unlink(missing_ok=True)
            continue
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
        # mkstemp: a random name opened O_EXCL, so a link planted in the workspace under a
        # guessable name can never be written through.
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                            suffix=".agent.tmp")
        temporary = Path(name)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(new)
            os.chmod(temporary, mode)  # Our own new file (mkstemp made it 0600).
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


def _action(file: FilePatch, new: bytes | None) -> str:
    if new is None:
        return "deleted"
    return "created" if file.old_path is None else "modified"


def _counts(file: FilePatch) -> dict[str, int]:
    lines = [line for hunk in file.hunks for line in hunk.lines]
    return {"added": sum(line.startswith("+") for line in lines),
            "removed": sum(line.startswith("-") for line in lines)}
