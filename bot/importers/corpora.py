"""Dialogue without a persona: plain transcripts and question/answer corpora → a pack draft.

Both name their speakers (``Name: line``, ``Name：line`` or ``Name:「line」``) and separate scenes with a
blank line; neither says who the character is, so it is the speaker the corpus is about: the one who
answers in a Q&A corpus, the one who speaks most in a transcript, unless the pack id names another.
The pack gets the extraction tool's placeholder persona, which says plainly that it must be edited.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bot.errors import PackError
from bot.extract.scenes import SceneDraft, SceneLimits, split_long
from bot.extract.speakers import NARRATOR, CharacterNames, clean_speaker, detect_language, split_prefix
from bot.extract.subtitles import SubtitleLine
from bot.extract.transcripts import read_transcript
from bot.importers.drafts import PackDraft, counted, first_word_alias, slug_id
from bot.importers.limits import ImportLimits, as_pack_errors, check_file, read_source_text


def character_of(counts: Counter[str], *, pack_id: str | None = None, mentioned_in: str = "") -> str:
    """The speaker a corpus is about.

    A speaker whose name (or first word) is the requested pack id wins; then the most frequent speaker
    named in ``mentioned_in`` (a system prompt that says who is played); then the most frequent one.
    """
    narrators = set(NARRATOR.values())
    candidates = [name for name, _ in counts.most_common() if name not in narrators]
    if not candidates:
        candidates = [name for name, _ in counts.most_common()]
    if pack_id:
        for name in candidates:
            words = name.split()
            if pack_id in {slug_id(name), slug_id(words[0]) if words else None}:
                return name
    mentioned = [name for name in candidates if mentioned_in and name in mentioned_in]
    return (mentioned or candidates)[0]


def dialogue_draft(
    groups: Sequence[Sequence[SubtitleLine]],
    character: str,
    *,
    source: Path,
    persona: str | None,
    split: bool,
) -> PackDraft:
    """A pack of the scenes in which ``character`` speaks.

    ``split`` cuts long scenes at the extraction tool's line cap (transcripts); ChatHaruhi stories and
    Q&A pairs are kept whole, as their authors cut them.
    """
    language = detect_language(line.text for group in groups for line in group)
    narrator = NARRATOR[language]
    names = CharacterNames(character)
    scenes = (
        split_long(groups, SceneLimits()) if split else [SceneDraft(lines=list(group)) for group in groups]
    )
    kept = [scene for scene in scenes if scene.spoken_by(names)]
    spoken = sum(len(scene.spoken_by(names)) for scene in kept)
    notes = [f"{counted(len(kept), 'scene', 'scenes')}, {counted(spoken, 'line', 'lines')} by {names.name}"]
    if len(kept) < len(scenes):
        notes.append(f"{counted(len(scenes) - len(kept), 'scene', 'scenes')} without {names.name} left out")
    if persona is None:
        notes.append("no persona in the source: character.toml has a placeholder persona to edit")
    return PackDraft(
        name=names.name,
        language=language,
        scenes=[scene.render(names, narrator).splitlines() for scene in kept],
        persona=persona,
        aliases=first_word_alias(names.name),
        description=f"{names.name}, imported from {source.name}",
        notes=notes,
    )


def _speaker_counts(groups: Sequence[Sequence[SubtitleLine]]) -> Counter[str]:
    return Counter(line.speaker for group in groups for line in group if line.speaker)


def import_transcript(source: Path, limits: ImportLimits, pack_id: str | None = None) -> PackDraft:
    """``Name: line`` per line, a blank line between scenes; a line without a name is narration."""
    check_file(source, limits)
    with as_pack_errors(source):
        groups = read_transcript(source)
    counts = _speaker_counts(groups)
    if not counts:
        raise PackError(source, "no 'Name: line' dialogue: no line of the transcript names its speaker")
    character = character_of(counts, pack_id=pack_id)
    draft = dialogue_draft(groups, character, source=source, persona=None, split=True)
    draft.notes.insert(0, f"transcript; speakers: {_most_frequent(counts)}")
    return draft


def _most_frequent(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.most_common(5))


def qa_blocks(text: str, source: Path) -> list[list[SubtitleLine]]:
    """Blank-line separated blocks of turns; a line without ``Name:`` continues the turn before it."""
    blocks: list[list[SubtitleLine]] = [[]]
    for number, raw in enumerate(text.split("\n"), start=1):
        line = " ".join(raw.split())
        if not line:
            if blocks[-1]:
                blocks.append([])
            continue
        prefixed = split_prefix(line)
        if prefixed is not None:
            blocks[-1].append(SubtitleLine(0, 0, clean_speaker(prefixed[0]), prefixed[1], source, number))
        elif blocks[-1]:
            blocks[-1][-1].text += " " + line
        else:
            blocks[-1].append(SubtitleLine(0, 0, None, line, source, number))
    return [block for block in blocks if block]


def looks_like_qa(text: str) -> bool:
    """Every block is one named question and one answer by another speaker."""
    blocks = qa_blocks(text, Path())
    return bool(blocks) and all(
        len(block) == 2 and block[0].speaker and block[1].speaker and block[0].speaker != block[1].speaker
        for block in blocks
    )


def import_qa(source: Path, limits: ImportLimits, pack_id: str | None = None) -> PackDraft:
    """``Asker: question`` / ``Name: answer`` pairs, a blank line between pairs: one scene per pair."""
    blocks = qa_blocks(read_source_text(source, limits), source)
    answers = Counter(block[1].speaker for block in blocks if len(block) > 1 and block[1].speaker)
    if not answers:
        raise PackError(
            source, "no question/answer pairs ('Asker: question', then 'Name: answer', a blank line between)"
        )
    character = character_of(answers, pack_id=pack_id)
    draft = dialogue_draft(blocks, character, source=source, persona=None, split=False)
    draft.notes.insert(0, f"Q&A corpus of {len(blocks)} pairs; answers by: {_most_frequent(answers)}")
    return draft
