"""``/character``: details for everyone, hiding per chat for group admins, and adding, reloading,
removing and exporting characters for the character managers (superusers by default)."""

from __future__ import annotations

import asyncio
import re
import zipfile

import pytest

from bot.config import BotConfig
from bot.messages import Attachment, ChatKey, Reply, Role
from bot.router import Router
from tests.importers.samples import WREN, card_png_bytes, v3
from tests.messages import attachment, group_message

SUPERUSER = "1"


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


def card_file(name: str = "wren.png") -> Attachment:
    """Wren's Character Card V3 as a PNG, the way a member uploads it."""
    return attachment(name, card_png_bytes(v3(WREN)))


def acknowledged(name: str) -> str:
    return f"Importing {name}… I'll post here when it is ready."


async def outcome(router: Router, announced: list[tuple[ChatKey, Reply]]) -> str:
    """What the chat is told once the imports under way are done (the indexing news left out)."""
    await router.catalog.background.wait()
    told = [reply.text for _key, reply in announced if not re.search(r": index(ed|ing) \d", reply.text)]
    assert told, "the import's outcome is always posted"
    return told[-1]


async def imports(
    router: Router, announced: list[tuple[ChatKey, Reply]], text: str, **options: object
) -> str:
    """Send an import command, which is acknowledged at once; what the chat hears when it is done."""
    assert (await say(router, text, **options)).startswith("Importing ")
    return await outcome(router, announced)


async def test_a_card_sent_with_the_command_is_imported_and_live_everywhere(
    router: Router, announced: list[tuple[ChatKey, Reply]]
) -> None:
    (acknowledgement,) = await router.handle(
        group_message("/character import wren", user=SUPERUSER, files=(card_file(),))
    )
    assert acknowledgement.text == acknowledged("wren.png")
    await router.catalog.background.wait()
    (imported,) = [reply for _key, reply in announced if reply.text.startswith("Imported")]
    assert imported.text.startswith(
        "Imported Wren Calloway as wren (card-png): 2 scenes, 3 lorebook entries. "
        "Live in every chat now: /switch wren"
    )
    assert "\n· " in imported.text, "the importer's notes follow"

    assert (await say(router, "/switch Wren", group="elsewhere")).startswith("[Wren Calloway] ")
    answer = (await router.handle(group_message("Wren, any fog tonight?", group="elsewhere")))[0]
    assert answer.character == "wren"
    await router.catalog.background.wait()
    assert (
        ChatKey("onebot", "100"),
        Reply("Wren Calloway: indexed 2/2 scenes, ready.", quote=False),
    ) in announced


async def test_a_file_is_found_in_the_message_replied_to_or_just_before(
    router: Router, announced: list[tuple[ChatKey, Reply]]
) -> None:
    async def quoted() -> tuple[Attachment, ...]:
        return (card_file(),)

    replying = group_message("/character import", user=SUPERUSER)
    replying.quoted = quoted
    (acknowledgement,) = await router.handle(replying)
    assert acknowledgement.text == acknowledged("wren.png")
    assert (await outcome(router, announced)).startswith("Imported Wren Calloway as wren-calloway (card-png)")

    assert await router.handle(group_message("", user=SUPERUSER, files=(card_file("again.png"),))) == []
    assert (await say(router, "/character import wren2", user="7", role=Role.OWNER)) == (
        "/character import is for bot superusers and catalog managers only."
    )
    assert (await imports(router, announced, "/character import wren2", user=SUPERUSER)).startswith(
        "Imported Wren Calloway as wren2"
    )
    assert (await say(router, "/character import wren3", user=SUPERUSER, group="other")).startswith(
        "Send the file"
    ), "a file posted in one chat is not taken for a command in another"


async def test_an_import_that_fails_says_what_is_wrong_with_the_file_sent(
    router: Router, config: BotConfig, announced: list[tuple[ChatKey, Reply]]
) -> None:
    broken = attachment("my card.json", b'{"spec": "chara_card_v3", "data": {"name": ')
    refused = await imports(router, announced, "/character import", user=SUPERUSER, files=(broken,))
    assert refused.startswith("Could not import my card.json:1: invalid JSON at line 1, column 44")
    assert "JSON" in refused
    assert str(config.data_dir) not in refused

    huge = attachment("huge.png", b"\x89PNG" + bytes(router.catalog.limits.max_file_bytes))
    too_big = await say(router, "/character import", user=SUPERUSER, files=(huge,))
    assert too_big == f"huge.png is {huge.size:,} bytes, over the import limit of 20,000,000 bytes.", (
        "a size the platform announced is refused at once"
    )

    duplicate = await imports(
        router, announced, "/character import orla", user=SUPERUSER, files=(card_file(),)
    )
    assert "already exists" in duplicate
    assert [pack.name for pack in router.packs if pack.id == "orla"] == ["Orla Finch"]


async def test_while_a_slow_import_downloads_the_group_keeps_talking(
    router: Router, announced: list[tuple[ChatKey, Reply]]
) -> None:
    arrived = asyncio.Event()

    async def slow_fetch(max_bytes: int) -> bytes:
        await arrived.wait()
        return card_png_bytes(v3(WREN))

    slow = Attachment("wren.png", slow_fetch)
    command = group_message("/character import wren", user=SUPERUSER, files=(slow,))
    (acknowledgement,) = await asyncio.wait_for(router.handle(command), 2)
    assert acknowledgement.text == acknowledged("wren.png")

    (answer,) = await asyncio.wait_for(router.handle(group_message("Orla, still there?")), 2)
    assert answer.character == "orla", "the same group is answered while the file is on its way"
    assert announced == []

    arrived.set()
    assert (await outcome(router, announced)).startswith("Imported Wren Calloway as wren (card-png)")
    assert [key for key, _reply in announced] == [ChatKey("onebot", "100")] * len(announced)


async def test_an_import_past_its_deadline_or_crashing_is_reported_to_the_chat_and_logged(
    router: Router, announced: list[tuple[ChatKey, Reply]], caplog: pytest.LogCaptureFixture
) -> None:
    characters = router.config.characters.model_copy(update={"download_timeout_s": 0.2})
    router.config = router.config.model_copy(update={"characters": characters})

    async def never(max_bytes: int) -> bytes:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    stuck = Attachment("stuck.png", never)
    told = await imports(router, announced, "/character import", user=SUPERUSER, files=(stuck,))
    assert told == "Gave up on stuck.png: it did not arrive within 0.2 s ([characters] download_timeout_s)."
    assert "import of stuck.png for onebot:100 failed: Gave up" in caplog.text

    async def broken(max_bytes: int) -> bytes:
        raise RuntimeError("disk on fire")

    crashing = Attachment("boom.png", broken)
    told = await imports(router, announced, "/character import", user=SUPERUSER, files=(crashing,))
    assert told == "Could not import boom.png: something went wrong in the bot (see its log)."
    assert "RuntimeError: disk on fire" in caplog.text, "with its traceback"


async def test_a_removed_active_character_is_replaced_and_the_chat_told_once(router: Router) -> None:
    await router.handle(group_message("/character import wren", user=SUPERUSER, files=(card_file(),)))
    await router.catalog.background.wait()
    await say(router, "/switch wren", group="harbour")
    await router.handle(group_message("Wren, is the ferry running?", group="harbour"))

    removed = await say(router, "/character remove wren", user=SUPERUSER)
    assert removed.startswith("Removed Wren Calloway (wren). Chats keep their memories of it")

    assert await router.handle(group_message("lunch anyone?", group="harbour")) == [], "talk to no one"
    notice, answer = await router.handle(group_message("hello?", group="harbour", to_me=True))
    assert notice.text == "The character 'wren' was removed from the bot; Orla Finch takes over here."
    assert answer.character == "orla"
    (again,) = await router.handle(group_message("still there?", group="harbour", to_me=True))
    assert again.character == "orla"
    assert (await router.repository.messages.recent(ChatKey("onebot", "harbour"), "wren", limit=10)) != [], (
        "the group's memory of Wren stays"
    )


async def test_reload_reads_a_hand_edited_pack_or_a_new_folder(router: Router, config: BotConfig) -> None:
    toml = config.characters_dir / "orla" / "character.toml"
    toml.write_text(toml.read_text("utf-8").replace("Orla Finch", "Orla Finch-Marsh"), "utf-8")
    assert (await say(router, "/character reload orla", user=SUPERUSER)).startswith(
        "Reloaded Orla Finch-Marsh (orla)"
    )
    assert "Orla Finch-Marsh" in await say(router, "/who")
    missing = await say(router, "/character reload nobody", user=SUPERUSER)
    assert missing.startswith("Could not reload nobody: ")
    assert "no pack folder 'nobody'" in missing


async def test_export_sends_the_pack_as_a_zip_or_a_card(router: Router) -> None:
    refused = "/character export is for bot superusers and catalog managers only."
    assert await say(router, "/character export orla") == refused
    assert await say(router, "/character export orla", role=Role.ADMIN) == refused, "it hands out the persona"
    (as_zip,) = await router.handle(group_message("/character export orla", user=SUPERUSER))
    (file,) = as_zip.files
    assert file.name == "orla.zip"
    with zipfile.ZipFile(file.path) as archive:
        assert "orla/character.toml" in archive.namelist() or "character.toml" in archive.namelist()

    (as_card,) = await router.handle(group_message("/character export 小满 card", user=SUPERUSER))
    assert as_card.text == "苏小满 as a Character Card V3 (PNG): xiaoman.card.png"
    assert as_card.files[0].path.read_bytes().startswith(b"\x89PNG")
