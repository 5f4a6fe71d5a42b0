"""Slash commands: registered from the command registry, autocompleted, answered through the router."""

from __future__ import annotations

from bot.config import BotConfig
from bot.messages import ChatKey
from storage import Repository
from tests.support.discord_gateway import (
    ADMIN,
    BOT_ID,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    GUILD_ID,
    OWNER,
    PIP,
    PIP_ID,
    DiscordWorld,
)


async def test_every_chat_command_is_registered_as_a_slash_command(world: DiscordWorld) -> None:
    await world.bridge.sync_commands()
    (put,) = world.api.made("PUT", rf"/applications/{BOT_ID}/commands")
    commands = {command["name"]: command for command in put.json}
    assert {"switch", "characters", "who", "reset", "scene", "images", "help"} <= set(commands)
    (option,) = commands["switch"]["options"]
    assert (option["name"], option["type"], option["autocomplete"]) == ("character", 3, True)
    assert commands["who"].get("options", []) == []


async def test_command_guilds_register_there_at_once(world: DiscordWorld) -> None:
    world.bridge.settings = world.bridge.settings.model_copy(update={"command_guilds": [GUILD_ID]})
    await world.bridge.sync_commands()
    assert world.api.made("PUT", rf"/applications/{BOT_ID}/guilds/{GUILD_ID}/commands")
    assert world.api.made("PUT", rf"/applications/{BOT_ID}/commands") == []


async def test_switch_autocompletes_character_names(world: DiscordWorld) -> None:
    assert await world.autocomplete("switch", "character", "man") == [
        {"name": "苏小满 (xiaoman)", "value": "xiaoman"}
    ]
    everyone = await world.autocomplete("switch", "character", "")
    assert [choice["value"] for choice in everyone] == ["orla", "xiaoman"]


async def test_slash_switch_changes_the_channels_character(
    world: DiscordWorld, repository: Repository
) -> None:
    (answer,) = await world.slash("switch", [{"name": "character", "type": 3, "value": "xiaoman"}])
    assert answer.content.startswith("**苏小满**: [苏小满]")
    state = await repository.chats.state(ChatKey("discord", str(CHANNEL_ID)))
    assert state.active_character == "xiaoman"
    (reply,) = await world.say(f"{world.mention()} 你是谁？")
    assert reply.json["username"] == "苏小满"


async def test_a_reply_to_the_switch_greeting_reaches_that_character(world: DiscordWorld) -> None:
    (answer,) = await world.slash("switch", [{"name": "character", "type": 3, "value": "xiaoman"}])
    await world.slash("switch", [{"name": "character", "type": 3, "value": "orla"}])
    (reply,) = await world.say("还记得我吗？", reply_to=answer.response)
    assert reply.json["username"] == "苏小满"


async def test_slash_commands_without_options(world: DiscordWorld) -> None:
    (who,) = await world.slash("who")
    assert who.content.startswith("Active character: orla — Orla Finch")
    (listing,) = await world.slash("characters")
    assert "xiaoman — 苏小满" in listing.content


async def test_admin_commands_need_manage_server_or_a_superuser(
    world: DiscordWorld, config: BotConfig
) -> None:
    off = [{"name": "text", "type": 3, "value": "off"}]
    (refused,) = await world.slash("images", off, author=PIP)
    assert refused.content == "/images is for group admins only."
    (done,) = await world.slash("images", off, author=ADMIN)
    assert done.content == "Screenshots off for this chat."

    (not_yet,) = await world.slash("reset", author=PIP)
    assert not_yet.content == "/reset is for group admins only."
    config.admins.superusers.append(f"discord:{PIP_ID}")
    (allowed,) = await world.slash("reset", author=PIP)
    assert allowed.content.startswith("Memory of this chat cleared")


async def test_the_server_owner_manages_characters_in_the_server_never_from_a_dm(world: DiscordWorld) -> None:
    """With ``character_managers = "group_admins"`` a server's owner removes characters there; a DM
    makes its user the admin of that DM only, not of the characters every server and chat shares."""
    router = world.bridge.router
    admins = router.config.admins.model_copy(update={"character_managers": "group_admins"})
    router.config = router.config.model_copy(update={"admins": admins})
    only = "/character remove is for admins of a group, catalog managers and bot superusers only."
    (refused,) = await world.say("/character remove xiaoman", author=OWNER, channel_id=DM_CHANNEL_ID, dm=True)
    assert refused.content.startswith(only)
    xiaoman = [{"name": "character", "type": 3, "value": "xiaoman"}]
    remove = [{"name": "remove", "type": 1, "options": xiaoman}]
    (still,) = await world.slash("character", remove, author=PIP)
    assert still.content == only
    assert "xiaoman" in router.packs
    (removed,) = await world.slash("character", remove, author=OWNER)
    assert removed.content.startswith("Removed 苏小满 (xiaoman).")


async def test_text_commands_work_as_on_qq(world: DiscordWorld) -> None:
    (post,) = await world.say("/switch 小满", author=ADMIN)
    assert post.json["username"] == "苏小满", "the greeting is spoken by the character"
    assert post.content.split("\n")[1].startswith("[苏小满]")


async def test_slash_scene_attaches_the_screenshot(world: DiscordWorld) -> None:
    (answer,) = await world.slash("scene", [{"name": "text", "type": 3, "value": "Barnacle fish"}])
    assert answer.files == ["0002.jpg"]
    assert answer.content == "**Orla Finch**: 「Barnacle has taste. Your fish does not.」"
