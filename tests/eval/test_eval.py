"""``python -m bot eval``: question files, retrieval metrics, the judge's parsing, and the whole pipeline
against a real OpenAI-compatible server playing two models and the judge."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.config import BotConfig, parse_config
from bot.engine.embedder import HashingEmbedder
from bot.engine.packs import CharacterPack, load_packs
from bot.errors import PackError
from bot.eval.judge import parse_scores
from bot.eval.questions import load_questions
from bot.eval.retrieval import evaluate_retrieval, score
from bot.eval.run import Endpoint, EvalOptions, run_eval
from tests.packs import write_pack
from tests.support.openai_server import FakeOpenAIServer

QUESTIONS = """\
questions:
  - q: "Is bad weather on its way to the island?"
    scene: "001"
  - q: "Does your cat steal food from the neighbours?"
    scene: "002"
  - q: "Is it lonely to live by the lamp?"
    scene: "003"
"""


@pytest.fixture
def pack_root(tmp_path: Path) -> Path:
    root = tmp_path / "characters"
    folder = write_pack(root)
    (folder / "eval").mkdir()
    (folder / "eval" / "questions.yaml").write_text(QUESTIONS, encoding="utf-8")
    return root


@pytest.fixture
def pack(pack_root: Path) -> CharacterPack:
    (loaded,) = load_packs(pack_root).packs
    return loaded


@pytest.fixture
def config(pack_root: Path, tmp_path: Path) -> BotConfig:
    return parse_config(
        {
            "characters": {"dir": str(pack_root), "default": "orla"},
            "storage": {"data_dir": str(tmp_path / "data")},
            "llm": {"timeout_s": 5, "max_retries": 0},
        },
        source=tmp_path / "bot.toml",
    )


def test_questions_load_with_the_scene_they_name(pack: CharacterPack) -> None:
    questions = load_questions(pack)
    assert [(question.text[:10], question.scene) for question in questions] == [
        ("Is bad wea", "001"),
        ("Does your ", "002"),
        ("Is it lone", "003"),
    ]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("questions: [", "cannot read the questions"),
        ("- q: x", "expected a mapping with a 'questions' list"),
        ("questions:\n  - q: x\n    scene: '099'", "question 1: scene '099' is not a scene of orla"),
        (
            "questions:\n  - q: x\n    scene: '001'\n  - q: y",
            "question 2: expected exactly the keys 'q' and 'scene'",
        ),
        ("questions:\n  - q: ''\n    scene: '001'", "question 1: the question is empty"),
    ],
)
def test_a_malformed_question_file_names_the_file_and_the_entry(
    pack: CharacterPack, content: str, error: str
) -> None:
    path = pack.root / "eval" / "questions.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PackError, match=error) as raised:
        load_questions(pack)
    assert str(raised.value).startswith(str(path))


def test_recall_and_mrr_count_ranks() -> None:
    scores = score("orla", "hybrid", [1, 2, None, 4], [1, 3, 5])
    assert scores.recall == {1: 0.25, 3: 0.5, 5: 0.75}
    assert scores.mrr == pytest.approx((1 + 1 / 2 + 1 / 4) / 4)


def test_retrieval_is_scored_four_ways(pack: CharacterPack, tmp_path: Path) -> None:
    questions = load_questions(pack)
    questions.append(type(questions[0])("Barnacle has taste, your fish does not", "002"))
    scores = evaluate_retrieval(pack, questions, HashingEmbedder(), tmp_path, dense_weight=0.6)
    assert [row.mode for row in scores] == ["dense", "lexical", "hybrid", "after-reply"]
    for row in scores:
        assert row.questions == 4
        assert 0 <= row.recall[1] <= row.recall[3] <= row.recall[5] == 1.0, "3 scenes: all within 5"
        assert 0 < row.mrr <= 1
    lexical = scores[1]
    assert lexical.recall[1] >= 0.25, "the scene's own words find it first"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"in_character": 4, "consistency": 3, "tone": 5, "fluency": 4}', (4, 3, 5, 4)),
        ('Scores: {"in_character": 2, "consistency": 2, "tone": 1, "fluency": 5} done', (2, 2, 1, 5)),
        ("in_character: 5, consistency: 4, tone: 4, fluency: 3", (5, 4, 4, 3)),
        ('{"in_character": 9, "consistency": 3, "tone": 5, "fluency": 4}', None),
        ('{"in_character": 4, "tone": 5}', None),
        ("a lovely answer, truly", None),
        ('{"in_character": 3.5, "consistency": 3, "tone": 5, "fluency": 4}', None),
    ],
)
def test_the_judge_s_output_is_read_or_counted_unscored(text: str, expected: tuple[int, ...] | None) -> None:
    scores = parse_scores(text)
    assert (tuple(scores.values()) if scores else None) == expected


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    """Answers as two models, and judges: model A's answers get 4s, model B's get 2s."""

    def reply(body: dict[str, Any]) -> str:
        texts = " ".join(str(message.get("content")) for message in body["messages"])
        if "You judge how well an AI plays" in texts:
            score = 4 if "[model-a]" in texts else 2
            return json.dumps(dict.fromkeys(["in_character", "consistency", "tone", "fluency"], score))
        return f"[{body['model']}] Aye, the glass is falling."

    with FakeOpenAIServer() as server:
        server.reply_with(reply)
        yield server


async def test_two_models_are_judged_and_reported(config: BotConfig, server: FakeOpenAIServer) -> None:
    options = EvalOptions(
        models=[Endpoint("A", server.base_url, "model-a"), Endpoint("B", server.base_url, "model-b")],
        judge=Endpoint("judge", server.base_url, "judge"),
        runs=2,
    )
    result = await run_eval(config, options)

    a, b = result.models
    assert (a.model, b.model) == ("A", "B")
    assert a.dimension("overall") == (4.0, 0.0)
    assert b.dimension("tone") == (2.0, 0.0)
    assert len(a.answers) == 6, "3 questions, 2 runs"
    assert a.summary().startswith("A: 4.00 ± 0.00 overall (in_character 4.0, consistency 4.0, tone 4.0")
    assert a.summary().endswith("6/6 scored")
    folder = result.report.parent
    assert {path.name for path in folder.iterdir()} == {
        "report.md",
        "results.json",
        "retrieval.png",
        "judge.png",
        "compare.png",
    }
    report = result.report.read_text(encoding="utf-8")
    assert "| orla | hybrid | 3 |" in report
    assert "- B: 2.00 ± 0.00 overall" in report
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    assert results["models"][0]["answers"][0]["scores"] == {
        "in_character": 4,
        "consistency": 4,
        "tone": 4,
        "fluency": 4,
    }
    assert len(server.requests) == 2 * 6 * 2, "an answer and a judgement for each"


@pytest.fixture
def toml(pack_root: Path, tmp_path: Path) -> Path:
    path = tmp_path / "eval.toml"
    path.write_text(
        f'[characters]\ndir = "{pack_root.as_posix()}"\ndefault = "orla"\n'
        f'[storage]\ndata_dir = "{(tmp_path / "data").as_posix()}"\n',
        encoding="utf-8",
    )
    return path


def test_the_eval_command_prints_the_retrieval_table(toml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(toml), "eval", "--retrieval-only", "--k", "1,2"]) == 0
    out = capsys.readouterr().out
    assert "| pack | mode | questions | recall@1 | recall@2 | MRR |" in out
    assert "| orla | after-reply | 3 |" in out
    assert "query embedding (use-multilingual-" in out
    assert "report: " in out
    assert main(["--config", str(toml), "eval", "--model", "nonsense"]) == 2


@pytest.mark.parametrize(
    ("module", "needs"),
    [
        ("matplotlib", "drawing the report's plots needs matplotlib"),
        ("yaml", "reading eval/*.yaml questions needs pyyaml"),
    ],
)
def test_without_the_eval_extra_the_command_says_what_to_install_before_it_starts(
    module: str,
    needs: str,
    toml: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    assert main(["--config", str(toml), "eval", "--retrieval-only"]) == 2
    err = capsys.readouterr().err
    assert err == f'error: {needs}: pip install -e ".[eval]"\n'
    assert not (tmp_path / "data" / "eval").exists()


async def test_offline_the_local_model_answers_and_judges(
    config: BotConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    offline = config.model_copy(
        update={
            "llm": config.llm.model_copy(
                update={"max_tokens": 24, "timeout_s": 60, "backend": "local", "local_model": "qwen2.5-0.5b"}
            )
        }
    )
    result = await run_eval(offline, EvalOptions(runs=1, questions=1))

    (model,) = result.models
    (answer,) = model.answers
    assert answer.text, "the local model answered in character"
    assert answer.judged, "and was asked to judge"
    assert model.summary().endswith("/1 scored")
    assert result.report.exists()
