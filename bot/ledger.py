"""The ledger: everything the bot says is recorded before it is posted, and marked once it was.

The record stage (:mod:`bot.flow.record`) stores a message's replies in one write (the character
lines among them join the characters' history there, see :class:`~storage.deliveries.Deliveries`);
whatever posts a reply (a send queue, the console, the Discord bridge) then settles it. When a bot
account connects, the replies another process (this one before a restart, or a crash) left unposted
are taken over and posted once if they are younger than ``[sending] resend_within_s``, and marked
expired otherwise. Only replies recorded before this process started are taken: those are a stopped
process's; one that another *live* process records meanwhile is that process's to post (taking it
too would post it twice, when this process's account connects while the other is busy answering).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bot.messages import ChatKey, Image, Reply, Voice
from storage.deliveries import Deliveries, DeliveryState, Outgoing
from storage.models import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

Resend = Callable[[ChatKey, Reply], Awaitable[None]]
"""Hands a reply to the platform's sender (which settles it)."""


class Ledger:
    """Records replies, settles them, and resends what a stopped process left unposted."""

    def __init__(self, store: Deliveries, *, process: str, resend_within_s: float) -> None:
        self.store = store
        self.process = process
        self.resend_within = timedelta(seconds=resend_within_s)
        self.started = utcnow()
        """Replies other processes recorded before this moment may be this process's to resend."""

    async def record(
        self,
        key: ChatKey,
        replies: Sequence[Reply],
        *,
        account: str = "",
        answers: str | None = None,
        names: dict[str, str] | None = None,
        session: AsyncSession | None = None,
    ) -> None:
        """Store ``replies`` as pending and give each its :attr:`Reply.delivery_id` (in ``session``,
        the record stage's unit of work, when given).

        A reply with :attr:`Reply.in_history` is the line of its character (named in ``names`` by
        pack id) and joins that character's history in the chat.
        """
        if not replies:
            return
        names = names or {}
        ids = await self.store.record(
            key.platform,
            key.chat_id,
            [
                Outgoing(
                    reply.text,
                    character_id=reply.character,
                    line_of=names.get(reply.character, reply.character)
                    if reply.in_history and reply.character
                    else None,
                    images=[str(image.path) for image in reply.images],
                    quote=reply.quote,
                    voice=str(reply.voice.path) if reply.voice is not None else None,
                    voice_only=reply.voice_only,
                )
                for reply in replies
            ],
            account=account,
            answers=answers,
            process=self.process,
            session=session,
        )
        for reply, delivery_id in zip(replies, ids, strict=True):
            reply.delivery_id = delivery_id

    async def give_voice(self, reply: Reply) -> None:
        """Record the voice given to ``reply`` after it was recorded (``/voice only``); a database
        failure is logged and the voice still goes out."""
        if reply.delivery_id is None or reply.voice is None:
            return
        try:
            await self.store.set_voice(reply.delivery_id, str(reply.voice.path), voice_only=reply.voice_only)
        except Exception:
            log.exception("could not record the voice of reply %d", reply.delivery_id)

    async def settle(self, replies: Sequence[Reply], state: DeliveryState, error: str | None = None) -> None:
        """Mark ``replies`` as ``state``; a database failure is logged, never raised (the reply is out)."""
        for reply in replies:
            if reply.settled is not None:
                reply.settled.set()
        ids = [reply.delivery_id for reply in replies if reply.delivery_id is not None]
        if not ids:
            return
        try:
            await self.store.settle(ids, state, error)
        except Exception:
            log.exception("could not mark %d repl(ies) as %s", len(ids), state)

    async def resend(self, platform: str, account: str, send: Resend) -> int:
        """Post what a stopped process left unposted for ``account``; the number handed to ``send``."""
        since = utcnow() - self.resend_within
        unsent = await self.store.take_unsent(
            platform, account, process=self.process, since=since, before=self.started
        )
        for delivery in unsent:
            reply = Reply(
                delivery.text,
                images=[Image(Path(path)) for path in delivery.images],
                quote=delivery.quote,
                character=delivery.character_id,
                reply_to=delivery.answers if delivery.quote else None,
                delivery_id=delivery.id,
            )
            if delivery.voice is not None:
                reply.voice = Voice(Path(delivery.voice), 0.0)
                reply.voice_only = delivery.voice_only
            await send(ChatKey(platform, delivery.chat_id), reply)
        if unsent:
            log.info(
                "%s %s: posting %d repl(ies) left unposted before a restart", platform, account, len(unsent)
            )
        return len(unsent)

    async def expire(self) -> int:
        """Mark replies pending for longer than ``resend_within_s`` as expired (never said)."""
        expired = await self.store.expire(utcnow() - self.resend_within)
        if expired:
            log.warning("%d repl(ies) were never posted in time and are marked expired", expired)
        return expired
