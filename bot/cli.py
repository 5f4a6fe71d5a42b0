"""``python -m bot``: run the bot, and the tools around it.

::

    python -m bot [--config PATH] [run]          start the bot (the default)
    python -m bot characters list                the packs and whether they load
    python -m bot characters validate [DIR ...]  check packs; exit 1 on the first broken one
    python -m bot db upgrade                     apply database migrations
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
    return parser


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
