"""The proxy benchmark's own parts (bench/), run cheaply: a bench that drops its participant
after 30 s, misreads answers, or freezes on a chatty child measures nothing."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import aiohttp

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubConfig
from tests.conftest import HubFactory

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from bare_relay import wants_stream  # noqa: E402
from bench_rooms import HealthKeeper, create_room, join  # noqa: E402
from hub_probe import ProcessProbe  # noqa: E402
from proxy_bench import free_port, sse_listener, start_process, start_upstream  # noqa: E402
from proxy_rounds import Route, Scenario, Tally, check, paired_gap_us  # noqa: E402
from raw_http import RawConnection, build_request  # noqa: E402


async def test_health_keeper_keeps_its_participant_online(make_hub: HubFactory) -> None:
    hub = await make_hub(HubConfig(health_check_interval_s=0.05, participant_timeout_s=0.3))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        code = await create_room(session, hub.url, "bench")
        kept = await join(session, hub.url, code, "kept", "http://127.0.0.1:9")
        await join(session, hub.url, code, "silent", "http://127.0.0.1:9")
        assert kept.secret
        keeper = HealthKeeper(hub.url, every_s=0.05)
        keeper.keep(kept)
        keeper.start()
        try:
            statuses: dict[str, str] = {}
            deadline = time.monotonic() + 5
            while statuses.get("silent") != "offline":  # Past the timeout for the silent one.
                assert time.monotonic() < deadline, statuses
                await asyncio.sleep(0.05)
                async with session.get(f"{hub.url}/rooms/{code}/participants") as response:
                    listing = await response.json()
                statuses = {p["id"]: p["status"] for p in listing["participants"]}
            await asyncio.sleep(0.4)  # Longer than the whole timeout: still online.
            async with session.get(f"{hub.url}/rooms/{code}/participants") as response:
                listing = await response.json()
            assert {p["id"]: p["status"] for p in listing["participants"]}["kept"] == "online"
        finally:
            await keeper.stop()
    assert keeper.sent >= 5
    assert keeper.failed == 0


async def test_raw_client_reads_both_framings_on_one_kept_alive_connection() -> None:
    async with FakeOpenAIServer(models=("fake-model",)) as upstream:
        upstream.behaviour.tokens = 40
        route = Route("direct", upstream.host, upstream.port, "/v1/chat/completions",
                      ProcessProbe(os.getpid()))
        connection = RawConnection(upstream.host, upstream.port, keep_headers=True)
        try:
            whole = await connection.request(route.request(False, "fake-model"), 5)
            assert "content-length" in whole.headers
            assert "transfer-encoding" not in whole.headers
            answer = json.loads(whole.body)
            assert answer["choices"][0]["message"]["content"] == "".join(
                f"tok{i} " for i in range(40))
            assert check(whole, Scenario("w", 1, 1, False, {})) == 0

            streamed = await connection.request(route.request(True, "fake-model"), 5)
            assert streamed.headers.get("transfer-encoding") == "chunked"
            assert streamed.first_body_at > 0
            assert check(streamed, Scenario("s", 1, 1, True, {}, expect_chunks=42)) == 42
            contents = [json.loads(line[6:])["choices"][0]["delta"].get("content", "")
                        for line in streamed.body.decode().split("\n\n")
                        if line.startswith("data: {")]
            assert "".join(contents) == "".join(f"tok{i} " for i in range(40))

            again = await connection.request(route.request(False, "fake-model"), 5)
            assert again.status == 200
            assert connection.connects == 1  # All three answers on one connection.
            assert len(upstream.requests) == 3
        finally:
            connection.close()


async def test_raw_client_fails_a_stream_cut_short() -> None:
    async with FakeOpenAIServer() as upstream:
        upstream.behaviour.break_stream_after = 3
        connection = RawConnection(upstream.host, upstream.port)
        request = build_request("POST", "/v1/chat/completions",
                                f"{upstream.host}:{upstream.port}",
                                json.dumps({"model": "m", "messages": [], "stream": True}).encode())
        try:
            await connection.request(request, 5)
        except ConnectionError:
            pass
        else:
            raise AssertionError("a broken stream was read as whole")


def test_bare_relay_parses_the_stream_flag() -> None:
    assert wants_stream(b'{"model": "m", "stream": true}')  # aiohttp's json= spacing
    assert wants_stream(b'{"model":"m","stream":true}')
    assert not wants_stream(b'{"stream": false}')
    assert not wants_stream(b'{"messages": [{"content": "\\"stream\\":true"}]}')
    assert not wants_stream(b"not json")


def test_started_child_that_writes_a_lot_does_not_freeze() -> None:
    """Its pipe is drained after the ready line; unread, 256 KB would block the child."""
    script = ("import sys; print('ready', flush=True); sys.stdout.write('x' * 262144 + '\\n');"
              " sys.stdout.flush(); print('bye', flush=True)")
    child = start_process([sys.executable, "-c", script], "ready")
    try:
        assert child.wait(timeout=10) == 0
    finally:
        child.kill()
    deadline = time.monotonic() + 5
    while not any("bye" in line for line in child.tail):  # type: ignore[attr-defined]
        assert time.monotonic() < deadline
        time.sleep(0.02)


async def test_fake_upstream_tokens_option_and_cpu_probe() -> None:
    port = free_port()
    child = await asyncio.to_thread(start_upstream, port, "--tokens", "3")
    try:
        probe = ProcessProbe(child.pid)
        before = probe.cpu_s()
        connection = RawConnection("127.0.0.1", port)
        request = build_request("POST", "/v1/chat/completions", f"127.0.0.1:{port}",
                                json.dumps({"model": "m", "messages": []}).encode())
        for _ in range(50):
            response = await connection.request(request, 5)
        connection.close()
        assert json.loads(response.body)["choices"][0]["message"]["content"] == (
            "tok0 tok1 tok2 ")
        assert probe.cpu_s() > before  # 50 answers cost the server measurable CPU.
        assert probe.rss() > 1 << 20
    finally:
        child.terminate()
        await asyncio.to_thread(child.wait, 10)


async def test_sse_listener_row_really_listens(make_hub: HubFactory) -> None:
    """The "hub+sse" row means something only if its listener is sent the requests' events."""
    hub = await make_hub()
    async with FakeOpenAIServer() as upstream, aiohttp.ClientSession() as session:
        code = await create_room(session, hub.url, "bench")
        await join(session, hub.url, code, "p", upstream.url)
        route = Route("hub", "127.0.0.1", hub.port, f"/rooms/{code}/v1/chat/completions",
                      ProcessProbe(os.getpid()))
        listening = sse_listener("127.0.0.1", hub.port, code)
        async with listening() as listener:
            assert isinstance(listener, RawConnection)
            await asyncio.sleep(0.1)
            before = listener.received_bytes
            connection = RawConnection("127.0.0.1", hub.port)
            for _ in range(3):
                answer = await connection.request(route.request(False, "fake-model"), 5)
                assert answer.status == 200
            connection.close()
            deadline = time.monotonic() + 5
            while listener.received_bytes - before < 100:  # An llm:* event or more.
                assert time.monotonic() < deadline, "the listener was sent no events"
                await asyncio.sleep(0.02)


def test_cpu_figures_are_the_median_round_and_gaps_are_paired_by_round() -> None:
    """One disturbed round must not move the figure: the median round is reported, and a
    route's extra cost is the median of its round-by-round differences from its base."""
    base, with_listener = Tally(), Tally()
    for cpu_us, extra_us in ((200, 5), (210, 6), (900, 7), (205, 4), (190, 5)):
        base.rounds.append((cpu_us * 100 / 1e6, 100, 0))
        with_listener.rounds.append(((cpu_us + extra_us) * 100 / 1e6, 100, 0))
    assert round(base.cpu_us_per_request) == 205  # Not the mean, 341.
    assert round(paired_gap_us(with_listener, base)) == 5
    streamed = Tally(rounds=[(0.001, 1, 50), (0.002, 1, 50), (0.1, 1, 50)])
    assert round(streamed.cpu_us_per_chunk) == 40
    assert Tally().cpu_us_per_request != Tally().cpu_us_per_request  # NaN with no rounds.


async def test_tcp_floor_relays_whole_answers_and_streams_on_one_connection() -> None:
    """The bench's lowest floor passes both framings through unchanged, kept alive."""
    async with FakeOpenAIServer() as upstream:
        port = free_port()
        relay = start_process([sys.executable, str(BENCH / "tcp_relay.py"), "--port", str(port),
                               "--upstream", upstream.url], "listening")
        try:
            connection = RawConnection("127.0.0.1", port)
            for stream in (False, True, False):
                body = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}
                if stream:
                    body["stream"] = True
                request = build_request("POST", "/v1/chat/completions", f"127.0.0.1:{port}",
                                        json.dumps(body).encode())
                response = await connection.request(request, 5.0)
                assert response.status == 200
                assert (b"data: [DONE]" in response.body) is stream
            assert len(upstream.requests) == 3
            connection.close()
        finally:
            relay.terminate()
            relay.wait(timeout=10)
