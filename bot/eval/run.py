"""``python -m bot eval``: the options, the run, the printed summary."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import BotConfig
from bot.engine.backends import create_chat_model
from bot.engine.embedder import create_embedder
from bot.engine.model import ChatModel, OpenAIChatModel
from bot.engine.packs import CharacterPack, load_packs
from bot.engine.prompt import PromptBuilder, TokenCounter
from bot.engine.responder import Responder
from bot.engine.retrieval import Retriever
from bot.engine.screenshots import ScreenshotMatcher
from bot.errors import ConfigError
from bot.eval.judge import Answer, ModelScores, Price, answer_and_judge, by_model
from bot.eval.questions import EvalQuestion, load_questions
from bot.eval.redteam import (
    ATTACKS,
    AttackReply,
    RedTeamScores,
    attack,
    load_attacks,
    redteam_table,
    score,
    write_redteam,
)
from bot.eval.report import judge_table, pyplot, retrieval_table, write_report
from bot.eval.retrieval import QueryLatency, RetrievalScores, evaluate_retrieval, query_latency


@dataclass(slots=True, frozen=True)
class Endpoint:
    """An OpenAI-compatible model to evaluate or to judge with: ``NAME=BASE_URL@MODEL``."""

    name: str
    base_url: str
    model: str

    @classmethod
    def parse(cls, text: str, option: str) -> Endpoint:
        name, _, rest = text.partition("=") if "=" in text.split("@")[0] else ("", "", text)
        base_url, _, model = rest.rpartition("@")
        if not base_url or not model:
            raise ConfigError(
                f"{option}: {text!r} must look like NAME=BASE_URL@MODEL, e.g. ds=https://api.x/v1@chat"
            )
        return cls(name or model, base_url, model)


@dataclass(slots=True)
class EvalOptions:
    packs: list[str] = field(default_factory=list)
    models: list[Endpoint] = field(default_factory=list)
    judge: Endpoint | None = None
    api_key_env: str = "OPENAI_API_KEY"
    prices: dict[str, Price] = field(default_factory=dict)
    runs: int = 3
    questions: int | None = None
    ks: tuple[int, ...] = (1, 3, 5)
    judge_part: bool = True
    redteam: Path | None = None
    """Run the red team with these attacks instead of the retrieval and judge parts."""


@dataclass(slots=True)
class EvalResult:
    retrieval: list[RetrievalScores]
    models: list[ModelScores]
    report: Path
    latency: QueryLatency | None = None


def options_from(args: argparse.Namespace) -> EvalOptions:
    prices = {}
    for text in args.price:
        name, _, figures = text.partition("=")
        prompt, _, completion = figures.partition("/")
        try:
            prices[name] = Price(float(prompt), float(completion))
        except ValueError:
            raise ConfigError(f"--price: {text!r} must look like NAME=IN/OUT, e.g. mini=0.15/0.6") from None
    try:
        ks = tuple(int(k) for k in args.k.split(","))
    except ValueError:
        raise ConfigError(f"--k: {args.k!r} must be numbers, e.g. 1,3,5") from None
    if args.runs < 1 or (args.questions is not None and args.questions < 1) or min(ks) < 1:
        raise ConfigError("--runs, --questions and --k must be 1 or more")
    return EvalOptions(
        packs=[pack for pack in args.packs.split(",") if pack],
        models=[Endpoint.parse(text, "--model") for text in args.model],
        judge=Endpoint.parse(args.judge, "--judge") if args.judge else None,
        api_key_env=args.api_key_env,
        prices=prices,
        runs=args.runs,
        questions=args.questions,
        ks=ks,
        judge_part=not args.retrieval_only,
        redteam=(Path(args.redteam_file) if args.redteam_file else ATTACKS) if args.redteam else None,
    )


def _chosen(config: BotConfig, options: EvalOptions) -> list[tuple[CharacterPack, list[EvalQuestion]]]:
    packs = load_packs(config.characters_dir).packs
    unknown = set(options.packs) - {pack.id for pack in packs}
    if unknown:
        raise ConfigError(f"--packs: no character {', '.join(sorted(unknown))}")
    chosen = []
    for pack in packs:
        if options.packs and pack.id not in options.packs:
            continue
        questions = load_questions(pack)[: options.questions]
        if questions:
            chosen.append((pack, questions))
    if not chosen:
        raise ConfigError(f"no pack under {config.characters_dir} has eval/*.yaml questions")
    return chosen


@dataclass(slots=True)
class RedTeamResult:
    scores: list[RedTeamScores]
    report: Path


def _models(config: BotConfig, options: EvalOptions) -> list[tuple[str, ChatModel]]:
    """The models to evaluate: ``--model`` endpoints, else the configured (often the offline) model."""
    models: list[tuple[str, ChatModel]] = [
        (endpoint.name, _model(config, endpoint, options.api_key_env)) for endpoint in options.models
    ]
    if not models:
        configured = create_chat_model(config.llm, config.data_dir, config.base_dir)
        models = [(configured.name, configured)]
    return models


def _responder(config: BotConfig, model: ChatModel, retriever: Retriever) -> Responder:
    return Responder(
        config=config,
        retriever=retriever,
        prompts=PromptBuilder(model.budgets(config.prompt), TokenCounter.default()),
        model=model,
        screenshots=ScreenshotMatcher(None, min_similarity=1.0, min_overlap=1.0),
    )


async def run_redteam(config: BotConfig, options: EvalOptions, attacks_file: Path) -> RedTeamResult:
    """Every attack to every chosen pack, per model; the report goes under ``<data_dir>/eval/``."""
    attacks = load_attacks(attacks_file)
    packs = [
        pack
        for pack in load_packs(config.characters_dir).packs
        if pack.id in options.packs or not options.packs
    ]
    if not packs:
        raise ConfigError(f"--packs: no such character under {config.characters_dir}")
    retriever = Retriever(
        create_embedder(config.embedding, base_dir=config.base_dir),
        config.data_dir,
        dense_weight=config.retrieval.dense_weight,
    )
    replies: list[AttackReply] = []
    models = _models(config, options)
    try:
        for name, model in models:
            replies += await attack(name, _responder(config, model, retriever), packs, attacks)
    finally:
        for _name, model in models:
            await model.aclose()
    scores = score(replies)
    folder = config.data_dir / "eval" / time.strftime("%Y%m%d-%H%M%S")
    return RedTeamResult(scores, await asyncio.to_thread(write_redteam, folder, replies, scores))


def _model(config: BotConfig, endpoint: Endpoint, key_env: str) -> ChatModel:
    return OpenAIChatModel(
        model=endpoint.model,
        base_url=endpoint.base_url,
        api_key=os.environ.get(key_env) or "eval",
        timeout_s=config.llm.timeout_s,
        max_retries=config.llm.max_retries,
        temperature=config.llm.temperature,
        max_tokens=config.llm.max_tokens,
    )


async def run_eval(config: BotConfig, options: EvalOptions) -> EvalResult:
    """Both parts on ``config``'s packs; the report is written under ``<data_dir>/eval/``."""
    pyplot()  # NOTE: without the eval extra this stops now, not after the (paid) judged answers
    chosen = _chosen(config, options)
    embedder = create_embedder(config.embedding, base_dir=config.base_dir)
    retrieval: list[RetrievalScores] = []
    for pack, questions in chosen:
        retrieval += await asyncio.to_thread(
            evaluate_retrieval,
            pack,
            questions,
            embedder,
            config.data_dir,
            dense_weight=config.retrieval.dense_weight,
            ks=options.ks,
        )
    texts = [question.text for _pack, questions in chosen for question in questions]
    latency = await asyncio.to_thread(query_latency, embedder, texts, threads=config.embedding.threads)
    answers: list[Answer] = []
    settings: dict[str, object] = {
        "packs": ", ".join(pack.id for pack, _questions in chosen),
        "questions": sum(len(questions) for _pack, questions in chosen),
        "embedder": embedder.name,
        "hybrid dense_weight": config.retrieval.dense_weight,
        "query embedding": latency.summary(),
    }
    if options.judge_part:
        answers = await _judge_part(config, options, chosen, settings)
    folder = config.data_dir / "eval" / time.strftime("%Y%m%d-%H%M%S")
    models = by_model(answers)
    report = await asyncio.to_thread(write_report, folder, retrieval, models, settings)
    return EvalResult(retrieval, models, report, latency)


async def _judge_part(
    config: BotConfig,
    options: EvalOptions,
    chosen: list[tuple[CharacterPack, list[EvalQuestion]]],
    settings: dict[str, object],
) -> list[Answer]:
    models = _models(config, options)
    judge = _model(config, options.judge, options.api_key_env) if options.judge else models[0][1]
    settings.update(
        {"models": ", ".join(name for name, _model in models), "judge": judge.name, "runs": options.runs}
    )
    counter = TokenCounter.default()
    retriever = Retriever(
        create_embedder(config.embedding, base_dir=config.base_dir),
        config.data_dir,
        dense_weight=config.retrieval.dense_weight,
    )
    answers: list[Answer] = []
    try:
        for name, model in models:
            responder = _responder(config, model, retriever)
            for pack, questions in chosen:
                for question in questions:
                    for run in range(1, options.runs + 1):
                        answers.append(
                            await answer_and_judge(
                                name, responder, judge, pack, question, run, options.prices.get(name), counter
                            )
                        )
    finally:
        opened = {id(model): model for model in [*(model for _name, model in models), judge]}
        for model in opened.values():
            await model.aclose()
    return answers


def main(config: BotConfig, args: argparse.Namespace) -> int:
    options = options_from(args)
    if options.redteam is not None:
        red = asyncio.run(run_redteam(config, options, options.redteam))
        print(redteam_table(red.scores))  # noqa: T201 - the command's output
        for entry in red.scores:
            print(entry.summary())  # noqa: T201
        print(f"\nreport: {red.report}")  # noqa: T201
        return 0
    result = asyncio.run(run_eval(config, options))
    print(retrieval_table(result.retrieval))  # noqa: T201 - the command's output
    if result.latency is not None:
        print(result.latency.summary())  # noqa: T201
    if result.models:
        print("\n" + judge_table(result.models))  # noqa: T201
        for model in result.models:
            print(model.summary())  # noqa: T201
    print(f"\nreport: {result.report}")  # noqa: T201
    return 0
