"""Record: what a message made the bot say, stored in one unit of work.

The characters' lines join their history, every reply is recorded in the ledger as pending (the
sender settles it once posted), what the model cost is counted toward the chat's budgets, and each
answer's trace (:mod:`bot.traces`) is kept under its reply's delivery id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.messages import Incoming, Reply
from storage.traces import NewTrace

if TYPE_CHECKING:
    from bot.engine.registry import PackRegistry
    from bot.flow.answer import Answer
    from bot.governor import Governor
    from bot.ledger import Ledger
    from storage import Repository


class Recorder:
    """Writes a message's replies and their cost together."""

    def __init__(
        self, repository: Repository, ledger: Ledger, governor: Governor, packs: PackRegistry
    ) -> None:
        self.repository = repository
        self.ledger = ledger
        self.governor = governor
        self.packs = packs

    async def record(
        self, incoming: Incoming, replies: list[Reply], answers: Sequence[Answer] = ()
    ) -> list[Reply]:
        """Record ``replies`` (and the cost and traces of ``answers``, whose replies are among
        ``replies``) and return them, ready to deliver."""
        if not replies and not answers:
            return replies
        names = {
            pack.id: pack.name
            for reply in replies
            if reply.character and (pack := self.packs.get(reply.character)) is not None
        }
        async with self.repository.unit() as session:
            await self.ledger.record(
                incoming.key,
                replies,
                account=incoming.account,
                answers=incoming.message_id,
                names=names,
                session=session,
            )
            for answer in answers:
                await self.governor.record(incoming, answer.completions, answer.prompt_text, session=session)
            traces = [
                NewTrace(answer.reply.delivery_id, answer.reply.character, answer.trace.to_json())
                for answer in answers
                if answer.trace is not None and answer.reply.delivery_id is not None
            ]
            await self.repository.traces.add(incoming.key, traces, session=session)
        return replies
