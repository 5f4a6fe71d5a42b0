"""A Discord server as the gateway describes it, wired to a :class:`DiscordBridge` under test.

:class:`DiscordWorld` feeds discord.py's connection state the payloads the gateway sends (READY,
GUILD_CREATE), so the client's caches hold a real guild with roles, members, a channel and a
thread. Messages are built from MESSAGE_CREATE payloads the way discord.py's state builds them
and handed to the bridge's handler; interactions go through the state's INTERACTION_CREATE
parser to the bridge's command tree. Replies land in :class:`FakeDiscordAPI`.
"""

from __future__ import annotations

import asyncio
from itertools import count
from typing import Any

import discord

from plugins.discord_bridge import DiscordBridge
from plugins.discord_bridge.bridge import INVITE_PERMISSIONS
from tests.support.discord_api import TIMESTAMP, Call, FakeDiscordAPI, Json

BOT_ID = 1000
"""Also the application id, as for every bot made since 2020."""
GUILD_ID = 2000
OWNER_ID, ADMIN_ID, PIP_ID = 2001, 2002, 2003
CHANNEL_ID, THREAD_ID, DM_CHANNEL_ID = 3000, 3001, 3100
HARBOUR_ID = 3002
"""A channel of the server that the client's cache lacks (made after it connected): only fetched."""
BOT_ROLE_ID, ADMIN_ROLE_ID = 4000, 4001

EVERYONE = discord.Permissions(INVITE_PERMISSIONS.value, manage_webhooks=False, use_application_commands=True)
"""What every member has: what the invite link asks for, except Manage Webhooks (the bot's role decides)."""


def user(user_id: int, name: str, *, bot: bool = False) -> Json:
    return {
        "id": str(user_id),
        "username": name.lower(),
        "global_name": name,
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
    }


BOT = user(BOT_ID, "Roleplay", bot=True)
OWNER = user(OWNER_ID, "Maeve")
ADMIN = user(ADMIN_ID, "Ines")
PIP = user(PIP_ID, "Pip")
_ROLES_OF = {BOT_ID: [BOT_ROLE_ID], ADMIN_ID: [ADMIN_ROLE_ID], OWNER_ID: [], PIP_ID: []}


def member(of: Json, *, nick: str | None = None) -> Json:
    return {
        "user": of,
        "nick": nick,
        "roles": [str(role) for role in _ROLES_OF.get(int(of["id"]), [])],
        "joined_at": TIMESTAMP,
        "deaf": False,
        "mute": False,
        "flags": 0,
    }


def role(role_id: int, name: str, permissions: discord.Permissions, **extra: Any) -> Json:
    return {
        "id": str(role_id),
        "name": name,
        "color": 0,
        "hoist": False,
        "position": 1 if role_id != GUILD_ID else 0,
        "permissions": str(permissions.value),
        "managed": False,
        "mentionable": False,
        "flags": 0,
        **extra,
    }


def text_channel(channel_id: int, name: str) -> Json:
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(GUILD_ID),
        "name": name,
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
    }


def thread(thread_id: int, parent_id: int, name: str) -> Json:
    return {
        "id": str(thread_id),
        "type": 11,
        "guild_id": str(GUILD_ID),
        "parent_id": str(parent_id),
        "owner_id": str(PIP_ID),
        "name": name,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "message_count": 0,
        "member_count": 2,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": TIMESTAMP,
            "locked": False,
        },
        "flags": 0,
    }


def guild_create(*, manage_webhooks: bool) -> Json:
    """The GUILD_CREATE of a server where the bot's role may or may not manage webhooks."""
    bot_permissions = discord.Permissions(manage_webhooks=manage_webhooks)
    return {
        "id": str(GUILD_ID),
        "name": "Skerrow Isle",
        "icon": None,
        "owner_id": str(OWNER_ID),
        "unavailable": False,
        "member_count": 4,
        "large": False,
        "features": [],
        "emojis": [],
        "stickers": [],
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "system_channel_flags": 0,
        "roles": [
            role(GUILD_ID, "@everyone", EVERYONE),
            role(BOT_ROLE_ID, "Roleplay", bot_permissions, managed=True, tags={"bot_id": str(BOT_ID)}),
            role(ADMIN_ROLE_ID, "Admins", discord.Permissions(manage_guild=True)),
        ],
        "members": [member(BOT), member(OWNER), member(ADMIN), member(PIP, nick="Pip the Post")],
        "channels": [text_channel(CHANNEL_ID, "tavern")],
        "threads": [thread(THREAD_ID, CHANNEL_ID, "sea-stories")],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "joined_at": TIMESTAMP,
    }


def ready() -> Json:
    return {
        "v": 10,
        "user": {**BOT, "verified": True, "mfa_enabled": False, "flags": 0},
        "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
        "session_id": "session-1",
        "resume_gateway_url": "wss://gateway.discord.gg",
        "shard": [0, 1],
        "application": {"id": str(BOT_ID), "flags": 0},
    }


class DiscordWorld:
    """One server (owner Maeve, admin Ines, member Pip), its #tavern channel and a thread in it."""

    def __init__(self, bridge: DiscordBridge, *, manage_webhooks: bool = True) -> None:
        self.bridge = bridge
        self.client = bridge.client
        self.state = bridge.client._connection
        self.api = FakeDiscordAPI(BOT, BOT_ID, guild_id=GUILD_ID)
        self.api.channels = {
            CHANNEL_ID: text_channel(CHANNEL_ID, "tavern"),
            THREAD_ID: thread(THREAD_ID, CHANNEL_ID, "sea-stories"),
            HARBOUR_ID: text_channel(HARBOUR_ID, "harbour"),
        }
        self.api.users = {int(person["id"]): person for person in (BOT, OWNER, ADMIN, PIP)}
        self.api.dm_channel_id = DM_CHANNEL_ID
        self.manage_webhooks = manage_webhooks
        self._ids = count(5_000_000)

    async def connect(self) -> None:
        """Install the fake API under the client and replay the gateway's opening events."""
        await self.client.__aenter__()
        # What HTTPClient.static_login sets up at login, with the fake in place of aiohttp's session.
        http = self.client.http
        setattr(http, "_HTTPClient__session", self.api)  # noqa: B010 - discord.py's own attribute
        http._global_over = asyncio.Event()
        http._global_over.set()
        self.state.guild_ready_timeout = 0.0
        self.state.parsers["READY"](ready())
        self.state.parsers["GUILD_CREATE"](guild_create(manage_webhooks=self.manage_webhooks))
        await self.ready()

    async def ready(self) -> None:
        """Wait until the client is ready and its ``on_ready`` (the bridge's) has run."""
        await self.client.wait_until_ready()
        handlers = [task for task in asyncio.all_tasks() if task.get_name() == "discord.py: on_ready"]
        await asyncio.gather(*handlers)

    async def close(self) -> None:
        task = getattr(self.state, "_ready_task", None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.client.close()

    # -- messages ------------------------------------------------------------------------------------

    def message_payload(
        self,
        content: str,
        *,
        author: Json = PIP,
        channel_id: int = CHANNEL_ID,
        reply_to: Json | None = None,
        mentions: tuple[Json, ...] = (),
        dm: bool = False,
        webhook_id: str | None = None,
        attachments: tuple[Json, ...] = (),
        resolved: bool = True,
        forwarding: Json | None = None,
    ) -> Json:
        """A MESSAGE_CREATE payload, also kept where ``GET /channels/{id}/messages/{id}`` finds it.

        A reply carries the message it replies to unless ``resolved`` is false (as when Discord
        leaves it out), so the client has to fetch it. A forward of ``forwarding`` carries a
        snapshot of it (its text and files) and no text of its own.
        """
        data = self.api.message(channel_id, content, author, id=str(next(self._ids)))
        self.api.messages[int(data["id"])] = data
        data["attachments"] = list(attachments)
        data["mentions"] = [{**mentioned, "member": member(mentioned)} for mentioned in mentions]
        if not dm:
            data["guild_id"] = str(GUILD_ID)
            if webhook_id is None:
                data["member"] = {key: value for key, value in member(author).items() if key != "user"}
        if webhook_id is not None:
            data["webhook_id"] = webhook_id
        if reply_to is not None:
            data["type"] = 19
            data["message_reference"] = {
                "message_id": reply_to["id"],
                "channel_id": reply_to["channel_id"],
                "guild_id": str(GUILD_ID),
            }
            if resolved:
                data["referenced_message"] = reply_to
        if forwarding is not None:
            data["message_reference"] = {
                "type": 1,
                "message_id": forwarding["id"],
                "channel_id": forwarding["channel_id"],
                "guild_id": str(GUILD_ID),
            }
            snapshot = ("type", "content", "embeds", "attachments", "timestamp", "edited_timestamp", "flags")
            data["message_snapshots"] = [{"message": {key: forwarding[key] for key in snapshot}}]
        return data

    def message(self, content: str, **options: Any) -> discord.Message:
        """A ``discord.Message`` built from a MESSAGE_CREATE payload, as the client's state builds it."""
        data = self.message_payload(content, **options)
        channel, _guild = self.state._get_guild_channel(data)  # type: ignore[arg-type]
        return discord.Message(state=self.state, channel=channel, data=data)  # type: ignore[arg-type]

    async def say(self, content: str, **options: Any) -> list[Call]:
        """Send a message to the bot's handler; return the messages it posted in answer."""
        before = len(self.api.posts())
        await self.bridge.on_message(self.message(content, **options))
        return self.api.posts()[before:]

    @property
    def me(self) -> discord.ClientUser:
        assert self.client.user is not None
        return self.client.user

    def mention(self) -> str:
        return f"<@{BOT_ID}>"

    # -- interactions --------------------------------------------------------------------------------

    def interaction_payload(
        self,
        command: str,
        options: list[Json] | None = None,
        *,
        author: Json = PIP,
        channel_id: int = CHANNEL_ID,
        autocomplete: bool = False,
        resolved: Json | None = None,
    ) -> Json:
        interaction_id = next(self._ids)
        permissions = EVERYONE
        if author["id"] in (str(ADMIN_ID), str(OWNER_ID)):
            permissions = permissions | discord.Permissions(manage_guild=True)
        channel = (
            thread(THREAD_ID, CHANNEL_ID, "sea-stories")
            if channel_id == THREAD_ID
            else text_channel(channel_id, "tavern")
        )
        return {
            "id": str(interaction_id),
            "application_id": str(BOT_ID),
            "type": 4 if autocomplete else 2,
            "token": f"interaction-token-{interaction_id}",
            "version": 1,
            "guild_id": str(GUILD_ID),
            "channel_id": str(channel_id),
            "channel": channel,
            "member": {**member(author), "permissions": str(permissions.value)},
            "data": {
                "id": "77",
                "name": command,
                "type": 1,
                "options": options or [],
                **({"resolved": resolved} if resolved is not None else {}),
            },
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": str(EVERYONE.value),
            "attachment_size_limit": 10 * 1024 * 1024,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)},
            "context": 0,
        }

    def interact(self, command: str, options: list[Json] | None = None, **extra: Any) -> Json:
        """Deliver an INTERACTION_CREATE through the client's state; returns the payload."""
        payload = self.interaction_payload(command, options, **extra)
        self.state.parsers["INTERACTION_CREATE"](payload)
        return payload

    async def slash(self, command: str, options: list[Json] | None = None, **extra: Any) -> list[Call]:
        """Run a slash command; return its follow-up messages once the last one is posted."""
        payload = self.interact(command, options, **extra)
        token = payload["token"]
        callbacks = await self.api.wait_for("POST", rf"/interactions/{payload['id']}/{token}/callback")
        assert callbacks[0].json == {"type": 5}, "slash commands defer first, then follow up"
        await self.api.wait_for("POST", rf"/webhooks/{BOT_ID}/{token}")
        await self.api.settle()
        return self.api.made("POST", rf"/webhooks/{BOT_ID}/{token}")

    async def autocomplete(self, command: str, option: str, typed: str) -> list[Json]:
        """The choices the bot offers while ``typed`` is in ``option`` of ``command``, which may be a
        group's subcommand (``"character remove"``)."""
        name, _, verb = command.partition(" ")
        options: list[Json] = [{"name": option, "type": 3, "value": typed, "focused": True}]
        if verb:
            options = [{"name": verb, "type": 1, "options": options}]
        payload = self.interact(name, options, autocomplete=True)
        calls = await self.api.wait_for("POST", rf"/interactions/{payload['id']}/{payload['token']}/callback")
        body = calls[0].json
        assert body["type"] == 8
        return list(body["data"]["choices"])
