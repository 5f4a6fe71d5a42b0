"""``/character info|disable|enable``: one chat can hide a character the others keep."""

from __future__ import annotations

from bot.messages import Role
from bot.router import Router
from tests.messages import group_message


async def say(router: Router, text: str, **options: object) -> str:
    (answer,) = await router.handle(group_message(text, **options))  # type: ignore[arg-type]
    return answer.text


async def test_info_describes_a_character_to_anyone(router: Router) -> None:
    info = await say(router, "/character info 小满")
    assert info.startswith("苏小满 (xiaoman) — ")
    assert "Called by: 小满" in info
    assert "lorebook entries" in info


async def test_a_disabled_character_is_gone_from_that_chat_only(router: Router) -> None:
    assert await say(router, "/character disable xiaoman") == "/character disable is for group admins only."
    assert (
        await say(router, "/character disable xiaoman", role=Role.ADMIN) == "苏小满 is disabled in this chat."
    )

    assert await router.handle(group_message("小满，来壶茶")) == [], "her name no longer calls her here"
    switched = await say(router, "/switch xiaoman")
    assert switched == "苏小满 is disabled in this chat; an admin can /character enable xiaoman."
    assert "xiaoman —" not in await say(router, "/characters")
    assert (await router.handle(group_message("小满，来壶茶", group="other")))[0].character == "xiaoman"

    assert await say(router, "/character enable 小满", role=Role.OWNER) == "苏小满 is enabled in this chat."
    assert (await router.handle(group_message("小满，来壶茶")))[0].character == "xiaoman"


async def test_disabling_the_active_character_falls_back_and_says_so(router: Router) -> None:
    await say(router, "/switch xiaoman")
    told = await say(router, "/character disable xiaoman", role=Role.ADMIN)
    assert told.endswith("It was the active character; the chat falls back to the default.")
    assert (await router.handle(group_message("hello", to_me=True)))[0].character == "orla"
    refused = await say(router, "/character disable orla", role=Role.ADMIN)
    assert refused == "That would leave this chat without any character."
