"""Time the web console's pages on the server: 30 characters, 100 chats with history and usage.

    python scripts/bench_console.py [--runs 7]

It builds a bot in a temp folder (30 packs, 100 chats of 20 messages each, a day of usage, one
playground reply with its trace), logs in, and asks every page ``--runs`` times through the ASGI
app itself, so the figures are the server's time per page, without a network or a browser. Prints
the median and the slowest run of each page.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import parse_config
from bot.engine.model import EchoChatModel
from bot.messages import ChatKey
from bot.runtime import Runtime
from plugins.web import PREFIX, WebConsole
from tests.packs import write_pack

PACKS, CHATS, LINES = 30, 100, 10
TOKEN = "bench-console-token"


async def build(root: Path) -> Runtime:
    for number in range(PACKS):
        write_pack(root / "characters", f"char{number:02d}", name=f"Character {number}", aliases=())
    config = parse_config(
        {
            "characters": {"default": "char00"},
            "budgets": {"prices": {"echo": {"input": 1.0, "output": 2.0}}},
            "console": {"token_env": "BENCH_CONSOLE_TOKEN"},
        },
        source=root / "bot.toml",
    )
    runtime = await Runtime.create(config, model=EchoChatModel())
    repository = runtime.router.repository
    today = runtime.router.governor.today()
    for number in range(CHATS):
        key = ChatKey("onebot", str(10_000 + number))
        character = f"char{number % PACKS:02d}"
        await repository.chats.set_active_character(key, character)
        async with repository.unit() as session:
            for line in range(LINES):
                for role in ("user", "character"):
                    await repository.messages.add(
                        key,
                        role=role,
                        character_id=character,
                        user_id=str(line),
                        user_name=f"member {line}",
                        text=f"line {line} of chat {number}",
                        session=session,
                    )
        await repository.usage.add(key, "1", today, "echo", 1000 + number, 50)
    return runtime


async def main(runs: int) -> None:
    import os

    os.environ["BENCH_CONSOLE_TOKEN"] = TOKEN
    with tempfile.TemporaryDirectory() as folder:
        runtime = await build(Path(folder))
        try:
            console = WebConsole(runtime.config)
            console.attach(runtime)
            app = FastAPI()
            app.mount(PREFIX, console.app)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as client:
                form = await client.get(f"{PREFIX}/login")
                csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
                await client.post(f"{PREFIX}/login", data={"token": TOKEN, "csrf": csrf})
                page = await client.get(f"{PREFIX}/play")
                csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
                await client.post(
                    f"{PREFIX}/play",
                    data={"csrf": csrf, "chat": "playground", "kind": "group", "member": "Pip", "to_me": "on",
                          "text": "Character 0, is the lamp lit?"},
                )  # fmt: skip
                await runtime.background.wait()
                pages = [
                    "/",
                    "/groups",
                    "/groups?page=2",
                    "/groups/onebot/10042",
                    "/characters",
                    "/characters/char07",
                    "/play",
                    "/inspect/1",
                    "/replies?platform=console-web&chat=playground",
                ]
                print(f"{PACKS} characters, {CHATS} chats of {2 * LINES} messages; {runs} runs per page")
                print(f"{'page':48} {'median ms':>10} {'max ms':>8}")
                for path in pages:
                    times = []
                    for _ in range(runs):
                        started = time.perf_counter()
                        response = await client.get(PREFIX + path)
                        times.append((time.perf_counter() - started) * 1000)
                        if response.status_code != 200:
                            raise SystemExit(f"{path}: HTTP {response.status_code}")
                    print(f"{PREFIX + path:48} {statistics.median(times):10.1f} {max(times):8.1f}")
        finally:
            await runtime.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    asyncio.run(main(parser.parse_args().runs))
