"""Time from ``@bot`` to the reply, through the real process, WebSocket and HTTP path.

Starts ``python -m bot`` with the shipped packs, an instant OpenAI-compatible server and a OneBot v11
client, sends ``--messages`` mentions one after another (each waits for its reply) and prints the
median and p95 latency, and the bot process's peak resident memory (VmHWM)::

    .venv/bin/python scripts/bench_e2e.py --messages 50
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tests.support.bot_process import BotProcess, free_port, write_bot_toml
from tests.support.onebot_client import OneBotClient
from tests.support.openai_server import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "is a storm coming tonight?",
    "how is Barnacle the cat?",
    "what do you write in the logbook?",
    "do you miss the mainland?",
    "what's in the stew today?",
]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(messages: int, data_dir: Path, images: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer() as server:
        workdir = Path(tmp)
        port = free_port()
        config = write_bot_toml(
            workdir / "bot.toml",
            {"platforms": {"console": {"enabled": False}}},
            server={"port": port},
            llm={"base_url": server.base_url, "model": "instant"},
            storage={"url": "sqlite+aiosqlite:///bot.sqlite3", "data_dir": str(data_dir)},
            characters={"dir": str(ROOT / "characters")},
            images={"enabled": images},
        )
        started = time.perf_counter()
        with BotProcess(config, cwd=workdir) as bot:
            await bot.wait_ready_async("127.0.0.1", port, timeout=300)
            client = await OneBotClient.connect(f"ws://127.0.0.1:{port}/onebot/v11/ws", timeout=30)
            ready = time.perf_counter() - started
            latencies: list[float] = []
            for number in range(messages):
                sent = time.perf_counter()
                await client.send_group_message(4242, 1000 + number % 7, QUESTIONS[number % 5], at_bot=True)
                await client.wait_for_call("send_group_msg", timeout=30)
                latencies.append((time.perf_counter() - sent) * 1000)
            await client.close()
            peak = peak_rss_mb(bot.pid)
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    print(f"messages: {messages}")
    print(f"@ to reply: median {statistics.median(latencies):.1f} ms, p95 {p95:.1f} ms")
    print(f"start until the OneBot port accepts: {ready:.1f} s")
    print(f"bot process peak RSS (VmHWM): {peak:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / "data" / "bench", help="embedding cache (kept)"
    )
    parser.add_argument("--cold", action="store_true", help="empty the embedding cache first")
    parser.add_argument("--no-images", action="store_true", help="turn screenshot matching off")
    args = parser.parse_args()
    if args.cold:
        shutil.rmtree(args.data_dir, ignore_errors=True)
    asyncio.run(run(args.messages, args.data_dir, not args.no_images))


if __name__ == "__main__":
    main()
