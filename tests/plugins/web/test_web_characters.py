"""The Characters pages: every character with its counts, importing by upload (within the import
limit), editing a pack only once the pack loader accepts the edit, screenshots, exports, hiding a
character in one chat, and trying it in the playground."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image

from bot.catalog import IndexProgress
from bot.config import BotConfig
from bot.engine.packs import CharacterPack
from bot.importers import ImportLimits
from bot.messages import ChatKey
from bot.runtime import Runtime
from plugins.web import PREFIX
from tests.importers.samples import WREN, card_png_bytes, png_bytes, v3
from tests.packs import write_pack
from tests.plugins.web.test_web_access import csrf_of, opened, runtime

__all__ = ["runtime"]  # the fixture, shared with the access tests

PAGE = f"{PREFIX}/characters"


@pytest.fixture
def config(config: BotConfig) -> BotConfig:
    """The two test packs, and a third whose scene does not load."""
    write_pack(
        config.characters_dir, "broken", name="Broken Bell", scenes={"001": ["a line with no speaker"]}
    )
    return config


@pytest.fixture
async def client(
    config: BotConfig, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    async with opened(config, runtime, monkeypatch, logged_in=True) as (_console, client):
        yield client


async def csrf(client: httpx.AsyncClient, path: str = PAGE) -> str:
    return csrf_of((await client.get(path)).text)


async def post(client: httpx.AsyncClient, path: str, **form: str) -> httpx.Response:
    return await client.post(path, data={"csrf": await csrf(client), **form})


async def followed(client: httpx.AsyncClient, response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    return (await client.get(response.headers["location"])).text


def served(runtime: Runtime, pack_id: str) -> CharacterPack:
    pack = runtime.packs.get(pack_id)
    assert pack is not None, f"{pack_id} is served"
    return pack


def text_of(html: str) -> str:
    """The page's text with its tags and spacing flattened, for reading counts."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


async def test_the_list_shows_every_character_with_its_counts_and_the_broken_pack(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await runtime.background.wait()
    page = await client.get(PAGE)
    assert page.status_code == 200
    shown = text_of(page.text)
    assert "Orla Finch orla · en · called Orla, Keeper" in shown
    assert "3 scenes 2 screenshots 0 voice lines 0 lorebook entries" in shown
    assert "苏小满 xiaoman · zh" in shown
    assert "2 scenes 0 screenshots" in shown
    assert shown.count("Scene index: ready") == 2, "both packs are indexed once the start-up work is done"
    assert "broken/scenes/001.txt:1: expected" in shown, "the pack that failed to load, at its file and line"
    for link in ("/characters/orla", "/characters/orla/export.zip", "/characters/orla/export.png"):
        assert f'href="{PREFIX}{link}"' in page.text
    assert f'action="{PREFIX}/characters/xiaoman/try"' in page.text
    assert (await client.get(f"{PAGE}/nobody")).status_code == 404

    runtime.catalog.indexing["orla"] = IndexProgress(done=1, total=3)
    listed = await client.get(PAGE)
    assert f'<iframe class="progress" src="{PREFIX}/characters/orla/index"' in listed.text
    state = await client.get(f"{PAGE}/orla/index")
    assert '<meta http-equiv="refresh" content="3">' in state.text, "it reloads itself while indexing"
    assert "indexing 1/3 scenes" in state.text
    del runtime.catalog.indexing["orla"]
    assert "http-equiv" not in (await client.get(f"{PAGE}/orla/index")).text


async def test_an_uploaded_card_becomes_a_character(client: httpx.AsyncClient, runtime: Runtime) -> None:
    done = await client.post(
        f"{PAGE}/import",
        data={"csrf": await csrf(client), "id": ""},
        files={"file": ("wren.png", card_png_bytes(v3(WREN)), "image/png")},
    )
    wren = next(pack for pack in runtime.packs if pack.name == "Wren Calloway")
    assert done.headers["location"].startswith(f"{PAGE}/{wren.id}?notice=")
    page = await followed(client, done)
    assert f"Imported Wren Calloway as {wren.id} (card-png)" in page
    assert "lorebook entries" in page
    await runtime.background.wait()
    assert "ready" in (await client.get(f"{PAGE}/{wren.id}/index")).text
    assert "Wren Calloway" in (await client.get(PAGE)).text

    again = await client.post(
        f"{PAGE}/import",
        data={"csrf": await csrf(client), "id": wren.id},
        files={"file": ("wren.png", card_png_bytes(v3(WREN)), "image/png")},
    )
    assert again.status_code == 400, "an id in use is replaced only when asked"
    assert "Could not import wren.png" in again.text
    replaced = await client.post(
        f"{PAGE}/import",
        data={"csrf": await csrf(client), "id": wren.id, "replace": "on"},
        files={"file": ("wren.png", card_png_bytes(v3(WREN)), "image/png")},
    )
    assert replaced.status_code == 303


async def test_an_upload_over_the_limit_is_refused_while_it_is_read(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    runtime.catalog.limits = ImportLimits(max_file_bytes=1000)
    card = card_png_bytes(v3(WREN))
    assert len(card) > 1000
    for data in (card, card * 200):  # read in chunks up to the limit; refused at once by its length
        refused = await client.post(
            f"{PAGE}/import",
            data={"csrf": await csrf(client)},
            files={"file": ("wren.png", data, "image/png")},
        )
        assert refused.status_code == 413
        assert "over the import limit of 1,000 bytes ([characters] max_import_mb)" in refused.text
    assert not any(pack.name == "Wren Calloway" for pack in runtime.packs)


async def test_editing_the_persona_writes_the_file_and_reloads_the_pack(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    orla = served(runtime, "orla")
    before = (orla.root / "character.toml").read_text("utf-8")
    page = await client.get(f"{PAGE}/orla")
    assert "You are Orla Finch, a lighthouse keeper." in page.text
    saved = await post(
        client,
        f"{PAGE}/orla/settings",
        persona="You are Orla Finch. Since the storm you pilot the mail boat.\nSpeak briefly.",
        aliases="Orla\r\nKeeper\r\nSkipper",
        description="Orla Finch, for tests",
        greeting="Hello from Orla Finch.",
        deflection="Let us talk about the tide.\nThe lamp needs me.",
    )
    assert "Saved Orla Finch&#39;s character.toml" in await followed(client, saved)
    written = (orla.root / "character.toml").read_text("utf-8")
    assert "since the storm you pilot the mail boat" in written.casefold()
    assert written.startswith('name = "Orla Finch"\n'), "the rest stays as it was"
    assert 'language = "en"' in written
    reloaded = served(runtime, "orla")
    assert reloaded is not orla
    assert reloaded.settings.persona.startswith("You are Orla Finch. Since the storm")
    assert reloaded.aliases == ["Orla", "Keeper", "Skipper"]
    assert reloaded.settings.deflection == ["Let us talk about the tide.", "The lamp needs me."]
    assert written != before


async def test_a_broken_scene_line_is_shown_at_its_line_and_nothing_is_written(
    client: httpx.AsyncClient, runtime: Runtime, config: BotConfig
) -> None:
    scene = config.characters_dir / "orla" / "scenes" / "002.txt"
    before = scene.read_bytes()
    refused = await post(
        client, f"{PAGE}/orla/scenes", scene="002", text="Tam: Your cat ate my fish again.\nno speaker here"
    )
    assert refused.status_code == 400
    assert "scenes/002.txt:2: expected" in refused.text
    assert "no speaker here</textarea>" in refused.text, "what was typed is shown again"
    assert scene.read_bytes() == before
    assert not list(config.characters_dir.glob(".edit-*")), "the checked copy is gone"

    added = await post(client, f"{PAGE}/orla/scenes", scene="", text="Pip: Lamp's lit?\r\nOrla: Since dusk.")
    assert "Added a scene." in await followed(client, added)
    assert (scene.parent / "004.txt").read_text("utf-8") == "Pip: Lamp's lit?\nOrla: Since dusk.\n"
    assert [s.id for s in served(runtime, "orla").scenes] == ["001", "002", "003", "004"]
    deleted = await post(client, f"{PAGE}/orla/scenes", scene="004", text="", action="delete")
    assert "Deleted scene 004." in await followed(client, deleted)
    assert not (scene.parent / "004.txt").exists()


async def test_a_screenshot_is_added_captioned_and_removed(
    client: httpx.AsyncClient, runtime: Runtime, config: BotConfig
) -> None:
    root = config.characters_dir / "orla"
    added = await client.post(
        f"{PAGE}/orla/screenshots",
        data={"csrf": await csrf(client), "caption": "Mind the rail, Pip."},
        files={"image": ("../../evil.jpg", png_bytes(), "image/jpeg")},
    )
    page = await followed(client, added)
    assert "Added the screenshot." in page
    assert (root / "images" / "0003.png").is_file(), "named by the console, suffix from the picture"
    listed = [json.loads(line) for line in (root / "images.jsonl").read_text("utf-8").splitlines()]
    assert listed[-1] == {"image": "images/0003.png", "text": "Mind the rail, Pip."}
    assert len(served(runtime, "orla").screenshots) == 3
    (image,) = re.findall(r'<img src="([^"]+0003\.png)"', page)
    assert (await client.get(image.replace("&amp;", "&"))).status_code == 200

    captioned = await post(
        client,
        f"{PAGE}/orla/screenshots/edit",
        line="3",
        image="images/0003.png",
        caption="Mind the wet rail.",
    )
    assert "Saved the caption" in await followed(client, captioned)
    assert served(runtime, "orla").screenshots[-1].text == "Mind the wet rail."

    not_a_picture = await client.post(
        f"{PAGE}/orla/screenshots",
        data={"csrf": await csrf(client), "caption": "x"},
        files={"image": ("frame.png", b"not a picture", "image/png")},
    )
    assert not_a_picture.status_code == 400
    assert "not an image that can be read" in not_a_picture.text

    removed = await post(
        client, f"{PAGE}/orla/screenshots/edit", line="3", image="images/0003.png", action="remove"
    )
    assert "Removed the screenshot images/0003.png." in await followed(client, removed)
    assert not (root / "images" / "0003.png").exists()
    assert len(served(runtime, "orla").screenshots) == 2
    stale = await post(
        client, f"{PAGE}/orla/screenshots/edit", line="3", image="images/0003.png", caption="x"
    )
    assert stale.status_code == 400
    assert "images.jsonl:3: the screenshots changed meanwhile" in stale.text


async def test_exports_are_a_pack_zip_and_a_card(client: httpx.AsyncClient) -> None:
    as_zip = await client.get(f"{PAGE}/orla/export.zip")
    assert as_zip.status_code == 200
    assert as_zip.headers["content-disposition"].startswith('attachment; filename="orla.zip"')
    with zipfile.ZipFile(io.BytesIO(as_zip.content)) as archive:
        names = archive.namelist()
    assert "orla/character.toml" in names or "character.toml" in names

    as_card = await client.get(f"{PAGE}/xiaoman/export.png")
    assert as_card.status_code == 200
    assert as_card.headers["content-type"] == "image/png"
    assert "xiaoman.card.png" in as_card.headers["content-disposition"]
    with Image.open(io.BytesIO(as_card.content)) as image:
        card = json.loads(base64.b64decode(image.info["ccv3"]))
    assert card["data"]["name"] == "苏小满"


async def test_a_character_is_disabled_and_enabled_in_one_chat(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    key = ChatKey("onebot", "123456")
    chats = runtime.router.repository.chats
    off = await post(client, f"{PAGE}/orla/chats", platform="onebot", chat="123456", action="disable")
    page = await followed(client, off)
    assert "Orla Finch is disabled in onebot:123456. It was the active character there" in page
    assert (await chats.state(key)).disabled == {"orla"}

    last = await post(client, f"{PAGE}/xiaoman/chats", platform="onebot", chat="123456", action="disable")
    assert last.status_code == 400
    assert "That would leave onebot:123456 without any character." in last.text

    on = await post(client, f"{PAGE}/orla/chats", platform="onebot", chat="123456", action="enable")
    assert "Orla Finch is enabled in onebot:123456." in await followed(client, on)
    assert (await chats.state(key)).disabled == frozenset()


async def test_try_it_switches_a_playground_chat_to_the_character(client: httpx.AsyncClient) -> None:
    tried = await post(client, f"{PAGE}/xiaoman/try")
    assert tried.headers["location"] == f"{PREFIX}/play?chat=try-xiaoman"
    page = await followed(client, tried)
    assert "Active character here: <strong>苏小满</strong>" in page
    assert "苏小满" in page.split('class="card chat"', 1)[1], "the greeting is in the chat"


async def test_every_form_wants_its_csrf_token(client: httpx.AsyncClient, config: BotConfig) -> None:
    before = {
        path: path.read_bytes() for path in (config.characters_dir / "orla").rglob("*") if path.is_file()
    }
    for action in ("settings", "scenes", "screenshots", "screenshots/edit", "chats", "try"):
        forged = await client.post(
            f"{PAGE}/orla/{action}", data={"persona": "x", "scene": "", "text": "A: b"}
        )
        assert forged.status_code == 403, action
    forged = await client.post(
        f"{PAGE}/import", data={"csrf": "guessed"}, files={"file": ("wren.png", b"x", "image/png")}
    )
    assert forged.status_code == 403
    after = {
        path: path.read_bytes() for path in (config.characters_dir / "orla").rglob("*") if path.is_file()
    }
    assert after == before


async def test_a_form_is_checked_as_it_is_typed_and_nothing_is_written(
    client: httpx.AsyncClient, config: BotConfig
) -> None:
    scene = config.characters_dir / "orla" / "scenes" / "002.txt"
    before = scene.read_bytes()
    broken = await post(
        client, f"{PAGE}/orla/check", what="scene", scene="002", text="Tam: Fish!\nno speaker"
    )
    assert broken.json()["problem"].startswith("scenes/002.txt:2: expected")
    fine = await post(client, f"{PAGE}/orla/check", what="scene", scene="002", text="Tam: Fish!\nOrla: Mine.")
    assert fine.json() == {"problem": None}
    unnamed = await post(client, f"{PAGE}/orla/check", what="settings", persona="", aliases="Orla")
    assert "persona" in unnamed.json()["problem"]
    assert scene.read_bytes() == before
    assert not list(config.characters_dir.glob(".edit-*")), "the checked copies are gone"
