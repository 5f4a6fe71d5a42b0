"""``/memory``, ``/forget``, ``/forget me``: seeing and erasing what characters remember."""

from __future__ import annotations

import pytest

from bot.messages import ChatKey, Role
from bot.router import Router
from storage import Repository
from tests.messages import group_message

pytestmark = pytest.mark.both_databases


async def say(router: Router, text: str, **options: object) -> str:
    (answer,) = await router.handle(group_message(text, **options))  # type: ignore[arg-type]
    return answer.text


async def test_memory_counts_what_the_active_character_exchanged(router: Router) -> None:
    assert (await say(router, "/memory")).startswith("Orla Finch has no memories of this chat yet.")
    await router.handle(group_message("Orla, hello"))
    shown = await say(router, "/记忆")
    assert shown.startswith("Orla Finch remembers 2 messages exchanged in this chat since ")
    assert "kept as context: on (/room on|off)" in shown


async def test_forget_erases_the_active_character_s_memory_for_admins_only(
    router: Router, repository: Repository
) -> None:
    await router.handle(group_message("Orla, remember the red boat"))
    await router.handle(group_message("小满，记住蓝色的杯子"))
    assert await say(router, "/forget") == "/forget character is for group admins only."
    assert await say(router, "/forget", role=Role.ADMIN) == "Orla Finch forgot this chat: 2 messages erased."
    assert await repository.messages.recent(ChatKey("onebot", "100"), "orla", limit=10) == []
    assert len(await repository.messages.recent(ChatKey("onebot", "100"), "xiaoman", limit=10)) == 2


async def test_forget_me_erases_the_user_s_messages_everywhere(
    router: Router, repository: Repository
) -> None:
    await router.handle(group_message("Orla, my address is 3 Pier Lane", user="9"))
    await router.handle(group_message("Orla, hi from the other group", user="9", group="200"))
    await router.handle(group_message("Orla, I stay", user="10"))
    await router.handle(group_message("Orla, a chat user 9 never wrote in", user="10", group="300"))
    assert len(await repository.traces.recent(ChatKey("onebot", "100"))) == 2

    assert (
        await say(router, "/forget me", user="9")
        == "Erased 2 of your messages, in every chat on this platform."
    )
    for group, traces in (("100", 0), ("200", 0), ("300", 1)):
        kept = await repository.traces.recent(ChatKey("onebot", group))
        assert len(kept) == traces, "a reply's trace may quote what it recalled: gone where 9 wrote"
    for group in ("100", "200"):
        remembered = await repository.messages.recent(ChatKey("onebot", group), "orla", limit=20)
        assert all(message.user_id != "9" for message in remembered)
    assert any(
        message.text == "I stay"
        for message in await repository.messages.recent(ChatKey("onebot", "100"), "orla", limit=20)
    )
