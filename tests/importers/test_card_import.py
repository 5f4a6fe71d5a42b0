"""SillyTavern character cards (PNG, JSON, CHARX; V1, V2, V3) become packs the bot loads."""

from __future__ import annotations

import json
import re
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from bot.engine.packs import load_pack
from bot.importers import import_pack
from tests.importers.samples import (
    LINXIAOZAO,
    WREN,
    WREN_V1,
    encode_card,
    picture,
    v2,
    v3,
    write_card_png,
    write_charx,
    write_json,
)


def test_a_v3_card_png_becomes_a_pack_with_persona_scenes_lorebook_and_avatar(
    characters: Path, inputs: Path
) -> None:
    card = write_card_png(inputs / "wren.png", {"ccv3": v3(WREN)})

    result = import_pack(card, characters)

    assert result.format == "card-png"
    pack = load_pack(characters / "wren-calloway")
    assert pack.name == "Wren Calloway"
    assert pack.aliases == ["Wren"]
    persona = pack.settings.persona
    assert "Wren Calloway pilots the night ferry Marigold across Saltmere Sound." in persona
    assert "Personality: dry, patient" in persona
    assert "Scenario: the user boards the last crossing" in persona
    assert "Instructions: Stay in character as Wren Calloway." in persona
    assert "{{" not in persona
    assert pack.settings.greeting == "*Wren taps the fare tin.* Last crossing, the user. Mind the wet rail."
    assert [scene.text for scene in pack.scenes] == [
        "User:「Is the fog going to hold us up?」\n"
        "Wren Calloway:「Fog never stopped the Marigold. It only makes her sulk.」",
        "User:「Why do you never whistle on deck?」\n"
        "Wren Calloway:「Whistling calls the wind, and the wind never pays its fare.」",
    ]
    assert "4 lorebook entries" in result.notes
    assert "1 lorebook entry without content dropped (entries 3)" in result.notes


def test_the_lorebook_keeps_every_field_the_engine_uses(characters: Path, inputs: Path) -> None:
    pack = import_pack(write_card_png(inputs / "wren.png", {"ccv3": v3(WREN)}), characters).pack

    book = json.loads((pack.root / "lorebook.json").read_text("utf-8"))["entries"]
    assert [entry["content"] for entry in book] == [
        "Ballast is Wren Calloway's one-eyed parrot; he rides on the compass box.",
        "The Gullrock light has been dark since the spring storm.",
        "Saltmere Sound freezes at its edges in deep winter.",
        "A crossing costs two copper tokens.",
    ]
    assert book[0]["name"] == "parrot"
    assert book[1] == {
        "keys": ["Gullrock", "lighthouse"],
        "content": "The Gullrock light has been dark since the spring storm.",
        "name": "lighthouse",
        "enabled": True,
        "constant": False,
        "case_sensitive": True,
        "insertion_order": 20,
    }
    assert book[2]["constant"] is True
    assert book[3]["enabled"] is False
    assert [entry.insertion_order for entry in pack.lore] == [10, 20, 0], (
        "the loaded pack skips disabled entries"
    )


def test_the_card_picture_becomes_a_plain_png_avatar_and_the_card_data_is_kept(
    characters: Path, inputs: Path
) -> None:
    pack = import_pack(write_card_png(inputs / "wren.png", {"ccv3": v3(WREN)}), characters).pack

    assert pack.settings.avatar == "images/avatar.png"
    assert pack.avatar_path is not None
    with Image.open(pack.avatar_path) as avatar:
        assert avatar.size == (48, 72)
        assert "ccv3" not in avatar.info, "the avatar is re-encoded without the card's chunks"
    assert json.loads((pack.root / "card.json").read_text("utf-8")) == WREN


def test_a_v2_card_png_imports_and_ccv3_wins_when_both_chunks_are_present(
    characters: Path, inputs: Path
) -> None:
    older = dict(WREN, name="Wren the Elder")
    both = write_card_png(inputs / "both.png", {"chara": v2(older), "ccv3": v3(WREN)})
    only_v2 = write_card_png(inputs / "v2.png", {"chara": v2(older)})

    assert import_pack(both, characters).pack.name == "Wren Calloway"
    result = import_pack(only_v2, characters)

    assert result.pack.id == "wren-the-elder"
    assert result.notes[0] == "Character Card V2 (PNG chunk 'chara')"


def test_a_v1_json_card_with_old_style_macros(characters: Path, inputs: Path) -> None:
    result = import_pack(write_json(inputs / "wren.json", WREN_V1), characters)

    assert result.format == "card-json"
    pack = result.pack
    assert pack.settings.persona.startswith("Wren Calloway pilots the night ferry")
    assert "Scenario: the user is the only passenger tonight." in pack.settings.persona
    assert pack.scenes[0].text == "User:「Busy night?」\nWren Calloway:「Quiet as a drowned bell.」"
    assert pack.avatar_path is None


def test_a_card_without_examples_gets_one_scene_from_its_greeting(characters: Path, inputs: Path) -> None:
    card = write_json(inputs / "terse.json", v2(dict(WREN, mes_example="")))

    result = import_pack(card, characters)

    assert [scene.text for scene in result.pack.scenes] == [
        "Wren Calloway:「*Wren taps the fare tin.* Last crossing, the user. Mind the wet rail.」"
    ]
    assert "no example dialogue: one scene made from first_mes" in result.notes


def test_a_chinese_card_saved_as_gbk_gets_a_hash_id_and_chinese_labels(
    characters: Path, inputs: Path
) -> None:
    card = write_json(inputs / "lin.json", v2(LINXIAOZAO), encoding="gbk")

    pack = import_pack(card, characters).pack

    assert re.fullmatch(r"char-[0-9a-f]{8}", pack.id)
    assert pack.name == "林小灶"
    assert pack.settings.language == "zh"
    assert "性格：嘴硬心软" in pack.settings.persona
    assert pack.scenes[0].text == "用户:「今天排队的人好多啊。」\n林小灶:「下雨天，大家都想吃口热乎的。」"


def test_a_charx_card_takes_its_avatar_from_the_icon_asset(characters: Path, inputs: Path) -> None:
    result = import_pack(write_charx(inputs / "wren.charx"), characters)

    assert result.format == "charx"
    pack = result.pack
    assert pack.avatar_path is not None
    with Image.open(pack.avatar_path) as avatar:
        assert avatar.size == (40, 60)
    assert len(pack.lore) == 3
    assert "avatar 40x60 from assets/icon/images/wren.png" in result.notes
    assert "1 other asset in the archive not imported" in result.notes


def test_a_card_in_a_compressed_itxt_chunk_is_read(characters: Path, inputs: Path) -> None:
    info = PngInfo()
    info.add_itxt("ccv3", encode_card(v3(WREN)), zip=True)
    path = inputs / "itxt.png"
    picture().save(path, "PNG", pnginfo=info)

    assert import_pack(path, characters).pack.name == "Wren Calloway"
