"""Time a newcomer's first minutes with the offline model: "ready" to the first in-character reply.

Starts the bot as the README's first command does (no key, no model server, the shipped characters),
with only a OneBot token added so that a real OneBot v11 client can talk to it, and as soon as the
bot logs its "ready" line sends an English message to Orla; then a few more messages, in English and
in Chinese (to 苏小满 by name), one after the other as a member would. Prints the time from "ready"
to the "one moment" line and to the first real reply, each reply's time, their median, and the
process's peak memory.

    .venv/bin/python scripts/bench_first_reply.py --data-dir /tmp/first-reply/data   # a first start
    .venv/bin/python scripts/bench_first_reply.py --data-dir /tmp/first-reply/data   # the second start

A data dir that does not exist yet is a first start: the model's parts are joined there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.bot_process import REPO_ROOT, BotProcess, free_port, write_bot_toml
from tests.support.onebot_client import OneBotClient
from tests.test_offline_e2e import canned_lines

TOKEN = "bench-first-reply"
MESSAGES = [
    ("en", " Hello Orla! What do you do all day at the lighthouse?"),
    ("zh", "小满，下雨天喝什么茶好？"),
    ("en", " Orla, how is Barnacle the cat these days?"),
    ("zh", "小满，周老师今天来了吗？"),
    ("en", " Orla, will the ferry run tomorrow?"),
    ("zh", "小满，你的茶馆开了多少年了？"),
]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(data_dir: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="first-reply-"))
    port = free_port()
    config = write_bot_toml(
        work / "bot.toml",
        {"platforms": {"onebot": {"access_token": TOKEN}, "console": {"enabled": False}}},
        server={"host": "127.0.0.1", "port": port},
        storage={"url": f"sqlite+aiosqlite:///{work / 'bot.sqlite3'}", "data_dir": str(data_dir)},
        characters={"dir": str(REPO_ROOT / "characters"), "default": "orla"},
    )
    env = {name: value for name, value in os.environ.items() if not name.endswith("API_KEY")}
    first_start = not (data_dir / "models").exists()
    started = time.monotonic()
    process = BotProcess(config, cwd=work, env=env).start()
    try:
        while "ready:" not in process.log_text():
            if time.monotonic() - started > 300:
                raise SystemExit(f"no ready line in 300 s:\n{process.tail(30)}")
            await asyncio.sleep(0.05)
        ready = time.monotonic()
        client = await OneBotClient.connect(
            f"ws://127.0.0.1:{port}/onebot/v11/ws", self_id=10_000, access_token=TOKEN, timeout=30
        )
        times: list[float] = []
        try:
            for index, (language, text) in enumerate(MESSAGES):
                pack = "orla" if language == "en" else "xiaoman"
                canned = canned_lines(pack)
                sent, mark = time.monotonic(), client.mark()
                at_bot = language == "en"
                await client.send_group_message(4001, 700 + index, text, at_bot=at_bot, nickname="Sam")
                reply = await client.wait_for_call("send_group_msg", timeout=300, after=mark)
                if reply.text() in canned:
                    if index == 0:
                        told = time.monotonic() - ready
                        print(f"ready → one-moment line: {told:5.1f} s  ({reply.text()})")
                    reply = await client.wait_for_call(
                        "send_group_msg",
                        lambda call, canned=canned: call.text() not in canned,  # type: ignore[misc]
                        timeout=300,
                        after=mark,
                    )
                took = time.monotonic() - sent
                if index == 0:
                    print(f"ready → first in-character reply: {time.monotonic() - ready:5.1f} s")
                times.append(took)
                print(f"  {took:5.1f} s  {text.strip()}\n          → {reply.text()}")
        finally:
            await client.close()
        print(
            f"{'first' if first_start else 'later'} start: start → ready {ready - started:.1f} s; "
            f"replies median {statistics.median(times):.1f} s, max {max(times):.1f} s; "
            f"peak RSS {peak_rss_mb(process.pid):.0f} MB"
        )
    finally:
        process.stop(timeout=20)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    asyncio.run(main(parser.parse_args().data_dir.resolve()))
