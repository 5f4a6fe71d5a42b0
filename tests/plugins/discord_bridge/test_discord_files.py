"""Files on Discord: characters imported from attachments, exported as attachments, and announcements."""

from __future__ import annotations

import pytest

from bot.router import Router
from tests.importers.samples import WREN, card_png_bytes, v3
from tests.support.discord_api import Call
from tests.support.discord_gateway import ADMIN, CHANNEL_ID, PIP, DiscordWorld


def wren_card() -> bytes:
    """Wren Calloway's Character Card V3 PNG, with her lorebook (the parrot Ballast)."""
    return card_png_bytes(v3(WREN))


@pytest.fixture(autouse=True)
def group_admins_manage_characters(router: Router) -> None:
    """Ines has Manage Server; here that is enough to add characters."""
    admins = router.config.admins.model_copy(update={"character_managers": "group_admins"})
    router.config = router.config.model_copy(update={"admins": admins})


async def announcements(world: DiscordWorld, containing: str) -> list[Call]:
    await world.bridge.router.catalog.background.wait()
    await world.api.settle()
    return [post for post in world.api.posts() if containing in post.content]


async def test_a_card_posted_with_the_command_is_imported_and_announced_when_indexed(
    world: DiscordWorld,
) -> None:
    card = world.api.upload(CHANNEL_ID, "wren.png", wren_card())

    (imported,) = await world.say("/character import wren", author=ADMIN, attachments=(card,))

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

    (imported,) = await world.say("/character import wren", author=ADMIN, reply_to=posted)
    assert imported.content.startswith("Imported Wren Calloway as wren")
    await world.bridge.router.catalog.background.wait()

    (again,) = await world.say("/character import wren2", author=ADMIN)
    assert again.content.startswith("Imported Wren Calloway as wren2"), "the file posted just before"
    await world.bridge.router.catalog.background.wait()
    (refused,) = await world.say("/character import wren3", author=PIP)
    assert refused.content == "/character import is for group admins only."


async def test_a_file_over_the_limit_is_refused_by_name_without_downloading_it(
    world: DiscordWorld, router: Router
) -> None:
    huge = world.api.upload(CHANNEL_ID, "huge.png", bytes(router.catalog.limits.max_file_bytes + 1))
    (refused,) = await world.say("/character import", author=ADMIN, attachments=(huge,))
    assert refused.content == "huge.png is 20,000,001 bytes, over the import limit of 20,000,000 bytes."
    assert world.api.cdn_fetches == []


async def test_export_posts_the_pack_as_an_attachment(world: DiscordWorld) -> None:
    (exported,) = await world.say("/character export orla", author=ADMIN)
    assert exported.content == "Orla Finch as a pack zip: orla.zip"
    assert exported.files == ["orla.zip"]


async def test_the_character_slash_group_has_the_verbs_and_import_takes_a_file(world: DiscordWorld) -> None:
    await world.bridge.sync_commands()
    (put,) = world.api.made("PUT", r"/applications/\d+(?:/guilds/\d+)?/commands")
    (character,) = [command for command in put.json if command["name"] == "character"]
    verbs = {option["name"]: option for option in character["options"]}
    assert set(verbs) == {"info", "disable", "enable", "export", "create", "import", "reload", "remove"}
    assert [option["name"] for option in verbs["import"]["options"]] == ["text", "file"]
    assert verbs["info"]["options"][0]["name"] == "character"

    card = world.api.upload(CHANNEL_ID, "wren.png", wren_card())
    file_option = {"name": "file", "type": 11, "value": card["id"]}
    (answer,) = await world.slash(
        "character",
        [{"name": "import", "type": 1, "options": [file_option]}],
        author=ADMIN,
        resolved={"attachments": {card["id"]: card}},
    )
    assert answer.content.startswith("Imported Wren Calloway as wren-calloway (card-png)")
