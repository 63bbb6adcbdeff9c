"""Finding the model servers running on this machine, and the models they serve.

Probes run concurrently with short timeouts, so detection takes well under a second even
when nothing listens.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
from yarl import URL

from gambiarra_desktop.endpoints import llamacpp_props_url, ollama_tags_url, openai_models_url
from gambiarra_desktop.http_session import read_capped
from gambiarra_desktop.plain_errors import (
    MODEL_SERVER,
    no_model_server_text,
    no_models_text,
    not_ours_text,
)

KNOWN_SERVERS: tuple[tuple[str, int], ...] = (
    ("Ollama", 11434),
    ("LM Studio", 1234),
    ("llama.cpp server / LocalAI", 8080),
    ("vLLM", 8000),
)
PROBE_TIMEOUT_S = 0.8
MAX_MODELS_REPLY_BYTES = 4 * 1024 * 1024
"""A model list far larger than any server's (Ollama lists ~1 KB per model)."""


class ModelServerError(Exception):
    """No model server answered at an endpoint, or it answered nonsense."""


@dataclass(frozen=True, slots=True)
class DetectedServer:
    name: str
    endpoint: str
    models: tuple[str, ...]


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "::"})  # noqa: S104
"""Names of this machine's own loopback: a server bound to 0.0.0.0 answers on all of them."""


def same_server_key(endpoint: str) -> str:
    """``scheme://host:port/path`` with the spellings of one server made equal: loopback
    names, the default port, upper case, a trailing ``/`` or ``/v1``."""
    try:
        url = URL(endpoint.strip())
    except ValueError:
        return endpoint
    host = (url.host or "").lower()
    if host in LOOPBACK_NAMES:
        host = "127.0.0.1"
    path = url.path.rstrip("/").removesuffix("/v1").rstrip("/")
    return f"{url.scheme.lower()}://{host}:{url.port}{path}"


async def list_models(
    session: aiohttp.ClientSession, endpoint: str, timeout_s: float = 5.0
) -> list[str]:
    """The models served at ``endpoint``: Ollama's ``/api/tags`` first (it names models
    the way Ollama users type them), then the OpenAI ``/v1/models``.

    A failure is one plain sentence (:mod:`gambiarra_desktop.plain_errors`): nothing
    answers, something that is no model server answers, or it answers with no models."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    failure: BaseException | None = None
    foreign_status: int | None = None
    empty = False
    for url, key, field in ((ollama_tags_url(endpoint), "models", "name"),
                            (openai_models_url(endpoint), "data", "id")):
        try:
            async with session.get(url, timeout=timeout) as response:
                status = response.status
                body = (await read_capped(response, MAX_MODELS_REPLY_BYTES)
                        if status == 200 else None)
            data = json.loads(body) if body is not None else None
            if status == 200 and body is None:  # Too large for any model list.
                foreign_status = status
                continue
        except ValueError:
            foreign_status = 200
            continue
        except (aiohttp.ClientError, TimeoutError) as exc:
            failure = exc
            continue
        entries = data.get(key) if isinstance(data, dict) else None
        if not isinstance(entries, list):
            foreign_status = status
            continue
        names = [str(e[field]) for e in entries if isinstance(e, dict) and field in e]
        if names:
            return names
        empty = True  # A model server, with nothing loaded.
    if empty:
        raise ModelServerError(no_models_text(endpoint))
    if foreign_status is not None:
        raise ModelServerError(not_ours_text(MODEL_SERVER, endpoint, foreign_status))
    raise ModelServerError(no_model_server_text(endpoint, failure or TimeoutError()))


async def server_slots(
    session: aiohttp.ClientSession, endpoint: str, timeout_s: float = 2.0
) -> int | None:
    """How many requests the model server at ``endpoint`` says it runs at once, or None
    when it does not say.

    Only llama.cpp's server states it cheaply: ``GET /props`` -> ``total_slots`` (its
    ``--parallel``). vLLM's ``/v1/models`` gives only ``max_model_len``, and Ollama keeps
    ``OLLAMA_NUM_PARALLEL`` to itself; for those the hub learns the limit instead.
    """
    url = llamacpp_props_url(endpoint)
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            if response.status != 200:
                return None
            data = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    slots = data.get("total_slots") if isinstance(data, dict) else None
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        return None
    return slots


async def detect_local_servers(
    extra_endpoints: Iterable[str] = (),
    known: Iterable[tuple[str, int]] = KNOWN_SERVERS,
    host: str = "127.0.0.1",
    timeout_s: float = PROBE_TIMEOUT_S,
) -> list[DetectedServer]:
    """Every known port on ``host`` plus ``extra_endpoints`` that serves at least one model."""
    candidates: dict[str, tuple[str, str]] = {}
    for name, endpoint in [(name, f"http://{host}:{port}") for name, port in known] + [
            ("Custom", endpoint) for endpoint in extra_endpoints]:
        # One server typed twice (a default port typed again, localhost vs 127.0.0.1,
        # a trailing /v1) is probed and listed once, under its known name.
        candidates.setdefault(same_server_key(endpoint), (name, endpoint))
    async with aiohttp.ClientSession() as session:

        async def probe(name: str, endpoint: str) -> DetectedServer | None:
            try:
                models = await list_models(session, endpoint, timeout_s)
            except ModelServerError:
                return None
            return DetectedServer(name, endpoint, tuple(models))

        found = await asyncio.gather(*(probe(name, url) for name, url in candidates.values()))
    return [server for server in found if server is not None]
