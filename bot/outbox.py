"""Messages the bot posts on its own, not as the answer to a message: progress of background work.

Each platform registers how it posts to one of its chats; the core then announces to a
:class:`~bot.messages.ChatKey` without knowing the platform. A chat whose platform is not connected
(or that refuses the message) is logged and skipped: an announcement is never worth an error.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.messages import ChatKey, Reply

log = logging.getLogger(__name__)

Post = Callable[[ChatKey, Reply], Awaitable[None]]
"""Posts a reply to a chat of the platform that registered it; raises when it cannot."""


class Outbox:
    """Where the core sends announcements; platforms register a :data:`Post` for their chats."""

    def __init__(self) -> None:
        self._posts: dict[str, Post] = {}

    def register(self, platform: str, post: Post) -> None:
        self._posts[platform] = post

    def unregister(self, platform: str) -> None:
        self._posts.pop(platform, None)

    async def announce(self, key: ChatKey, reply: Reply) -> bool:
        """Post ``reply`` to ``key``; ``False`` (and a log line) when the chat cannot be reached."""
        post = self._posts.get(key.platform)
        if post is None:
            log.info("not announced in %s (platform not connected): %s", key, reply.text)
            return False
        try:
            await post(key, reply)
        except Exception as exc:
            log.warning("could not announce in %s (%s): %s", key, exc, reply.text)
            return False
        return True
