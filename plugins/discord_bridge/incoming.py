"""Discord messages and interactions as the core's :class:`~bot.messages.Incoming`."""

from __future__ import annotations

import logging
import re
from collections import OrderedDict

import aiohttp
import discord

from bot.engine.registry import PackRegistry
from bot.errors import AttachmentError
from bot.messages import Attachment, Attachments, ChatType, Incoming, Role, Sender

log = logging.getLogger(__name__)

PLATFORM = "discord"

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_CHANNEL_MENTION = re.compile(r"<#(\d+)>")
_CUSTOM_EMOJI = re.compile(r"<a?:(\w+):\d+>")
_BOLD_NAME = re.compile(r"^\*\*(.+?)\*\*")
_SPACES = re.compile(r"[ \t]{2,}")


def role_of(user: discord.User | discord.Member) -> Role:
    """The sender's standing: the server owner, a member with Manage Server, or anyone else."""
    if not isinstance(user, discord.Member):
        return Role.MEMBER
    if user.guild.owner_id == user.id:
        return Role.OWNER
    if user.guild_permissions.manage_guild:
        return Role.ADMIN
    return Role.MEMBER


def sender_of(user: discord.User | discord.Member) -> Sender:
    return Sender(str(user.id), user.display_name, role_of(user))


def chat_of(
    channel: object, channel_id: int, guild_id: int | None, user_id: int
) -> tuple[ChatType, str, str | None]:
    """``(chat type, chat id, parent id)``: a channel is a group, a thread one hanging off its channel."""
    if guild_id is None:
        return "private", str(user_id), None
    if isinstance(channel, discord.Thread):
        return "group", str(channel_id), str(channel.parent_id)
    return "group", str(channel_id), None


def attachment_of(file: discord.Attachment) -> Attachment:
    """A file posted on Discord, downloaded from Discord's CDN when a command wants it."""

    async def fetch(max_bytes: int) -> bytes:
        if file.size > max_bytes:
            raise AttachmentError(
                f"{file.filename} is {file.size:,} bytes, over the import limit of {max_bytes:,} bytes."
            )
        try:
            return await file.read()
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            raise AttachmentError(f"Could not download {file.filename} from Discord: {exc}") from None

    return Attachment(file.filename, fetch, file.size)


def attachments_of(message: discord.Message) -> tuple[Attachment, ...]:
    """The files posted with ``message``; for a forwarded message, the files of what it forwards."""
    forwarded = (file for snapshot in message.message_snapshots for file in snapshot.attachments)
    return tuple(attachment_of(file) for file in (*message.attachments, *forwarded))


def quoted_files(message: discord.Message) -> Attachments | None:
    """The files of the message ``message`` replies to, fetched when a command asks for them.

    A forward also references a message, in another channel: its files are the message's own.
    """
    reference = message.reference
    if (
        reference is None
        or reference.message_id is None
        or reference.type is discord.MessageReferenceType.forward
    ):
        return None
    replied_id = reference.message_id

    async def quoted() -> tuple[Attachment, ...]:
        replied = reference.resolved
        if not isinstance(replied, discord.Message):
            try:
                replied = await message.channel.fetch_message(replied_id)
            except discord.HTTPException as exc:
                log.warning("could not fetch the message %s replied to: %s", replied_id, exc)
                return ()
        return attachments_of(replied)

    return quoted


class SpokenMessages:
    """Which character wrote which of the bot's recent messages, so a reply to one reaches it."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._by_message: OrderedDict[int, str] = OrderedDict()

    def remember(self, message_id: int, character: str) -> None:
        self._by_message[message_id] = character
        self._by_message.move_to_end(message_id)
        while len(self._by_message) > self.capacity:
            self._by_message.popitem(last=False)

    def get(self, message_id: int) -> str | None:
        return self._by_message.get(message_id)


class MessageReader:
    """Turns a Discord message into an :class:`Incoming`, or ``None`` when the bot must not answer.

    Bots and webhooks (the bot's own characters among them) are never answered, so characters
    cannot talk to each other in a loop.
    """

    def __init__(self, packs: PackRegistry, spoken: SpokenMessages) -> None:
        self.packs = packs
        self.spoken = spoken

    def read(self, message: discord.Message, me: discord.ClientUser) -> Incoming | None:
        if message.author.bot or message.webhook_id is not None:
            return None
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return None
        guild = message.guild
        text, mentioned = self.plain_text(message, me)
        chat_type, chat_id, parent_id = chat_of(
            message.channel, message.channel.id, guild.id if guild else None, message.author.id
        )
        character, replied_to_bot = self._replied_character(message, me)
        return Incoming(
            PLATFORM,
            chat_type,
            chat_id,
            sender_of(message.author),
            text,
            to_me=chat_type == "private" or mentioned or replied_to_bot,
            message_id=str(message.id),
            parent_id=parent_id,
            character=character,
            mentions=tuple(str(user.id) for user in message.mentions if user.id != me.id),
            attachments=attachments_of(message),
            quoted=quoted_files(message),
        )

    @staticmethod
    def plain_text(message: discord.Message, me: discord.ClientUser) -> tuple[str, bool]:
        """The text as people read it, without the bot's mention; and whether the bot was mentioned.

        Other mentions become ``@name`` / ``#channel`` so the model sees names, not snowflakes.
        Mentioning the bot's own role (Discord offers it beside the bot) counts as mentioning it.
        """
        mentioned = False
        users = {user.id: user for user in message.mentions}
        guild = message.guild
        own_role = guild.self_role if guild is not None else None

        def user(match: re.Match[str]) -> str:
            nonlocal mentioned
            user_id = int(match[1])
            if user_id == me.id:
                mentioned = True
                return ""
            found = users.get(user_id)
            return f"@{found.display_name}" if found is not None else match[0]

        def role(match: re.Match[str]) -> str:
            nonlocal mentioned
            role_id = int(match[1])
            if own_role is not None and role_id == own_role.id:
                mentioned = True
                return ""
            found = guild.get_role(role_id) if guild is not None else None
            return f"@{found.name}" if found is not None else match[0]

        def channel(match: re.Match[str]) -> str:
            found = guild.get_channel_or_thread(int(match[1])) if guild is not None else None
            return f"#{found.name}" if found is not None else match[0]

        text = _USER_MENTION.sub(user, message.content)
        text = _ROLE_MENTION.sub(role, text)
        text = _CHANNEL_MENTION.sub(channel, text)
        text = _CUSTOM_EMOJI.sub(r":\1:", text)
        return _SPACES.sub(" ", text).strip(), mentioned

    def _replied_character(self, message: discord.Message, me: discord.ClientUser) -> tuple[str | None, bool]:
        """For a reply to the bot: the character who wrote the message replied to, and ``True``."""
        reference = message.reference
        replied = reference.resolved if reference is not None else None
        if not isinstance(replied, discord.Message):
            return None, False
        if (known := self.spoken.get(replied.id)) is not None:
            return known, True
        if replied.webhook_id is not None:
            # After a restart: a character's webhook message carries the character's name.
            pack = self._pack_named(replied.author.name)
            return (pack, True) if pack is not None else (None, False)
        if replied.author.id == me.id:
            bold = _BOLD_NAME.match(replied.content)
            return (self._pack_named(bold[1]) if bold else None), True
        return None, False

    def _pack_named(self, name: str) -> str | None:
        return next((pack.id for pack in self.packs if pack.name == name), None)


def interaction_incoming(
    interaction: discord.Interaction, text: str, files: tuple[Attachment, ...] = ()
) -> Incoming:
    """A slash command as the text command it stands for, addressed to the bot (with the files its
    options carry)."""
    chat_type, chat_id, parent_id = chat_of(
        interaction.channel, interaction.channel_id or 0, interaction.guild_id, interaction.user.id
    )
    return Incoming(
        PLATFORM,
        chat_type,
        chat_id,
        sender_of(interaction.user),
        text,
        to_me=True,
        message_id=str(interaction.id),
        parent_id=parent_id,
        attachments=files,
    )
