"""One line of plain words for each room event, shared by ``gambiarra monitor`` and the
desktop app's activity log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def describe(name: str, data: Any, nicknames: Mapping[str, str] | None = None) -> str:
    """``nicknames`` maps participant ids to names, for events that carry only the id."""
    if not isinstance(data, dict):
        return str(data)
    pid = str(data.get("participantId") or data.get("id") or "")
    who = data.get("nickname") or (nicknames or {}).get(pid) or pid or "someone"
    if name == "participant:joined":
        return f"{who} joined with {data.get('model')} ({data.get('transport', 'direct')})"
    if name == "participant:left":
        return f"{who} left"
    if name == "participant:offline":
        reason = data.get("reason")  # Only when the participant said why (model down).
        return f"{who} went offline: {reason}" if isinstance(reason, str) and reason \
            else f"{who} went offline"
    if name == "participant:online":
        return f"{who} is back online"
    if name == "llm:queued":
        return f"a request waits for a free participant (position {data.get('position')})"
    if name == "queue:changed":
        return f"{data.get('waiting')} request(s) wait for a free participant"
    if name == "llm:request":
        return f"request for {data.get('model')} went to {who}"
    if name == "llm:complete" and isinstance(data.get("metrics"), dict):
        m = data["metrics"]
        return (f"{who} answered: {m.get('tokens')} tokens, first token after"
                f" {m.get('latencyFirstTokenMs', 0):.0f} ms, {m.get('tokensPerSecond')} tok/s")
    if name == "llm:error":
        return f"{who} failed: {data.get('error')}"
    if name == "room:created":
        return f"room {data.get('code')} ({data.get('name')}) created"
    return str(who)
