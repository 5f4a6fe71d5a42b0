"""The Discord bridge: a discord.py client in the bot's event loop, feeding the core's router."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import discord

from bot.config import DiscordConfig
from bot.errors import SendError
from bot.messages import ChatKey, Reply
from bot.outbox import Outbox
from bot.router import Router
from plugins.discord_bridge.incoming import PLATFORM, MessageReader, SpokenMessages
from plugins.discord_bridge.outgoing import RETRY_DELAYS, UNREACHABLE, Poster, typing_in
from plugins.discord_bridge.slash import SlashCommands

log = logging.getLogger(__name__)

LOGIN_RETRY_FIRST_S = 5.0
LOGIN_RETRY_MAX_S = 300.0

INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    read_message_history=True,
    embed_links=True,
    attach_files=True,
    manage_webhooks=True,
)
"""What the invite link asks for; Manage Webhooks lets characters post under their own names."""


def intents() -> discord.Intents:
    """Default intents plus Message Content, which must also be switched on in the Developer Portal."""
    wanted = discord.Intents.default()
    wanted.message_content = True
    return wanted


class RoleplayClient(discord.Client):
    """The discord.py client; its events go to the bridge."""

    def __init__(self, bridge: DiscordBridge, **options: Any) -> None:
        # The bot has no voice features, so discord.py's warnings about voice libraries are noise.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(
            intents=intents(),
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, users=False, replied_user=True
            ),
            **options,
        )
        self.bridge = bridge

    async def setup_hook(self) -> None:
        await self.bridge.sync_commands()

    async def on_ready(self) -> None:
        await self.bridge.on_ready()

    async def on_message(self, message: discord.Message) -> None:
        await self.bridge.on_message(message)


class ShardedRoleplayClient(RoleplayClient, discord.AutoShardedClient):
    """The client for ``shard_count``/``shard_ids``: discord.py runs the shards of this process, and
    other processes with other ``shard_ids`` serve the rest of the servers."""

    async def close(self) -> None:
        # discord.py's sharded close expects a client that connected; one that never did (Discord
        # unreachable, or the bot stopping at once) only has its HTTP session to close.
        if getattr(self, "_AutoShardedClient__queue", None) is None:
            await self.http.close()
            return
        await super().close()


def make_client(bridge: DiscordBridge, settings: DiscordConfig) -> RoleplayClient:
    if settings.shard_count is None:
        return RoleplayClient(bridge)
    return ShardedRoleplayClient(bridge, shard_count=settings.shard_count, shard_ids=settings.shard_ids)


class DiscordBridge:
    """Serves Discord through ``router``: messages, slash commands, and the replies to them.

    Each channel is a group with its own character and memory; a thread keeps its own memory and
    takes its channel's character until it picks one; DMs are private chats. Once connected it posts
    the ``outbox``'s announcements for Discord chats.
    """

    def __init__(
        self,
        router: Router,
        settings: DiscordConfig,
        *,
        outbox: Outbox,
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        self.router = router
        self.settings = settings
        self.outbox = outbox
        self.client = make_client(self, settings)
        self.spoken = SpokenMessages()
        self.reader = MessageReader(router.packs, self.spoken)
        self.poster = Poster(
            self.client, router.packs, self.spoken, use_webhooks=settings.webhooks, retry_delays=retry_delays
        )
        self.slash = SlashCommands(self.client, router, self.spoken)
        self._connection: asyncio.Task[None] | None = None

    async def on_message(self, message: discord.Message) -> None:
        me = self.client.user
        if me is None or (incoming := self.reader.read(message, me)) is None:
            return
        typing = typing_in(message.channel) if self.router.is_addressed(incoming) else nullcontext()
        try:
            async with typing:
                replies = await self.router.handle(incoming)
        except Exception:
            log.exception("failed to handle a message in %s", incoming.key)
            return
        for reply in replies:
            posted = await self.poster.deliver(message, reply)
            await self.router.ledger.settle([reply], "posted" if posted else "failed")

    async def post(self, key: ChatKey, reply: Reply) -> None:
        """Post an announcement in the channel, thread or DM that ``key`` names: as the character
        through the channel's webhook when ``reply.character`` is set, else as the bot."""
        if key.chat_id.startswith("private:"):
            user_id = int(key.chat_id.removeprefix("private:"))
            user = self.client.get_user(user_id) or await self.client.fetch_user(user_id)
            channel: object = user.dm_channel or await user.create_dm()
        else:
            channel_id = int(key.chat_id)
            channel = self.client.get_channel(channel_id) or await self.client.fetch_channel(channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            raise TypeError(f"Discord chat {key.chat_id} is not a channel one can post in")
        if not await self.poster.announce(channel, reply):
            raise SendError(f"Discord refused the message in {key}")
        await self.router.ledger.settle([reply], "posted")

    async def sync_commands(self) -> None:
        """Register the slash commands: in ``command_guilds`` at once, else globally."""
        tree = self.slash.tree
        try:
            if self.settings.command_guilds:
                for guild_id in self.settings.command_guilds:
                    guild = discord.Object(guild_id)
                    tree.copy_global_to(guild=guild)
                    await tree.sync(guild=guild)
            else:
                await tree.sync()
        except discord.HTTPException as exc:
            log.error("could not register the slash commands (%s); text commands still work", exc)

    async def on_ready(self) -> None:
        me = self.client.user
        if me is None:
            return
        self.outbox.register(PLATFORM, self.post)
        invite = discord.utils.oauth_url(
            self.client.application_id or me.id,
            permissions=INVITE_PERMISSIONS,
            scopes=("bot", "applications.commands"),
        )
        log.info("Discord: logged in as %s in %d server(s); invite: %s", me, len(self.client.guilds), invite)

    def start(self, token: str) -> None:
        """Connect in the background; the rest of the bot keeps serving if Discord refuses."""
        self._connection = asyncio.get_running_loop().create_task(self._connect(token))

    async def _connect(self, token: str) -> None:
        """Log in and stay connected; discord.py reconnects the gateway itself once logged in.

        Logging in needs Discord's REST API: while it cannot be reached (the network is not up
        yet), try again with a growing pause instead of giving up.
        """
        delay = LOGIN_RETRY_FIRST_S
        while True:
            try:
                await self.client.start(token)
                return
            except discord.LoginFailure:
                log.error(
                    "Discord refused the bot token: check the variable [platforms.discord] token_env names"
                )
                return
            except discord.PrivilegedIntentsRequired:
                log.error(
                    "Discord refused the Message Content intent: switch it on in the Developer Portal "
                    "(your application → Bot → Privileged Gateway Intents)"
                )
                return
            except UNREACHABLE as exc:
                log.warning("cannot reach Discord (%s); trying again in %.0f s", exc, delay)
            except Exception:
                log.exception("the Discord connection stopped")
                return
            # The failed login left a session whose connector it owns; the next login makes both anew.
            await self.client.http.close()
            self.client.http.connector = discord.utils.MISSING
            await asyncio.sleep(delay)
            delay = min(delay * 2, LOGIN_RETRY_MAX_S)

    async def close(self) -> None:
        self.outbox.unregister(PLATFORM)
        if self._connection is not None:
            self._connection.cancel()
            await asyncio.gather(self._connection, return_exceptions=True)
        await self.client.close()
