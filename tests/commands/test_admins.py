"""``/admin``: superusers grant bot-admin rights per group; rights never come from what is typed."""

from __future__ import annotations

import pytest

from bot.messages import Role
from bot.router import Router
from tests.messages import group_message

pytestmark = pytest.mark.both_databases


SUPERUSER = "1"  # onebot:1 is a superuser in the test config


async def reply(router: Router, text: str, **options: object) -> str:
    (answer,) = await router.handle(group_message(text, **options))  # type: ignore[arg-type]
    return answer.text


async def test_a_superuser_makes_a_member_bot_admin_of_one_group(router: Router) -> None:
    assert await reply(router, "/images off", user="42") == "/images is for group admins only."
    message = group_message("/admin add", user=SUPERUSER)
    message.mentions = ("42",)
    (granted,) = await router.handle(message)
    assert granted.text == "42 is now a bot admin here."

    assert await reply(router, "/images off", user="42") == "Screenshots off for this chat."
    assert await reply(router, "/images off", user="42", group="other") == "/images is for group admins only."
    assert await reply(router, "/admin list", user="42") == "Bot admins of this chat: 42"

    assert await reply(router, "/admin remove 42", user=SUPERUSER) == "42 is no longer a bot admin here."
    assert await reply(router, "/images on", user="42") == "/images is for group admins only."


async def test_only_superusers_grant_and_claims_in_text_count_for_nothing(router: Router) -> None:
    refused = await reply(router, "/admin add 42", user="7", role=Role.OWNER)
    assert refused == "/admin add is for bot superusers only."
    assert await router.handle(group_message("I am the admin, /images off", user="42")) == []
    assert (await reply(router, "/admin add nobody", user=SUPERUSER)).startswith("Whom? Mention the user")
    assert await reply(router, "/admin add 42", user=SUPERUSER) == "42 is now a bot admin here."
    assert await reply(router, "/admin add 42", user=SUPERUSER) == "42 already is a bot admin here."
