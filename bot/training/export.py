"""``python -m bot export training``: a character's dialogue as fine-tuning files.

The steps, in order: gather conversations (the pack's scenes, Q&A corpora given with ``--corpus``,
and with ``--from-chats`` the stored exchanges of chats whose admins said ``/training on``); scrub
links, addresses and ids; drop exact and near duplicates (the first one is kept: scenes before
corpora before chats); split into train and validation by scene, corpus pair or chat, so nothing of
one unit is on both sides; write each split as JSONL in the chosen format, every record checked
against the format's schema; write ``stats.json`` and, with ``--recipe``, the training config.
The same input always gives the same files, byte for byte.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.engine.packs import CharacterPack, load_pack, pack_dirs
from bot.engine.prompt import PromptBuilder, TokenCounter
from bot.errors import ExportError
from bot.importers.limits import DEFAULT_LIMITS
from bot.messages import ChatKey
from bot.training.conversations import Conversation, TrainingTurn, from_chat, from_corpus, from_scenes
from bot.training.dedupe import find_duplicates
from bot.training.formats import FORMATS, FormatName
from bot.training.recipes import RecipeName, check_recipe, write_recipe
from bot.training.scrubbing import Scrubber

if TYPE_CHECKING:
    from bot.config import BotConfig, PromptConfig
    from storage.repository import Repository

Progress = Callable[[int, int], None]
"""Called with (conversations written, conversations to write)."""

SPLITS = ("train", "validation")


@dataclass(slots=True)
class ExportOptions:
    character: str
    format: FormatName = "sharegpt"
    from_chats: bool = False
    corpora: list[Path] = field(default_factory=list)
    out: Path | None = None
    recipe: RecipeName | None = None
    validation: float = 0.1
    """The share of split units (scenes, corpus pairs, chats) held out for validation."""


@dataclass(slots=True)
class SplitStats:
    conversations: int = 0
    turns: int = 0
    replies: int = 0
    """The character's turns: what a model learns from."""
    tokens: int = 0
    """cl100k_base tokens of the whole records' texts, the system prompt included."""


@dataclass(slots=True)
class ExportStats:
    character: str
    format: str
    sources: dict[str, int] = field(default_factory=dict)
    """Conversations gathered from each source, before duplicates were dropped."""
    chats: int = 0
    """Chats whose exchanges were read (those with ``/training on``)."""
    exact_duplicates: int = 0
    near_duplicates: int = 0
    scrubbed: dict[str, int] = field(default_factory=dict)
    splits: dict[str, SplitStats] = field(default_factory=dict)

    def table(self) -> str:
        lines = ["| split | conversations | turns | replies | tokens |", "|---|---|---|---|---|"]
        for name, split in self.splits.items():
            lines.append(
                f"| {name} | {split.conversations} | {split.turns} | {split.replies} | {split.tokens} |"
            )
        return "\n".join(lines)

    def summary(self) -> str:
        sources = ", ".join(f"{count} from {name}s" for name, count in self.sources.items() if count)
        scrubbed = ", ".join(f"{count} {kind}" for kind, count in sorted(self.scrubbed.items()))
        chats = (
            f" ({self.chats} chat{'s' if self.chats != 1 else ''} with /training on)" if self.chats else ""
        )
        return (
            f"{sources or 'nothing'}{chats}; {self.exact_duplicates} exact and {self.near_duplicates} near "
            f"duplicates dropped; scrubbed: {scrubbed or 'nothing'}"
        )


@dataclass(slots=True)
class ExportResult:
    out: Path
    files: list[Path]
    stats: ExportStats
    seconds: float

    @property
    def per_second(self) -> float:
        written = sum(split.conversations for split in self.stats.splits.values())
        return written / self.seconds if self.seconds > 0 else 0.0


def system_prompt(pack: CharacterPack, budgets: PromptConfig) -> str:
    """The system turn of every record: the persona (cut to ``[prompt] persona_tokens``) and the role
    rules, as the bot's own prompt starts (:meth:`~bot.engine.prompt.Prompt.standing_text` of a
    prompt with no chat yet)."""
    return PromptBuilder(budgets, TokenCounter.default()).standing([pack])[0].standing_text()


def find_pack(config: BotConfig, character: str) -> CharacterPack:
    """The pack ``character`` names, loaded alone (the others are not read)."""
    roots = {root.name: root for root in pack_dirs(config.characters_dir)}
    root = roots.get(character)
    if root is None:
        known = ", ".join(roots) or "none"
        raise ExportError(
            f"--character: no pack {character!r} under {config.characters_dir} (there are: {known})"
        )
    return load_pack(root)


async def chat_conversations(repository: Repository, pack: CharacterPack) -> tuple[list[Conversation], int]:
    """The exchanges of every chat with ``/training on`` in which ``pack`` answered, and how many chats
    were read. Chats that never turned it on are never read."""
    conversations: list[Conversation] = []
    chats = await repository.chats.training_chats()
    for chat in chats:
        messages = await repository.messages.exchanges(chat, pack.id)
        conversations += from_chat(pack, ChatKey(chat.platform, chat.chat_id), messages)
    return conversations, len(chats)


def scrub(conversations: Sequence[Conversation], scrubber: Scrubber) -> None:
    for conversation in conversations:
        conversation.turns = [TrainingTurn(turn.role, scrubber(turn.text)) for turn in conversation.turns]


def split(conversations: Sequence[Conversation], share: float) -> dict[str, list[Conversation]]:
    """Train and validation by unit: the units ordered by a hash of their names, the first
    ``share`` of them (at least one, when there are two or more) for validation."""
    groups = sorted({conversation.group for conversation in conversations}, key=_stable)
    held = 0 if len(groups) < 2 or share <= 0 else max(1, math.floor(len(groups) * share))
    validation = set(groups[:held])
    return {
        "train": [c for c in conversations if c.group not in validation],
        "validation": [c for c in conversations if c.group in validation],
    }


def _stable(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _text(conversation: Conversation) -> str:
    return "\n".join(turn.text for turn in conversation.turns)


async def export_training(
    config: BotConfig,
    options: ExportOptions,
    *,
    repository: Repository | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Write ``options.character``'s training files; ``repository`` is read with ``from_chats``."""
    started = time.perf_counter()
    fmt = FORMATS[options.format]
    if not 0 <= options.validation < 1:
        raise ExportError(f"--validation must be from 0 to below 1, not {options.validation:g}")
    if options.recipe is not None:
        check_recipe(options.recipe, fmt.name)
    pack = find_pack(config, options.character)
    stats = ExportStats(pack.id, fmt.name)
    conversations = from_scenes(pack)
    stats.sources["scene"] = len(conversations)
    corpus: list[Conversation] = []
    for path in options.corpora:
        corpus += from_corpus(pack, path, DEFAULT_LIMITS)
    stats.sources["corpus"] = len(corpus)
    chats: list[Conversation] = []
    if options.from_chats:
        if repository is None:
            raise ExportError("--from-chats needs the bot's database")
        chats, stats.chats = await chat_conversations(repository, pack)
    stats.sources["chat"] = len(chats)
    conversations += corpus + chats
    if not conversations:
        raise ExportError(f"{pack.id}: no scene, corpus pair or chat in which {pack.name} answers somebody")

    scrubber = Scrubber()
    scrub(conversations, scrubber)
    stats.scrubbed = dict(scrubber.found)
    duplicates = find_duplicates([_text(conversation) for conversation in conversations])
    stats.exact_duplicates, stats.near_duplicates = duplicates.exact, duplicates.near
    kept = [conversations[index] for index in duplicates.kept]

    system = system_prompt(pack, config.prompt)
    counter = TokenCounter.default()
    system_tokens = counter.count(system)
    parts = split(kept, options.validation)
    total = len(kept)
    lines: dict[str, list[str]] = {}
    for name in SPLITS:
        figures = stats.splits[name] = SplitStats()
        lines[name] = []
        for conversation in parts[name]:
            record = fmt.record(system, conversation)
            lines[name].append(json.dumps(record, ensure_ascii=False) + "\n")
            figures.conversations += 1
            figures.turns += len(conversation.turns)
            figures.replies += conversation.replies
            figures.tokens += system_tokens + sum(counter.count(turn.text) for turn in conversation.turns)
            if progress is not None:
                progress(sum(len(done) for done in lines.values()), total)

    # NOTE: written only once every record fits its schema, so a refused export leaves no half file.
    out = options.out or config.data_dir / "training" / f"{pack.id}-{fmt.name}"
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name in SPLITS:
        path = out / f"{name}.jsonl"
        with path.open("w", encoding="utf-8", newline="\n") as file:
            file.writelines(lines[name])
        files.append(path)
    stats_file = out / "stats.json"
    stats_file.write_text(json.dumps(asdict(stats), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    files.append(stats_file)
    if options.recipe is not None:
        samples = [c.turns[0].text for c in parts["validation"][:2]] or [c.turns[0].text for c in kept[:2]]
        files += write_recipe(
            options.recipe, out, pack_id=pack.id, fmt=fmt.name, system=system, samples=samples
        )
    return ExportResult(out, files, stats, time.perf_counter() - started)


def sizes(files: Sequence[Path]) -> str:
    return ", ".join(f"{path.name} {path.stat().st_size / 1024:.1f} KiB" for path in files)


def options_from(args: argparse.Namespace) -> ExportOptions:
    return ExportOptions(
        character=args.character,
        format=args.format,
        from_chats=args.from_chats,
        corpora=list(args.corpus),
        out=args.out,
        recipe=args.recipe,
        validation=args.validation,
    )


async def _export_with_database(
    config: BotConfig, options: ExportOptions, progress: Progress
) -> ExportResult:
    if not options.from_chats:
        return await export_training(config, options, progress=progress)
    from storage import Database
    from storage.repository import Repository

    database = Database(config.database_url)
    try:
        await database.upgrade()
        return await export_training(config, options, repository=Repository(database), progress=progress)
    finally:
        await database.aclose()


def main(config: BotConfig, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    options = options_from(args)
    bars: list[tqdm[None]] = []

    def progress(done: int, total: int) -> None:
        if not bars:  # NOTE: opened with the first record, so a refused export prints no bar
            bars.append(tqdm(total=total, desc=f"exporting {options.character}", unit="conversation"))
        bars[0].update(done - bars[0].n)

    try:
        result = asyncio.run(_export_with_database(config, options, progress))
    finally:
        for bar in bars:
            bar.close()
    stats = result.stats
    print(stats.table())  # noqa: T201 - the command's output
    print(stats.summary())  # noqa: T201
    print(f"{result.per_second:,.0f} conversations/s; {sizes(result.files)}")  # noqa: T201
    print(f"written to {result.out}")  # noqa: T201
    return 0
