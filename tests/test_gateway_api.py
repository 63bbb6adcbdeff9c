"""Every gateway route of issue 10 over real HTTP: its statuses, fields and error texts,
the admin login and its lockout, tokens that must be refused, and what survives a restart."""

from __future__ import annotations

import asyncio
import logging
import stat
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from gambiarra_desktop.gateway.accounts import password_file_notice, set_admin_password
from gambiarra_desktop.hub import HubConfig, HubServer
from tests.conftest import Api, HubFactory
from tests.gateway_testkit import ADMIN_PASSWORD, add_entry, login

LAYERS = ["L0", "L1", "L2", "L3"]
CONFIGURATION_FIELDS = {"logLevel", "defaultLayer", "enableCrossCheck", "enableAutoEscalate",
                        "maxEscalationLayer", "enableCostTracking", "costAlertThreshold",
                        "usageRetentionDays"}
ENTRY_FIELDS = {"id", "object", "created", "owned_by", "provider", "apiModelName", "layer",
                "enabled", "priority", "relativeCost", "inputPricePer1k", "outputPricePer1k",
                "contextLength", "supportsTools", "supportsVision"}
CLOUD = {"id": "gpt", "provider": "openai", "apiModelName": "gpt-4o", "layer": "L3"}


@pytest.fixture
async def admin_hub(make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    return await make_hub()


@pytest.fixture
def gw(http: aiohttp.ClientSession, admin_hub: HubServer) -> Api:
    return Api(http, admin_hub)


async def call(http: aiohttp.ClientSession, hub: HubServer, method: str, path: str,
               body: Any = None, headers: dict[str, str] | None = None
               ) -> tuple[int, Any, Any]:
    """(status, JSON body, headers) of one request."""
    async with http.request(method, hub.url + path, json=body, headers=headers) as response:
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json(), response.headers


def signed(hub: HubServer, **claims: Any) -> str:
    """A token made with the hub's own secret, with the claims of a real one by default."""
    now = int(time.time())
    payload = {"sub": "admin", "role": "admin", "epoch": 0, "iss": "gambiarra-hub",
               "iat": now, "exp": now + 600, **claims}
    secret = (hub.data_dir / "jwt-secret").read_text().strip()
    return jwt.encode(payload, secret, algorithm="HS256")


# --- login ----------------------------------------------------------------------------------

async def test_login_answers_the_contract_shape(http: aiohttp.ClientSession,
                                                admin_hub: HubServer) -> None:
    status, body, _ = await call(http, admin_hub, "POST", "/v1/auth/login",
                                 {"username": "admin", "password": ADMIN_PASSWORD})
    assert status == 200, body
    assert set(body) == {"token", "user", "expiresIn"}
    assert body["user"] == {"id": "admin", "username": "admin", "role": "admin"}
    assert body["expiresIn"] == 43200
    assert jwt.get_unverified_header(body["token"])["alg"] == "HS256"
    secret = (admin_hub.data_dir / "jwt-secret").read_text().strip()
    claims = jwt.decode(body["token"], secret, algorithms=["HS256"],
                        options={"verify_iss": False})
    assert claims["sub"] == "admin" and claims["exp"] - claims["iat"] == 43200
    assert stat.S_IMODE((admin_hub.data_dir / "jwt-secret").stat().st_mode) == 0o600


@pytest.mark.parametrize("credentials", [
    {"username": "admin", "password": "wrong password"},
    {"username": "root", "password": ADMIN_PASSWORD},
    {"username": "admin"},
    {"username": "admin", "password": 12345},
    {},
])
async def test_wrong_credentials_are_401_invalid_credentials(
    http: aiohttp.ClientSession, admin_hub: HubServer, credentials: dict[str, Any]
) -> None:
    status, body, _ = await call(http, admin_hub, "POST", "/v1/auth/login", credentials)
    assert (status, body) == (401, {"error": "Invalid credentials"})


async def test_five_failures_lock_the_address_out_with_retry_after(
    http: aiohttp.ClientSession, admin_hub: HubServer
) -> None:
    wrong = {"username": "admin", "password": "not the password"}
    for _ in range(5):
        status, _body, _ = await call(http, admin_hub, "POST", "/v1/auth/login", wrong)
        assert status == 401
    for attempt in (wrong, {"username": "admin", "password": ADMIN_PASSWORD}):
        status, body, headers = await call(http, admin_hub, "POST", "/v1/auth/login", attempt)
        assert status == 429, body  # Even the right password, while locked.
        assert isinstance(body["error"], str) and body["error"]
        assert 0 < int(headers["Retry-After"]) <= 15 * 60


async def test_the_lockout_ends_after_its_window(
    http: aiohttp.ClientSession, make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    hub = await make_hub(HubConfig(login_max_failures=2, login_failure_window_s=1.0))
    wrong = {"username": "admin", "password": "nope nope"}
    for expected in (401, 401, 429):
        assert (await call(http, hub, "POST", "/v1/auth/login", wrong))[0] == expected
    deadline = time.monotonic() + 5
    while (await call(http, hub, "POST", "/v1/auth/login",
                      {"username": "admin", "password": ADMIN_PASSWORD}))[0] != 200:
        assert time.monotonic() < deadline, "still locked long after the window"
        await asyncio.sleep(0.2)


# --- tokens ---------------------------------------------------------------------------------

ADMIN_ROUTES = [("POST", "/v1/models", CLOUD), ("PUT", "/v1/models/gpt", {"priority": 1}),
                ("DELETE", "/v1/models/gpt", None), ("GET", "/v1/config", None),
                ("PUT", "/v1/config", {"defaultLayer": "L1"}), ("GET", "/v1/providers", None),
                ("PUT", "/v1/providers/openai", {"apiKey": "sk-x"})]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_every_admin_route_needs_a_token(
    http: aiohttp.ClientSession, admin_hub: HubServer, method: str, path: str, body: Any
) -> None:
    status, reply, _ = await call(http, admin_hub, method, path, body)
    assert status == 401 and reply["error"] == "Authentication required", reply
    for header in ("Basic YWRtaW46YWRtaW4=", "Bearer ", "Bearer not-a-jwt"):
        status, reply, _ = await call(http, admin_hub, method, path, body,
                                      {"Authorization": header})
        assert status == 401, (header, reply)


def _forgeries(hub: HubServer) -> dict[str, str]:
    now = int(time.time())
    real = {"sub": "admin", "role": "admin", "epoch": 0, "iss": "gambiarra-hub", "iat": now,
            "exp": now + 600}
    secret = (hub.data_dir / "jwt-secret").read_text().strip()
    return {
        "expired": signed(hub, iat=now - 7200, exp=now - 3600),
        "forged": jwt.encode(real, "another secret" * 4, algorithm="HS256"),
        "alg none": jwt.encode(real, None, algorithm="none"),
        "HS512 with the right secret": jwt.encode(real, secret, algorithm="HS512"),
        "another issuer": signed(hub, iss="someone-else"),
        "no expiry": jwt.encode({k: v for k, v in real.items() if k != "exp"}, secret,
                                algorithm="HS256"),
        "another user": signed(hub, sub="mallory"),
    }


async def test_expired_forged_and_alg_none_tokens_are_401_invalid_token(
    http: aiohttp.ClientSession, admin_hub: HubServer
) -> None:
    assert (await call(http, admin_hub, "GET", "/v1/config", None,
                       {"Authorization": f"Bearer {signed(admin_hub)}"}))[0] == 200  # Control.
    for name, token in _forgeries(admin_hub).items():
        status, body, _ = await call(http, admin_hub, "GET", "/v1/config", None,
                                     {"Authorization": f"Bearer {token}"})
        assert status == 401, name
        assert body["error"] == "Invalid token", name
        assert isinstance(body["details"], str), name
    status, body, _ = await call(http, admin_hub, "GET", "/v1/config", None, {
        "Authorization": f"Bearer {_forgeries(admin_hub)['expired']}"})
    assert "expired" in body["details"]


async def test_a_password_change_ends_every_older_token(
    http: aiohttp.ClientSession, admin_hub: HubServer
) -> None:
    old = await login(http, admin_hub)
    assert (await call(http, admin_hub, "GET", "/v1/config", None, old))[0] == 200
    await set_admin_password(admin_hub.data_dir, "the new admin password")
    status, body, _ = await call(http, admin_hub, "GET", "/v1/config", None, old)
    assert (status, body["error"]) == (401, "Invalid token")
    assert (await call(http, admin_hub, "POST", "/v1/auth/login",
                       {"username": "admin", "password": ADMIN_PASSWORD}))[0] == 401
    new = await login(http, admin_hub, "the new admin password")
    assert (await call(http, admin_hub, "GET", "/v1/config", None, new))[0] == 200


# --- models ---------------------------------------------------------------------------------

async def test_add_a_model_with_the_contract_defaults(
    http: aiohttp.ClientSession, admin_hub: HubServer
) -> None:
    auth = await login(http, admin_hub)
    before = int(time.time())
    status, body, _ = await call(http, admin_hub, "POST", "/v1/models", CLOUD, auth)
    assert status == 201, body
    assert set(body) == ENTRY_FIELDS  # No "room" for a provider that is not a room.
    assert body | {"created": 0} == {
        "id": "gpt", "object": "model", "created": 0, "owned_by": "openai",
        "provider": "openai", "apiModelName": "gpt-4o", "layer": "L3", "enabled": True,
        "priority": 0, "relativeCost": 1.0, "inputPricePer1k": 0, "outputPricePer1k": 0,
        "contextLength": None, "supportsTools": True, "supportsVision": False}
    assert before <= body["created"] <= time.time() + 1
    local = await add_entry(http, admin_hub, {"id": "local", "provider": "oss-local",
                                              "apiModelName": "llama3.2:3b", "layer": "L0",
                                              "inputPricePer1k": 0.5, "contextLength": 8192},
                            auth)
    assert local["relativeCost"] == 0 and local["inputPricePer1k"] == 0.5
    assert local["contextLength"] == 8192
    code = (await Api(http, admin_hub).create_room("Lab"))["code"]
    room = await add_entry(http, admin_hub, {"id": "room", "provider": "gambiarra",
                                             "apiModelName": "qwen", "layer": "L1",
                                             "room": code.lower()}, auth)
    assert room["room"] == code and room["relativeCost"] == 0
    status, listed, _ = await call(http, admin_hub, "GET", "/v1/models")
    assert status == 200 and listed["object"] == "list"
    assert [m["id"] for m in listed["data"]] == ["local", "room", "gpt"]  # By layer.
    assert listed["data"][2] == body
    assert (await call(http, admin_hub, "GET", "/v1/models/gpt"))[1] == body


async def test_the_list_is_sorted_by_layer_priority_cost_and_id(
    http: aiohttp.ClientSession, admin_hub: HubServer
) -> None:
    auth = await login(http, admin_hub)
    for model_id, layer, priority, cost in [("z", "L1", 0, 1.0), ("y", "L1", 0, 0.5),
                                            ("x", "L1", 1, 0.0), ("w", "L0", 9, 9.0),
                                            ("v", "L1", 0, 0.5)]:
        await add_entry(http, admin_hub, {"id": model_id, "provider": "openrouter",
                                          "apiModelName": "m", "layer": layer,
                                          "priority": priority, "relativeCost": cost}, auth)
    listed = (await call(http, admin_hub, "GET", "/v1/models"))[1]["data"]
    assert [m["id"] for m in listed] == ["w", "v", "y", "z", "x"]


async def test_a_duplicate_id_is_409(http: aiohttp.ClientSession, admin_hub: HubServer) -> None:
    auth = await login(http, admin_hub)
    await add_entry(http, admin_hub, CLOUD, auth)
    status, body, _ = await call(http, admin_hub, "POST", "/v1/models",
                                 {**CLOUD, "apiModelName": "other"}, auth)
    assert (status, body["error"]) == (409, "Model already exists")
    assert (await call(http, admin_hub, "GET", "/v1/models/gpt"))[1]["apiModelName"] == "gpt-4o"


BAD_FIELDS = [
    ({k: v for k, v in CLOUD.items() if k != "id"}, "id"),
    ({k: v for k, v in CLOUD.items() if k != "provider"}, "provider"),
    ({k: v for k, v in CLOUD.items() if k != "apiModelName"}, "apiModelName"),
    ({k: v for k, v in CLOUD.items() if k != "layer"}, "layer"),
    ({**CLOUD, "id": "a/b"}, "id"),
    ({**CLOUD, "id": "auto"}, "id"),
    ({**CLOUD, "provider": "skynet"}, "provider"),
    ({**CLOUD, "layer": "L4"}, "layer"),
    ({**CLOUD, "enabled": "yes"}, "enabled"),
    ({**CLOUD, "priority": 1.5}, "priority"),
    ({**CLOUD, "relativeCost": -1}, "relativeCost"),
    ({**CLOUD, "inputPricePer1k": "free"}, "inputPricePer1k"),
    ({**CLOUD, "outputPricePer1k": -0.1}, "outputPricePer1k"),
    ({**CLOUD, "contextLength": 0}, "contextLength"),
    ({**CLOUD, "supportsTools": 1}, "supportsTools"),
    ({**CLOUD, "supportsVision": None}, "supportsVision"),
    ({**CLOUD, "room": "ABC123"}, "room"),
    ({**CLOUD, "provider": "gambiarra"}, "room"),
    ({**CLOUD, "colour": "blue"}, "colour"),
]


@pytest.mark.parametrize(("body", "field"), BAD_FIELDS)
async def test_a_bad_field_is_400_naming_it(
    http: aiohttp.ClientSession, admin_hub: HubServer, body: dict[str, Any], field: str
) -> None:
    status, reply, _ = await call(http, admin_hub, "POST", "/v1/models", body,
                                  await login(http, admin_hub))
    assert status == 400, reply
    assert reply["error"] == f"Invalid field: {field}"
    assert isinstance(reply["details"], str) and reply["details"]
    assert (await call(http, admin_hub, "GET", "/v1/models"))[1]["data"] == []


async def test_put_changes_only_what_it_names(http: aiohttp.ClientSession,
                                              admin_hub: HubServer) -> None:
    auth = await login(http, admin_hub)
    stored = await add_entry(http, admin_hub, {**CLOUD, "priority": 4, "contextLength": 1000},
                             auth)
    status, body, _ = await call(http, admin_hub, "PUT", "/v1/models/gpt",
                                 {"enabled": False, "layer": "L2"}, auth)
    assert status == 200, body
    assert body == stored | {"enabled": False, "layer": "L2"}
    status, body, _ = await call(http, admin_hub, "PUT", "/v1/models/gpt",
                                 {"priority": "high"}, auth)
    assert (status, body["error"]) == (400, "Invalid field: priority")
    status, body, _ = await call(http, admin_hub, "PUT", "/v1/models/gpt",
                                 {"provider": "anthropic"}, auth)
    assert (status, body["error"]) == (400, "Invalid field: provider")
    assert (await call(http, admin_hub, "GET", "/v1/models/gpt"))[1] == stored | {
        "enabled": False, "layer": "L2"}


async def test_delete_and_the_404s(http: aiohttp.ClientSession, admin_hub: HubServer) -> None:
    auth = await login(http, admin_hub)
    await add_entry(http, admin_hub, CLOUD, auth)
    status, body, _ = await call(http, admin_hub, "DELETE", "/v1/models/gpt", None, auth)
    assert (status, body) == (200, {"success": True, "id": "gpt"})
    assert (await call(http, admin_hub, "GET", "/v1/models"))[1]["data"] == []
    for method, body in (("GET", None), ("PUT", {"priority": 1}), ("DELETE", None)):
        status, reply, _ = await call(http, admin_hub, method, "/v1/models/gpt", body, auth)
        assert (status, reply["error"]) == (404, "Model not found"), method


async def test_layers_have_the_seed_shape(http: aiohttp.ClientSession,
                                          admin_hub: HubServer) -> None:
    auth = await login(http, admin_hub)
    await add_entry(http, admin_hub, CLOUD, auth)
    await add_entry(http, admin_hub, {"id": "off", "provider": "oss-local", "apiModelName": "phi",
                                      "layer": "L1", "enabled": False, "priority": 2}, auth)
    await add_entry(http, admin_hub, {**CLOUD, "id": "claude", "provider": "anthropic",
                                      "apiModelName": "claude-x", "priority": -1}, auth)
    status, body, _ = await call(http, admin_hub, "GET", "/v1/models/layers")
    assert status == 200 and list(body) == ["layers"]
    layers = body["layers"]
    assert list(layers) == LAYERS
    assert layers["L0"] == {"enabled": False, "models": [], "providers": []}
    assert layers["L1"] == {"enabled": False, "providers": ["oss-local"], "models": [
        {"id": "off", "provider": "oss-local", "apiModelName": "phi", "enabled": False,
         "priority": 2}]}
    assert layers["L3"]["enabled"] is True
    assert [m["id"] for m in layers["L3"]["models"]] == ["claude", "gpt"]
    assert layers["L3"]["providers"] == ["anthropic", "openai"]


# --- configuration and health ----------------------------------------------------------------

async def test_config_reads_changes_and_survives_a_restart(
    http: aiohttp.ClientSession, make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    data_dir = tmp_path / "restarted"
    hub = await make_hub(data_dir=data_dir)
    auth = await login(http, hub)
    status, body, _ = await call(http, hub, "GET", "/v1/config", None, auth)
    assert status == 200 and set(body["configuration"]) == CONFIGURATION_FIELDS
    assert body["configuration"]["logLevel"] == "info"
    change = {"defaultLayer": "L1", "enableCrossCheck": False, "maxEscalationLayer": "L2",
              "costAlertThreshold": 2.5, "usageRetentionDays": 30}
    status, body, _ = await call(http, hub, "PUT", "/v1/config", change, auth)
    assert status == 200 and body["configuration"] | change == body["configuration"]
    wanted = body["configuration"]
    for bad, field in (({"defaultLayer": "L9"}, "defaultLayer"),
                       ({"enableAutoEscalate": "yes"}, "enableAutoEscalate"),
                       ({"logLevel": "loud"}, "logLevel"),
                       ({"costAlertThreshold": -1}, "costAlertThreshold"),
                       ({"usageRetentionDays": 0}, "usageRetentionDays"),
                       ({"usageRetentionDays": 3651}, "usageRetentionDays"),
                       ({"usageRetentionDays": 1.5}, "usageRetentionDays"),
                       ({"defaultLayer": "L0", "nonsense": 1}, "nonsense")):
        status, reply, _ = await call(http, hub, "PUT", "/v1/config", bad, auth)
        assert (status, reply["error"]) == (400, f"Invalid field: {field}")
    await add_entry(http, hub, CLOUD, auth)
    await hub.stop()

    again = await make_hub(data_dir=data_dir)
    auth = await login(http, again)
    assert (await call(http, again, "GET", "/v1/config", None, auth))[1] == {
        "configuration": wanted}
    assert (await call(http, again, "GET", "/health"))[1]["configuration"] == wanted
    assert [m["id"] for m in (await call(http, again, "GET", "/v1/models"))[1]["data"]] == [
        "gpt"]


async def test_health_has_the_gambiarra_and_the_seed_fields(
    http: aiohttp.ClientSession, admin_hub: HubServer
) -> None:
    auth = await login(http, admin_hub)
    await add_entry(http, admin_hub, CLOUD, auth)
    before = time.time() * 1000
    status, body, _ = await call(http, admin_hub, "GET", "/health")
    assert status == 200
    assert body["status"] == "ok"
    assert isinstance(body["timestamp"], int) and before - 1000 <= body["timestamp"] <= (
        time.time() * 1000 + 1000)  # Epoch milliseconds, not the seed's ISO string.
    assert body["redis"] is False and body["database"] is True
    assert set(body["providers"]) == {"openai", "anthropic", "openrouter", "oss-local",
                                      "gambiarra"}
    assert all(isinstance(v, bool) for v in body["providers"].values())
    assert body["healthyProviders"] == [p for p, ok in body["providers"].items() if ok]
    assert list(body["layers"]) == LAYERS
    assert body["layers"]["L3"] == {"enabled": True, "models": ["gpt"]}
    assert body["layers"]["L0"] == {"enabled": False, "models": []}
    config = (await call(http, admin_hub, "GET", "/v1/config", None, auth))[1]
    assert body["configuration"] == config["configuration"]


# --- the admin password ----------------------------------------------------------------------

async def test_first_start_writes_the_password_owner_only_and_never_logs_it(
    http: aiohttp.ClientSession, make_hub: HubFactory, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    hub = await make_hub()
    path = hub.data_dir / "admin-password"
    password = path.read_text().strip()
    assert len(password) >= 16
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert hub.new_admin_password_file == path  # What serve and the window log.
    assert str(path) in password_file_notice(path) and password not in password_file_notice(
        path)
    await login(http, hub, password)
    assert (await call(http, hub, "POST", "/v1/auth/login",
                       {"username": "admin", "password": "admin123"}))[0] == 401
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert password not in logged


async def test_the_environment_sets_the_password_and_no_file_is_written(
    http: aiohttp.ClientSession, make_hub: HubFactory, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    data_dir = tmp_path / "env"
    first = await make_hub(data_dir=data_dir)  # A first run wrote a random password...
    assert (data_dir / "admin-password").exists()
    await first.stop()
    monkeypatch.setenv("GAMBIARRA_ADMIN_PASSWORD", "from the environment")
    hub = await make_hub(data_dir=data_dir)  # ...which the environment replaces.
    await login(http, hub, "from the environment")
    assert not (data_dir / "admin-password").exists()
    assert hub.new_admin_password_file is None
    assert "from the environment" not in "\n".join(r.getMessage() for r in caplog.records)
