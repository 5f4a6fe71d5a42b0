"""The options of ``python -m bot export training``, apart from the export so the CLI parser stays fast."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--character", metavar="ID", required=True, help="the pack to export")
    parser.add_argument(
        "--format",
        choices=["sharegpt", "openai", "alpaca", "xtuner"],
        default="sharegpt",
        help="the records' layout (sharegpt)",
    )
    parser.add_argument(
        "--from-chats",
        action="store_true",
        help="add the stored exchanges of chats whose admins turned /training on",
    )
    parser.add_argument(
        "--corpus",
        metavar="FILE",
        type=Path,
        action="append",
        default=[],
        help="a Q&A corpus to add ('Asker: question' / 'Name: answer', a blank line between; repeatable)",
    )
    parser.add_argument("--out", metavar="DIR", type=Path, help="default: <data dir>/training/ID-FORMAT")
    parser.add_argument(
        "--recipe", choices=["xtuner", "llama-factory"], help="also write that tool's training config"
    )
    parser.add_argument(
        "--validation",
        metavar="SHARE",
        type=float,
        default=0.1,
        help="share of scenes, corpus pairs and chats held out for validation (0.1)",
    )
