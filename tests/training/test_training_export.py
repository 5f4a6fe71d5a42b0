"""``python -m bot export training`` on the shipped packs: every format checked against its schema,
the split without leakage, scrubbing, duplicates, the recipes, and the same bytes on every run."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import main
from bot.config import BotConfig, parse_config
from bot.errors import ExportError
from bot.training.dedupe import NEAR, jaccard, normalized, shingles
from bot.training.export import ExportOptions, export_training, find_pack, system_prompt
from bot.training.formats import FORMATS, validate_record

SHIPPED = Path(__file__).resolve().parents[2] / "characters"
PACKS = ("orla", "xiaoman")


@pytest.fixture
def config(tmp_path: Path) -> BotConfig:
    return parse_config(
        {
            "characters": {"dir": str(SHIPPED), "default": "orla"},
            "storage": {"data_dir": str(tmp_path / "data")},
        },
        source=tmp_path / "bot.toml",
    )


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def texts_of(record: dict[str, object]) -> list[str]:
    """Every string of a record but its system prompt, whatever the format."""
    found: list[str] = []

    def walk(value: object, key: str = "") -> None:
        if isinstance(value, str) and key != "system":
            found.append(value)
        elif isinstance(value, dict):
            for name, inner in value.items():
                walk(inner, name)
        elif isinstance(value, list):
            for inner in value:
                walk(inner, key)

    walk(record)
    return [text for text in found if text not in {"human", "gpt", "user", "assistant", ""}]


@pytest.mark.parametrize("pack_id", PACKS)
@pytest.mark.parametrize("fmt", sorted(FORMATS))
async def test_every_format_of_both_shipped_packs_fits_its_schema(
    config: BotConfig, tmp_path: Path, pack_id: str, fmt: str
) -> None:
    result = await export_training(config, ExportOptions(pack_id, format=fmt, out=tmp_path / "out"))  # type: ignore[arg-type]

    pack = find_pack(config, pack_id)
    system = system_prompt(pack, config.prompt)
    assert system.startswith(pack.settings.persona.strip()[:40])
    total = 0
    for split in ("train", "validation"):
        rows = records(result.out / f"{split}.jsonl")
        assert len(rows) == result.stats.splits[split].conversations > 0
        for row in rows:
            validate_record(fmt, row)
            assert system_of(fmt, row) == system
        total += len(rows)
    assert total == len(pack.scenes) - result.stats.exact_duplicates - result.stats.near_duplicates
    stats = json.loads((result.out / "stats.json").read_text(encoding="utf-8"))
    assert stats["splits"]["train"]["tokens"] > stats["splits"]["validation"]["tokens"] > 0


def system_of(fmt: str, row: dict[str, Any]) -> str:
    if fmt == "openai":
        return str(row["messages"][0]["content"])
    if fmt == "xtuner":
        return str(row["conversation"][0]["system"])
    return str(row["system"])


async def test_a_character_line_is_the_assistant_and_the_others_keep_their_names(
    config: BotConfig, tmp_path: Path
) -> None:
    result = await export_training(config, ExportOptions("orla", format="openai", out=tmp_path / "out"))

    rows = records(result.out / "train.jsonl") + records(result.out / "validation.jsonl")
    storm = next(row for row in rows if "glass is dropping" in json.dumps(row))
    messages = storm["messages"]
    assert isinstance(messages, list)
    assert [message["role"] for message in messages[:3]] == ["system", "user", "assistant"]
    assert (
        messages[1]["content"].splitlines()[-1]
        == "Tam:「Orla, the glass is dropping like a stone. Mind if I wait it out here?」"
    )
    assert (
        messages[2]["content"]
        == "Glass has been dropping since Tuesday. You just noticed because it's your boat."
    )


@pytest.mark.parametrize("pack_id", PACKS)
async def test_no_scene_is_on_both_sides_of_the_split_nor_a_near_copy_of_one(
    config: BotConfig, tmp_path: Path, pack_id: str
) -> None:
    corpus = tmp_path / "qa.txt"
    pack = find_pack(config, pack_id)
    line = pack.scenes[0].lines[1]
    reply = next(line.text for line in pack.scenes[0].lines if line.speaker in pack.names)
    corpus.write_text(
        f"{line.speaker}: {line.text}\n{pack.name}: {reply}\n\n"  # a near copy of scene 001's start
        f"Visitor: Do you ever take a day off?\n{pack.name}: {reply} Never.\n",
        encoding="utf-8",
    )
    result = await export_training(
        config,
        ExportOptions(pack_id, format="sharegpt", corpora=[corpus], out=tmp_path / "out", validation=0.3),
    )

    train = [" ".join(texts_of(row)) for row in records(result.out / "train.jsonl")]
    held = [" ".join(texts_of(row)) for row in records(result.out / "validation.jsonl")]
    assert len(held) >= 0.2 * (len(train) + len(held))
    assert not set(train) & set(held)
    for text in held:
        mine = shingles(normalized(text))
        assert all(jaccard(mine, shingles(normalized(other))) < NEAR for other in train)


async def test_the_same_input_gives_the_same_bytes(config: BotConfig, tmp_path: Path) -> None:
    first = await export_training(
        config, ExportOptions("xiaoman", format="xtuner", out=tmp_path / "a", recipe="xtuner")
    )
    second = await export_training(
        config, ExportOptions("xiaoman", format="xtuner", out=tmp_path / "b", recipe="xtuner")
    )

    for path in first.files:
        other = second.out / path.name
        if path.suffix == ".py":  # the config names its own folder
            assert path.read_text().replace(str(first.out), "") == other.read_text().replace(
                str(second.out), ""
            )
        else:
            assert path.read_bytes() == other.read_bytes(), path.name


async def test_ids_links_and_addresses_are_scrubbed_and_counted(config: BotConfig, tmp_path: Path) -> None:
    corpus = tmp_path / "qa.txt"
    corpus.write_text(
        "Tam: Where can I read the tide tables?\n"
        "Orla: https://tides.example.org/skerrow, or ask me.\n\n"
        "Tam: How do I reach you in winter?\n"
        "Orla: Write to orla.finch@skerrow-light.example or ring 13812345678.\n\n"
        "Tam: Are you online at all?\n"
        "Orla: My QQ: 246813579, and 微信号：lamp_keeper_1. Barnacle has neither.\n\n"
        "Tam: And the harbour office?\n"
        "Orla: +44 20 7946 0958, if they answer. Ticket 9988776655 still open.\n",
        encoding="utf-8",
    )
    result = await export_training(config, ExportOptions("orla", corpora=[corpus], out=tmp_path / "out"))

    written = (result.out / "train.jsonl").read_text() + (result.out / "validation.jsonl").read_text()
    for secret in (
        "tides.example.org",
        "orla.finch@",
        "13812345678",
        "246813579",
        "lamp_keeper_1",
        "7946 0958",
        "9988776655",
    ):
        assert secret not in written
    for marker in ("[link]", "[email]", "[phone]", "[QQ]", "[WeChat]", "[number]"):
        assert marker in written
    assert result.stats.scrubbed == {"link": 1, "email": 1, "phone": 2, "qq": 1, "wechat": 1, "number": 1}
    assert result.stats.sources == {"scene": 51, "corpus": 4, "chat": 0}


async def test_exact_and_near_duplicates_are_dropped_keeping_the_scene(
    config: BotConfig, tmp_path: Path
) -> None:
    pack = find_pack(config, "orla")
    scene = pack.scenes[1]
    lines = [f"{line.speaker}: {line.text}" for line in scene.lines]
    tweaked = [*lines[:-1], lines[-1].rstrip(".!?") + ", aye."]
    corpus = tmp_path / "qa.txt"
    corpus.write_text("\n".join(lines) + "\n\n" + "\n".join(tweaked) + "\n", encoding="utf-8")

    result = await export_training(config, ExportOptions("orla", corpora=[corpus], out=tmp_path / "out"))

    assert (result.stats.exact_duplicates, result.stats.near_duplicates) == (1, 1)
    assert sum(split.conversations for split in result.stats.splits.values()) == len(pack.scenes)


async def test_a_corpus_line_without_a_name_is_the_narrators(config: BotConfig, tmp_path: Path) -> None:
    corpus = tmp_path / "qa.txt"
    corpus.write_text(
        "The tide is out.\nTam: Walk to the skerry?\nOrla: Not in those boots.\n", encoding="utf-8"
    )

    result = await export_training(
        config, ExportOptions("orla", format="openai", corpora=[corpus], out=tmp_path / "out")
    )

    rows = records(result.out / "train.jsonl") + records(result.out / "validation.jsonl")
    walk = next(row for row in rows if "skerry" in json.dumps(row))
    assert walk["messages"][1]["content"] == "Narrator:「The tide is out.」\nTam:「Walk to the skerry?」"
    assert walk["messages"][2]["content"] == "Not in those boots."


async def test_a_corpus_without_the_character_is_refused_naming_it(config: BotConfig, tmp_path: Path) -> None:
    corpus = tmp_path / "other.txt"
    corpus.write_text("Ann: Hello?\nBen: Hi.\n", encoding="utf-8")

    with pytest.raises(ExportError, match=r"other\.txt: no line is by Orla Finch .*Ann, Ben"):
        await export_training(config, ExportOptions("orla", corpora=[corpus], out=tmp_path / "out"))


async def test_an_unknown_character_is_refused_listing_the_packs(config: BotConfig, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"no pack 'haruhi'.*orla, xiaoman"):
        await export_training(config, ExportOptions("haruhi", out=tmp_path / "out"))


async def test_the_llama_factory_recipe_names_the_files_it_trains_on(
    config: BotConfig, tmp_path: Path
) -> None:
    result = await export_training(
        config, ExportOptions("orla", format="openai", out=tmp_path / "out", recipe="llama-factory")
    )

    recipe = yaml.safe_load((result.out / "llama_factory_sft.yaml").read_text())
    info = json.loads((result.out / "dataset_info.json").read_text())
    assert Path(recipe["dataset_dir"]) == result.out.resolve()
    for name in (recipe["dataset"], recipe["eval_dataset"]):
        assert (result.out / info[name]["file_name"]).is_file()
        assert info[name]["columns"] == {"messages": "messages"}
        assert info[name]["tags"]["assistant_tag"] == "assistant"
    assert (recipe["stage"], recipe["finetuning_type"]) == ("sft", "lora")


async def test_the_xtuner_recipe_is_a_python_config_reading_the_export(
    config: BotConfig, tmp_path: Path
) -> None:
    result = await export_training(
        config, ExportOptions("xiaoman", format="xtuner", out=tmp_path / "out", recipe="xtuner")
    )

    tree = ast.parse((result.out / "xtuner_config.py").read_text(encoding="utf-8"))
    values = {
        node.targets[0].id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    files = ast.literal_eval(values["data_files"])
    assert Path(files["train"]) == (result.out / "train.jsonl").resolve()
    assert ast.literal_eval(values["SYSTEM"]) == system_prompt(find_pack(config, "xiaoman"), config.prompt)
    assert ast.unparse(values["train_dataset"]).count("dataset_map_fn=None") == 1


@pytest.mark.parametrize(("recipe", "fmt"), [("xtuner", "sharegpt"), ("llama-factory", "xtuner")])
async def test_a_recipe_that_cannot_read_the_format_says_which_it_reads(
    config: BotConfig, tmp_path: Path, recipe: str, fmt: str
) -> None:
    with pytest.raises(ExportError, match=f"--recipe {recipe} reads --format"):
        await export_training(config, ExportOptions("orla", format=fmt, out=tmp_path / "out", recipe=recipe))  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists(), "refused before anything was written"


def test_the_command_prints_the_statistics_and_writes_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bot_toml = tmp_path / "bot.toml"
    bot_toml.write_text(
        f'[characters]\ndir = "{SHIPPED.as_posix()}"\ndefault = "orla"\n'
        f'[storage]\ndata_dir = "{(tmp_path / "data").as_posix()}"\n',
        encoding="utf-8",
    )

    code = main(
        ["--config", str(bot_toml), "export", "training", "--character", "xiaoman", "--format", "alpaca"]
    )

    printed = capsys.readouterr().out
    assert code == 0
    for expected in ("| train |", "| validation |", "conversations/s"):
        assert expected in printed
    out = tmp_path / "data" / "training" / "xiaoman-alpaca"
    for row in records(out / "train.jsonl"):
        validate_record("alpaca", row)
