"""``python -m bot eval``: the options, the run, the printed summary."""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import BotConfig
from bot.engine.embedder import Embedder, create_embedder
from bot.engine.model import ChatModel
from bot.engine.packs import CharacterPack, load_packs
from bot.engine.prompt import PromptBuilder, TokenCounter
from bot.engine.responder import Responder
from bot.engine.retrieval import Retriever
from bot.engine.screenshots import ScreenshotMatcher
from bot.errors import ConfigError
from bot.eval.compare import comparison
from bot.eval.judge import Answer, ModelScores, Price, answer_and_judge, by_model
from bot.eval.models import Endpoint as Endpoint  # NOTE: re-exported, where it used to live
from bot.eval.models import Entry, EvalModels, parse_models, resolve_models
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


@dataclass(slots=True)
class EvalOptions:
    packs: list[str] = field(default_factory=list)
    models: list[Entry] = field(default_factory=list)
    """``--models`` then ``--model``: endpoints, ``bot`` and ``pack`` (:mod:`bot.eval.models`)."""
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
        models=[*parse_models(args.models), *(Endpoint.parse(text, "--model") for text in args.model)],
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


async def _models(config: BotConfig, options: EvalOptions, packs: list[CharacterPack]) -> EvalModels:
    return await resolve_models(
        config, options.models, packs, judge=options.judge, key_env=options.api_key_env
    )


class _Responders:
    """One responder per model, its prompt laid out under that model's budgets."""

    def __init__(self, config: BotConfig, retriever: Retriever) -> None:
        self.config = config
        self.retriever = retriever
        self._made: dict[int, Responder] = {}

    def __call__(self, model: ChatModel) -> Responder:
        if id(model) not in self._made:
            self._made[id(model)] = _responder(self.config, model, self.retriever)
        return self._made[id(model)]


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
    models = await _models(config, options, packs)
    responders = _Responders(config, retriever)
    try:
        for contender in models.contenders:
            for pack in packs:
                if (model := contender.model_for(pack)) is not None:
                    replies += await attack(contender.name, responders(model), [pack], attacks)
    finally:
        await models.aclose()
    scores = score(replies)
    folder = config.data_dir / "eval" / time.strftime("%Y%m%d-%H%M%S")
    return RedTeamResult(scores, await asyncio.to_thread(write_redteam, folder, replies, scores))


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
        answers = await _judge_part(config, options, chosen, settings, embedder)
    folder = config.data_dir / "eval" / time.strftime("%Y%m%d-%H%M%S")
    models = by_model(answers)
    report = await asyncio.to_thread(write_report, folder, retrieval, models, settings)
    return EvalResult(retrieval, models, report, latency)


async def _judge_part(
    config: BotConfig,
    options: EvalOptions,
    chosen: list[tuple[CharacterPack, list[EvalQuestion]]],
    settings: dict[str, object],
    embedder: Embedder,
) -> list[Answer]:
    """Every contender's answers, judged; retrieval uses ``embedder``, the one the retrieval part
    loaded (loading it again would cost a model load)."""
    models = await _models(config, options, [pack for pack, _questions in chosen])
    judge = models.judge
    settings.update(
        {
            "models": ", ".join(contender.name for contender in models.contenders),
            "judge": judge.name,
            "runs": options.runs,
        }
    )
    settings.update({f"note {number}": note for number, note in enumerate(models.notes, start=1)})
    counter = TokenCounter.default()
    retriever = Retriever(embedder, config.data_dir, dense_weight=config.retrieval.dense_weight)
    responders = _Responders(config, retriever)
    answers: list[Answer] = []
    try:
        for contender in models.contenders:
            for pack, questions in chosen:
                model = contender.model_for(pack)
                if model is None:
                    continue
                price = contender.price(options.prices, model)
                for question in questions:
                    for run in range(1, options.runs + 1):
                        answers.append(
                            await answer_and_judge(
                                contender.name, responders(model), judge, pack, question, run, price, counter
                            )
                        )
    finally:
        await models.aclose()
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
        if len(result.models) > 1:
            print("\n" + comparison(result.models))  # noqa: T201
    print(f"\nreport: {result.report}")  # noqa: T201
    return 0
