"""Writing the pack all or nothing: build beside ``--out``, validate, then swap it in.

The pack is assembled in a hidden folder next to ``--out`` (same file system, so the final moves are
renames; the leading ``.`` keeps a running bot from taking it for a pack). Only after the pack loads
with :func:`bot.engine.packs.load_pack` is the old folder renamed aside, the new one renamed into place
and the old one deleted. Any failure before that leaves ``--out`` exactly as it was.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import tomllib
from pathlib import Path
from types import TracebackType

from bot.engine.packs import IMAGES_FILE, PACK_FILE, PACK_ID, VOICES_FILE, CharacterPack, load_pack
from bot.errors import ExtractError, PackError
from bot.extract.speakers import Language
from bot.extract.voices import VOICES_DIR

_PERSONA = {
    "en": (
        "You are {name}. Speak as {name} speaks in the scenes below.\n\n"
        "EDIT ME: this placeholder was written by `python -m bot extract`. Replace it with who {name} is, "
        "how {name} talks (tone, catchphrases, reply length), whom {name} knows, and what {name} never "
        "does or says."
    ),
    "zh": (
        "你是{name}。像下面场景里的{name}那样说话。\n\n"
        "【请编辑】这段人设是 `python -m bot extract` 写的占位文字。请改写成：{name}是谁、怎么说话"
        "（语气、口头禅、回复长短）、认识哪些人、绝不会做或说什么。"
    ),
}


def _toml_string(value: str) -> str:
    """A TOML basic string: JSON's escapes are valid TOML, and non-ASCII stays readable."""
    return json.dumps(value, ensure_ascii=False)


def character_toml(name: str, aliases: list[str], language: Language, description: str) -> str:
    """``character.toml`` for a new pack, with a persona that says plainly it must be edited."""
    persona = _PERSONA[language].format(name=name)
    alias_list = ", ".join(_toml_string(alias) for alias in dict.fromkeys(aliases) if alias.strip())
    return (
        f"name = {_toml_string(name)}\n"
        f"aliases = [{alias_list}]\n"
        f"language = {_toml_string(language)}\n"
        f"description = {_toml_string(description)}\n"
        'greeting = ""\n'
        f'persona = """\n{persona}\n"""\n'
    )


def _listed_files(pack: Path, listing: str, key: str) -> set[Path]:
    """The files an old ``images.jsonl`` / ``voices.jsonl`` lists (under ``key``): the new extraction
    replaces them."""
    listed: set[Path] = set()
    try:
        rows = (pack / listing).read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return listed
    for row in rows:
        try:
            entry = json.loads(row)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get(key), str):
            listed.add((pack / entry[key]).resolve())
    return listed


class PackStage:
    """A pack being built in a hidden folder beside ``out``; :meth:`commit` swaps it in.

    Use as a context manager: leaving the block without :meth:`commit` (an error, Ctrl-C) deletes the
    hidden folder, so nothing half-written is ever left behind. For an existing pack the stage starts as
    a copy of it without its scenes, ``images.jsonl``, ``voices.jsonl`` and the images and clips those
    files list: ``character.toml`` (persona and all) and any other file are kept as they are.
    """

    def __init__(self, out: Path) -> None:
        if not PACK_ID.match(out.name):
            raise ExtractError(
                f"--out {out}: the folder name is the pack id: 1-32 lowercase letters, digits, '-' or '_'"
            )
        if out.exists() and not out.is_dir():
            raise ExtractError(f"--out {out}: exists and is not a folder")
        self.out = out
        self.existing = out.is_dir() and (out / PACK_FILE).is_file()
        if out.is_dir() and not self.existing and any(out.iterdir()):
            raise ExtractError(
                f"--out {out}: the folder exists, is not empty and has no {PACK_FILE}; "
                "refusing to replace it (choose another folder)"
            )
        self._created_parents: list[Path] = []
        self._workspace: Path | None = None
        self._committed = False

    def language(self) -> Language | None:
        """The language of the existing pack, so its narrator keeps its name; ``None`` for a new pack."""
        if not self.existing:
            return None
        try:
            data = tomllib.loads((self.out / PACK_FILE).read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return None
        language = data.get("language", "en")
        return "zh" if language == "zh" else "en" if language == "en" else None

    @property
    def root(self) -> Path:
        """The folder the pack is being built in."""
        if self._workspace is None:
            raise RuntimeError("PackStage is used outside its with-block")
        return self._workspace / self.out.name

    def __enter__(self) -> PackStage:
        parent = self.out.parent
        missing = []
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for folder in reversed(missing):
            folder.mkdir()
            self._created_parents.insert(0, folder)
        self._workspace = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.extract-", dir=self.out.parent))
        if self.existing:
            replaced = _listed_files(self.out, IMAGES_FILE, "image") | _listed_files(
                self.out, VOICES_FILE, "audio"
            )
            shutil.copytree(
                self.out,
                self.root,
                ignore=lambda folder, names: [
                    name
                    for name in names
                    if (Path(folder) / name).resolve() in replaced
                    or (Path(folder) == self.out and name in {"scenes", IMAGES_FILE, VOICES_FILE})
                ],
            )
        (self.root / "scenes").mkdir(parents=True, exist_ok=True)
        (self.root / "images").mkdir(exist_ok=True)
        voices = self.root / VOICES_DIR
        if voices.is_dir() and not any(voices.iterdir()):
            voices.rmdir()  # its clips were all replaced; the new ones (if any) make it again
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._workspace is not None:
            shutil.rmtree(self._workspace, ignore_errors=True)
        if not self._committed:
            for folder in self._created_parents:
                try:
                    folder.rmdir()
                except OSError:
                    break

    def commit(self) -> CharacterPack:
        """Validate the staged pack, then move it into ``out`` (the old pack, if any, is deleted)."""
        try:
            load_pack(self.root)
        except PackError as exc:
            raise ExtractError(f"the extracted pack does not validate, nothing written: {exc}") from exc
        backup = self.root.with_name(f"{self.out.name}.previous")
        if self.out.exists():
            self.out.rename(backup)
        try:
            self.root.rename(self.out)
        except OSError as exc:
            if backup.exists():
                backup.rename(self.out)
            raise ExtractError(f"--out {self.out}: cannot move the new pack into place: {exc}") from None
        self._committed = True
        return load_pack(self.out)
