"""A model per character: the ``[llm]`` table of a pack's ``character.toml``.

:class:`PackModels` builds each pack's own model once (packs that name the same endpoint, model, key
and style share it) and closes them all at shutdown; a pack without ``[llm]`` answers through the
bot's model. With ``fallback = true`` (the default) the pack's model is wrapped in a
:class:`FallbackModel`: when it fails, the bot's model answers instead, and the log says so once per
pack, not once per message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import httpx

from bot.engine.model import ChatModel, OpenAIChatModel, OpenAICompletionModel
from bot.errors import ModelError, ModelTimeout

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bot.config import LLMConfig, PromptConfig
    from bot.engine.model import Completion
    from bot.engine.pack_schema import PackLLM
    from bot.engine.packs import CharacterPack
    from bot.engine.prompt import Prompt

log = logging.getLogger(__name__)

PRIMARY_SHARE = 0.5
"""The part of ``[llm] reply_deadline_s`` a pack's own model may take, retries included, before the
bot's model is asked instead: the fallback keeps the rest, so it can still answer in time."""


class FallbackModel(ChatModel):
    """``primary`` answers; when it fails in any way (or takes longer than ``primary_limit_s``),
    ``secondary`` answers, and ``on_fallback`` hears why.

    Its name is the primary's; each :class:`~bot.engine.model.Completion` carries the name of the
    model that really answered, so usage is counted against the right model.
    """

    def __init__(
        self,
        primary: ChatModel,
        secondary: ChatModel,
        *,
        on_fallback: Callable[[ModelError], None],
        on_primary: Callable[[], None] | None = None,
        primary_limit_s: float | None = None,
    ) -> None:
        self.name = primary.name
        self.primary = primary
        self.secondary = secondary
        self.on_fallback = on_fallback
        self.on_primary = on_primary
        """Called each time the primary answered (a model that failed before may be back)."""
        self.primary_limit_s = primary_limit_s

    @property
    def ready(self) -> bool:
        return self.primary.ready or self.secondary.ready

    def budgets(self, configured: PromptConfig) -> PromptConfig:
        return self.primary.budgets(configured)

    async def complete(self, prompt: Prompt) -> Completion:
        try:
            completion = await self._ask_primary(prompt)
        except ModelError as exc:
            self.on_fallback(exc)
            return await self.secondary.complete(prompt)
        if self.on_primary is not None:
            self.on_primary()
        return completion

    async def _ask_primary(self, prompt: Prompt) -> Completion:
        """The primary's answer; a ModelError when it cannot give one within ``primary_limit_s``."""
        timeout = asyncio.timeout(self.primary_limit_s)
        try:
            async with timeout:
                return await self.primary.complete(prompt)
        except TimeoutError as exc:
            if timeout.expired():
                raise ModelTimeout(
                    f"no answer within {self.primary_limit_s:g} s, the share of the reply deadline "
                    "it may take before the bot's model answers instead"
                ) from exc
            raise ModelError(f"the model failed: {type(exc).__name__}: {exc}") from exc

    async def warm_up(self, standing: Sequence[Prompt] = ()) -> None:
        await self.primary.warm_up(standing)

    def variant(self, model: str) -> ChatModel:
        """The fallback answering with ``model`` (the budget's cheaper model applies to the bot's model)."""
        other = self.secondary.variant(model)
        if other is self.secondary:
            return self
        return FallbackModel(
            self.primary,
            other,
            on_fallback=self.on_fallback,
            on_primary=self.on_primary,
            primary_limit_s=self.primary_limit_s,
        )


class _Endpoint(NamedTuple):
    """What makes two packs' models the same one."""

    base_url: str | None
    model: str
    api_key_env: str
    style: str
    timeout_s: float
    max_retries: int


class PackModels:
    """Each pack's model: its own ``[llm]`` when it has one, else ``default`` (the bot's).

    Built lazily, once per endpoint, so a pack added or reloaded at run time gets its model on its
    first message; close with :meth:`aclose`.
    """

    def __init__(self, default: ChatModel, config: LLMConfig) -> None:
        self.default = default
        self.config = config
        self._models: dict[_Endpoint, ChatModel] = {}
        self._falling_back: set[str] = set()

    def for_pack(self, pack: CharacterPack, default: ChatModel | None = None) -> ChatModel:
        """The model ``pack`` answers through; ``default`` replaces the bot's model (as its fallback
        too) for this answer, e.g. the budget's cheaper variant."""
        bots = default or self.default
        settings = pack.settings.llm
        if settings is None:
            return bots
        own = self._model(settings)
        if not settings.fallback:
            return own

        def fell_back(error: ModelError) -> None:
            self._fell_back(pack, own, bots, error)

        def answered() -> None:
            if pack.id in self._falling_back:
                self._falling_back.discard(pack.id)
                log.info("%s's own model %s answers again", pack.id, own.name)

        return FallbackModel(
            own,
            bots,
            on_fallback=fell_back,
            on_primary=answered,
            primary_limit_s=self.config.reply_deadline_s * PRIMARY_SHARE,
        )

    def own(self, pack: CharacterPack) -> ChatModel | None:
        """``pack``'s own ``[llm]`` model as it is, never wrapped in the fallback: ``None`` without
        ``[llm]``. For measuring that model alone (``python -m bot eval --models pack``), where a
        fallback would quietly measure the bot's model instead."""
        settings = pack.settings.llm
        return None if settings is None else self._model(settings)

    def _fell_back(self, pack: CharacterPack, own: ChatModel, bots: ChatModel, error: ModelError) -> None:
        # NOTE: once per pack, not once per message: a model that is down stays down for a while,
        # and a warning on every message would bury everything else in the log.
        if pack.id in self._falling_back:
            log.debug("%s's own model %s failed again: %s", pack.id, own.name, error)
            return
        self._falling_back.add(pack.id)
        log.warning(
            "%s's own model %s failed (%s); the bot's model %s answers for it until it is back",
            pack.id,
            own.name,
            error,
            bots.name,
        )

    def _model(self, settings: PackLLM) -> ChatModel:
        endpoint = _Endpoint(
            base_url=settings.base_url or self.config.base_url,
            model=settings.model,
            api_key_env=settings.api_key_env or self.config.api_key_env,
            style=settings.style,
            timeout_s=settings.timeout_s or self.config.timeout_s,
            max_retries=self.config.max_retries if settings.max_retries is None else settings.max_retries,
        )
        model = self._models.get(endpoint)
        if model is None:
            kind = OpenAICompletionModel if endpoint.style == "completion" else OpenAIChatModel
            override: dict[str, object] = {**endpoint._asdict(), "backend": "openai"}
            del override["style"]
            model = kind.from_config(self.config.model_copy(update=override))
            self._models[endpoint] = model
        return model

    async def aclose(self) -> None:
        """Close every pack's own model (the bot's model is closed by whoever made it)."""
        models, self._models = list(self._models.values()), {}
        for model in models:
            await model.aclose()


def describe_model(pack: CharacterPack, config: LLMConfig) -> str:
    """Which model ``pack`` answers through, for people: never a key, nor a URL's user or query."""
    settings = pack.settings.llm
    if settings is None:
        return "answers through the bot's model"
    base_url = settings.base_url or config.base_url
    where = f" at {public_url(base_url)}" if base_url else ""
    style = " (script completion)" if settings.style == "completion" else ""
    then = "falls back to the bot's model" if settings.fallback else "apologises when it fails"
    return f"answers through its own model {settings.model}{style}{where} ({then})"


def public_url(url: str) -> str:
    """``url`` without a user, password or query, which may carry a key."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "its own endpoint"
    return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))
