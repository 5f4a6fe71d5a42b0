"""``/character create``: a new character from a few answers, or from one message."""

from __future__ import annotations

from bot.config import BotConfig
from bot.messages import ChatKey, Reply, Role
from bot.router import Router
from tests.messages import group_message

SUPERUSER = "1"


async def say(router: Router, text: str, **options: object) -> str:
    replies = await router.handle(group_message(text, **options))  # type: ignore[arg-type]
    assert len(replies) == 1, replies
    return replies[0].text


async def test_a_guided_create_asks_four_questions_and_the_character_is_live(
    router: Router, config: BotConfig, announced: list[tuple[ChatKey, Reply]]
) -> None:
    asked = await say(router, "/character create juniper Juniper Ash", user=SUPERUSER)
    assert asked.startswith("Creating Juniper Ash (juniper). 1/4 — Who is Juniper Ash?")

    assert (await say(router, "too short", user=SUPERUSER)).startswith("A few more words")
    assert await router.handle(group_message("Orla, is this the bakery?", user="42")) != [], (
        "others keep talking to the characters meanwhile"
    )
    persona = "You are Juniper Ash, Skerrow's baker: up at three, short with words, generous with bread."
    assert (await say(router, persona, user=SUPERUSER)).startswith("2/4")
    assert (await say(router, "Juniper, 阿杜", user=SUPERUSER)).startswith("3/4")
    assert (await say(router, "The rye is still warm.", user=SUPERUSER)).startswith("4/4")
    done = await say(
        router,
        "Pip: Is the bakery open?\nThe ovens never close.\n\nTam: Any scones?\nJuniper: Gone by six.",
        user=SUPERUSER,
    )

    assert done.startswith("Created Juniper Ash (juniper, called Juniper, 阿杜): 2 scene(s).")
    assert done.endswith("Live in every chat now: /switch juniper")
    scenes = sorted((config.characters_dir / "juniper" / "scenes").glob("*.txt"))
    assert [path.read_text("utf-8") for path in scenes] == [
        "Pip:「Is the bakery open?」\nJuniper Ash:「The ovens never close.」\n",
        "Tam:「Any scones?」\nJuniper:「Gone by six.」\n",
    ]
    assert await say(router, "/switch juniper", group="other") == "[Juniper Ash] The rye is still warm."
    reply = (await router.handle(group_message("阿杜，早", group="other")))[0]
    assert reply.character == "juniper"
    await router.catalog.background.wait()
    assert announced[-1][1].text == "Juniper Ash: indexed 2/2 scenes, ready."


async def test_a_one_message_create(router: Router, config: BotConfig) -> None:
    message = (
        "/character create mara 玛拉\n"
        "人设：你是玛拉，码头的修船匠，说话直，爱讲潮汐。\n"
        "别名：阿玛、修船匠\n"
        "开场白：船底又漏了？\n"
        "示例：\n"
        "小林：这条船还能修吗？\n"
        "玛拉：能，换两块板子就行。"
    )
    done = await say(router, message, user=SUPERUSER)
    assert done.startswith("Created 玛拉 (mara, called 阿玛, 修船匠): 1 scene(s).")
    toml = (config.characters_dir / "mara" / "character.toml").read_text("utf-8")
    assert 'language = "zh"' in toml
    assert "你是玛拉，码头的修船匠" in toml
    assert router.packs.get("mara") is not None


async def test_create_is_for_character_managers_only(router: Router) -> None:
    refused = await say(router, "/character create juniper Juniper", role=Role.ADMIN)
    assert refused == "/character create is for bot superusers and catalog managers only."
    assert await router.handle(group_message("You are Juniper...", role=Role.ADMIN)) == []


async def test_group_admins_create_when_the_config_says_so(router: Router) -> None:
    admins = router.config.admins.model_copy(update={"character_managers": "group_admins"})
    router.config = router.config.model_copy(update={"admins": admins})
    asked = await say(router, "/character create juniper Juniper", role=Role.ADMIN)
    assert asked.startswith("Creating Juniper (juniper).")


async def test_bad_ids_and_taken_ids_are_refused_before_any_question(router: Router) -> None:
    assert (await say(router, "/character create Juniper!", user=SUPERUSER)).startswith(
        "Usage: /character create"
    )
    assert "cannot be an id" in await say(router, "/character create Jun/iper Juniper", user=SUPERUSER)
    assert await say(router, "/character create orla Orla Two", user=SUPERUSER) == (
        "The id 'orla' is taken; pick another one."
    )


async def test_cancel_stops_the_questions(router: Router, config: BotConfig) -> None:
    await say(router, "/character create juniper Juniper", user=SUPERUSER)
    assert await say(router, "/cancel", user=SUPERUSER) == "Cancelled."
    assert await router.handle(group_message("You are Juniper, a baker.", user=SUPERUSER)) == []
    assert await say(router, "/cancel", user=SUPERUSER) == "Nothing to cancel."
    assert "juniper" not in {path.name for path in config.characters_dir.iterdir()}


async def test_without_examples_or_a_greeting_the_last_question_is_asked_again(router: Router) -> None:
    await say(router, "/character create juniper Juniper", user=SUPERUSER)
    await say(router, "You are Juniper, Skerrow's baker.", user=SUPERUSER)
    await say(router, "-", user=SUPERUSER)
    await say(router, "-", user=SUPERUSER)
    again = await say(router, "-", user=SUPERUSER)
    assert again == "Juniper has no greeting, so give at least one example line."
    done = await say(router, "Bread waits for no one.", user=SUPERUSER)
    assert done.startswith("Created Juniper (juniper): 1 scene(s).")
