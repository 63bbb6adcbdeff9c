"""Run inside the participant's test host by test_lan.py: it acts as a LAN participant and
a LAN client of the hub, and prints what it saw as JSON."""

from __future__ import annotations

import json
import sys

import aiohttp
import openai


async def main(hub: str, own_address: str) -> dict[str, object]:
    seen: dict[str, object] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        async with http.post(f"{hub}/rooms", json={"name": "LAN"}) as response:
            code = (await response.json())["room"]["code"]
        join = {"id": "peer", "nickname": "Peer", "model": "tiny"}
        async with http.post(f"{hub}/rooms/{code}/join",
                             json={**join, "endpoint": "http://localhost:8080"}) as response:
            seen["localhost_join"] = [response.status, await response.json()]
        async with http.post(f"{hub}/rooms/{code}/join",
                             json={**join, "endpoint": f"http://{own_address}:8080"}) as response:
            seen["lan_join"] = response.status
    client = openai.AsyncOpenAI(base_url=f"{hub}/rooms/{code}/v1", api_key="x", max_retries=0,
                                timeout=15)
    reply = await client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}])
    seen["reply"] = reply.choices[0].message.content
    stream = await client.chat.completions.create(
        model="*", messages=[{"role": "user", "content": "hi"}], stream=True)
    seen["streamed"] = "".join([c.choices[0].delta.content or "" async for c in stream
                                if c.choices])
    await client.close()
    return seen


if __name__ == "__main__":
    import asyncio

    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
