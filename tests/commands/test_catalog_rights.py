"""Rights are checked where the thing they change lives.

A private chat's user is the admin of that chat (its character, screenshots, memory), but the catalog
of characters is every chat's: creating, importing, reloading, removing and exporting characters needs
a right over the catalog (superusers, ``[admins] catalog_managers``, or, with ``character_managers =
"group_admins"``, the admins of a group), never the private chat's.
"""

from __future__ import annotations

import pytest

from bot.config import BotConfig
from bot.messages import Attachment, Incoming, Role
from bot.router import Router
from tests.importers.samples import WREN, card_png_bytes, v3
from tests.messages import attachment, group_message, private_message

SUPERUSER = "1"  # onebot:1 in the test config
MANAGER = "77"
DEFAULT_REFUSAL = "is for bot superusers and catalog managers only."
GROUP_ADMINS_REFUSAL = "is for admins of a group, catalog managers and bot superusers only."
NOT_FROM_PRIVATE = " Your own private chat gives no right over the characters every chat shares."


def card() -> Attachment:
    return attachment("wren.png", card_png_bytes(v3(WREN)))


def private(text: str, *, user: str = "42", files: tuple[Attachment, ...] = ()) -> Incoming:
    message = private_message(text, user=user)
    message.attachments = files
    return message


async def answer(router: Router, message: Incoming) -> str:
    replies = await router.handle(message)
    assert len(replies) == 1, replies
    return replies[0].text


async def imports_wren(router: Router, message: Incoming) -> None:
    """``message`` imports Wren's card: acknowledged at once, installed in the background."""
    assert await answer(router, message) == "Importing wren.png… I'll post here when it is ready."
    await router.catalog.background.wait()
    assert "wren" in router.packs


def let_group_admins_manage(router: Router) -> None:
    admins = router.config.admins.model_copy(update={"character_managers": "group_admins"})
    router.config = router.config.model_copy(update={"admins": admins})


CATALOG_COMMANDS = [
    "/character import wren",
    "/character remove xiaoman",
    "/character reload orla",
    "/character create juniper Juniper",
    "/character export orla",
]


@pytest.mark.parametrize("mode", ["superusers", "group_admins"])
@pytest.mark.parametrize("command", CATALOG_COMMANDS)
async def test_in_a_private_chat_a_member_manages_no_character(
    router: Router, config: BotConfig, mode: str, command: str
) -> None:
    if mode == "group_admins":
        let_group_admins_manage(router)
    refused = await answer(router, private(command, files=(card(),)))

    label = " ".join(command.split()[:2])
    who = GROUP_ADMINS_REFUSAL if mode == "group_admins" else DEFAULT_REFUSAL
    assert refused == f"{label} {who}{NOT_FROM_PRIVATE}"
    await router.catalog.background.wait()
    assert {pack.id for pack in router.packs} == {"orla", "xiaoman"}
    assert sorted(path.name for path in config.characters_dir.iterdir()) == ["orla", "xiaoman"]
    (talk,) = await router.handle(private("You are Juniper, a baker."))
    assert talk.character == "orla", "no question was left waiting"
    assert not (config.data_dir / "characters" / "exports").exists()


async def test_by_default_group_admins_and_owners_manage_no_character(router: Router) -> None:
    for role in (Role.ADMIN, Role.OWNER):
        refused = await answer(router, group_message("/character remove xiaoman", role=role))
        assert refused == f"/character remove {DEFAULT_REFUSAL}"
    assert "xiaoman" in router.packs


async def test_with_group_admins_an_admin_of_a_group_manages_the_catalog_from_it(
    router: Router, config: BotConfig
) -> None:
    let_group_admins_manage(router)
    member = await answer(router, group_message("/character remove xiaoman"))
    assert member == f"/character remove {GROUP_ADMINS_REFUSAL}"

    await imports_wren(router, group_message("/character import wren", role=Role.ADMIN, files=(card(),)))
    reloaded = await answer(router, group_message("/character reload wren", role=Role.OWNER))
    assert reloaded.startswith("Reloaded Wren Calloway (wren)")
    (exported,) = await router.handle(group_message("/character export wren", role=Role.ADMIN))
    assert [file.name for file in exported.files] == ["wren.zip"]
    created = await answer(
        router,
        group_message(
            "/character create juniper Juniper\npersona: Skerrow's baker, up at three.\n"
            "greeting: Bread's on.",
            role=Role.ADMIN,
        ),
    )
    assert created.startswith("Created Juniper (juniper)")
    removed = await answer(router, group_message("/character remove wren", role=Role.ADMIN))
    assert removed.startswith("Removed Wren Calloway (wren).")
    assert {pack.id for pack in router.packs} == {"orla", "xiaoman", "juniper"}


async def test_with_group_admins_a_bot_admin_granted_in_a_group_counts_there_only(router: Router) -> None:
    let_group_admins_manage(router)
    grant = group_message("/admin add", user=SUPERUSER)
    grant.mentions = ("42",)
    assert (await answer(router, grant)) == "42 is now a bot admin here."

    refused = await answer(router, private("/character remove xiaoman"))
    assert refused == f"/character remove {GROUP_ADMINS_REFUSAL}{NOT_FROM_PRIVATE}"
    removed = await answer(router, group_message("/character remove xiaoman"))
    assert removed.startswith("Removed 苏小满 (xiaoman).")


async def test_catalog_managers_manage_it_from_a_private_chat_and_rule_no_chat(
    router: Router, config: BotConfig
) -> None:
    config.admins.catalog_managers.append(f"onebot:{MANAGER}")

    await imports_wren(router, private("/character import wren", user=MANAGER, files=(card(),)))
    (exported,) = await router.handle(private("/character export wren card", user=MANAGER))
    assert exported.text == "Wren Calloway as a Character Card V3 (PNG): wren.card.png"
    reloaded = await answer(router, private("/character reload orla", user=MANAGER))
    assert reloaded.startswith("Reloaded Orla Finch (orla)")
    removed = await answer(router, group_message("/character remove wren", user=MANAGER))
    assert removed.startswith("Removed Wren Calloway (wren).")

    images = await answer(router, group_message("/images off", user=MANAGER))
    assert images == "/images is for group admins only.", "no right over any chat"
    usage = await answer(router, private("/usage all", user=MANAGER))
    assert usage == "/usage all is for bot superusers only."


async def test_a_superuser_manages_the_catalog_from_a_private_chat(router: Router) -> None:
    await imports_wren(router, private("/character import wren", user=SUPERUSER, files=(card(),)))
    (exported,) = await router.handle(private("/character export orla", user=SUPERUSER))
    assert [file.name for file in exported.files] == ["orla.zip"]
    removed = await answer(router, private("/character remove wren", user=SUPERUSER))
    assert removed.startswith("Removed Wren Calloway (wren).")


async def test_a_private_chat_is_still_its_users_to_run(router: Router) -> None:
    assert (await answer(router, private("/switch xiaoman"))).startswith("[苏小满]")
    assert await answer(router, private("/images off")) == "Screenshots off for this chat."
    assert (await answer(router, private("/reset"))).startswith("Memory of this chat cleared")
    assert (await answer(router, private("/debounce 3s"))).startswith("A burst of messages now gets")
    assert await answer(router, group_message("/images off")) == "/images is for group admins only.", (
        "and only that chat"
    )


async def test_usage_of_every_chat_is_for_superusers_even_in_a_private_chat(router: Router) -> None:
    assert (await answer(router, private("/usage"))).startswith("Usage here today")
    assert await answer(router, private("/usage all")) == "/usage all is for bot superusers only."
    assert await answer(router, group_message("/usage all", role=Role.OWNER)) == (
        "/usage all is for bot superusers only."
    )
    assert (await answer(router, private("/usage all", user=SUPERUSER))).startswith(
        ("All chats:", "No tokens spent")
    )


async def test_create_answers_are_checked_again_and_stop_when_the_right_is_gone(
    router: Router, config: BotConfig
) -> None:
    let_group_admins_manage(router)
    grant = group_message("/admin add 42", user=SUPERUSER)
    assert (await answer(router, grant)) == "42 is now a bot admin here."
    assert (await answer(router, group_message("/character create juniper Juniper"))).startswith("Creating")
    revoked = await answer(router, group_message("/admin remove 42", user=SUPERUSER))
    assert revoked == "42 is no longer a bot admin here."

    refused = await answer(router, group_message("You are Juniper, Skerrow's baker, up at three."))
    assert refused == f"/character create {GROUP_ADMINS_REFUSAL}"
    assert await router.handle(group_message("Bread waits for no one.")) == [], "the questions are over"
    assert "juniper" not in router.packs
    assert not (config.characters_dir / "juniper").exists()


async def test_create_answers_come_only_from_the_same_user_in_the_same_chat(
    router: Router, config: BotConfig
) -> None:
    config.admins.catalog_managers.append(f"onebot:{MANAGER}")
    asked = await answer(router, private("/character create juniper Juniper", user=MANAGER))
    assert asked.startswith("Creating Juniper (juniper).")

    persona = "You are Juniper, Skerrow's baker, up at three."
    assert await router.handle(group_message(persona, user=MANAGER)) == [], "a group is another chat"
    (other,) = await router.handle(private(persona))
    assert other.character == "orla", "another user's private chat talks to its character"
    assert "juniper" not in router.packs
    assert (await answer(router, private(persona, user=MANAGER))).startswith("2/4")


async def test_help_says_who_may_manage_the_characters(router: Router) -> None:
    default = await answer(router, private("/help character"))
    assert "  /character remove <id>: delete a character [bot superusers and catalog managers]" in default
    assert "  /character disable <id>: hide a character in this chat [group admins]" in default
    let_group_admins_manage(router)
    text = await answer(router, private("/help character"))
    who = "[admins of a group, catalog managers and bot superusers]"
    assert f"  /character export <id> [zip|card]: send a character as a file {who}" in text
