"""Time ``python -m bot export training``: the shipped packs in every format, and a large export.

    python scripts/bench_training_export.py [--runs 3] [--scenes 2000] [--chats 50] [--messages 400]

First each shipped pack is exported in every format (conversations, tokens, the files' sizes, and
conversations per second). Then a bigger export is timed ``--runs`` times: a pack of ``--scenes``
scenes made by recombining the shipped Orla's lines (mostly unique, a few near duplicates, as real
packs have), with ``--from-chats`` over ``--chats`` chats with ``/training on`` of ``--messages``
messages each, in a real SQLite database. Prints the median and the best run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select, update

from bot.config import BotConfig, parse_config
from bot.engine.packs import load_pack
from bot.messages import ChatKey
from bot.training.export import ExportOptions, ExportResult, export_training
from bot.training.formats import FORMATS
from storage import Database, Repository
from storage.models import Message
from tests.packs import write_pack

SHIPPED = Path(__file__).resolve().parents[1] / "characters"


def config_for(characters: Path, data: Path) -> BotConfig:
    return parse_config(
        {"characters": {"dir": str(characters), "default": "orla"}, "storage": {"data_dir": str(data)}},
        source=data.parent / "bot.toml",
    )


async def shipped(root: Path) -> None:
    config = config_for(SHIPPED, root / "shipped-data")
    print("| pack | format | train | validation | tokens | size KiB | conversations/s |")
    print("|---|---|---|---|---|---|---|")
    for pack_id in ("orla", "xiaoman"):
        for fmt in FORMATS:
            out = root / "shipped" / f"{pack_id}-{fmt}"
            result = await export_training(config, ExportOptions(pack_id, format=fmt, out=out))  # type: ignore[arg-type]
            splits = result.stats.splits
            size = sum((out / f"{name}.jsonl").stat().st_size for name in splits) / 1024
            tokens = sum(split.tokens for split in splits.values())
            train, held = splits["train"].conversations, splits["validation"].conversations
            print(
                f"| {pack_id} | {fmt} | {train} | {held} | {tokens:,} | {size:.1f} "
                f"| {result.per_second:,.0f} |"
            )


def big_pack(characters: Path, scenes: int) -> None:
    orla = load_pack(SHIPPED / "orla")
    lines = [(line.speaker, line.text) for scene in orla.scenes for line in scene.lines]
    own = [pair for pair in lines if pair[0] == "Orla"]
    others = [pair for pair in lines if pair[0] not in {"Orla", "Narrator"}]
    rng = random.Random(7)
    made = {}
    for number in range(scenes):
        scene = []
        for _ in range(rng.randint(2, 5)):
            speaker, text = rng.choice(others)
            scene.append(f"{speaker}: {text}")
            scene.append("Orla: " + rng.choice(own)[1])
        made[f"{number + 1:05d}"] = scene
    write_pack(characters, "orla", name="Orla Finch", aliases=("Orla",), scenes=made)


async def fill_chats(config: BotConfig, chats: int, messages: int) -> None:
    database = Database(config.database_url)
    await database.upgrade()
    repository = Repository(database)
    rng = random.Random(11)
    words = (SHIPPED / "orla" / "scenes" / "001.txt").read_text().split()
    for chat in range(chats):
        key = ChatKey("onebot", f"group:{9000 + chat}")
        await repository.chats.set_training(key, True)
        for number in range(messages):
            if number % 2 == 0:
                user = rng.randrange(20)
                text = " ".join(rng.choices(words, k=rng.randint(4, 16)))
                if number % 50 == 0:
                    text += f" ring me on 139{rng.randrange(10**8):08d}"
                await repository.messages.add(
                    key, role="user", character_id="orla", user_id=str(100000 + user),
                    user_name=f"member {user}", text=text,
                )  # fmt: skip
            else:
                text = " ".join(rng.choices(words, k=rng.randint(6, 24)))
                await repository.messages.add(
                    key, role="character", character_id="orla", user_id="bot", user_name="Orla", text=text
                )
    async with database.sessions.begin() as session:
        # 20 s between messages and an hour's pause after every 40, so chats fall into sessions
        ids = (await session.scalars(select(Message.id).order_by(Message.id))).all()
        start = datetime(2026, 11, 1, tzinfo=UTC)
        moments = [
            {"id": number, "created_at": start + timedelta(seconds=20 * number, hours=number // 40)}
            for number in ids
        ]
        await session.execute(update(Message), moments)
    await database.aclose()


async def big(root: Path, args: argparse.Namespace) -> None:
    characters, data = root / "big" / "characters", root / "big" / "data"
    big_pack(characters, args.scenes)
    config = config_for(characters, data)
    await fill_chats(config, args.chats, args.messages)
    results: list[ExportResult] = []
    for run in range(args.runs):
        database = Database(config.database_url)
        try:
            result = await export_training(
                config,
                ExportOptions("orla", from_chats=True, out=root / "big" / f"out{run}"),
                repository=Repository(database),
            )
        finally:
            await database.aclose()
        results.append(result)
    last = results[-1]
    written = sum(split.conversations for split in last.stats.splits.values())
    rates = [result.per_second for result in results]
    print(
        f"\nbig export: {args.scenes} scenes + {args.chats} chats × {args.messages} messages → "
        f"{written:,} conversations ({last.stats.summary()})"
    )
    print(
        f"{statistics.median(rates):,.0f} conversations/s median, {max(rates):,.0f} best, "
        f"{statistics.median(result.seconds for result in results):.2f} s per export ({args.runs} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenes", type=int, default=2000)
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--messages", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        asyncio.run(shipped(root))
        asyncio.run(big(root, args))


if __name__ == "__main__":
    main()
