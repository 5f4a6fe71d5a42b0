"""The "one moment" line: what a chat hears while the model that will answer it is still loading.

The offline model loads in the background after the bot says it is ready (:meth:`ChatModel.warm_up`);
a message that arrives before then is answered once the model is loaded, never dropped. So that the
chat does not wait in silence, its character says once, in its own voice, that it is coming.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING

from bot.messages import ChatKey, Reply

if TYPE_CHECKING:
    from bot.engine.packs import CharacterPack
    from bot.ledger import Ledger
    from bot.outbox import Outbox

log = logging.getLogger(__name__)

DEFAULT_LINES = {
    "en": (
        "{name} holds up a finger: \"One moment, I'm just getting settled. I'll answer you shortly.\"",
        '{name} looks up: "Give me a moment to gather my thoughts, then I\'m all yours."',
    ),
    "zh": (
        "{name}抬起头：“稍等一下，我马上就来。”",
        "{name}摆摆手：“等我一会儿，这就回你。”",
    ),
}


def waiting_lines(pack: CharacterPack) -> list[str]:
    """The pack's own ``one_moment`` lines, else neutral ones in its language."""
    if pack.settings.one_moment:
        return list(pack.settings.one_moment)
    lines = DEFAULT_LINES.get(pack.settings.language, DEFAULT_LINES["en"])
    return [line.format(name=pack.name) for line in lines]


class WaitingNotice:
    """Tells each chat once, while the model loads, that its character will answer soon.

    The line is recorded in the ledger like any reply (with whether it was posted) and posted on its
    own task, so that the answer, which waits for the model, is not held up by the platform.
    """

    def __init__(self, ledger: Ledger, outbox: Outbox, choose: random.Random | None = None) -> None:
        self.ledger = ledger
        self.outbox = outbox
        self._choose = choose or random.Random()
        self._told: set[ChatKey] = set()
        self._posting: set[asyncio.Task[None]] = set()

    async def tell(self, key: ChatKey, pack: CharacterPack) -> bool:
        """Post ``pack``'s one-moment line to ``key`` unless the chat was told already; ``True`` if now."""
        if key in self._told:
            return False
        self._told.add(key)
        line = Reply(self._choose.choice(waiting_lines(pack)), quote=False, character=pack.id)
        await self.ledger.record(key, [line])
        task = asyncio.create_task(self._post(key, line), name=f"one moment in {key}")
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)
        return True

    async def _post(self, key: ChatKey, line: Reply) -> None:
        if not await self.outbox.announce(key, line):
            await self.ledger.settle([line], "failed", "the platform is not connected")

    async def aclose(self) -> None:
        """Wait for the lines still being posted."""
        if self._posting:
            await asyncio.gather(*self._posting, return_exceptions=True)
