"""Whether a tool call may run: decided here, by the server, never by the request.

Three sources, narrowest first:

1. The request's ``permissions`` (``{"bash": "deny", "*": "ask", ...}``) can only narrow:
   ``deny`` refuses that tool at once, ``ask`` ignores stored rules for it. ``allow`` is
   accepted for the source system's clients but grants nothing.
2. Stored "always" rules (:class:`RuleBook`), per workspace, each an **exact** match: a
   ``bash`` rule is the command's argv as the shell would split it (``git status`` allows
   ``git status`` and ``git  'status'``, never ``git push`` nor ``git status --porcelain``);
   a ``read``/``patch`` rule is the exact set of workspace files; an ``agent`` rule allows
   starting sub-agents (whose own tool calls still ask).
3. Otherwise the call waits for a relay answer (:mod:`agent.relays`).

A command that the shell would not run as one plain argv (chaining, pipes, redirection,
subshells, backquotes, ``$`` expansions, globs, ``~``, braces, a leading ``NAME=value``,
comments, several lines) can never become a rule: it always asks, because its exact text
says nothing about what it will really do.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any, Literal

from gambiarra_desktop.agent.errors import InvalidAgentRequestError
from gambiarra_desktop.agent.unified_diff import PatchError, parse_patch
from gambiarra_desktop.agent.workspace import Workspace

ToolName = Literal["bash", "read", "patch", "agent"]
TOOL_NAMES: tuple[ToolName, ...] = ("bash", "read", "patch", "agent")
Level = Literal["allow", "ask", "deny"]
LEVELS: tuple[Level, ...] = ("allow", "ask", "deny")
ANY_TOOL = "*"
SHELL_OPERATORS = frozenset(";&|<>()")
NEVER_IN_A_RULE = ("`", "$", "\n", "\r", "#", "\\")
"""Backquotes and ``$`` expand even inside double quotes; ``#`` starts a comment; a
backslash can hide an operator from a naive reader. All of these always ask."""
EXPANDING = frozenset("*?[]~{}")
"""A word with a glob, a tilde or braces means one thing quoted and another bare, and the
argv the rule keeps has lost its quotes: ``rm -f '*'`` must never allow ``rm -f *``. Such
words never become rules."""
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
"""``NAME=value command``: the environment changes what the command does (``GIT_DIR=``,
``LD_PRELOAD=``), so a leading assignment never becomes a rule either."""
MAX_RULE_ARGS = 64


@dataclass(frozen=True, slots=True)
class Rule:
    """One "always allow": a tool and the exact thing it may do."""

    tool: ToolName
    key: tuple[str, ...]

    @property
    def words(self) -> str:
        """What the rule allows, as the approval card and the rules list show it."""
        if self.tool == "bash":
            return f"always run exactly: {shlex.join(self.key)}"
        if self.tool == "agent":
            return "always start sub-agents (their own tool calls still ask)"
        verb = "read" if self.tool == "read" else "patch"
        return f"always {verb} exactly: {', '.join(self.key)}"

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "key": list(self.key)}


def plain_argv(command: str) -> tuple[str, ...] | None:
    """The argv ``sh -c command`` would run, when it is one plain command; else None."""
    if any(mark in command for mark in NEVER_IN_A_RULE):
        return None
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        argv = tuple(lexer)
    except ValueError:  # An unbalanced quote: the shell would not run it as written either.
        return None
    if not argv or len(argv) > MAX_RULE_ARGS:
        return None
    if any(token and set(token) <= SHELL_OPERATORS for token in argv):
        return None
    if any(EXPANDING.intersection(token) for token in argv) or ASSIGNMENT.match(argv[0]):
        return None
    return argv


def rule_for(tool: str, params: Any, workspace: Workspace) -> Rule | None:
    """The exact rule an "always" answer to this call would store, or None when the call
    cannot be allowed always (it then asks every time)."""
    if not isinstance(params, dict):
        return None
    if tool == "bash":
        command = params.get("command")
        argv = plain_argv(command) if isinstance(command, str) else None
        return None if argv is None else Rule("bash", argv)
    if tool == "read":
        paths = _workspace_paths(workspace, [params.get("filePath")])
        return None if paths is None else Rule("read", paths)
    if tool == "patch":
        patch = params.get("patch")
        if not isinstance(patch, str):
            return None
        try:
            files = parse_patch(patch)
        except PatchError:
            return None
        paths = _workspace_paths(workspace, [file.path for file in files])
        return None if paths is None else Rule("patch", paths)
    if tool == "agent":
        return Rule("agent", ())
    return None


def _workspace_paths(workspace: Workspace, names: list[Any]) -> tuple[str, ...] | None:
    found: set[str] = set()
    for name in names:
        try:
            found.add(workspace.relative(workspace.resolve(name)))
        except Exception:  # noqa: BLE001 - any unusable path means "no rule", never a crash.
            return None
    return tuple(sorted(found)) if found else None


@dataclass(frozen=True, slots=True)
class RequestPermissions:
    """A request's ``permissions``, already validated; it can only take rights away."""

    levels: dict[str, Level]

    def level(self, tool: str) -> Level | None:
        return self.levels.get(tool, self.levels.get(ANY_TOOL))

    def denies(self, tool: str) -> bool:
        return self.level(tool) == "deny"

    def ignores_rules(self, tool: str) -> bool:
        return self.level(tool) in ("ask", "deny")


NO_NARROWING = RequestPermissions({})


def request_permissions(value: Any) -> RequestPermissions:
    """Validate the request's ``permissions`` (absent or null: no narrowing)."""
    if value is None:
        return NO_NARROWING
    if not isinstance(value, dict):
        raise InvalidAgentRequestError(
            'permissions must be an object such as {"bash": "deny", "read": "ask"}')
    levels: dict[str, Level] = {}
    for tool, level in value.items():
        if tool != ANY_TOOL and tool not in TOOL_NAMES:
            raise InvalidAgentRequestError(
                f"permissions: unknown tool {str(tool)[:40]!r} (tools: {', '.join(TOOL_NAMES)},"
                f" or {ANY_TOOL!r} for all)")
        if level not in LEVELS:
            raise InvalidAgentRequestError(
                f"permissions.{tool} must be one of {', '.join(LEVELS)}")
        levels[tool] = level
    return RequestPermissions(levels)
