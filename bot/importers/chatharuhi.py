"""ChatHaruhi role data → a pack draft: the role's jsonl, or its folder of story texts.

The jsonl has one story per row: ``{"text": "Speaker:「line」\\n...", "<embedding column>": ...}``, the
embedding a list of floats or base64 of big-endian float32 (``luotuo_openai``, ``bge_zh_s15``...).
ChatHaruhi marks the system prompt row by putting the string ``"system_prompt"`` in the embedding column
(and a ``"config"`` row is skipped); a row with a ``system_prompt`` key, or a first row without any
dialogue line, is taken as the system prompt too. Rows may carry ``enc_text`` (base64 UTF-8) instead of
``text``. The folder form is ``system_prompt.txt`` with the stories as ``texts/*.txt`` (or ``*.txt``).

The embeddings are not reused: they come from another model than the bot's, and vectors of two models
cannot be compared. The bot embeds the scenes itself on first use and caches them.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.engine.packs import json_lines
from bot.errors import PackError
from bot.extract.speakers import clean_speaker, split_prefix, strip_quotes
from bot.extract.subtitles import SubtitleLine
from bot.importers.corpora import character_of, dialogue_draft
from bot.importers.drafts import PackDraft
from bot.importers.limits import ImportLimits, check_size, read_source_text

SYSTEM_PROMPT_FILE = "system_prompt.txt"
_TEXT_KEYS = frozenset({"text", "enc_text", "system_prompt"})
_BASE64 = re.compile(r"^[A-Za-z0-9+/]{16,}={0,2}$")


def _is_embedding(value: Any) -> bool:
    if isinstance(value, list):
        return len(value) > 1 and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
    return isinstance(value, str) and len(value) % 4 == 0 and _BASE64.match(value) is not None


def story_lines(text: str, source: Path, line: int | None = None) -> list[SubtitleLine]:
    """A story's utterances; a line that names no speaker is narration."""
    lines = []
    for raw in text.split("\n"):
        stripped = " ".join(raw.split())
        if not stripped:
            continue
        prefixed = split_prefix(stripped)
        if prefixed is not None:
            lines.append(SubtitleLine(0, 0, clean_speaker(prefixed[0]), prefixed[1], source, line))
        elif body := strip_quotes(stripped):
            lines.append(SubtitleLine(0, 0, None, body, source, line))
    return lines


def _row_text(row: dict[str, Any], source: Path, number: int) -> str | None:
    text = row.get("text")
    if isinstance(text, str):
        return text
    encoded = row.get("enc_text")
    if isinstance(encoded, str):
        try:
            return base64.b64decode(encoded).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise PackError(source, f"'enc_text' is not base64 of UTF-8 text: {exc}", line=number) from None
    return None


def _draft(
    system_prompt: str | None, stories: Sequence[list[SubtitleLine]], source: Path, pack_id: str | None
) -> PackDraft:
    groups = [story for story in stories if story]
    counts = Counter(line.speaker for group in groups for line in group if line.speaker)
    if not counts:
        raise PackError(
            source, "no story names a speaker ('Name:「line」' lines): cannot tell who the character is"
        )
    character = character_of(counts, pack_id=pack_id, mentioned_in=system_prompt or "")
    return dialogue_draft(groups, character, source=source, persona=system_prompt, split=False)


def import_chatharuhi_jsonl(source: Path, limits: ImportLimits, pack_id: str | None = None) -> PackDraft:
    """A ChatHaruhi role jsonl: the system prompt row and one story per other row."""
    text = read_source_text(source, limits)
    system_prompt: str | None = None
    stories: list[tuple[str, int]] = []
    columns: Counter[str] = Counter()
    notes: list[str] = []
    for number, row in json_lines(source, text):
        if not isinstance(row, dict):
            raise PackError(source, "each line must be a JSON object with a 'text' field", line=number)
        marks = {value for key, value in row.items() if key not in _TEXT_KEYS and isinstance(value, str)}
        columns.update(key for key, value in row.items() if key not in _TEXT_KEYS and _is_embedding(value))
        if "config" in marks:
            continue
        row_text = _row_text(row, source, number)
        marked = row.get("system_prompt")
        if "system_prompt" in marks or marked:
            prompt = marked if isinstance(marked, str) and marked.strip() else row_text
            if not prompt or not prompt.strip():
                raise PackError(source, "the system prompt row has no text", line=number)
            if system_prompt is None:
                system_prompt = prompt.strip()
            else:
                notes.append(f"a second system prompt row (line {number}) was ignored")
            continue
        if row_text is None:
            raise PackError(source, "the row has no 'text' (or 'enc_text')", line=number)
        stories.append((row_text, number))
    if (
        system_prompt is None
        and stories
        and not any(line.speaker for line in story_lines(stories[0][0], source))
    ):
        prompt, line = stories.pop(0)
        system_prompt = prompt.strip()
        notes.append(f"the row on line {line} has no dialogue lines: taken as the system prompt")
    draft = _draft(
        system_prompt, [story_lines(story, source, line) for story, line in stories], source, pack_id
    )
    draft.notes = ["ChatHaruhi jsonl", *notes, *draft.notes]
    draft.notes += [
        f"embeddings in column {column} ignored: they come from another model; recomputed on first use"
        for column in columns
    ]
    return draft


def story_files(folder: Path) -> list[Path]:
    """The story texts of a ChatHaruhi folder: ``texts/*.txt``, else the ``*.txt`` beside the prompt."""
    texts = folder / "texts" if (folder / "texts").is_dir() else folder
    return sorted(path for path in texts.glob("*.txt") if path.name != SYSTEM_PROMPT_FILE)


def import_chatharuhi_folder(source: Path, limits: ImportLimits, pack_id: str | None = None) -> PackDraft:
    """A ChatHaruhi folder: ``system_prompt.txt`` and one story per text file."""
    files = story_files(source)
    if len(files) > limits.max_archive_files:
        raise PackError(
            source,
            f"the folder holds {len(files):,} stories, over the import limit of {limits.max_archive_files:,}",
        )
    prompt_file = source / SYSTEM_PROMPT_FILE
    everything = [*files, prompt_file] if prompt_file.exists() else files
    total = 0
    for path in everything:
        if path.is_symlink():
            raise PackError(path, "is a symbolic link; an imported folder must hold plain files only")
        total += path.stat().st_size
        check_size(source, total, limits.max_unpacked_bytes, "the folder's texts")
    if not files:
        raise PackError(source, "no story texts (texts/*.txt or *.txt beside system_prompt.txt)")
    system_prompt = read_source_text(prompt_file, limits).strip() if prompt_file.exists() else None
    stories = [story_lines(read_source_text(path, limits), path) for path in files]
    draft = _draft(system_prompt or None, stories, source, pack_id)
    draft.notes.insert(0, f"ChatHaruhi folder, {len(files)} story files")
    return draft
