"""URLs on a model server, the same rules for the hub (direct) and the agent (tunnel)."""

from __future__ import annotations


def _base(endpoint: str) -> str:
    return endpoint.rstrip("/").removesuffix("/v1")


def chat_completions_url(endpoint: str) -> str:
    """``http://h:1234`` and ``http://h:1234/v1`` both work: users copy either form from
    their model server's settings."""
    return f"{_base(endpoint)}/v1/chat/completions"


def openai_models_url(endpoint: str) -> str:
    return f"{_base(endpoint)}/v1/models"


def ollama_tags_url(endpoint: str) -> str:
    return f"{_base(endpoint)}/api/tags"


def llamacpp_props_url(endpoint: str) -> str:
    return f"{_base(endpoint)}/props"
