"""Posting replies on Discord: as the character through a webhook, or as the bot.

Where the bot may manage webhooks, a character's reply goes through one webhook per channel with
the character's name and avatar, so several characters in a channel look like different people.
Elsewhere (no permission, DMs, command output) it is a normal reply with the name in bold.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import aiohttp
import discord
from PIL import Image as PILImage

from bot.engine.packs import CharacterPack
from bot.engine.registry import PackRegistry
from bot.engine.replies import split_message
from bot.messages import Reply
from plugins.discord_bridge.incoming import SpokenMessages

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
WEBHOOK_NAME = "Roleplay characters"
WEBHOOK_USERNAME_LIMIT = 80
EMOJI_IMAGE_SIDE = 128
RETRY_DELAYS = (2.0, 10.0, 30.0)
"""Seconds between attempts when Discord cannot be reached; 429s and 5xx are discord.py's job."""

UNREACHABLE: tuple[type[Exception], ...] = (
    aiohttp.ClientError,
    OSError,
    asyncio.TimeoutError,
    discord.DiscordServerError,
)
"""Discord could not be reached or kept failing: worth trying again later."""
REFUSED_OR_UNREACHABLE: tuple[type[Exception], ...] = (discord.HTTPException, *UNREACHABLE)

WebhookHome = discord.TextChannel | discord.ForumChannel | discord.VoiceChannel | discord.StageChannel
T = TypeVar("T")


def name_prefix(reply: Reply, packs: PackRegistry) -> str:
    """How a character's words open when the bot posts them itself: the name in bold."""
    pack = packs.get(reply.character) if reply.character else None
    return f"**{pack.name}**: " if pack is not None else ""


def chunks(reply: Reply, *, prefix: str = "") -> list[tuple[str, bool]]:
    """The message texts to post for ``reply``, each with whether the screenshots go with it.

    Discord caps a message at 2,000 characters: longer replies are split between words, the
    ``prefix`` opens the first part and the screenshots ride with the last.
    """
    voice = voice_of(reply)
    text = "" if voice is not None and reply.voice_only else reply.text
    parts = split_message(text, MESSAGE_LIMIT - len(prefix)) or [""]
    parts[0] = prefix + parts[0]
    last = len(parts) - 1
    with_files = bool(reply.images or reply.files or voice)
    return [(part, with_files and index == last) for index, part in enumerate(parts)]


def voice_of(reply: Reply) -> Path | None:
    """The reply's voice file, when it has one that can be read (else the text goes alone)."""
    if reply.voice is None:
        return None
    if not reply.voice.path.is_file():
        log.warning("posting without the voice %s: the file is gone", reply.voice.path)
        return None
    return reply.voice.path


def files_of(reply: Reply) -> list[discord.File]:
    """Fresh :class:`discord.File` objects for the reply's screenshots, documents and voice (an audio
    file Discord plays inline; discord.py closes them)."""
    voice = voice_of(reply)
    return [
        *(discord.File(image.path, filename=image.path.name) for image in reply.images),
        *(discord.File(file.path, filename=file.name) for file in reply.files),
        *([discord.File(voice, filename=f"{reply.character or 'voice'}{voice.suffix}")] if voice else []),
    ]


def _id_of(channel: object) -> int:
    """The channel's id for log lines (every channel discord.py gives has one)."""
    return int(getattr(channel, "id", 0))


@asynccontextmanager
async def typing_in(channel: discord.abc.Messageable) -> AsyncIterator[None]:
    """Show "typing…" while the body runs; a channel that refuses it does not stop the reply."""
    indicator = channel.typing()
    try:
        await indicator.__aenter__()
    except REFUSED_OR_UNREACHABLE as exc:
        log.debug("no typing indicator: %s", exc)
        yield
        return
    try:
        yield
    finally:
        await indicator.__aexit__(None, None, None)


def _emoji_image(path: Path) -> bytes:
    """The avatar as a 128-pixel PNG, well under Discord's 256 KiB emoji limit."""
    with PILImage.open(path) as image:
        image.thumbnail((EMOJI_IMAGE_SIDE, EMOJI_IMAGE_SIDE))
        buffer = io.BytesIO()
        image.convert("RGBA").save(buffer, "PNG")
    return buffer.getvalue()


class Avatars:
    """Public URLs for the characters' avatars, which webhook messages need.

    An avatar given as a URL is used as it is. An avatar file in the pack is uploaded once as an
    emoji of the bot's application (named after its content hash, so it is found again after a
    restart) and its permanent CDN address is used: the operator needs no web hosting.
    """

    def __init__(self, client: discord.Client) -> None:
        self.client = client
        self._urls: dict[tuple[str, str], str | None] = {}
        self._emojis: dict[str, discord.Emoji] | None = None
        self._lock = asyncio.Lock()

    async def url(self, pack: CharacterPack) -> str | None:
        if pack.avatar_url is not None or pack.avatar_path is None:
            return pack.avatar_url
        key = (pack.id, pack.content_hash)
        async with self._lock:
            if key not in self._urls:
                self._urls[key] = await self._upload(pack, pack.avatar_path)
            return self._urls[key]

    async def _upload(self, pack: CharacterPack, path: Path) -> str | None:
        try:
            image = await asyncio.to_thread(_emoji_image, path)
            name = "avatar_" + hashlib.sha256(image).hexdigest()[:20]
            if self._emojis is None:
                self._emojis = {emoji.name: emoji for emoji in await self.client.fetch_application_emojis()}
            emoji = self._emojis.get(name)
            if emoji is None:
                emoji = await self.client.create_application_emoji(name=name, image=image)
                self._emojis[name] = emoji
            return emoji.url
        except (OSError, ValueError) as exc:
            log.warning("%s: cannot read the avatar %s: %s", pack.id, path, exc)
        except REFUSED_OR_UNREACHABLE as exc:
            log.warning(
                "%s: cannot upload the avatar to Discord (%s); webhooks post without it", pack.id, exc
            )
        return None


class Webhooks:
    """The bot's webhook in each channel, found or created on first use and remembered."""

    def __init__(self, client: discord.Client) -> None:
        self.client = client
        self._hooks: dict[int, discord.Webhook] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    @staticmethod
    def home_of(channel: object) -> WebhookHome | None:
        """The channel that owns webhooks for ``channel`` (a thread's parent), if it can have them."""
        home = channel.parent if isinstance(channel, discord.Thread) else channel
        if isinstance(home, WebhookHome):
            return home
        return None

    def allowed_in(self, channel: object) -> bool:
        home = self.home_of(channel)
        return home is not None and home.permissions_for(home.guild.me).manage_webhooks

    async def get(self, home: WebhookHome) -> discord.Webhook:
        lock = self._locks.setdefault(home.id, asyncio.Lock())
        async with lock:
            if (hook := self._hooks.get(home.id)) is not None:
                return hook
            me = self.client.user
            mine = [
                hook
                for hook in await home.webhooks()
                if hook.token is not None
                and hook.user is not None
                and me is not None
                and hook.user.id == me.id
            ]
            hook = (
                mine[0] if mine else await home.create_webhook(name=WEBHOOK_NAME, reason="character replies")
            )
            self._hooks[home.id] = hook
            return hook

    def forget(self, home: WebhookHome) -> None:
        self._hooks.pop(home.id, None)


@dataclass(slots=True)
class WebhookPost:
    """One message to post through a webhook under a character's name."""

    text: str
    username: str
    avatar_url: str | None
    files_from: Reply | None
    thread: discord.Thread | None
    mentions: discord.AllowedMentions

    async def send(self, hook: discord.Webhook) -> discord.Message:
        missing = discord.utils.MISSING
        return await hook.send(
            self.text,
            username=self.username,
            avatar_url=self.avatar_url or missing,
            files=files_of(self.files_from) if self.files_from is not None else missing,
            thread=self.thread or missing,
            allowed_mentions=self.mentions,
            wait=True,
        )


class Poster:
    """Posts the router's replies in the channel of the message they answer."""

    def __init__(
        self,
        client: discord.Client,
        packs: PackRegistry,
        spoken: SpokenMessages,
        *,
        use_webhooks: bool = True,
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        self.client = client
        self.packs = packs
        self.spoken = spoken
        self.use_webhooks = use_webhooks
        self.retry_delays = tuple(retry_delays)
        self.webhooks = Webhooks(client)
        self.avatars = Avatars(client)

    async def deliver(self, message: discord.Message, reply: Reply) -> list[discord.Message]:
        """Post ``reply`` to the channel of ``message``, replying to it; return what was posted."""
        pack = self.packs.get(reply.character) if reply.character else None
        if pack is not None and self.use_webhooks and self.webhooks.allowed_in(message.channel):
            try:
                return await self._through_webhook(message.channel, reply, pack, answering=message)
            except discord.HTTPException as exc:
                log.warning(
                    "webhook post failed in channel %s (%s); replying as the bot", message.channel.id, exc
                )
        return await self._as_bot(message.channel, reply, message if reply.quote else None)

    async def announce(self, channel: discord.abc.Messageable, reply: Reply) -> list[discord.Message]:
        """Post ``reply`` on the bot's own initiative (import progress), answering no message: as the
        character through the webhook when it has one, else as the bot."""
        pack = self.packs.get(reply.character) if reply.character else None
        if pack is not None and self.use_webhooks and self.webhooks.allowed_in(channel):
            try:
                return await self._through_webhook(channel, reply, pack, answering=None)
            except discord.HTTPException as exc:
                log.warning(
                    "webhook post failed in channel %s (%s); posting as the bot", _id_of(channel), exc
                )
        return await self._as_bot(channel, reply, None)

    async def _as_bot(
        self, channel: discord.abc.Messageable, reply: Reply, reference: discord.Message | None
    ) -> list[discord.Message]:
        posted: list[discord.Message] = []
        for index, (text, with_files) in enumerate(chunks(reply, prefix=name_prefix(reply, self.packs))):
            post = partial(
                self._post_as_bot,
                channel,
                text,
                reply if with_files else None,
                reference if index == 0 else None,
            )
            if (sent := await self._retrying(post, _id_of(channel))) is None:
                break
            posted.append(sent)
        self._remember(posted, reply)
        return posted

    @staticmethod
    async def _post_as_bot(
        channel: discord.abc.Messageable,
        text: str,
        files_from: Reply | None,
        reference: discord.Message | None,
    ) -> discord.Message:
        files = files_of(files_from) if files_from is not None else []
        if reference is None:
            return await channel.send(text, files=files)
        return await channel.send(text, files=files, reference=reference)

    async def _through_webhook(
        self,
        channel: object,
        reply: Reply,
        pack: CharacterPack,
        *,
        answering: discord.Message | None,
    ) -> list[discord.Message]:
        home = self.webhooks.home_of(channel)
        assert home is not None
        thread = channel if isinstance(channel, discord.Thread) else None
        avatar = await self.avatars.url(pack)
        # A webhook cannot reply natively: a small first line points at the message and pings its author.
        pointer = ""
        if answering is not None and reply.quote:
            pointer = f"-# ↪ {answering.author.mention} · {answering.jump_url}\n"
        posted: list[discord.Message] = []
        for index, (text, with_files) in enumerate(chunks(reply, prefix=pointer)):
            mentions = discord.AllowedMentions.none()
            if index == 0 and pointer and answering is not None:
                mentions.users = [answering.author]
            post = WebhookPost(
                text,
                username=pack.name[:WEBHOOK_USERNAME_LIMIT],
                avatar_url=avatar,
                files_from=reply if with_files else None,
                thread=thread,
                mentions=mentions,
            )
            if (sent := await self._via_webhook(home, post, _id_of(channel))) is None:
                break
            posted.append(sent)
        self._remember(posted, reply)
        return posted

    async def _via_webhook(
        self, home: WebhookHome, post: WebhookPost, channel_id: int
    ) -> discord.Message | None:
        hook = await self.webhooks.get(home)
        try:
            return await self._retrying(partial(post.send, hook), channel_id)
        except discord.NotFound:
            self.webhooks.forget(home)  # someone deleted it: make a new one, once
            hook = await self.webhooks.get(home)
            return await self._retrying(partial(post.send, hook), channel_id)

    def _remember(self, posted: list[discord.Message], reply: Reply) -> None:
        if reply.character is not None:
            for sent in posted:
                self.spoken.remember(sent.id, reply.character)

    async def _retrying(self, send: Callable[[], Awaitable[T]], channel_id: int) -> T | None:
        """``send()``, tried again while Discord cannot be reached; ``None`` when it never could.

        The reply is already in the chat's memory, so a lost connection costs the post, not the
        conversation; the failure is logged with the channel.
        """
        for delay in (*self.retry_delays, None):
            try:
                return await send()
            except UNREACHABLE as exc:
                if delay is None:
                    log.error(
                        "could not post a reply in channel %s after %d tries: %s",
                        channel_id,
                        len(self.retry_delays) + 1,
                        exc,
                    )
                    return None
                log.warning("Discord unreachable (%s); trying again in %.0f s", exc, delay)
                await asyncio.sleep(delay)
        return None
