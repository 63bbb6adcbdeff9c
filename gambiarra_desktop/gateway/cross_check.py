"""Cross-check: a second model reviews an answer and gives a verdict.

The reviewer is asked for JSON (``{"verdict": "agree"|"disagree", "reason": ...}``), but
small local models often answer in prose, wrap the JSON in a code fence or add words
around it. :func:`parse_verdict` reads all of these; what it cannot read is ``unclear``,
never a guess presented as agreement.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from gambiarra_desktop.gateway.model_entries import ModelConfig

Verdict = Literal["agree", "disagree", "unclear", "unavailable"]
MAX_REASON_CHARS = 500
MAX_REVIEW_TOKENS = 300
MAX_QUOTED_CHARS = 24_000
"""The conversation and answer quoted to the reviewer are cut to this (the end kept)."""
REVIEW_INSTRUCTIONS = (
    "You review another assistant's answer for correctness. Read the conversation and the"
    " answer. Reply with only a JSON object: {\"verdict\": \"agree\" or \"disagree\","
    " \"reason\": \"one sentence\"}. Say disagree only if the answer is wrong, unsafe or"
    " does not answer the question."
)
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
_DISAGREE = re.compile(
    r"\b(disagree|incorrect|wrong|inaccurate|do\s+not\s+agree|don't\s+agree)\b"
    # A negated approval ("not accurate", "isn't right") holds an approving word: it must
    # be read as the objection it is before _AGREE finds that word.
    r"|\b(?:not|isn['\u2019]t|aren['\u2019]t|wasn['\u2019]t)\s+(?:(?!only\b|just\b)\w+\s+)?"
    r"(?:correct|accurate|right|true)\b")
_AGREE = re.compile(r"\b(agree|correct|accurate|right|yes|lgtm)\b")


@dataclass(frozen=True, slots=True)
class CrossCheck:
    reviewer: str | None
    verdict: Verdict
    reason: str
    answered_again_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"reviewer": self.reviewer, "verdict": self.verdict,
                                "reason": self.reason}
        if self.answered_again_by is not None:
            data["answeredAgainBy"] = self.answered_again_by
        return data


def parse_verdict(text: str) -> tuple[Verdict, str]:
    """The verdict and reason in a reviewer's reply, however it was written."""
    cleaned = text.strip()
    match = _JSON_OBJECT.search(cleaned)
    if match is not None:
        try:
            data = json.loads(match.group(0))
        except ValueError:
            data = None
        if isinstance(data, dict):
            verdict = str(data.get("verdict", "")).strip().lower()
            reason = data.get("reason")
            reason_text = reason.strip() if isinstance(reason, str) else ""
            if verdict in ("agree", "disagree"):
                return verdict, reason_text[:MAX_REASON_CHARS]  # type: ignore[return-value]
    lowered = cleaned.lower()
    reason = cleaned[:MAX_REASON_CHARS]
    if _DISAGREE.search(lowered):
        return "disagree", reason
    if _AGREE.search(lowered):
        return "agree", reason
    return "unclear", reason


def review_request(messages: list[Any], answer: str) -> dict[str, Any]:
    """The chat body sent to the reviewer."""
    conversation = "\n".join(_line(m) for m in messages if isinstance(m, dict))
    quoted = (f"Conversation:\n{conversation[-MAX_QUOTED_CHARS:]}\n\n"
              f"Answer to review:\n{answer[-MAX_QUOTED_CHARS:]}")
    return {"messages": [{"role": "system", "content": REVIEW_INSTRUCTIONS},
                         {"role": "user", "content": quoted}],
            "stream": False, "temperature": 0, "max_tokens": MAX_REVIEW_TOKENS}


def _line(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return f"{message.get('role', 'user')}: {content if isinstance(content, str) else ''}"


def family(model_name: str) -> str:
    """``meta-llama/Llama-3.3-70B`` -> ``llama``; ``qwen2.5:7b`` -> ``qwen``."""
    base = model_name.lower().rsplit("/", 1)[-1]
    match = re.match(r"[a-z]+", base)
    return match.group(0) if match else base


def reviewer_order(answerer: ModelConfig, candidates: Iterable[ModelConfig]
                   ) -> list[ModelConfig]:
    """Reviewers to try, best first: another model family before the same one, another
    entry before the answering one (which, for a room, means another participant)."""
    mine = family(answerer.apiModelName)

    def key(model: ModelConfig) -> tuple[int, int, tuple[int, int, float, str]]:
        return (family(model.apiModelName) == mine, model.id == answerer.id, model.order_key)

    return sorted((m for m in candidates if m.enabled), key=key)
