from __future__ import annotations

import pytest

from bot.commands import parse_command
from bot.messages import ChatKey, Role
from bot.router import Router
from storage import Repository
from tests.messages import group_message, private_message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/switch Orla", ("switch", "Orla")),
        ("  /WHO  ", ("who", "")),
        ("／切换 小满", ("切换", "小满")),
        ("/switch   Orla Finch ", ("switch", "Orla Finch")),
        ("hello /switch", None),
        ("/", None),
        ("/ switch", None),
    ],
)
def test_parse_command(text: str, expected: tuple[str, str] | None) -> None:
    assert parse_command(text) == expected


async def test_commands_work_with_or_without_a_mention(router: Router) -> None:
    plain = await router.handle(group_message("/who"))
    mentioned = await router.handle(group_message("/who", to_me=True))
    assert plain[0].text == mentioned[0].text
    assert plain[0].text.startswith("Active character: orla — Orla Finch")


async def test_characters_lists_each_with_a_description(router: Router) -> None:
    text = (await router.handle(group_message("/characters")))[0].text
    assert "• orla — Orla Finch: Orla Finch, for tests ← active" in text
    assert "• xiaoman — 苏小满: 苏小满, for tests" in text


async def test_switch_explains_unknown_and_ambiguous(router: Router) -> None:
    unknown = (await router.handle(group_message("/switch nobody")))[0].text
    assert unknown == "No character matches 'nobody'. Available: orla (Orla Finch), xiaoman (苏小满)"
    usage = (await router.handle(group_message("/switch")))[0].text
    assert usage.startswith("Usage: /switch <id | name | alias>")
    same = (await router.handle(group_message("/switch orla")))[0].text
    assert same == "Orla Finch is already here."
    fuzzy = (await router.handle(group_message("/switch xiaomn")))[0]
    assert fuzzy.character == "xiaoman"


async def test_reset_needs_a_group_admin(router: Router, repository: Repository) -> None:
    await router.handle(group_message("remember me", to_me=True))
    refused = await router.handle(group_message("/reset"))
    assert refused[0].text == "/reset is for group admins only."
    done = await router.handle(group_message("/reset", role=Role.ADMIN))
    assert done[0].text.startswith("Memory of this chat cleared (2 messages forgotten)")
    assert await repository.recent_messages(ChatKey("onebot", "100"), "orla", limit=10) == []
    assert await repository.count_messages(ChatKey("onebot", "100")) == 2, "nothing is deleted"


async def test_superusers_and_private_chats_may_reset(router: Router) -> None:
    superuser = await router.handle(group_message("/reset", user="1"))
    assert superuser[0].text.startswith("Memory of this chat cleared")
    private = await router.handle(private_message("/reset"))
    assert private[0].text.startswith("Memory of this chat cleared")


async def test_help_and_unknown_commands(router: Router) -> None:
    text = (await router.handle(group_message("/help")))[0].text
    for name in ("/switch", "/characters", "/who", "/reset", "/help"):
        assert name in text
    assert "/reset: clear this chat's conversation memory (also /重置) [group admins]" in text
    assert (await router.handle(group_message("/dance", to_me=True)))[0].text.startswith(
        "Unknown command /dance"
    )
    assert await router.handle(group_message("/dance")) == []
