from __future__ import annotations

import pytest

from bot.commands import Conversations, RecentFiles, parse_command
from bot.messages import ChatKey, Role
from bot.router import Router
from storage import Repository
from tests.messages import attachment, group_message, private_message


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
        (
            "/character create wren Wren\npersona: a pilot",
            ("character", "create wren Wren\npersona: a pilot"),
        ),
        ("/help\nplease", ("help", "please")),
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
    assert await repository.messages.recent(ChatKey("onebot", "100"), "orla", limit=10) == []
    assert await repository.messages.count(ChatKey("onebot", "100")) == 2, "nothing is deleted"


async def test_superusers_and_private_chats_may_reset(router: Router) -> None:
    superuser = await router.handle(group_message("/reset", user="1"))
    assert superuser[0].text.startswith("Memory of this chat cleared")
    private = await router.handle(private_message("/reset"))
    assert private[0].text.startswith("Memory of this chat cleared")


async def test_help_and_unknown_commands(router: Router) -> None:
    text = (await router.handle(group_message("/help")))[0].text
    for name in ("/switch", "/characters", "/who", "/reset", "/training", "/help"):
        assert name in text
    assert "/reset: clear this chat's conversation memory (also /重置) [group admins]" in text
    assert "/cancel: stop a command that is asking you questions" in text
    assert "/character info · disable · enable · export" in text, "a family is one line"
    assert "  /character" not in text
    assert len(text.splitlines()) <= 21, "the list fits a chat window"

    family = (await router.handle(group_message("/help character")))[0].text
    assert family == (await router.handle(group_message("/help /character")))[0].text
    assert "  /character info <id>: a character's details\n" in family
    assert "  /character import [id] [replace]" in family
    assert "add a character from a file [bot superusers and catalog managers]" in family
    assert (await router.handle(group_message("/help dance")))[0].text == (
        "No command /dance. Send /help for the list."
    )
    assert (await router.handle(group_message("/dance", to_me=True)))[0].text.startswith(
        "Unknown command /dance"
    )
    assert await router.handle(group_message("/dance")) == []


async def test_a_family_without_its_verb_shows_its_usage(router: Router) -> None:
    usage = (await router.handle(group_message("/character")))[0].text
    assert usage.startswith(
        "Usage: /character info <id> · disable <id> · enable <id> · export <id> [zip|card]"
    )
    assert (await router.handle(group_message("/character dance orla")))[0].text == usage
    assert (await router.handle(group_message("/admin")))[0].text.startswith("No bot admins granted here")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_waiting_conversation_is_forgotten_after_its_time() -> None:
    clock = Clock()
    conversations = Conversations(ttl_s=60, clock=clock)
    key = ChatKey("onebot", "100")

    async def step(context: object, text: str) -> object:
        return text

    conversations.expect(key, "42", step)  # type: ignore[arg-type]
    assert conversations.waiting(key, "42")
    assert not conversations.waiting(key, "7")
    clock.now = 61
    assert not conversations.waiting(key, "42")
    assert conversations.take(key, "42") is None
    assert len(conversations) == 0


def test_recent_files_are_kept_per_chat_and_user_for_a_while() -> None:
    clock = Clock()
    recent = RecentFiles(ttl_s=60, capacity=2, clock=clock)
    card = attachment("wren.png", b"png")
    recent.keep(group_message("", user="42", files=(card,)))
    assert recent.of(group_message("/character import", user="42")) == (card,)
    assert recent.of(group_message("/character import", user="7")) == ()
    assert recent.of(group_message("/character import", user="42", group="other")) == ()

    recent.keep(group_message("", user="7", files=(card,)))
    recent.keep(group_message("", user="8", files=(card,)))
    assert recent.of(group_message("/character import", user="42")) == (), "the oldest went past capacity"
    clock.now = 61
    assert recent.of(group_message("/character import", user="8")) == ()
