"""Finding the model servers running on this machine, and the models they serve.

Probes run concurrently with short timeouts, so detection takes well under a second even
when nothing listens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp

from gambiarra_desktop.endpoints import llamacpp_props_url, ollama_tags_url, openai_models_url

KNOWN_SERVERS: tuple[tuple[str, int], ...] = (
    ("Ollama", 11434),
    ("LM Studio", 1234),
    ("llama.cpp server / LocalAI", 8080),
    ("vLLM", 8000),
)
PROBE_TIMEOUT_S = 0.8


class ModelServerError(Exception):
    """No model server answered at an endpoint, or it answered nonsense."""


@dataclass(frozen=True, slots=True)
class DetectedServer:
    name: str
    endpoint: str
    models: tuple[str, ...]


async def list_models(
    session: aiohttp.ClientSession, endpoint: str, timeout_s: float = 5.0
) -> list[str]:
    """The models served at ``endpoint``: Ollama's ``/api/tags`` first (it names models
    the way Ollama users type them), then the OpenAI ``/v1/models``."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    problems = []
    for url, key, field in ((ollama_tags_url(endpoint), "models", "name"),
                            (openai_models_url(endpoint), "data", "id")):
        try:
            async with session.get(url, timeout=timeout) as response:
                if response.status != 200:
                    problems.append(f"{url} answered {response.status}")
                    continue
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            problems.append(f"{url}: {exc or type(exc).__name__}")
            continue
        entries = data.get(key) if isinstance(data, dict) else None
        if isinstance(entries, list):
            names = [str(e[field]) for e in entries if isinstance(e, dict) and field in e]
            if names:
                return names
    raise ModelServerError(f"no model server answers at {endpoint} ({'; '.join(problems)})")


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
    candidates = [(name, f"http://{host}:{port}") for name, port in known]
    candidates += [("Custom", endpoint) for endpoint in extra_endpoints]
    async with aiohttp.ClientSession() as session:

        async def probe(name: str, endpoint: str) -> DetectedServer | None:
            try:
                models = await list_models(session, endpoint, timeout_s)
            except ModelServerError:
                return None
            return DetectedServer(name, endpoint, tuple(models))

        found = await asyncio.gather(*(probe(name, url) for name, url in candidates))
    return [server for server in found if server is not None]
