"""ChatHaruhi role data (its jsonl with embeddings, or its folder of texts) becomes a pack."""

from __future__ import annotations

from pathlib import Path

from bot.engine.packs import load_pack
from bot.importers import import_pack
from tests.importers.samples import (
    AMAN_PROMPT,
    write_chatharuhi_folder,
    write_chatharuhi_jsonl,
    write_chatharuhi_jsonl_prompt_first,
)


def test_a_role_jsonl_with_base64_embeddings_imports_and_says_the_embeddings_are_recomputed(
    characters: Path, inputs: Path
) -> None:
    result = import_pack(write_chatharuhi_jsonl(inputs / "aman.jsonl"), characters, pack_id="aman")

    assert result.format == "chatharuhi-jsonl"
    pack = load_pack(characters / "aman")
    assert pack.name == "阿蔓"
    assert pack.settings.language == "zh"
    assert pack.settings.persona.strip() == AMAN_PROMPT
    assert (
        "embeddings in column bge_zh_s15 ignored: they come from another model; recomputed on first use"
        in result.notes
    )
    assert len(pack.scenes) == 3
    assert "1 scene without 阿蔓 left out" in result.notes
    assert pack.scenes[1].lines[0].speaker == "旁白"
    assert pack.scenes[0].text.startswith(
        "小周:「阿蔓姐，今天的饼怎么这么香？」\n阿蔓:「葱是早上刚从菜场抢的"
    )


def test_float_list_embeddings_and_a_first_row_without_dialogue_as_the_system_prompt(
    characters: Path, inputs: Path
) -> None:
    result = import_pack(write_chatharuhi_jsonl_prompt_first(inputs / "aman.jsonl"), characters)

    assert result.pack.settings.persona.strip() == AMAN_PROMPT
    assert "the row on line 1 has no dialogue lines: taken as the system prompt" in result.notes
    assert any(note.startswith("embeddings in column luotuo_openai ignored") for note in result.notes)
    assert result.pack.id.startswith("char-")


def test_a_role_folder_saved_as_gbk_keeps_its_chinese_exactly(characters: Path, inputs: Path) -> None:
    folder = write_chatharuhi_folder(inputs / "aman", encoding="gbk")

    result = import_pack(folder, characters, pack_id="aman")

    assert result.format == "chatharuhi-folder"
    pack = result.pack
    assert pack.settings.persona.strip() == AMAN_PROMPT
    assert pack.scenes[2].text == "小李:「阿蔓，摊子往里挪一挪。」\n阿蔓:「挪了挪了，再挪就进河里了。」"
