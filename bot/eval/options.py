"""The options of ``python -m bot eval``, apart from the heavy parts so the CLI parser stays fast."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--packs", metavar="ID,ID", default="", help="packs to evaluate (default: all with questions)"
    )
    parser.add_argument(
        "--model",
        metavar="NAME=BASE_URL@MODEL",
        action="append",
        default=[],
        help="a model to judge (repeatable; as in --models)",
    )
    parser.add_argument(
        "--models",
        metavar="LIST",
        default="",
        help="models to compare, comma-separated: bot (the bot's [llm] model), pack (each character's "
        "own [llm] model, without the fallback), NAME=BASE_URL@MODEL",
    )
    parser.add_argument("--judge", metavar="BASE_URL@MODEL", help="the judge (default: the first model)")
    parser.add_argument(
        "--api-key-env", metavar="VAR", default="OPENAI_API_KEY", help="env variable of the key"
    )
    parser.add_argument(
        "--price", metavar="NAME=IN/OUT", action="append", default=[], help="USD per million tokens, in/out"
    )
    parser.add_argument("--runs", metavar="N", type=int, default=3, help="answers per question and model (3)")
    parser.add_argument("--questions", metavar="N", type=int, help="the first N questions of each pack")
    parser.add_argument("--k", metavar="K,K", default="1,3,5", help="recall@k cut-offs (1,3,5)")
    parser.add_argument("--retrieval-only", action="store_true", help="leave out the judge part")
    parser.add_argument(
        "--redteam",
        action="store_true",
        help="instead: send the red-team attacks to every pack and count the replies that stay in character",
    )
    parser.add_argument("--redteam-file", metavar="YAML", help="other attacks than the shipped ones")
