"""Which models ``python -m bot eval`` answers with, and which one judges.

``--model NAME=BASE_URL@MODEL`` names an OpenAI-compatible endpoint; ``--models`` lists them too,
with two more entries: ``bot`` (the bot's configured ``[llm]`` model) and ``pack`` (each chosen
character's own ``character.toml`` ``[llm]`` model, so one row of the comparison covers every pack
answering through its own model). Each becomes a :class:`Contender`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.engine.backends import create_chat_model
from bot.engine.model import ChatModel, OpenAIChatModel
from bot.engine.pack_models import PackModels
from bot.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bot.config import BotConfig
    from bot.engine.packs import CharacterPack
    from bot.eval.judge import Price

log = logging.getLogger(__name__)

BOT = "bot"
"""``--models`` entry: the bot's configured model (``[llm]`` in ``bot.toml``)."""
PACK = "pack"
"""``--models`` entry: each character's own ``[llm]`` model, without the fallback to the bot's."""


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


Entry = Endpoint | str
"""One model to evaluate: an endpoint, or :data:`BOT` or :data:`PACK`."""


def parse_models(text: str) -> list[Entry]:
    """The entries of ``--models bot,pack,NAME=BASE_URL@MODEL``."""
    entries: list[Entry] = []
    for item in (part.strip() for part in text.split(",")):
        if item in (BOT, PACK):
            entries.append(item)
        elif item:
            entries.append(Endpoint.parse(item, f"--models (bot, pack or NAME=BASE_URL@MODEL; got {item!r})"))
    return entries


@dataclass(slots=True)
class Contender:
    """One row of the comparison: a name, and the model each pack answers through under it.

    ``key`` is what ``--price`` names it by: ``bot``, ``pack``, or the endpoint's ``NAME``.
    """

    name: str
    key: str
    shared: ChatModel | None = None
    """The model every pack answers through; ``None`` for :data:`PACK`, whose models are per pack."""
    packs: dict[str, ChatModel] = field(default_factory=dict)
    """Pack id → the pack's own model (only :data:`PACK`)."""

    def model_for(self, pack: CharacterPack) -> ChatModel | None:
        """The model ``pack`` answers through; ``None``: this contender leaves the pack out."""
        return self.packs.get(pack.id, self.shared)

    def price(self, prices: dict[str, Price], model: ChatModel) -> Price | None:
        """``--price`` for this contender's key, else for the model's own name (e.g. one per pack model)."""
        return prices.get(self.key) or prices.get(model.name)


@dataclass(slots=True)
class EvalModels:
    """The contenders and the judge, with everything opened for them; close with :meth:`aclose`."""

    contenders: list[Contender]
    judge: ChatModel
    notes: list[str] = field(default_factory=list)
    """What people should know about the choice, e.g. packs the ``pack`` row leaves out."""
    opened: list[ChatModel] = field(default_factory=list)
    pack_models: PackModels | None = None

    async def aclose(self) -> None:
        await _close(self.opened, self.pack_models)


async def _close(opened: Sequence[ChatModel], pack_models: PackModels | None) -> None:
    if pack_models is not None:
        await pack_models.aclose()
    for model in {id(model): model for model in opened}.values():
        await model.aclose()


def endpoint_model(config: BotConfig, endpoint: Endpoint, key_env: str) -> ChatModel:
    """The chat model at ``endpoint``, with the bot's ``[llm]`` timeouts, temperature and length."""
    return OpenAIChatModel(
        model=endpoint.model,
        base_url=endpoint.base_url,
        api_key=os.environ.get(key_env) or "eval",
        timeout_s=config.llm.timeout_s,
        max_retries=config.llm.max_retries,
        temperature=config.llm.temperature,
        max_tokens=config.llm.max_tokens,
    )


async def resolve_models(
    config: BotConfig,
    entries: Sequence[Entry],
    packs: Sequence[CharacterPack],
    *,
    judge: Endpoint | None = None,
    key_env: str = "OPENAI_API_KEY",
) -> EvalModels:
    """The contenders for ``entries`` (none: the bot's configured model, named by its model) and the
    judge (``judge``, else the first contender with one model for every pack, else the bot's model)."""
    opened: list[ChatModel] = []
    bots: list[ChatModel] = []

    def bot_model() -> ChatModel:
        if not bots:
            bots.append(create_chat_model(config.llm, config.data_dir, config.base_dir))
            opened.append(bots[0])
        return bots[0]

    contenders: list[Contender] = []
    notes: list[str] = []
    pack_models: PackModels | None = None
    try:
        if not entries:
            contenders.append(Contender(bot_model().name, BOT, bot_model()))
        for entry in entries:
            if isinstance(entry, Endpoint):
                model = endpoint_model(config, entry, key_env)
                opened.append(model)
                contenders.append(Contender(entry.name, entry.name, model))
            elif entry == BOT:
                contenders.append(Contender(f"bot ({bot_model().name})", BOT, bot_model()))
            elif pack_models is None:
                # NOTE: PackModels builds the endpoint exactly as the bot does when it answers; its
                # default (the bot's model) is never asked here, since own() has no fallback.
                pack_models = PackModels(bot_model(), config.llm)
                contenders.append(_pack_contender(pack_models, packs, notes))
        names = [contender.name for contender in contenders]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ConfigError(f"two models are named {', '.join(twice)}: give each a different NAME=")
        if judge is not None:
            judging = endpoint_model(config, judge, key_env)
            opened.append(judging)
        else:
            judging = next((c.shared for c in contenders if c.shared is not None), None) or bot_model()
    except BaseException:
        await _close(opened, pack_models)
        raise
    return EvalModels(contenders, judging, notes, opened, pack_models)


def _pack_contender(pack_models: PackModels, packs: Sequence[CharacterPack], notes: list[str]) -> Contender:
    own: dict[str, ChatModel] = {}
    for pack in packs:
        model = pack_models.own(pack)
        if model is not None:
            own[pack.id] = model
    if not own:
        raise ConfigError(
            "--models pack: none of the chosen characters "
            f"({', '.join(pack.id for pack in packs)}) has its own model; give one an [llm] table "
            "in its character.toml (model = …, base_url = …), or leave pack out"
        )
    left_out = [pack.id for pack in packs if pack.id not in own]
    if left_out:
        note = (
            f"pack: {', '.join(left_out)} {'has' if len(left_out) == 1 else 'have'} no [llm] in "
            f"character.toml, so the pack row leaves {'it' if len(left_out) == 1 else 'them'} out"
        )
        log.warning("%s", note)
        notes.append(note)
    names = ", ".join(dict.fromkeys(model.name for model in own.values()))
    return Contender(f"pack ({names})", PACK, packs=own)
