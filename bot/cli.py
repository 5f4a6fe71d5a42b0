"""``python -m bot``: run the bot, and the tools around it.

::

    python -m bot [--config PATH] [run]          start the bot (the default)
    python -m bot characters list                the packs and whether they load
    python -m bot characters validate [DIR ...]  check packs; exit 1 on the first broken one
    python -m bot characters import PATH [--id ID] [--replace] [--no-index]
                                                 a card, ChatHaruhi data, corpus or pack zip
    python -m bot characters export ID [--as zip|card|card-json] [--out FILE]
    python -m bot characters remove ID
    python -m bot db upgrade                     apply database migrations
    python -m bot db copy --from URL --to URL    move every row to another database (resumable)
    python -m bot export training --character ID [--format sharegpt|openai|alpaca|xtuner] [--from-chats]
                                 [--corpus FILE] [--out DIR] [--recipe xtuner|llama-factory]
                                                 a character's dialogue as fine-tuning files
    python -m bot extract --video EP01.mkv --subtitles EP01.ass --character NAME --out characters/ID
                                                 video + subtitles (or a transcript) → a character pack
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import BotConfig, load_config
from bot.errors import BotError, StorageError

if TYPE_CHECKING:
    from bot.engine.packs import CharacterPack


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
    importing = actions.add_parser(
        "import", help="import a character card (PNG/JSON/CHARX), ChatHaruhi data, a corpus or a pack zip"
    )
    importing.add_argument("source", help="a file or folder (a file:// URL of a local file works too)")
    importing.add_argument("--id", dest="pack_id", help="the new pack's id (default: from the name)")
    importing.add_argument("--replace", action="store_true", help="replace a pack with the same id")
    importing.add_argument(
        "--no-index",
        dest="index",
        action="store_false",
        help="do not embed the scenes now (the bot then does it at its next start)",
    )
    exporting = actions.add_parser("export", help="write a pack as a zip or a Character Card V3")
    exporting.add_argument("pack_id", metavar="ID")
    exporting.add_argument("--as", dest="kind", choices=["zip", "card", "card-json"], default="zip")
    exporting.add_argument("--out", type=Path, help="default: ID.zip, ID.png or ID.json here")
    removing = actions.add_parser("remove", help="delete a pack folder (chats keep their memories)")
    removing.add_argument("pack_id", metavar="ID")
    database = commands.add_parser("db", help="database maintenance")
    database_actions = database.add_subparsers(dest="action", required=True)
    database_actions.add_parser("upgrade", help="apply migrations")
    copying = database_actions.add_parser(
        "copy", help="copy every row into another database, e.g. SQLite → PostgreSQL (resumable)"
    )
    copying.add_argument(
        "--from", dest="source", metavar="URL", help="the database to read (default: [storage] url)"
    )
    copying.add_argument("--to", dest="target", metavar="URL", required=True, help="the database to fill")
    copying.add_argument(
        "--batch", metavar="ROWS", type=int, default=2000, help="rows per transaction (2000)"
    )
    _add_extract(commands.add_parser("extract", help="make a character pack from video + subtitles"))
    from bot.bench.options import add_arguments as add_bench_arguments

    add_bench_arguments(
        commands.add_parser("bench", help="engine cost per message, throughput, start-up; against chatharuhi")
    )
    from bot.training.options import add_arguments as add_training_arguments

    exports = commands.add_parser("export", help="export data made from the characters")
    export_kinds = exports.add_subparsers(dest="kind", required=True)
    add_training_arguments(
        export_kinds.add_parser("training", help="a character's dialogue as fine-tuning files")
    )
    from bot.eval.options import add_arguments as add_eval_arguments

    add_eval_arguments(commands.add_parser("eval", help="retrieval quality and judged role-play quality"))
    return parser


def _add_extract(extract: argparse.ArgumentParser) -> None:
    extract.description = (
        "Make (or refresh) a character pack from episodes (video + SRT/ASS subtitles), transcripts or "
        "another tool's {image, text} jsonl. Nothing is written unless the whole pack validates."
    )
    inputs = extract.add_argument_group("inputs (any mix, each repeatable)")
    inputs.add_argument(
        "--video", metavar="PATH", action="append", type=Path, default=[], help="an episode's video"
    )
    inputs.add_argument(
        "--subtitles",
        metavar="PATH",
        action="append",
        type=Path,
        default=[],
        help="its SRT/ASS/SSA subtitles, paired with the --video in the same position (alone: no frames)",
    )
    inputs.add_argument(
        "--episode",
        nargs=2,
        action="append",
        type=Path,
        default=[],
        metavar=("VIDEO", "SUBTITLES"),
        help="an episode's video and subtitles in one flag",
    )
    inputs.add_argument(
        "--transcript",
        metavar="PATH",
        action="append",
        type=Path,
        default=[],
        help="'Name: line' text, blank line = new scene",
    )
    inputs.add_argument(
        "--from-jsonl",
        metavar="PATH",
        action="append",
        type=Path,
        default=[],
        help="an {image, text} jsonl file or folder",
    )
    who = extract.add_argument_group("who")
    who.add_argument(
        "--character", metavar="NAME", required=True, help="the character's name as the subtitles write it"
    )
    who.add_argument(
        "--alias",
        metavar="NAME",
        action="append",
        default=[],
        help="another name of the character (repeatable)",
    )
    who.add_argument(
        "--speaker-map", metavar="FILE", type=Path, help="TOML/JSON: [names], [styles], skip_styles → speaker"
    )
    who.add_argument(
        "--narrator", metavar="NAME", help="speaker for unattributed lines (default: Narrator / 旁白)"
    )
    pack = extract.add_argument_group("pack")
    pack.add_argument(
        "--out", metavar="DIR", required=True, type=Path, help="the pack folder, e.g. characters/orla"
    )
    pack.add_argument("--language", choices=["en", "zh"], help="default: the pack's, else detected")
    pack.add_argument(
        "--encoding", metavar="NAME", help="text encoding of subtitles/transcripts (default: detected)"
    )
    pack.add_argument(
        "--scene-gap",
        metavar="SECONDS",
        type=float,
        default=6.0,
        help="seconds of silence that end a scene (6)",
    )
    pack.add_argument(
        "--max-scene-lines", metavar="N", type=int, default=12, help="lines at most per scene (12)"
    )
    pack.add_argument(
        "--max-scene-seconds", metavar="SECONDS", type=float, default=120.0, help="scene length cap (120)"
    )
    frames = extract.add_argument_group("frames (--workers and --frame-timeout hold for voice cuts too)")
    frames.add_argument("--workers", metavar="N", type=int, default=2, help="ffmpeg processes at once (2)")
    frames.add_argument(
        "--frame-width", metavar="PIXELS", type=int, default=640, help="maximum screenshot width (640)"
    )
    frames.add_argument(
        "--jpeg-quality", metavar="Q", type=int, default=5, help="ffmpeg -q:v, 2 best … 31 worst (5)"
    )
    frames.add_argument(
        "--frame-timeout", metavar="SECONDS", type=float, default=60.0, help="seconds per ffmpeg call (60)"
    )
    voices = extract.add_argument_group("voices")
    voices.add_argument(
        "--no-voices",
        dest="voices",
        action="store_false",
        help="do not cut the character's lines out of the video's sound into voices/",
    )
    voices.add_argument(
        "--voice-format",
        choices=["opus", "mp3"],
        default="opus",
        help="opus: Opus in .ogg, 32 kbit/s (default); mp3: .mp3, 64 kbit/s",
    )


def _extract(args: argparse.Namespace) -> int:
    from bot.errors import ExtractError
    from bot.extract import Episode, ExtractOptions, FrameSettings, SceneLimits, extract_pack

    videos: list[Path] = args.video
    subtitles: list[Path] = args.subtitles
    if videos and len(videos) != len(subtitles):
        raise ExtractError(
            f"give one --subtitles per --video (got {len(videos)} --video, {len(subtitles)} --subtitles), "
            "or use --episode VIDEO SUBTITLES"
        )
    if args.scene_gap <= 0 or args.max_scene_lines < 1 or args.max_scene_seconds <= 0:
        raise ExtractError("--scene-gap, --max-scene-lines and --max-scene-seconds must be positive")
    if (
        args.workers < 1
        or args.frame_width < 16
        or not 2 <= args.jpeg_quality <= 31
        or args.frame_timeout <= 0
    ):
        raise ExtractError("--workers ≥ 1, --frame-width ≥ 16, --jpeg-quality 2…31, --frame-timeout > 0")
    episodes = [Episode(subs, videos[i] if videos else None) for i, subs in enumerate(subtitles)]
    episodes += [Episode(subs, video) for video, subs in args.episode]
    options = ExtractOptions(
        character=args.character,
        out=args.out,
        aliases=args.alias,
        episodes=episodes,
        transcripts=args.transcript,
        jsonl=args.from_jsonl,
        language=args.language,
        narrator=args.narrator,
        speaker_map=args.speaker_map,
        encoding=args.encoding,
        limits=SceneLimits(
            gap_ms=round(args.scene_gap * 1000),
            max_lines=args.max_scene_lines,
            max_ms=round(args.max_scene_seconds * 1000),
        ),
        frames=FrameSettings(
            max_width=args.frame_width,
            jpeg_quality=args.jpeg_quality,
            workers=args.workers,
            timeout_s=args.frame_timeout,
        ),
        voices=args.voices,
        voice_format=args.voice_format,
    )
    print(extract_pack(options).render())
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
            line += f", {len(pack.voices)} voice clips" if pack.voices else ""
        print(line)
    return 1 if failed else 0


def _manage_characters(config: BotConfig, args: argparse.Namespace) -> int:
    """``characters import|export|remove``; a refused import leaves ``[characters] dir`` untouched."""
    from urllib.parse import unquote, urlparse

    from bot.engine.packs import load_pack
    from bot.importers import export_card, export_zip, import_pack, remove_pack

    directory = config.characters_dir
    if args.action == "import":
        source = args.source
        if source.startswith("file://"):
            source = unquote(urlparse(source).path)
        result = import_pack(
            Path(source),
            directory,
            pack_id=args.pack_id,
            replace=args.replace,
            progress=lambda step: print(f"… {step}", file=sys.stderr),
        )
        pack = result.pack
        print(
            f"imported {pack.id} ({pack.name}) from a {result.format}: {len(pack.scenes)} scenes, "
            f"{len(pack.lore)} lorebook entries"
        )
        for note in result.notes:
            print(f"  note: {note}")
        if args.index:
            _index_with_progress(config, pack)
        return 0
    if args.action == "remove":
        remove_pack(directory, args.pack_id)
        print(
            f"removed {args.pack_id}; the chats that used it keep their memories and fall back to the default"
        )
        return 0
    pack = load_pack(directory / args.pack_id)
    suffix = {"zip": ".zip", "card": ".png", "card-json": ".json"}[args.kind]
    data = export_zip(pack) if args.kind == "zip" else export_card(pack, png=args.kind == "card")
    out: Path = args.out or Path(pack.id + suffix)
    out.write_bytes(data)
    print(f"wrote {out} ({len(data) // 1024} KB)")
    return 0


def _index_with_progress(config: BotConfig, pack: CharacterPack) -> None:
    """Embed the pack's scenes into the cache the bot reads at start, with a progress bar."""
    from tqdm import tqdm

    from bot.engine.embedder import create_embedder
    from bot.engine.retrieval import scene_vectors

    embedder = create_embedder(config.embedding, base_dir=config.base_dir)
    with tqdm(total=len(pack.scenes), desc=f"indexing {pack.id}", unit="scene", file=sys.stderr) as bar:
        vectors = scene_vectors(
            pack,
            embedder,
            data_dir=config.data_dir,
            batch_size=config.embedding.batch_size,
            progress=lambda done, _total: bar.update(done - bar.n),
        )
        if vectors is not None:
            bar.update(len(pack.scenes) - bar.n)
    if vectors is None:
        print("  note: the scenes could not be embedded now; the bot retries at start", file=sys.stderr)


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


def _db_copy(config: BotConfig, args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from storage.transfer import copy_database

    def shown(url: str) -> str:
        return make_url(url).render_as_string(hide_password=True)

    source = args.source or config.database_url
    print(f"copying {shown(source)} → {shown(args.target)}", file=sys.stderr)
    reported: dict[str, float] = {}

    def progress(table: str, rows: int) -> None:
        now = time.monotonic()
        if now - reported.get(table, 0.0) >= 2.0:
            reported[table] = now
            print(f"  {table}: {rows:,} rows read", file=sys.stderr)

    report = asyncio.run(copy_database(source, args.target, batch=args.batch, progress=progress))
    for check in report.tables:
        state = (
            "ok"
            if check.matches
            else (
                f"MISMATCH (source {check.source_rows:,} rows {check.source_checksum}, "
                f"target {check.target_rows:,} rows {check.target_checksum})"
            )
        )
        print(f"{check.table:<22} {check.target_rows:>10,} rows ({check.copied:,} copied now)  {state}")
    print(
        f"{report.copied:,} rows copied in {report.seconds:.1f} s; "
        + (
            "every table matches (counts and checksums)"
            if report.matches
            else "some tables differ: run it again"
        )
    )
    return 0 if report.matches else 1


def main(argv: Sequence[str] | None = None) -> int:
    _offline()
    args = build_parser().parse_args(argv)
    try:
        if args.command == "extract":
            return _extract(args)
        config = load_config(args.config)
        if args.command == "characters" and args.action in ("import", "export", "remove"):
            return _manage_characters(config, args)
        if args.command == "characters":
            return _characters(config, args.action, getattr(args, "paths", []))
        if args.command == "db" and args.action == "copy":
            return _db_copy(config, args)
        if args.command == "db":
            return _db_upgrade(config)
        if args.command == "export":
            from bot.training.export import main as export

            return export(config, args)
        if args.command == "eval":
            from bot.eval.run import main as evaluate

            return evaluate(config, args)
        if args.command == "bench":
            from bot.bench.run import main as bench

            return bench(config, args)
        from plugins.host import run

        run(config)
    except (BotError, StorageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
