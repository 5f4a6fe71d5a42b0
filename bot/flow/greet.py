"""The daily greeting, a job on the message path's stages: the chat's context gathered, the active
character answering the time of day, the line recorded, and the greeting announced."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from bot.errors import JobError
from bot.flow.answer import turn_of
from bot.greetings import greeting_cue
from bot.messages import ChatKey, Reply

if TYPE_CHECKING:
    from bot.config import BotConfig
    from bot.engine.pack_models import PackModels
    from bot.engine.responder import Responder
    from bot.flow.gather import Gatherer
    from bot.flow.locks import ChatLocks
    from bot.ledger import Ledger
    from bot.outbox import Outbox
    from storage import Repository


class Greeter:
    """Writes and posts a chat's daily greeting."""

    def __init__(
        self,
        config: BotConfig,
        repository: Repository,
        locks: ChatLocks,
        gatherer: Gatherer,
        responder: Responder,
        ledger: Ledger,
        outbox: Outbox,
        models: PackModels | None = None,
    ) -> None:
        self.config = config
        self.repository = repository
        self.locks = locks
        self.gatherer = gatherer
        self.responder = responder
        self.ledger = ledger
        self.outbox = outbox
        self.models = models
        """The characters' own models; without it every greeting comes from the responder's model."""

    async def greet(self, key: ChatKey, now: datetime) -> None:
        """Post the chat's daily greeting, written by its active character for ``now``; raises
        :class:`JobError` when the model or the platform fails (the greeting is then retried)."""
        async with self.locks.hold(key):
            async with self.repository.unit() as session:
                state = await self.repository.chats.state(key, session=session)
                pack = self.gatherer.active_pack(state)
                window = max(self.config.prompt.history_turns, 1)
                stored = await self.repository.messages.recent(
                    key, pack.id, limit=window, floor=state.memory_floor, session=session
                )
                summary, _covered = await self.repository.summaries.get(key, pack.id, session=session)
            result = await self.responder.respond(
                pack,
                [turn_of(message, pack) for message in stored],
                greeting_cue(pack, now),
                summary=summary,
                model=self.models.for_pack(pack, self.responder.model) if self.models is not None else None,
            )
            if result.failed:
                raise JobError(f"{key}: {pack.name} has no greeting: the model did not answer")
            greeting = Reply(result.text, quote=False, character=pack.id, in_history=True)
            await self.ledger.record(key, [greeting], names={pack.id: pack.name})
        # NOTE: posted outside the chat's lock: a paced or reconnecting account must not hold the chat.
        if not await self.outbox.announce(key, greeting):
            await self.ledger.settle([greeting], "failed", "the platform is not connected")
            raise JobError(f"{key}: the greeting could not be posted (is the platform connected?)")
