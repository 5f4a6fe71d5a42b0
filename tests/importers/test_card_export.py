"""Packs export as Character Card V3 (PNG or JSON); a card survives import → export → import."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

from bot.engine.packs import load_pack
from bot.importers import export_card, import_pack
from tests.importers.samples import WREN, v3, write_card_png


def png_cards(data: bytes) -> dict[str, Any]:
    with Image.open(io.BytesIO(data)) as image:
        return {key: json.loads(base64.b64decode(image.info[key])) for key in ("ccv3", "chara")}


def lorebook(root: Path) -> Any:
    return json.loads((root / "lorebook.json").read_text("utf-8"))


def test_a_v3_card_round_trips_through_import_and_export(characters: Path, inputs: Path) -> None:
    first = import_pack(write_card_png(inputs / "wren.png", {"ccv3": v3(WREN)}), characters).pack
    exported = inputs / "wren-exported.png"
    exported.write_bytes(export_card(first))

    second = import_pack(exported, characters, pack_id="wren-again").pack

    assert second.name == first.name
    assert second.settings.persona == first.settings.persona
    assert second.settings.greeting == first.settings.greeting
    assert [scene.text for scene in second.scenes] == [scene.text for scene in first.scenes]
    assert lorebook(second.root) == lorebook(first.root)
    card = json.loads((second.root / "card.json").read_text("utf-8"))
    assert card["extensions"] == WREN["extensions"], "unknown extensions survive the round trip"
    assert card["alternate_greetings"] == WREN["alternate_greetings"]
    assert card["description"] == WREN["description"], "an unchanged field goes back as the card had it"
    with Image.open(exported) as picture, Image.open(first.root / "images" / "avatar.png") as avatar:
        assert picture.size == avatar.size


def test_the_png_carries_v3_and_a_v2_copy(characters: Path, inputs: Path) -> None:
    pack = import_pack(write_card_png(inputs / "wren.png", {"ccv3": v3(WREN)}), characters).pack

    cards = png_cards(export_card(pack))

    assert (cards["ccv3"]["spec"], cards["ccv3"]["spec_version"]) == ("chara_card_v3", "3.0")
    assert (cards["chara"]["spec"], cards["chara"]["spec_version"]) == ("chara_card_v2", "2.0")
    assert cards["chara"]["data"]["name"] == "Wren Calloway"
    assert "assets" not in cards["chara"]["data"]
    assert cards["ccv3"]["data"]["assets"][0]["uri"] == "ccdefault:"


def test_an_edited_pack_exports_its_own_persona_and_keeps_the_rest(characters: Path, inputs: Path) -> None:
    pack = import_pack(write_card_png(inputs / "wren.png", {"ccv3": v3(WREN)}), characters).pack
    toml = pack.root / "character.toml"
    persona_start = toml.read_text("utf-8").index('persona = """')
    toml.write_text(
        toml.read_text("utf-8")[:persona_start]
        + 'persona = """\nYou are Wren, retired from the ferry.\n"""\n',
        encoding="utf-8",
    )

    data = json.loads(export_card(load_pack(pack.root), png=False))["data"]

    assert data["description"] == "You are Wren, retired from the ferry."
    assert (data["personality"], data["scenario"], data["system_prompt"]) == ("", "", "")
    assert data["extensions"] == WREN["extensions"]
    assert data["mes_example"] == WREN["mes_example"]


def test_a_pack_made_here_exports_as_a_card(characters: Path) -> None:
    pack = load_pack(characters / "orla")

    card = json.loads(export_card(pack, png=False))

    data = card["data"]
    assert card["spec"] == "chara_card_v3"
    assert data["name"] == "Orla Finch"
    assert data["description"] == pack.settings.persona.strip()
    assert data["first_mes"] == "Hello from Orla Finch."
    assert data["mes_example"].startswith(
        "<START>\nPip: Orla, the storm is coming.\n{{char}}: Then tie the boat twice"
    )
    assert "character_book" not in data
    picture = export_card(pack)
    with Image.open(io.BytesIO(picture)) as image:
        assert image.size == (400, 600)
