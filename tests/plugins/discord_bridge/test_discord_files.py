"""Files on Discord: characters imported from attachments, exported as attachments, and announcements."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bot.config import BotConfig
from bot.messages import ChatKey, File, Reply
from bot.outbox import Outbox
from bot.router import Router
from tests.importers.samples import WREN, card_png_bytes, v3
from tests.support.discord_api import Call
from tests.support.discord_gateway import (
    ADMIN,
    ADMIN_ID,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    HARBOUR_ID,
    OWNER,
    PIP_ID,
    THREAD_ID,
    DiscordWorld,
)

INDEXING = re.compile(r"^[^\n]+: index(?:ing|ed) \d+/\d+ scenes")
IMPORTED = re.compile(r"^Imported ")
"""The news of a finished import, posted when the background job is done (it may race the command's
own answer)."""


def acknowledged(name: str) -> str:
    return f"Importing {name}… I'll post here when it is ready."


def wren_card() -> bytes:
    """Wren Calloway's Character Card V3 PNG, with her lorebook (the parrot Ballast)."""
    return card_png_bytes(v3(WREN))


@pytest.fixture(autouse=True)
def ines_is_a_superuser(config: BotConfig) -> None:
    """Ines runs the bot: ``[admins] superusers = ["discord:2002"]``. Only superusers add and remove
    characters (``character_managers`` is left at its default), not even the server's owner."""
    config.admins.superusers.append(f"discord:{ADMIN_ID}")


async def command(world: DiscordWorld, text: str, **options: Any) -> list[Call]:
    """What the bot answered to ``text``, without the announcements of background work racing it."""
    return [
        post
        for post in await world.say(text, **options)
        if not INDEXING.match(post.content) and not IMPORTED.match(post.content)
    ]


async def announcements(world: DiscordWorld, containing: str) -> list[Call]:
    await world.bridge.router.catalog.background.wait()
    await world.api.settle()
    return [post for post in world.api.posts() if containing in post.content]


async def test_a_card_posted_with_the_command_is_imported_and_announced_when_indexed(
    world: DiscordWorld,
) -> None:
    card = world.api.upload(CHANNEL_ID, "wren.png", wren_card())

    (acknowledgement,) = await command(world, "/character import wren", author=ADMIN, attachments=(card,))

    assert acknowledgement.content == acknowledged("wren.png")
    (imported,) = await announcements(world, "Imported")
    assert imported.path == f"/channels/{CHANNEL_ID}/messages"
    assert imported.content.startswith("Imported Wren Calloway as wren (card-png): 2 scenes")
    assert world.api.cdn_fetches == [card["url"]]
    (indexed,) = await announcements(world, "indexed")
    assert indexed.path == f"/channels/{CHANNEL_ID}/messages"
    assert indexed.content == "Wren Calloway: indexed 2/2 scenes, ready."
    (switched,) = await world.say("/switch wren")
    assert "\n[Wren Calloway] " in switched.content


async def test_the_file_may_be_in_the_message_replied_to_or_posted_just_before(world: DiscordWorld) -> None:
    posted = world.message_payload(
        "", author=ADMIN, attachments=(world.api.upload(CHANNEL_ID, "w.png", wren_card()),)
    )
    assert await world.say("", author=ADMIN, attachments=tuple(posted["attachments"])) == []

    (acknowledgement,) = await command(world, "/character import wren", author=ADMIN, reply_to=posted)
    assert acknowledgement.content == acknowledged("w.png")
    assert (await announcements(world, "Imported"))[-1].content.startswith("Imported Wren Calloway as wren")

    await command(world, "/character import wren2", author=ADMIN)
    again = (await announcements(world, "Imported"))[-1]
    assert again.content.startswith("Imported Wren Calloway as wren2"), "the file posted just before"
    (refused,) = await command(world, "/character import wren3", author=OWNER)
    assert refused.content == "/character import is for bot superusers and catalog managers only."


async def test_a_card_forwarded_from_another_channel_counts_as_posted_here(world: DiscordWorld) -> None:
    card = world.api.upload(HARBOUR_ID, "wren.png", wren_card())
    original = world.message_payload("Wren's card", author=OWNER, channel_id=HARBOUR_ID, attachments=(card,))
    forward = world.message_payload("", author=ADMIN, forwarding=original)
    assert await world.say("", author=ADMIN, forwarding=original) == []

    (acknowledgement,) = await command(world, "/character import wren", author=ADMIN)
    assert acknowledgement.content == acknowledged("wren.png"), "forwarded just before"
    assert (await announcements(world, "Imported"))[-1].content.startswith("Imported Wren Calloway as wren")
    await command(world, "/character import wren2", author=ADMIN, reply_to=forward)
    again = (await announcements(world, "Imported"))[-1]
    assert again.content.startswith("Imported Wren Calloway as wren2"), "a reply to the forward"
    assert world.api.cdn_fetches == [card["url"], card["url"]]


async def test_a_file_over_the_limit_is_refused_by_name_without_downloading_it(
    world: DiscordWorld, router: Router
) -> None:
    huge = world.api.upload(CHANNEL_ID, "huge.png", bytes(router.catalog.limits.max_file_bytes + 1))
    (refused,) = await command(world, "/character import", author=ADMIN, attachments=(huge,))
    assert refused.content == "huge.png is 20,000,001 bytes, over the import limit of 20,000,000 bytes."
    assert world.api.cdn_fetches == []


def pack_files(archive: bytes) -> set[str]:
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        return set(opened.namelist())


async def test_a_file_gone_from_the_cdn_is_refused_by_name(world: DiscordWorld) -> None:
    card = world.api.upload(CHANNEL_ID, "wren.png", wren_card())
    del world.api.cdn[card["url"]]
    await world.say("/character import", author=ADMIN, attachments=(card,))
    posted = [post.content for post in await announcements(world, "wren.png")]
    assert acknowledged("wren.png") in posted, "(the refusal, posted by the import job, may come first)"
    (refused,) = [text for text in posted if text.startswith("Could not")]
    assert refused.startswith("Could not download wren.png from Discord: 404")


async def test_export_posts_the_pack_as_an_attachment(world: DiscordWorld) -> None:
    (exported,) = await world.say("/character export orla", author=ADMIN)
    assert exported.path == f"/channels/{CHANNEL_ID}/messages"
    assert exported.content == "Orla Finch as a pack zip: orla.zip"
    assert exported.files == ["orla.zip"]
    assert exported.json["attachments"] == [{"id": 0, "filename": "orla.zip"}], "the multipart payload_json"
    assert "orla/character.toml" in pack_files(exported.uploads["orla.zip"])
    assert exported.response["attachments"][0]["size"] == len(exported.uploads["orla.zip"])


async def test_a_slash_export_follows_up_with_the_zip(world: DiscordWorld) -> None:
    options = [{"name": "character", "type": 3, "value": "orla"}]
    (answer,) = await world.slash(
        "character", [{"name": "export", "type": 1, "options": options}], author=ADMIN
    )
    assert answer.content == "Orla Finch as a pack zip: orla.zip"
    assert answer.files == ["orla.zip"]
    assert "orla/character.toml" in pack_files(answer.uploads["orla.zip"])


async def test_a_replied_message_discord_left_out_is_fetched_and_a_deleted_one_has_no_files(
    world: DiscordWorld,
) -> None:
    posted = world.message_payload(
        "", author=ADMIN, attachments=(world.api.upload(CHANNEL_ID, "w.png", wren_card()),)
    )
    await command(world, "/character import wren", author=ADMIN, reply_to=posted, resolved=False)
    (imported,) = await announcements(world, "Imported")
    assert imported.content.startswith("Imported Wren Calloway as wren")
    assert world.api.made("GET", rf"/channels/{CHANNEL_ID}/messages/{posted['id']}")

    gone = world.message_payload("", author=ADMIN)
    del world.api.messages[int(gone["id"])]
    (refused,) = await command(world, "/character import wren2", author=ADMIN, reply_to=gone, resolved=False)
    assert refused.content.startswith("Send the file"), "nothing to import: it is gone, none came before"


async def test_the_character_slash_group_has_the_verbs_and_import_takes_a_file(world: DiscordWorld) -> None:
    await world.bridge.sync_commands()
    (put,) = world.api.made("PUT", r"/applications/\d+(?:/guilds/\d+)?/commands")
    (character,) = [command for command in put.json if command["name"] == "character"]
    verbs = {option["name"]: option for option in character["options"]}
    assert set(verbs) == {"info", "disable", "enable", "export", "create", "import", "reload", "remove"}
    assert [option["name"] for option in verbs["import"]["options"]] == ["text", "file"]
    assert verbs["import"]["description"] == "add a character from a file"
    assert verbs["import"]["options"][0]["description"].startswith("[id] [replace]")
    assert verbs["import"]["options"][1]["type"] == 11, "an attachment option"
    named = [
        verb for verb, option in verbs.items() if option.get("options", [{}])[0].get("name") == "character"
    ]
    assert named == ["info", "disable", "enable", "export", "remove"], "create and reload take new ids"
    assert all(verbs[verb]["options"][0]["autocomplete"] for verb in named)
    assert await world.autocomplete("character remove", "character", "orl") == [
        {"name": "Orla Finch (orla)", "value": "orla"}
    ]

    card = world.api.upload(CHANNEL_ID, "wren.png", wren_card())
    file_option = {"name": "file", "type": 11, "value": card["id"]}
    (answer,) = await world.slash(
        "character",
        [{"name": "import", "type": 1, "options": [file_option]}],
        author=ADMIN,
        resolved={"attachments": {card["id"]: card}},
    )
    assert answer.content == acknowledged("wren.png")
    (imported,) = await announcements(world, "Imported")
    assert imported.content.startswith("Imported Wren Calloway as wren-calloway (card-png)")


async def test_announcements_reach_threads_channels_not_cached_and_dms(
    world: DiscordWorld, outbox: Outbox
) -> None:
    for chat_id in (str(THREAD_ID), str(HARBOUR_ID), f"private:{PIP_ID}"):
        assert await outbox.announce(ChatKey("discord", chat_id), Reply(f"to {chat_id}", quote=False))
    thread, harbour, dm = world.api.posts()
    assert (thread.path, thread.content) == (f"/channels/{THREAD_ID}/messages", f"to {THREAD_ID}")
    assert world.api.made("GET", rf"/channels/{HARBOUR_ID}"), "not in the cache: fetched"
    assert (harbour.path, harbour.content) == (f"/channels/{HARBOUR_ID}/messages", f"to {HARBOUR_ID}")
    assert world.api.made("POST", "/users/@me/channels")[0].json == {"recipient_id": PIP_ID}
    assert (dm.path, dm.content) == (f"/channels/{DM_CHANNEL_ID}/messages", f"to private:{PIP_ID}")
    assert "message_reference" not in thread.json, "an announcement answers no message"

    assert not await outbox.announce(ChatKey("discord", "999"), Reply("nowhere", quote=False))


async def test_a_character_announces_through_the_webhook_with_its_files_and_no_pointer(
    world: DiscordWorld, outbox: Outbox, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("the lamp logbook")
    reply = Reply("The lamp is lit.", files=[File(notes, "logbook.txt")], quote=False, character="orla")

    assert await outbox.announce(ChatKey("discord", str(THREAD_ID)), reply)
    assert await outbox.announce(ChatKey("discord", f"private:{PIP_ID}"), reply)

    through_hook, in_dm = world.api.posts()
    assert through_hook.path.startswith("/webhooks/")
    assert through_hook.params["thread_id"] == str(THREAD_ID)
    assert (through_hook.json["username"], through_hook.content) == ("Orla Finch", "The lamp is lit.")
    assert through_hook.uploads == {"logbook.txt": b"the lamp logbook"}
    assert in_dm.content == "**Orla Finch**: The lamp is lit.", "no webhooks in a DM"
    assert in_dm.files == ["logbook.txt"]


async def test_without_manage_webhooks_a_character_announces_as_the_bot(
    plain_world: DiscordWorld, outbox: Outbox
) -> None:
    reply = Reply("The lamp is lit.", quote=False, character="orla")
    assert await outbox.announce(ChatKey("discord", str(CHANNEL_ID)), reply)
    (post,) = plain_world.api.posts()
    assert (post.path, post.content) == (
        f"/channels/{CHANNEL_ID}/messages",
        "**Orla Finch**: The lamp is lit.",
    )


async def test_the_bridge_stops_announcing_once_closed(world: DiscordWorld, outbox: Outbox) -> None:
    await world.bridge.close()
    assert not await outbox.announce(ChatKey("discord", str(CHANNEL_ID)), Reply("late", quote=False))
    assert world.api.posts() == []
