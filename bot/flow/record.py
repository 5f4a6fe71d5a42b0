"""Record: what a message made the bot say, stored in one unit of work.

The characters' lines join their history, every reply is recorded in the ledger as pending (the
sender settles it once posted), and what the model cost is counted toward the chat's budgets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.messages import Incoming, Reply

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
        """Record ``replies`` (and the cost of ``answers``) and return them, ready to deliver."""
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
        return replies
