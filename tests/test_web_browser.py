"""The guests' web page in a real browser (Debian's Chromium, driven by Playwright) against
a real hub and slow fake model servers: rooms, a streamed chat, the model picker, Stop, a
password room, live participants, and both screen widths (screenshots for the README)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page

from gambiarra_desktop.devtools.fake_openai import FakeOpenAIServer
from gambiarra_desktop.hub import HubServer
from tests.browser import Watched, open_page
from tests.conftest import Api, eventually

pytestmark = pytest.mark.timeout(90)

WATCH_REPLY = """() => {
  window.seenReply = [];
  const list = document.getElementById("messages");
  new MutationObserver(() => {
    const reply = list.querySelector(".message.assistant:last-child .text");
    if (reply && reply.textContent && window.seenReply.at(-1) !== reply.textContent) {
      window.seenReply.push(reply.textContent);
    }
  }).observe(list, { childList: true, subtree: true, characterData: true });
}"""
"""Records each text the newest answer shows, as the page shows it."""


@pytest.fixture
async def models() -> AsyncIterator[tuple[FakeOpenAIServer, FakeOpenAIServer]]:
    async with (FakeOpenAIServer(models=("llama3",)) as alice,
                FakeOpenAIServer(models=("qwen",)) as bob):
        for server in (alice, bob):
            server.behaviour.tokens = 8
            server.behaviour.token_delay_s = 0.08
        yield alice, bob


async def _room_with(api: Api, alice: FakeOpenAIServer, bob: FakeOpenAIServer | None = None,
                     password: str | None = None) -> str:
    room = await api.create_room("Hack night", password=password)
    code: str = room["code"]
    extra = {"password": password} if password else {}
    status, body = await api.join(code, id="p1", nickname="Alice", model="llama3",
                                  endpoint=alice.url, **extra)
    assert status == 201, body
    if bob is not None:
        status, body = await api.join(code, id="p2", nickname="Bob", model="qwen",
                                      endpoint=bob.url, **extra)
        assert status == 201, body
    return code


async def _enter(browser: Browser, hub: HubServer, code: str, online: int = 1,
                 size: tuple[int, int] = (1280, 800)) -> Watched:
    """The room's page, once it lists ``online`` participants online."""
    watched = await open_page(browser, f"{hub.url}/r/{code}", *size)
    await watched.page.wait_for_selector(f"#participants li.online >> nth={online - 1}")
    return watched


async def _ask(page: Page, prompt: str) -> None:
    """Send ``prompt`` and wait for its answer to be complete."""
    before = await page.locator(".message.assistant").count()
    await page.fill("#prompt", prompt)
    await page.click("#send")
    await page.wait_for_function(
        """(before) => document.querySelectorAll('.message.assistant').length > before
             && !document.querySelector('.message.pending')
             && !document.getElementById('send').hidden""", arg=before, timeout=15000)


async def _long_answer_under_way(browser: Browser, api: Api, hub: HubServer,
                                 alice: FakeOpenAIServer, prompt: str) -> Watched:
    """A room page whose answer to ``prompt`` (400 tokens, 50 ms apart) has begun to show."""
    alice.behaviour.tokens = 400
    alice.behaviour.token_delay_s = 0.05
    code = await _room_with(api, alice)
    watched = await _enter(browser, hub, code)
    await watched.page.fill("#prompt", prompt)
    await watched.page.click("#send")
    await watched.page.wait_for_function(
        "() => (document.querySelector('.message.assistant .text')?.textContent || '')"
        ".includes('tok3 ')")
    return watched


async def _last_reply(page: Page) -> dict[str, Any]:
    reply = page.locator(".message.assistant").last
    return {"who": await reply.locator(".who").text_content(),
            "text": await reply.locator(".text").text_content(),
            "classes": await reply.get_attribute("class")}


async def test_the_hub_page_lists_rooms_and_opens_one(browser: Browser, api: Api,
                                                      hub: HubServer, models: Any) -> None:
    code = await _room_with(api, *models)
    await api.create_room("Quiet room", password="s3cret-room")
    watched = await open_page(browser, hub.url + "/")
    page = watched.page
    await page.wait_for_selector("#rooms li")
    cards = await page.locator("#rooms li").all_text_contents()
    assert any("Hack night" in c and code in c and "2 participants" in c for c in cards), cards
    assert any("Quiet room" in c and "password" in c for c in cards), cards
    await page.click(f"a[href='/r/{code}']")
    await page.wait_for_selector("#participants li")
    assert await page.text_content("#room-name") == "Hack night"
    assert page.url == f"{hub.url}/r/{code}"
    watched.assert_clean(hub.url)


async def test_a_reply_streams_in_pieces_and_says_who_answered_and_how_fast(
        browser: Browser, api: Api, hub: HubServer, models: Any) -> None:
    alice, _bob = models
    code = await _room_with(api, alice)
    watched = await _enter(browser, hub, code)
    page = watched.page
    await page.evaluate(WATCH_REPLY)
    await _ask(page, "Say eight tokens")
    seen: list[str] = await page.evaluate("window.seenReply")
    final = "".join(f"tok{i} " for i in range(8))
    assert seen[-1] == final
    # Pieces as the model wrote them, not one block at the end.
    assert len(seen) >= 5, seen
    assert all(final.startswith(text) for text in seen), seen
    reply = await _last_reply(page)
    assert reply["who"] == "Alice · llama3"
    info = await page.text_content("#answer-info") or ""
    assert info.startswith("Answered by Alice · first token in "), info
    assert "tokens/s" in info, info
    rate = float(info.split(" · ")[2].split(" ")[0])
    assert 5 < rate < 30, info  # 80 ms between tokens: about 12.5 per second.
    assert alice.requests[-1]["messages"] == [{"role": "user", "content": "Say eight tokens"}]
    assert alice.requests[-1]["stream"] is True
    watched.assert_clean(hub.url)


async def test_the_model_picker_chooses_a_participant_or_a_model_and_the_chat_goes_on(
        browser: Browser, api: Api, hub: HubServer, models: Any) -> None:
    alice, bob = models
    code = await _room_with(api, alice, bob)
    watched = await _enter(browser, hub, code, online=2)
    page = watched.page
    values = await page.eval_on_selector_all("#model option", "os => os.map(o => o.value)")
    assert values == ["*", "model:llama3", "model:qwen", "p1", "p2"], values

    await page.select_option("#model", "p2")
    await _ask(page, "Hello Bob")
    assert (await _last_reply(page))["who"] == "Bob · qwen"
    assert [r["messages"][-1]["content"] for r in bob.requests] == ["Hello Bob"]
    assert alice.requests == []

    await page.select_option("#model", "model:llama3")
    await _ask(page, "And now Alice")
    assert (await _last_reply(page))["who"] == "Alice · llama3"
    # Multi-turn: the whole conversation goes with the next question, Bob's answer included.
    assert alice.requests[-1]["model"] == "model:llama3" or alice.requests[-1]["model"]
    assert [m["role"] for m in alice.requests[-1]["messages"]] == ["user", "assistant", "user"]
    assert alice.requests[-1]["messages"][1]["content"] == "".join(
        f"tok{i} " for i in range(8))
    assert len(bob.requests) == 1

    await page.click("#new-chat")
    assert await page.locator(".message").count() == 0
    await _ask(page, "Fresh start")
    assert [m["role"] for m in alice.requests[-1]["messages"]] == ["user"]
    watched.assert_clean(hub.url)


async def test_stop_ends_the_answer_keeps_what_came_and_frees_the_model(
        browser: Browser, api: Api, hub: HubServer, models: Any) -> None:
    alice, _bob = models
    watched = await _long_answer_under_way(browser, api, hub, alice, "Talk for a long time")
    page = watched.page
    await page.click("#stop")
    await page.wait_for_selector("#send", state="visible", timeout=5000)
    reply = await _last_reply(page)
    assert "stopped" in (reply["classes"] or "")
    assert reply["text"].startswith("tok0 tok1 tok2 tok3 ")
    assert "tok399" not in reply["text"]
    assert "stopped" in (await page.text_content("#answer-info") or "")
    await eventually(lambda: alice.aborted_streams == 1)  # The hub let the model go too.
    kept = reply["text"]
    alice.behaviour.tokens = 3
    await _ask(page, "Shorter please")
    sent = alice.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"] == kept  # What was shown before Stop is what the model sees.
    watched.assert_clean(hub.url)


async def test_a_password_room_asks_once_per_tab_and_sends_it_only_to_its_hub(
        browser: Browser, api: Api, hub: HubServer, models: Any) -> None:
    alice, _bob = models
    code = await _room_with(api, alice, password="open-sesame-42")
    watched = await open_page(browser, f"{hub.url}/r/{code}")
    page = watched.page
    await page.wait_for_selector("#password-form", state="visible")
    assert await page.is_hidden("#room-body")

    await page.fill("#password", "wrong-guess")
    await page.click("#password-submit")
    await page.wait_for_selector("#password-error", state="visible")
    assert await page.text_content("#password-error") == "Invalid password"
    assert await page.is_hidden("#room-body")

    await page.fill("#password", "open-sesame-42")
    await page.click("#password-submit")
    await page.wait_for_selector("#participants li.online")
    assert await page.is_hidden("#password-form")
    await _ask(page, "Behind the door")
    assert (await _last_reply(page))["text"] == "".join(f"tok{i} " for i in range(8))

    # Kept for this tab: a reload does not ask again; a new tab (session) does.
    await page.reload()
    await page.wait_for_selector("#participants li.online")
    assert await page.is_hidden("#password-form")
    other = await open_page(browser, f"{hub.url}/r/{code}")
    await other.page.wait_for_selector("#password-form", state="visible")

    # Never in an address; only ever sent, as a header, to the hub that served the page.
    sent_with_password = 0
    for request in watched.requests:
        assert "sesame" not in request.url
        auth = (await request.all_headers()).get("authorization")
        if auth is not None:
            assert request.url.startswith(hub.url + "/rooms/"), request.url
            sent_with_password += auth == "Bearer open-sesame-42"
    assert sent_with_password >= 3  # The participants, the room's events, the chat.
    watched.assert_clean(hub.url)


async def test_participants_come_and_go_live_and_nicknames_stay_text(
        browser: Browser, api: Api, hub: HubServer, models: Any) -> None:
    alice, bob = models
    code = await _room_with(api, alice)
    watched = await _enter(browser, hub, code)
    page = watched.page
    hostile = '<img src="/x" onerror="window.pwned=1">'
    status, body = await api.join(code, id="p2", nickname=hostile, model="qwen",
                                  endpoint=bob.url)
    assert status == 201, body
    await page.wait_for_selector("#participants li >> nth=1", timeout=5000)  # No reload.
    names = await page.locator("#participants .nickname").all_text_contents()
    assert hostile in names  # Shown as the characters it is, never as markup.
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("#participants img").count() == 0
    status, _ = await api.call("DELETE", f"/rooms/{code}/leave/p2")
    assert status == 200
    await page.wait_for_function(
        "() => document.querySelectorAll('#participants li').length === 1")
    assert await page.text_content("#participant-count") == "1 of 1 online"
    watched.assert_clean(hub.url)


@pytest.mark.parametrize(("width", "height", "name"),
                         [(390, 844, "web-room-phone"), (1280, 800, "web-room-desktop")])
async def test_the_room_page_fits_a_phone_and_a_desktop(
        browser: Browser, api: Api, hub: HubServer, models: Any, tmp_path: Path,
        width: int, height: int, name: str) -> None:
    alice, bob = models
    code = await _room_with(api, alice, bob)
    watched = await _enter(browser, hub, code, online=2, size=(width, height))
    page = watched.page
    await _ask(page, "What can this room do?")
    # Nothing wider than the screen: no sideways scrolling of the page itself.
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, scroll_width
    for selector in ("#prompt", "#send", "#model"):
        box = await page.locator(selector).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, selector
    picture = await page.screenshot(full_page=width < 600)
    assert picture.startswith(b"\x89PNG") and len(picture) > 10_000
    folder = Path(os.environ.get("GAMBIARRA_SCREENSHOTS") or tmp_path)
    await asyncio.to_thread(_save, folder / f"{name}.png", picture)
    watched.assert_clean(hub.url)


async def test_an_unknown_room_says_so(browser: Browser, hub: HubServer,
                                       http: aiohttp.ClientSession) -> None:
    watched = await open_page(browser, f"{hub.url}/r/ZZZZZZ")
    page = watched.page
    await page.wait_for_selector("#room-error", state="visible")
    assert "no room ZZZZZZ" in (await page.text_content("#room-error") or "")
    assert await page.is_hidden("#room-body")
    watched.assert_clean(hub.url)


def _save(path: Path, picture: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(picture)


async def test_a_waiting_question_shows_its_place_in_line(
        browser: Browser, api: Api, hub: HubServer, models: Any,
        http: aiohttp.ClientSession) -> None:
    """One model that answers one request at a time, busy with someone else's: the page's
    question waits in the hub's queue and says so, then gets its answer."""
    alice, _bob = models
    alice.behaviour.tokens = 30
    room = await api.create_room("Busy room")
    code = room["code"]
    status, body = await api.join(code, id="p1", nickname="Alice", model="llama3",
                                  endpoint=alice.url, config={"maxConcurrent": 1})
    assert status == 201, body
    watched = await _enter(browser, hub, code)
    page = watched.page
    other = asyncio.create_task(_chat(http, hub.url, code))
    await eventually(lambda: alice.in_flight == 1)
    await page.fill("#prompt", "Me next")
    await page.click("#send")
    await page.wait_for_function(
        "() => document.querySelector('.message.assistant .who')?.textContent"
        " === 'Every model is busy: yours is next in line…'", timeout=5000)
    assert await other == 200
    await page.wait_for_selector("#send", state="visible", timeout=15000)
    reply = await _last_reply(page)
    assert reply["who"] == "Alice · llama3"
    assert reply["text"] == "".join(f"tok{i} " for i in range(30))
    watched.assert_clean(hub.url)


async def _chat(http: aiohttp.ClientSession, hub_url: str, code: str) -> int:
    async with http.post(f"{hub_url}/rooms/{code}/v1/chat/completions",
                         json={"model": "*", "stream": True,
                               "messages": [{"role": "user", "content": "First"}]}) as answer:
        await answer.read()
        return answer.status


async def test_an_answer_that_breaks_off_keeps_its_text_and_says_why(
        browser: Browser, api: Api, hub: HubServer, models: Any) -> None:
    alice, _bob = models
    alice.behaviour.break_stream_after = 3  # Three tokens, then the model's server drops.
    code = await _room_with(api, alice)
    watched = await _enter(browser, hub, code)
    page = watched.page
    await _ask(page, "Tell me everything")
    assert (await _last_reply(page))["text"] == "tok0 tok1 tok2 "
    error = await page.text_content("#chat-error") or ""
    assert await page.is_visible("#chat-error")
    assert error.startswith("Failed to proxy request: "), error
    alice.behaviour.break_stream_after = None
    await _ask(page, "Try again")  # The page (and the room) carry on.
    assert (await _last_reply(page))["text"] == "".join(f"tok{i} " for i in range(8))
    assert await page.is_hidden("#chat-error")
    watched.assert_clean(hub.url)


COUNT_DRAWS = """() => {
  window.draws = 0;
  new MutationObserver((records) => { window.draws += records.length; })
    .observe(document.getElementById("messages"), { childList: true, subtree: true });
}"""


async def test_a_fast_long_answer_is_drawn_a_frame_at_a_time(
        browser: Browser, api: Api, hub: HubServer, models: Any) -> None:
    """Thousands of pieces as fast as the model can write them: each frame adds what came
    since the last one (it used to rewrite the whole answer per piece, which froze a tab
    for 40 s on a 50 KB answer), and the whole answer is there at the end."""
    alice, _bob = models
    alice.behaviour.tokens = 6000
    alice.behaviour.token_delay_s = 0
    code = await _room_with(api, alice)
    watched = await _enter(browser, hub, code)
    page = watched.page
    await page.evaluate(COUNT_DRAWS)
    await page.fill("#prompt", "A long one")
    await page.click("#send")
    await page.wait_for_selector("#send", state="visible", timeout=30000)
    text = (await _last_reply(page))["text"]
    assert text == "".join(f"tok{i} " for i in range(6000))
    draws = await page.evaluate("window.draws")
    assert draws < 6000 / 4, draws  # Pieces batched per frame, not one change per piece.
    watched.assert_clean(hub.url)


async def test_the_answer_ends_at_done_even_if_the_connection_lingers(
        browser: Browser, api: Api, hub: HubServer, models: Any) -> None:
    alice, _bob = models
    alice.behaviour.linger_after_done_s = 20  # [DONE], then 20 s of comments.
    code = await _room_with(api, alice)
    watched = await _enter(browser, hub, code)
    page = watched.page
    await page.fill("#prompt", "Finish cleanly")
    await page.click("#send")
    await page.wait_for_selector("#send", state="visible", timeout=5000)  # Not 20 s.
    reply = await _last_reply(page)
    assert reply["text"] == "".join(f"tok{i} " for i in range(8))
    assert "stopped" not in (reply["classes"] or "")
    assert "stopped" not in (await page.text_content("#answer-info") or "")
    watched.assert_clean(hub.url)


async def test_new_chat_during_an_answer_leaves_nothing_of_it(
        browser: Browser, api: Api, hub: HubServer, models: Any) -> None:
    alice, _bob = models
    watched = await _long_answer_under_way(browser, api, hub, alice, "Old question")
    page = watched.page
    await page.click("#new-chat")
    await page.wait_for_selector("#send", state="visible", timeout=5000)
    assert await page.locator(".message").count() == 0
    assert await page.input_value("#prompt") == ""  # The old prompt is not given back.
    assert await page.text_content("#answer-info") == ""
    alice.behaviour.tokens = 3
    await _ask(page, "New question")
    assert alice.requests[-1]["messages"] == [{"role": "user", "content": "New question"}]
    assert await page.locator(".message").count() == 2
    watched.assert_clean(hub.url)


async def test_a_model_that_answers_whole_is_shown_whole(
        browser: Browser, api: Api, hub: HubServer, models: Any) -> None:
    alice, _bob = models
    alice.behaviour.whole_when_streaming = True
    code = await _room_with(api, alice)
    watched = await _enter(browser, hub, code)
    page = watched.page
    await _ask(page, "No streaming here")
    reply = await _last_reply(page)
    assert reply["text"] == "".join(f"tok{i} " for i in range(8))
    assert reply["who"] == "Alice · llama3"
    assert await page.is_hidden("#chat-error")
    watched.assert_clean(hub.url)


BLOCK_THE_PAGE = "() => { const t = performance.now(); while (performance.now() - t < 1500) {} }"


async def test_many_events_in_one_read_are_all_taken(
        browser: Browser, api: Api, hub: HubServer, models: Any) -> None:
    """A busy tab reads a fast model's stream in big gulps (Chromium hands over megabytes
    at once after the page was blocked): many small events in one read are fine, however
    large the read; only one event larger than the limit is refused."""
    alice, _bob = models
    alice.behaviour.tokens = 20000
    alice.behaviour.token_delay_s = 0
    code = await _room_with(api, alice)
    watched = await _enter(browser, hub, code)
    page = watched.page
    await page.fill("#prompt", "A flood of small pieces")
    await page.click("#send")
    await eventually(lambda: len(alice.token_sent_at) > 0)
    await page.evaluate(BLOCK_THE_PAGE)
    await page.wait_for_selector("#send", state="visible", timeout=30000)
    assert await page.is_hidden("#chat-error"), await page.text_content("#chat-error")
    assert (await _last_reply(page))["text"] == "".join(f"tok{i} " for i in range(20000))
    watched.assert_clean(hub.url)
