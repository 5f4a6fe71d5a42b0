"""A pack made by the tool is a pack like any other: the bot answers with it, screenshots included,
and with ``/voice`` on, a reply that says one of the character's lines again plays its recording."""

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
    clip = json.loads((out / "voices.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert clip["text"] == caption
    config = parse_config(
        {"characters": {"default": "orla"}, "voice": {"mode": "only"}}, source=tmp_path / "bot.toml"
    )
    model = EchoChatModel()
    runtime = await Runtime.create(config, model=model)
    try:
        (reply,) = await runtime.router.handle(private_message(caption))
    finally:
        await runtime.aclose()
    assert reply.character == "orla"
    assert reply.images[0].caption == caption
    assert reply.voice is not None
    assert reply.voice.recorded, "the character's own line, not synthesised speech"
    assert reply.voice.path == (out / clip["audio"]).resolve()
    assert f"Orla:「{caption}」" in model.prompts[0].system_text()
