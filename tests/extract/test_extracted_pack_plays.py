"""A pack made by the tool is a pack like any other: the bot answers with it, screenshots included."""

from __future__ import annotations

import json
from pathlib import Path

from bot.config import parse_config
from bot.engine.model import EchoChatModel
from bot.extract import Episode, ExtractOptions, extract_pack
from bot.runtime import Runtime
from tests.messages import private_message


async def test_an_extracted_pack_plays(tmp_path: Path, video: Path, srt_en: Path) -> None:
    out = tmp_path / "characters" / "orla"
    extract_pack(ExtractOptions("Orla", out, episodes=[Episode(srt_en, video)]))
    caption = json.loads((out / "images.jsonl").read_text(encoding="utf-8").splitlines()[0])["text"]
    config = parse_config({"characters": {"default": "orla"}}, source=tmp_path / "bot.toml")
    model = EchoChatModel()
    runtime = await Runtime.create(config, model=model)
    try:
        (reply,) = await runtime.router.handle(private_message(caption))
    finally:
        await runtime.aclose()
    assert reply.character == "orla"
    assert reply.images[0].caption == caption
    assert f"Orla:「{caption}」" in model.prompts[0].system_text()
