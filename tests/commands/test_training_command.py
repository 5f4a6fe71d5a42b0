"""``/training on|off`` (``/训练 开|关``): a chat's admins let its exchanges be exported as training
data; anyone may ask whether they did."""

from __future__ import annotations

import pytest

from bot.commands.training import OFF, ON
from bot.messages import ChatKey, Role
from bot.router import Router
from storage import Repository
from tests.messages import group_message, private_message

pytestmark = pytest.mark.both_databases

GROUP = ChatKey("onebot", "100")


async def say(router: Router, text: str, **options: object) -> str:
    (answer,) = await router.handle(group_message(text, **options))  # type: ignore[arg-type]
    return answer.text


async def test_only_a_chat_admin_turns_training_export_on_or_off(
    router: Router, repository: Repository
) -> None:
    assert await say(router, "/training on") == "/training on is for group admins only."
    assert not await repository.chats.training(GROUP)

    assert await say(router, "/training on", role=Role.ADMIN) == ON
    assert await repository.chats.training(GROUP)
    assert "since the last /reset" in ON
    assert "not only what comes from now on" in ON, "it covers what is already stored"
    assert await say(router, "/training off") == "/training off is for group admins only."
    assert await repository.chats.training(GROUP)

    assert await say(router, "/training off", role=Role.OWNER) == OFF
    assert not await repository.chats.training(GROUP)
    assert await repository.chats.training_chats() == []


async def test_bare_training_tells_anyone_the_state_and_what_it_means(router: Router) -> None:
    off = await say(router, "/training")
    assert off.startswith("Training export is off here: nothing said here goes into training data.")
    assert "If a chat admin sends /training on" in off
    await say(router, "/training on", role=Role.ADMIN)
    on = await say(router, "/training")
    assert on.startswith("Training export is on here: what members say to the characters here")
    assert on.endswith("/training off stops it.")
    assert await say(router, "/training show") == on
    assert (await say(router, "/training", group="200")).startswith("Training export is off here"), "per chat"


async def test_the_chinese_aliases(router: Router, repository: Repository) -> None:
    assert await say(router, "/训练 开", role=Role.ADMIN) == ON
    assert await repository.chats.training(GROUP)
    assert (await say(router, "/训练")).startswith("Training export is on here")
    assert await say(router, "/训练 关", role=Role.ADMIN) == OFF
    assert not await repository.chats.training(GROUP)


async def test_in_a_private_chat_its_user_decides(router: Router, repository: Repository) -> None:
    (answer,) = await router.handle(private_message("/training on"))
    assert answer.text == ON
    assert await repository.chats.training(ChatKey("onebot", "private:42"))


async def test_what_an_export_of_the_chat_would_read(router: Router, repository: Repository) -> None:
    await say(router, "/training on", role=Role.ADMIN)
    await router.handle(group_message("Orla, is the lamp lit?"))
    exchanged = await repository.messages.exchanges(GROUP, "orla")
    assert [(message.role, message.speaker) for message in exchanged] == [
        ("user", "Pip"),
        ("character", "Orla Finch"),
    ]
    assert exchanged[0].text == "is the lamp lit?", "stored without the name that called her"
    assert not any(message.text.startswith("/training") for message in exchanged), (
        "commands are not exchanges"
    )


async def test_help_lists_training(router: Router) -> None:
    assert "/training show · on · off:" in await say(router, "/help")
    family = await say(router, "/help training")
    assert "/training on: allow the export of this chat's exchanges as training data [group admins]" in family
    assert "/training show: say whether this chat's exchanges may become training data\n" in family
