"""Which layer a room's model starts in: its size from the name or the server's metadata
(issue 10: ≤ 4B → L0, ≤ 14B → L1, larger → L2, cloud → L3, unknown → L1), and entries
that the real hub accepts as they are."""

from __future__ import annotations

import aiohttp
import pytest

from gambiarra_desktop.gateway.sizing import (
    layer_for,
    parameter_count_b,
    room_entries,
    room_entry_id,
)
from gambiarra_desktop.hub import HubServer


@pytest.mark.parametrize(("name", "size"), [
    ("llama3.2:3b", 3.0),
    ("qwen2.5-14b-instruct", 14.0),
    ("Mixtral-8x7B", 56.0),
    ("qwen2.5:0.5b", 0.5),
    ("gemma3:270m", 0.27),
    ("Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf", 8.0),
    ("qwen3-30b-a3b", 30.0),  # 3B active, 30B in all: the "a3b" is not the size.
    ("gemma3n:e4b", 4.0),
    ("phi-3-mini", None),
    ("phi-3-mini-128k-instruct", None),  # A context length is not a parameter count.
    ("llama3.2", None),  # "3.2" is a version.
    ("gpt-4o", None),
])
def test_size_from_the_name(name: str, size: float | None) -> None:
    found = parameter_count_b(name)
    assert found == (None if size is None else pytest.approx(size))


@pytest.mark.parametrize(("metadata", "size"), [
    ({"details": {"parameter_size": "7.6B"}}, 7.6),  # Ollama /api/tags
    ({"details": {"parameter_size": "270M"}}, 0.27),
    ({"meta": {"n_params": 3_212_749_888}}, 3.212749888),  # llama.cpp /v1/models
    ({"model_info": {"general.parameter_count": 8_030_261_248}}, 8.030261248),  # Ollama /api/show
    ({"parameter_size": "1.5b"}, 1.5),
])
def test_metadata_wins_over_the_name(metadata: dict[str, object], size: float) -> None:
    assert parameter_count_b("something-70b", metadata) == pytest.approx(size)


@pytest.mark.parametrize("metadata", [
    {}, {"details": {"parameter_size": "lots"}}, {"meta": {"n_params": True}},
    {"meta": {"n_params": float("nan")}}, {"meta": {"n_params": -5}}, {"details": "7B"},
    {"parameter_size": 7},
])
def test_useless_metadata_falls_back_to_the_name(metadata: dict[str, object]) -> None:
    assert parameter_count_b("llama3.2:3b", metadata) == 3.0


@pytest.mark.parametrize(("size", "provider", "layer"), [
    (0.27, "gambiarra", "L0"), (4.0, "gambiarra", "L0"), (4.1, "oss-local", "L1"),
    (14.0, "gambiarra", "L1"), (14.5, "gambiarra", "L2"), (70.0, "oss-local", "L2"),
    (None, "gambiarra", "L1"), (None, "openai", "L3"), (1.0, "openrouter", "L3"),
    (400.0, "anthropic", "L3"),
])
def test_layer_for(size: float | None, provider: str, layer: str) -> None:
    assert layer_for(size, provider) == layer


def test_room_entries_are_stable_distinct_and_placed_by_size() -> None:
    entries = room_entries("abc234", [
        "llama3.2:3b", {"model": "phi-3-mini"}, {"model": "big", "metadata":
                                                 {"details": {"parameter_size": "32B"}}},
        "llama3.2:3b", "a:b", "a-b", "  ", {"model": 5},
    ])
    assert [e["apiModelName"] for e in entries] == ["llama3.2:3b", "phi-3-mini", "big", "a:b",
                                                     "a-b"]
    assert entries[0] == {"id": "room-abc234-llama3.2-3b", "provider": "gambiarra",
                          "room": "ABC234", "apiModelName": "llama3.2:3b", "layer": "L0"}
    assert [e["layer"] for e in entries[:3]] == ["L0", "L1", "L2"]
    ids = [e["id"] for e in entries]
    assert len(set(ids)) == len(ids)  # "a:b" and "a-b" share a slug, not an id.
    assert room_entries("ABC234", ["llama3.2:3b"])[0]["id"] == ids[0]  # Stable.
    long_ids = {room_entry_id("ABC234", "x" * 200 + tail) for tail in ("1", "2")}
    assert len(long_ids) == 2 and all(len(i) <= 128 for i in long_ids)


async def test_the_hub_accepts_room_entries_as_they_are(
        hub: HubServer, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a real hub, every entry made for a room (odd names included) is a valid
    ``POST /v1/models`` body: 201, stored with the layer sizing chose."""
    password = (hub.data_dir / "admin-password").read_text().strip()
    async with http.post(hub.url + "/v1/auth/login",
                         json={"username": "admin", "password": password}) as response:
        assert response.status == 200, await response.text()
        token = (await response.json())["token"]
    names = ["llama3.2:3b", "Mixtral-8x7B", "org/Model Name (Q4)", "a:b", "a-b", "é-model",
             "y" * 200]
    async with http.post(hub.url + "/rooms", json={"name": "Lab"}) as response:
        code = (await response.json())["room"]["code"]  # Entries must name a real room.
    entries = room_entries(code.lower(), names)
    assert len(entries) == len(names)
    for entry in entries:
        async with http.post(hub.url + "/v1/models", json=entry,
                             headers={"Authorization": f"Bearer {token}"}) as response:
            body = await response.json()
            assert response.status == 201, body
            assert body["layer"] == entry["layer"] and body["room"] == code
