"""The stored "always allow" rules, per workspace, in one JSON file in the data dir.

Per workspace because "always run ``make``" in one project says nothing about another.
The file is small and read once; every change rewrites it whole through a temporary file
and a rename, so a crash leaves the old rules or the new ones, never half a file. A file
that cannot be read as rules is set aside (``.bad``) rather than trusted or lost silently.
The app lists the rules and removes them; a removed rule asks again from the next call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from gambiarra_desktop.agent.permissions import TOOL_NAMES, Rule

log = logging.getLogger(__name__)

RULES_FILE = "agent-rules.json"
MAX_RULES_PER_WORKSPACE = 500
MAX_KEY_CHARS = 8192


class RuleBook:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / RULES_FILE
        self._rules: dict[str, dict[Rule, float]] = {}
        self._lock = asyncio.Lock()
        self._load()

    def rules(self, workspace: Path) -> list[tuple[Rule, float]]:
        """``(rule, created_at)`` for one workspace, oldest first."""
        return sorted(self._rules.get(str(workspace), {}).items(), key=lambda item: item[1])

    def allows(self, workspace: Path, rule: Rule | None) -> bool:
        return rule is not None and rule in self._rules.get(str(workspace), {})

    async def add(self, workspace: Path, rule: Rule) -> bool:
        """Store ``rule``; False (and nothing stored) when the workspace is full."""
        async with self._lock:
            kept = self._rules.setdefault(str(workspace), {})
            if rule in kept:
                return True
            if len(kept) >= MAX_RULES_PER_WORKSPACE:
                log.warning("not storing an agent rule: %s already has %d",
                            workspace, MAX_RULES_PER_WORKSPACE)
                return False
            kept[rule] = time.time()
            await asyncio.to_thread(self._save, self._snapshot())
            return True

    async def remove(self, workspace: Path, rule: Rule) -> bool:
        async with self._lock:
            kept = self._rules.get(str(workspace), {})
            if kept.pop(rule, None) is None:
                return False
            await asyncio.to_thread(self._save, self._snapshot())
            return True

    def _snapshot(self) -> dict[str, Any]:
        return {"version": 1, "workspaces": {
            workspace: [{**rule.to_json(), "created": created}
                        for rule, created in sorted(rules.items(), key=lambda item: item[1])]
            for workspace, rules in self._rules.items() if rules}}

    def _save(self, snapshot: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "w") as file:
                json.dump(snapshot, file, indent=1)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def _load(self) -> None:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read the agent rules in %s (%s): every call will ask",
                        self.path, exc.strerror)
            return
        try:
            self._rules = _parse(json.loads(raw))
        except (ValueError, TypeError, KeyError) as exc:
            aside = self.path.with_suffix(".bad")
            log.warning("the agent rules in %s are unreadable (%s); moved to %s, every call"
                        " will ask", self.path, exc, aside)
            os.replace(self.path, aside)


def _parse(data: Any) -> dict[str, dict[Rule, float]]:
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ValueError("not a version 1 rules file")
    parsed: dict[str, dict[Rule, float]] = {}
    for workspace, rows in dict(data["workspaces"]).items():
        kept: dict[Rule, float] = {}
        for row in list(rows)[:MAX_RULES_PER_WORKSPACE]:
            tool = row["tool"]
            key = tuple(row["key"])
            if tool not in TOOL_NAMES or not all(isinstance(part, str) for part in key):
                raise ValueError(f"bad rule {row!r:.80}")
            if sum(len(part) for part in key) > MAX_KEY_CHARS:
                raise ValueError("rule too long")
            kept[Rule(tool, key)] = float(row.get("created", 0.0))
        parsed[str(workspace)] = kept
    return parsed
