"""Held-out questions: ``eval/*.yaml`` inside a pack, each naming the scene it should retrieve."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.engine.packs import CharacterPack
from bot.errors import ConfigError, PackError, missing_extra


@dataclass(slots=True, frozen=True)
class EvalQuestion:
    text: str
    scene: str
    """The id of the scene that should be retrieved (its file name without ``.txt``)."""


def question_files(pack: CharacterPack) -> list[Path]:
    return sorted((pack.root / "eval").glob("*.yaml"))


def load_questions(pack: CharacterPack) -> list[EvalQuestion]:
    """Every question of ``pack``'s ``eval/*.yaml`` files; a malformed entry raises :class:`PackError`
    naming the file and the entry."""
    try:
        import yaml
    except ModuleNotFoundError as exc:
        raise missing_extra(ConfigError, "reading eval/*.yaml questions", "pyyaml", "eval") from exc
    scenes = {scene.id for scene in pack.scenes}
    questions: list[EvalQuestion] = []
    for path in question_files(pack):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise PackError(path, f"cannot read the questions: {exc}") from None
        entries = data.get("questions") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise PackError(path, "expected a mapping with a 'questions' list")
        for number, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict) or set(entry) != {"q", "scene"}:
                raise PackError(path, f"question {number}: expected exactly the keys 'q' and 'scene'")
            text, scene = str(entry["q"]).strip(), str(entry["scene"]).strip()
            if not text:
                raise PackError(path, f"question {number}: the question is empty")
            if scene not in scenes:
                raise PackError(path, f"question {number}: scene {scene!r} is not a scene of {pack.id}")
            questions.append(EvalQuestion(text, scene))
    return questions
