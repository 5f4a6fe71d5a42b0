"""Prompt tokens per reply in a long-lived group, against a fresh one with a 20-message window.

Builds the real router over the shipped packs and a SQLite file, fills one group with ``--messages``
stored messages (half of them Orla's replies, plus room talk; the first one a fact asked about at the
end, so recall has something to find), runs the summary job once (the
summary is written by an instant model, then cut to ``[prompt] summary_tokens``), and prints the
prompt tokens of the next reply by part; then the same for a group that has only 20 messages, and
what the prompt would cost if it carried every stored message::

    .venv/bin/python scripts/bench_memory.py --messages 1000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bot.background import Background
from bot.catalog import PackCatalog
from bot.commands import default_commands
from bot.config import parse_config
from bot.engine.embedder import HashingEmbedder
from bot.engine.model import EchoChatModel
from bot.engine.packs import load_packs
from bot.engine.prompt import PromptBuilder, PromptTokens, TokenCounter
from bot.engine.registry import PackRegistry
from bot.engine.responder import Responder
from bot.engine.retrieval import Retriever
from bot.engine.screenshots import ScreenshotMatcher
from bot.memory import Summarizer
from bot.messages import ChatKey, Incoming, Sender
from bot.outbox import Outbox
from bot.router import Router
from bot.scheduler import Scheduler
from storage import Database, Repository

ROOT = Path(__file__).resolve().parents[1]
WORDS = "the ferry was late again and the lamp needs oil before the storm comes in from the west"


def say(group: str, user: int, text: str) -> Incoming:
    return Incoming("onebot", "group", group, Sender(str(user), f"member{user}"), text)


def row(label: str, tokens: PromptTokens) -> str:
    return (
        f"{label:<34} {tokens.total:>6} {tokens.persona:>8} {tokens.scenes:>7} {tokens.history:>8} "
        f"{tokens.summary:>8} {tokens.recalled:>8} {tokens.lore:>5} {tokens.message:>8}"
    )


async def main(messages: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    config = parse_config(
        {
            "characters": {"dir": str(ROOT / "characters")},
            "storage": {"url": "sqlite+aiosqlite:///db.sqlite3"},
        },
        source=work / "bot.toml",
    )
    database = Database(config.database_url)
    await database.upgrade()
    repository = Repository(database)
    packs = PackRegistry(load_packs(config.characters_dir).packs)
    retriever = Retriever(HashingEmbedder(), None)
    screenshots = ScreenshotMatcher(None, min_similarity=0.85, min_overlap=0.25)
    background = Background()
    catalog = PackCatalog(
        config.characters_dir,
        packs,
        retriever,
        screenshots,
        outbox=Outbox(),
        background=background,
        work_dir=work,
    )
    model = EchoChatModel()
    counter = TokenCounter.default()
    responder = Responder(
        config=config,
        retriever=retriever,
        prompts=PromptBuilder(config.prompt, counter),
        model=model,
        screenshots=screenshots,
    )
    router = Router(
        config=config,
        catalog=catalog,
        repository=repository,
        responder=responder,
        commands=default_commands(),
        scheduler=Scheduler(),
        outbox=Outbox(),
    )
    router.rate.per_minute = messages
    summarizer = Summarizer(config, repository, model, packs, counter)

    long_group, short_group = "1000", "20"
    await router.handle(say(long_group, 101, "Orla, my little boat is called the Grey Heron"))
    for number in range(messages // 2):
        if number % 5 == 4:
            await router.handle(say(long_group, 100 + number % 7, f"room talk {number}: {WORDS}"))
        await router.handle(say(long_group, 100 + number % 7, f"Orla, message {number}: {WORDS}"))
    for number in range(10):
        await router.handle(say(short_group, 100 + number % 7, f"Orla, message {number}: {WORDS}"))
    await summarizer.run()

    stored = await repository.messages.count(ChatKey("onebot", long_group))
    await router.handle(say(long_group, 101, "Orla, what was my boat called again?"))
    long_prompt = model.prompts[-1]
    await router.handle(say(short_group, 101, "Orla, what was my boat called again?"))
    short_prompt = model.prompts[-1]
    everything = await repository.messages.recent(ChatKey("onebot", long_group), "orla", limit=stored + 10)
    unbounded = sum(counter.count(f"{message.speaker}:「{message.text}」") + 4 for message in everything)

    names = ("total", "persona", "scenes", "history", "summary", "recalled", "lore", "message")
    header = zip(names, (6, 8, 7, 8, 8, 8, 5, 8), strict=True)
    print(f"{'prompt of the next reply':<34} " + " ".join(f"{name:>{width}}" for name, width in header))
    print(row(f"group with {stored} stored messages", long_prompt.tokens))
    print(row("group with 20 messages", short_prompt.tokens))
    print(f"every stored message in the prompt instead: {unbounded} history tokens")
    await database.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    asyncio.run(main(parser.parse_args().messages))
