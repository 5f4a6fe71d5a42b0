"""Discord messages in: what makes the bot answer, and which character, chat and memory it uses."""

from __future__ import annotations

from typing import Any

from bot.messages import ChatKey, Incoming, Role, Sender
from storage import Repository
from tests.support.discord_gateway import (
    ADMIN,
    ADMIN_ID,
    BOT,
    BOT_ROLE_ID,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    OWNER,
    PIP,
    PIP_ID,
    THREAD_ID,
    DiscordWorld,
    user,
)


def incoming_of(world: DiscordWorld, content: str, **options: Any) -> Incoming | None:
    return world.bridge.reader.read(world.message(content, **options), world.me)


def addressed(world: DiscordWorld, content: str, **options: Any) -> Incoming:
    incoming = incoming_of(world, content, **options)
    assert incoming is not None
    return incoming


async def test_a_mention_gets_the_active_character_speaking_as_itself(world: DiscordWorld) -> None:
    message = world.message(f"{world.mention()} is the lamp lit?")
    incoming = world.bridge.reader.read(message, world.me)
    assert incoming == Incoming(
        "discord",
        "group",
        str(CHANNEL_ID),
        Sender(str(PIP_ID), "Pip", Role.MEMBER),
        "is the lamp lit?",
        to_me=True,
        message_id=str(message.id),
    )

    (post,) = await world.say(f"{world.mention()} is the lamp lit?")
    assert post.json["username"] == "Orla Finch"
    assert post.content.endswith("Orla Finch heard Pip: is the lamp lit?")
    assert world.api.made("POST", f"/channels/{CHANNEL_ID}/typing"), "typing shows while the model works"


async def test_room_chatter_reaches_the_router_but_gets_no_answer(world: DiscordWorld) -> None:
    assert addressed(world, "anyone seen the ferry?").to_me is False
    assert await world.say("anyone seen the ferry?") == []
    assert world.api.calls == [], "no typing, no post"


async def test_calling_a_character_by_name_answers_without_a_mention(world: DiscordWorld) -> None:
    (post,) = await world.say("小满，今天吃什么？")
    assert post.json["username"] == "苏小满"
    assert "今天吃什么" in post.content


async def test_replying_to_a_character_reaches_that_character(world: DiscordWorld) -> None:
    (first,) = await world.say("小满, what's cooking?")
    (answer,) = await world.say("and for dessert?", reply_to=first.response)
    assert answer.json["username"] == "苏小满", "the character replied to answers, not the active one"
    assert answer.content.endswith("heard Pip: and for dessert?")


async def test_a_reply_to_a_characters_message_after_a_restart_is_known_by_its_name(
    world: DiscordWorld,
) -> None:
    old = world.api.message(CHANNEL_ID, "Aye.", world.api.webhook_author(777, "Orla Finch"), webhook_id="777")
    incoming = addressed(world, "what did you mean?", reply_to=old)
    assert incoming.to_me
    assert incoming.character == "orla"


async def test_a_reply_to_the_bots_own_message_counts_as_a_mention(plain_world: DiscordWorld) -> None:
    bold = plain_world.api.message(CHANNEL_ID, "**苏小满**: 来啦！", BOT)
    incoming = addressed(plain_world, "hi again", reply_to=bold)
    assert incoming.to_me
    assert incoming.character == "xiaoman"
    other = plain_world.api.message(CHANNEL_ID, "hello", PIP)
    assert addressed(plain_world, "hi", reply_to=other).to_me is False


async def test_bots_and_webhooks_are_never_answered(world: DiscordWorld) -> None:
    assert incoming_of(world, f"{world.mention()} hi", author=user(55, "OtherBot", bot=True)) is None
    assert incoming_of(world, "Orla, hi", author=PIP, webhook_id="888") is None
    assert await world.say("Orla, hi", author=PIP, webhook_id="888") == []


async def test_mentions_of_people_become_names(world: DiscordWorld) -> None:
    incoming = addressed(
        world, f"{world.mention()} have you met <@{ADMIN_ID}> in <#{CHANNEL_ID}>?", mentions=(ADMIN,)
    )
    assert incoming.text == "have you met @Ines in #tavern?"
    assert incoming.mentions == (str(ADMIN_ID),), "the bot's own mention is not listed"
    by_role = addressed(world, f"<@&{BOT_ROLE_ID}> ahoy")
    assert by_role.to_me, "the bot's own role stands for the bot"
    assert by_role.text == "ahoy"


async def test_owners_and_manage_server_members_are_chat_admins(world: DiscordWorld) -> None:
    assert addressed(world, "hi", author=OWNER).sender.role is Role.OWNER
    assert addressed(world, "hi", author=ADMIN).sender.role is Role.ADMIN


async def test_a_thread_takes_its_channels_character_but_keeps_its_own_memory(
    world: DiscordWorld, repository: Repository
) -> None:
    await world.say("/switch xiaoman", author=ADMIN)
    (in_thread,) = await world.say(f"{world.mention()} a story?", channel_id=THREAD_ID)
    assert in_thread.json["username"] == "苏小满"
    assert in_thread.params["thread_id"] == str(THREAD_ID), (
        "posted in the thread through the channel's webhook"
    )

    thread_memory = await repository.messages.recent(ChatKey("discord", str(THREAD_ID)), "xiaoman", limit=10)
    channel_memory = await repository.messages.recent(
        ChatKey("discord", str(CHANNEL_ID)), "xiaoman", limit=10
    )
    assert thread_memory[0].text == "a story?"
    assert all(m.text != "a story?" for m in channel_memory)

    await world.say("/switch orla", channel_id=THREAD_ID, author=ADMIN)
    (after,) = await world.say(f"{world.mention()} and now?", channel_id=THREAD_ID)
    assert after.json["username"] == "Orla Finch"
    (channel,) = await world.say(f"{world.mention()} still you?")
    assert channel.json["username"] == "苏小满", "switching in a thread leaves the channel alone"


async def test_direct_messages_are_private_chats_answered_as_the_bot(world: DiscordWorld) -> None:
    incoming = addressed(world, "hello keeper", channel_id=DM_CHANNEL_ID, dm=True)
    assert (incoming.chat_type, incoming.chat_id, incoming.to_me) == ("private", str(PIP_ID), True)
    (post,) = await world.say("hello keeper", channel_id=DM_CHANNEL_ID, dm=True)
    assert post.path == f"/channels/{DM_CHANNEL_ID}/messages"
    assert post.content == "**Orla Finch**: Orla Finch heard Pip: hello keeper"
