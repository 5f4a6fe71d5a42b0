"""``python -m bot``: run the bot, and the tools around it.

::

    python -m bot [--config PATH] [run]          start the bot (the default)
    python -m bot characters list                the packs and whether they load
    python -m bot characters validate [DIR ...]  check packs; exit 1 on the first broken one
    python -m bot db upgrade                     apply database migrations
    python -m bot extract --video EP01.mkv --subtitles EP01.ass --character NAME --out characters/ID
                                                 video + subtitles (or a transcript) → a character pack
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.config import BotConfig, load_config
from bot.errors import BotError


def _offline() -> None:
    """No model hub is ever contacted: every model comes from an installed package or a local path."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(name, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Role-play group-chat bot.")
    parser.add_argument("--config", help="path of bot.toml (default: $BOT_CONFIG or ./bot.toml)")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="start the bot (default)")
    characters = commands.add_parser("characters", help="list or validate character packs")
    actions = characters.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="list the packs under [characters] dir")
    validate = actions.add_parser(
        "validate", help="validate packs (default: every pack under [characters] dir)"
    )
    validate.add_argument("paths", nargs="*", type=Path)
    database = commands.add_parser("db", help="database maintenance")
    database.add_subparsers(dest="action", required=True).add_parser("upgrade", help="apply migrations")
    extract = commands.add_parser(
        "extract", help="make a character pack from video + subtitles or a transcript"
    )
    extract.add_argument("--character", required=True, help="the character's name as the subtitles write it")
    extract.add_argument("--out", required=True, type=Path, help="the pack folder, e.g. characters/orla")
    extract.add_argument("--video", action="append", type=Path, default=[], help="an episode's video")
    extract.add_argument(
        "--subtitles",
        action="append",
        type=Path,
        default=[],
        help="its SRT/ASS subtitles (pair with --video)",
    )
    extract.add_argument("--transcript", action="append", type=Path, default=[], help="'Name: line' text")
    extract.add_argument(
        "--from-jsonl", action="append", type=Path, default=[], help="{image, text} jsonl file or folder"
    )
    extract.add_argument("--alias", action="append", default=[], help="another name of the character")
    extract.add_argument("--language", choices=["en", "zh"], help="default: detected from the lines")
    extract.add_argument("--speaker-map", type=Path, help="TOML/JSON: [styles] and [names] → speaker")
    extract.add_argument("--scene-gap", type=float, default=6.0, help="seconds of silence between scenes")
    extract.add_argument("--max-scene-lines", type=int, default=12)
    return parser


def _extract(args: argparse.Namespace) -> int:
    from bot.errors import ExtractError
    from bot.extract import ExtractOptions, extract_pack
    from bot.extract.writer import Episode

    videos: list[Path] = args.video
    subtitles: list[Path] = args.subtitles
    if videos and len(videos) != len(subtitles):
        raise ExtractError(
            f"give one --subtitles per --video ({len(videos)} videos, {len(subtitles)} subtitles)"
        )
    episodes = [Episode(subs, videos[i] if videos else None) for i, subs in enumerate(subtitles)]
    options = ExtractOptions(
        character=args.character,
        out=args.out,
        episodes=episodes,
        transcripts=args.transcript,
        jsonl=args.from_jsonl,
        aliases=args.alias,
        language=args.language,
        speaker_map=args.speaker_map,
        scene_gap_s=args.scene_gap,
        max_scene_lines=args.max_scene_lines,
    )
    summary = extract_pack(options)
    print(f"wrote {args.out}: {summary}")
    return 0


def _characters(config: BotConfig, action: str, paths: Sequence[Path]) -> int:
    from bot.engine.packs import load_pack, pack_dirs
    from bot.errors import PackError

    roots = list(paths) or list(pack_dirs(config.characters_dir))
    if not roots:
        print(f"no character packs in {config.characters_dir}")
        return 1
    failed = 0
    for root in roots:
        try:
            pack = load_pack(root)
        except PackError as exc:
            failed += 1
            print(f"✗ {exc}")
            continue
        line = f"{pack.id:<16} {pack.name} [{pack.settings.language}] — {pack.description}"
        if action == "validate":
            line = f"✓ {root}: {len(pack.scenes)} scenes, {len(pack.screenshots)} screenshots"
        print(line)
    return 1 if failed else 0


def _db_upgrade(config: BotConfig) -> int:
    from storage import Database

    async def upgrade() -> None:
        database = Database(config.database_url)
        try:
            await database.upgrade()
        finally:
            await database.aclose()

    asyncio.run(upgrade())
    print("database is up to date")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    _offline()
    args = build_parser().parse_args(argv)
    try:
        if args.command == "extract":
            return _extract(args)
        config = load_config(args.config)
        if args.command == "characters":
            return _characters(config, args.action, getattr(args, "paths", []))
        if args.command == "db":
            return _db_upgrade(config)
        from plugins.host import run

        run(config)
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
