"""Replies out: as the character through a webhook or as the bot, split, with screenshots, retried."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import numpy as np
from PIL import Image

from bot.engine.packs import load_pack
from bot.messages import ChatKey, Reply, Voice
from bot.messages import Image as ReplyImage
from bot.outbox import Outbox
from bot.voice.audio import Encoder, speech_from_pcm
from tests.packs import ORLA_CAPTIONS
from tests.support.discord_gateway import CHANNEL_ID, PIP_ID, DiscordWorld

WEBHOOK_POST = r"/webhooks/\d+/token-\d+"
LONG_REPLY = " ".join(
    f"The lamp turns {n} times a minute, every night, whatever the gale says." for n in range(60)
)


async def test_the_webhook_is_made_once_and_used_for_every_character(world: DiscordWorld) -> None:
    (orla,) = await world.say(f"{world.mention()} evening")
    (xiaoman,) = await world.say("小满, 晚上好")
    assert len(world.api.made("POST", f"/channels/{CHANNEL_ID}/webhooks")) == 1
    assert (orla.json["username"], xiaoman.json["username"]) == ("Orla Finch", "苏小满")
    assert orla.path == xiaoman.path, "one channel webhook, a different name per message"


async def test_a_webhook_reply_points_at_the_message_and_pings_only_its_author(world: DiscordWorld) -> None:
    message = world.message(f"{world.mention()} hello")
    await world.bridge.on_message(message)
    (post,) = world.api.made("POST", WEBHOOK_POST)
    pointer, _, text = post.content.partition("\n")
    assert pointer == f"-# ↪ <@{PIP_ID}> · {message.jump_url}"
    assert text == "Orla Finch heard Pip: hello"
    assert post.json["allowed_mentions"] == {"parse": [], "users": [PIP_ID]}


async def test_an_existing_bot_webhook_is_reused_and_a_deleted_one_replaced(world: DiscordWorld) -> None:
    world.api.add_webhook(CHANNEL_ID)
    await world.say(f"{world.mention()} one")
    assert world.api.made("POST", f"/channels/{CHANNEL_ID}/webhooks") == []

    world.api.delete_webhooks(CHANNEL_ID)
    (post,) = await world.say(f"{world.mention()} two")
    assert post.response["content"].endswith("heard Pip: two")
    assert [call.status for call in world.api.made("POST", WEBHOOK_POST)] == [200, 404, 200]
    assert len(world.api.made("POST", f"/channels/{CHANNEL_ID}/webhooks")) == 1


async def test_without_manage_webhooks_the_bot_replies_with_the_name_in_bold(
    plain_world: DiscordWorld,
) -> None:
    message = plain_world.message("小满, 你好")
    await plain_world.bridge.on_message(message)
    (post,) = plain_world.api.posts()
    assert post.path == f"/channels/{CHANNEL_ID}/messages"
    assert post.content == "**苏小满**: 苏小满 heard Pip: 你好"
    assert post.json["message_reference"]["message_id"] == message.id
    assert post.json["allowed_mentions"] == {"parse": [], "replied_user": True}, "no @everyone from a model"


async def test_a_refused_webhook_falls_back_to_a_plain_reply(world: DiscordWorld) -> None:
    world.api.fail(
        "GET", rf"/channels/{CHANNEL_ID}/webhooks", status=403, body={"message": "Missing Permissions"}
    )
    (post,) = await world.say(f"{world.mention()} hi")
    assert post.content == "**Orla Finch**: Orla Finch heard Pip: hi"


async def test_command_output_is_posted_by_the_bot_itself(world: DiscordWorld) -> None:
    (post,) = await world.say("/who")
    assert post.path == f"/channels/{CHANNEL_ID}/messages"
    assert post.content.startswith("Active character: orla — Orla Finch")


async def test_long_replies_are_split_under_2000_characters_between_words(
    world: DiscordWorld, plain_world: DiscordWorld
) -> None:
    for where, path in ((world, WEBHOOK_POST), (plain_world, rf"/channels/{CHANNEL_ID}/messages")):
        await where.bridge.poster.deliver(where.message("tell me"), Reply(LONG_REPLY, character="orla"))
        parts = [call.content for call in where.api.made("POST", path)]
        assert len(parts) == 3
        assert all(len(part) <= 2000 for part in parts)
        body = " ".join(parts).split("\n", 1)[1] if where is world else " ".join(parts)
        assert body.removeprefix("**Orla Finch**: ") == LONG_REPLY
        assert all(part.endswith(".") for part in parts[:-1]), "cut at sentence ends"


async def test_a_screenshot_arrives_as_an_attachment_with_the_text(world: DiscordWorld) -> None:
    (post,) = await world.say(f"{world.mention()} {ORLA_CAPTIONS[1]}")
    assert post.files == ["0002.jpg"]
    assert post.content.endswith(ORLA_CAPTIONS[1])
    assert post.response["attachments"][0]["filename"] == "0002.jpg"


async def test_screenshots_go_with_the_last_part_of_a_long_reply(
    plain_world: DiscordWorld, tmp_path: Path
) -> None:
    shot = tmp_path / "frame.jpg"
    Image.new("RGB", (32, 18), "navy").save(shot)
    reply = Reply(LONG_REPLY, images=[ReplyImage(shot, "frame")], character="orla")
    await plain_world.bridge.poster.deliver(plain_world.message("tell me"), reply)
    assert [call.files for call in plain_world.api.posts()] == [[], [], ["frame.jpg"]]


async def test_a_429_is_waited_out_by_discord_py(world: DiscordWorld) -> None:
    world.api.fail(
        "POST",
        WEBHOOK_POST,
        status=429,
        body={"message": "You are being rate limited.", "retry_after": 0.05, "global": False},
        headers={"Via": "1.1 google", "Retry-After": "1"},
    )
    (post,) = await world.say(f"{world.mention()} busy night")
    assert post.response["content"].endswith("busy night")
    assert len(world.api.made("POST", WEBHOOK_POST)) == 2


async def test_a_lost_connection_is_retried_and_the_reply_still_posted(
    plain_world: DiscordWorld,
) -> None:
    plain_world.api.fail(
        "POST",
        rf"/channels/{CHANNEL_ID}/messages",
        times=2,
        error=aiohttp.ClientConnectionError("reset by peer"),
    )
    (post,) = await plain_world.say(f"{plain_world.mention()} still there?")
    assert post.response["content"].endswith("still there?")
    assert len(plain_world.api.made("POST", rf"/channels/{CHANNEL_ID}/messages")) == 3


async def test_a_reply_that_cannot_be_posted_is_recorded_as_failed_and_never_remembered_as_said(
    plain_world: DiscordWorld,
) -> None:
    plain_world.api.fail(
        "POST", rf"/channels/{CHANNEL_ID}/messages", times=10, error=aiohttp.ClientConnectionError("down")
    )
    assert await plain_world.say(f"{plain_world.mention()} remember this") == []
    repository = plain_world.bridge.router.repository
    channel = ChatKey("discord", str(CHANNEL_ID))
    history = await repository.messages.recent(channel, "orla", limit=5)
    assert [m.text for m in history] == ["remember this"], "the member's message is kept"
    assert await repository.deliveries.of_chat(channel.platform, channel.chat_id) == [
        ("Orla Finch heard Pip: remember this", "failed")
    ]


async def test_a_pack_avatar_is_uploaded_once_as_an_application_emoji(world: DiscordWorld) -> None:
    orla = world.bridge.router.packs.get("orla")
    assert orla is not None
    Image.new("RGB", (400, 400), "teal").save(orla.root / "images" / "avatar.png")
    with (orla.root / "character.toml").open("a", encoding="utf-8") as toml:
        toml.write('avatar = "images/avatar.png"\n')
    world.bridge.router.packs.add(load_pack(orla.root))

    await world.say(f"{world.mention()} one")
    await world.say(f"{world.mention()} two")
    (upload,) = world.api.made("POST", r"/applications/\d+/emojis")
    assert re.fullmatch(r"avatar_[0-9a-f]{20}", upload.json["name"])
    assert upload.json["image"].startswith("data:image/png;base64,")
    emoji_id = world.api.emojis[0]["id"]
    avatars = {call.json["avatar_url"] for call in world.api.made("POST", WEBHOOK_POST)}
    assert avatars == {f"https://cdn.discordapp.com/emojis/{emoji_id}.png"}


def spoken_mp3(path: Path, seconds: float = 0.8) -> Path:
    """A real MP3 voice: a tone made into speech and encoded as the bot encodes voices."""
    samples = 0.3 * np.sin(2 * np.pi * 330 * np.arange(int(24_000 * seconds)) / 24_000)
    data, suffix = Encoder().encode(speech_from_pcm(samples, 24_000), "mp3")
    target = path.with_suffix(suffix)
    target.write_bytes(data)
    return target


async def test_a_voice_arrives_as_an_audio_file_through_the_characters_webhook(
    world: DiscordWorld, tmp_path: Path
) -> None:
    voice = Voice(spoken_mp3(tmp_path / "lamp"), 0.8)
    only = Reply("The lamp is lit.", character="orla", voice=voice, voice_only=True)
    await world.bridge.poster.deliver(world.message("lamp?"), only)
    with_text = Reply("The lamp is lit.", character="orla", voice=voice)
    await world.bridge.poster.deliver(world.message("lamp?"), with_text)

    alone, both = world.api.made("POST", WEBHOOK_POST)
    assert (alone.json["username"], both.json["username"]) == ("Orla Finch", "Orla Finch")
    assert alone.files == both.files == ["orla.mp3"]
    assert "The lamp is lit." not in alone.content, "/voice only: the voice without the text"
    assert both.content.endswith("The lamp is lit.")
    assert alone.uploads["orla.mp3"] == voice.path.read_bytes()


async def test_a_voice_that_follows_its_text_is_announced_through_the_webhook(
    world: DiscordWorld, outbox: Outbox, tmp_path: Path
) -> None:
    voice = Voice(spoken_mp3(tmp_path / "lamp"), 0.8)
    follow = Reply("灯りはついている。", quote=False, character="orla", voice=voice, voice_only=True)
    assert await outbox.announce(ChatKey("discord", str(CHANNEL_ID)), follow)
    (post,) = world.api.made("POST", WEBHOOK_POST)
    assert (post.json["username"], post.content, post.files) == ("Orla Finch", "", ["orla.mp3"])
