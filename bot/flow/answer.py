"""Respond: one character's answer to one stored message, from the context gathered for it.

The engine (:class:`~bot.engine.responder.Responder`) retrieves the classic scenes, builds the
prompt, asks the model and checks the reply; here the gathered messages become the prompt's turns,
recall picks older messages the new one is about, and a screenshot goes with the reply when the chat
allows one. With ``[memory] trace_days`` above 0 each answer carries its trace (:mod:`bot.traces`)
for the record stage to store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.engine.pack_models import PackModels
from bot.engine.prompt import Turn
from bot.engine.screenshots import screenshot_image
from bot.flow.cooldown import ChatCooldown
from bot.messages import ChatKey, Reply
from bot.traces import ReplyTrace

if TYPE_CHECKING:
    from bot.config import BotConfig
    from bot.engine.model import Completion
    from bot.engine.packs import CharacterPack
    from bot.engine.responder import Responder
    from bot.flow.gather import Context
    from storage import ChatState, StoredMessage


@dataclass(slots=True)
class Answer:
    """A character's reply, with what it cost (for the record stage)."""

    reply: Reply
    completions: list[Completion] = field(default_factory=list)
    prompt_text: Callable[[], str] = str
    """The prompt as text, for estimating its tokens when the model reported none."""
    trace: ReplyTrace | None = None
    """Why the reply came out as it did; ``None`` when ``[memory] trace_days`` keeps no traces."""


def turn_of(message: StoredMessage, pack: CharacterPack) -> Turn:
    """A stored message as the prompt shows it to ``pack``."""
    if message.role == "character":
        return Turn(pack.name, message.text, from_character=True)
    return Turn(message.speaker, message.text)


class Answerer:
    """Turns a gathered :class:`~bot.flow.gather.Context` into the character's reply."""

    def __init__(
        self,
        config: BotConfig,
        responder: Responder,
        cooldown: ChatCooldown,
        models: PackModels | None = None,
    ) -> None:
        self.config = config
        self.responder = responder
        self.cooldown = cooldown
        self.models = models or PackModels(responder.model, config.llm)
        """Which model each character answers through."""

    async def answer(
        self, key: ChatKey, context: Context, state: ChatState, *, model: str | None = None
    ) -> Answer:
        """``context.pack``'s answer to ``context.message``, through the pack's own model when it has
        one; ``model`` (the budget's cheaper one) answers instead of ``[llm] model`` for the bot's
        model only, whether it answers for the pack or as its fallback."""
        pack = context.pack
        images_on = self.config.images.enabled if state.images_enabled is None else state.images_enabled
        with_screenshot = images_on and bool(pack.screenshots) and self.cooldown.ready(key)
        recalled = await self._recall(context)
        started = time.perf_counter()
        result = await self.responder.respond(
            pack,
            [turn_of(message, pack) for message in context.history],
            turn_of(context.message, pack),
            with_screenshot=with_screenshot,
            summary=context.summary,
            recalled=recalled,
            model=self.models.for_pack(
                pack, self.responder.model.variant(model) if model else self.responder.model
            ),
        )
        took_ms = (time.perf_counter() - started) * 1000
        reply = Reply(result.text, character=pack.id, in_history=not result.failed)
        if result.screenshot is not None:
            image = await screenshot_image(
                result.screenshot.shot, self.config.images, self.config.image_cache_dir
            )
            if image is not None:
                reply.images.append(image)
                self.cooldown.used(key)
        trace = ReplyTrace.build(pack, result, latency_ms=took_ms) if self.config.memory.trace_days else None
        return Answer(reply, result.completions, result.prompt.system_text, trace)

    async def _recall(self, context: Context) -> list[str]:
        """Older messages (before the history window) that the message is about, as prompt lines."""
        k = self.config.memory.recall_k
        if not k or not context.older or not context.history:
            return []
        found = await self.responder.recall.search(
            context.older, context.message.text, k, context=context.history[-1].text
        )
        return [turn_of(message, context.pack).render() for message in found]
