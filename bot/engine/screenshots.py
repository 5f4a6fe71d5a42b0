"""Screenshots: which of a character's captioned frames fits a reply, and making it fit to send.

A screenshot is chosen when a text (the reply, or the message it answers) is close to the line
spoken in the frame on both counts:

* **similarity**: cosine between the embeddings of the text and the line (the retrieval embedder);
* **overlap**: the share of the line's words (jieba words and bigrams for Chinese) found in the text.

NOTE: both are needed. multilingual-e5 scores every pair of Chinese sentences above 0.85, so cosine
alone cannot tell a paraphrase from small talk; word overlap alone misses paraphrases with other
words. Cosines live on each model's own scale, so the similarity threshold defaults to the
embedder's :attr:`~bot.engine.embedder.Embedder.same_meaning` (``[images] min_similarity`` overrides
it). The defaults come from the labelled set in ``tests/engine/data/screenshot_labels.jsonl`` on the
shipped packs (``scripts/measure_screenshot_matching.py``): the positives have overlap ≥ 0.29 and
the negatives ≤ 0.25, similarity ≥ 0.856 against ≤ 0.84 with e5, ≥ 0.51 against ≤ 0.48 with USE.

Only a text that passes the word gate is embedded: most replies share few words with any captioned
line and never cost an embedding. A text is embedded in the form a query takes
(:func:`bot.engine.query.clip`), so a reply embedded here is the next message's context, cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from bot.engine.embedder import Embedder, FloatArray
from bot.engine.lexical import tokenize
from bot.engine.packs import CharacterPack, Screenshot, VoiceClip
from bot.engine.query import clip
from bot.errors import EmbeddingError
from bot.messages import Image

if TYPE_CHECKING:
    from bot.config import ImagesConfig

log = logging.getLogger(__name__)


LineT = TypeVar("LineT", Screenshot, VoiceClip)
"""A captioned line of a pack: a screenshot, or the character's own recording of the line."""


@dataclass(slots=True, frozen=True)
class LineHit(Generic[LineT]):
    """A screenshot (or recorded line) and how close the text was to its line."""

    shot: LineT
    similarity: float
    overlap: float


ScreenshotHit = LineHit[Screenshot]


@dataclass(slots=True)
class _PackShots(Generic[LineT]):
    content_hash: str
    shots: list[LineT]
    vectors: FloatArray | None
    words: list[frozenset[str]]


def word_overlap(text_words: frozenset[str], line_words: frozenset[str]) -> float:
    """Share of the line's words that appear in the text."""
    return len(text_words & line_words) / len(line_words) if line_words else 0.0


class LineMatcher(Generic[LineT]):
    """Finds the captioned line of a pack (:meth:`lines_of`) closest to a text."""

    def __init__(
        self, embedder: Embedder | None, *, min_similarity: float | None, min_overlap: float
    ) -> None:
        """``min_similarity=None``: the embedder's own :attr:`~bot.engine.embedder.Embedder.same_meaning`."""
        self.embedder = embedder
        if min_similarity is None:
            min_similarity = embedder.same_meaning if embedder is not None else Embedder.same_meaning
        self.min_similarity = min_similarity
        self.min_overlap = min_overlap
        self._packs: dict[str, _PackShots[LineT]] = {}
        self._lock = threading.Lock()

    def lines_of(self, pack: CharacterPack) -> list[LineT]:
        raise NotImplementedError

    def index_sync(self, pack: CharacterPack) -> None:
        """Embed the pack's captioned lines (a few per pack: cheap, so not cached on disk)."""
        shots = self.lines_of(pack)
        vectors: FloatArray | None = None
        if shots and self.embedder is not None:
            try:
                vectors = self.embedder.embed_passages([shot.text for shot in shots])
            except EmbeddingError as exc:
                log.warning("screenshots of %s matched by words only: %s", pack.id, exc)
        words = [frozenset(tokenize(shot.text)) for shot in shots]
        with self._lock:
            self._packs[pack.id] = _PackShots(pack.content_hash, shots, vectors, words)

    async def index(self, pack: CharacterPack) -> None:
        await asyncio.to_thread(self.index_sync, pack)

    def forget(self, pack_id: str) -> None:
        with self._lock:
            self._packs.pop(pack_id, None)

    def _entry(self, pack: CharacterPack) -> _PackShots[LineT]:
        entry = self._packs.get(pack.id)
        if entry is None or entry.content_hash != pack.content_hash:
            self.index_sync(pack)
            entry = self._packs[pack.id]
        return entry

    @staticmethod
    def _overlaps(entry: _PackShots[LineT], text: str) -> FloatArray:
        words = frozenset(tokenize(text))
        return np.array([word_overlap(words, line) for line in entry.words], dtype=np.float32)

    def rank_sync(self, pack: CharacterPack, text: str) -> list[LineHit[LineT]]:
        """Every line of ``pack`` scored against ``text``, best first."""
        entry = self._entry(pack)
        if not entry.shots or not text.strip():
            return []
        return self._rank(entry, text, self._overlaps(entry, text))

    def _rank(self, entry: _PackShots[LineT], text: str, overlaps: FloatArray) -> list[LineHit[LineT]]:
        similarities = np.zeros(len(entry.shots), dtype=np.float32)
        if entry.vectors is not None and self.embedder is not None:
            try:
                similarities = entry.vectors @ self.embedder.embed_query(clip(text))
            except EmbeddingError as exc:
                log.warning("screenshot matching by words only: %s", exc)
        order = np.lexsort((-overlaps, -(similarities + overlaps)))
        return [LineHit(entry.shots[i], float(similarities[i]), float(overlaps[i])) for i in order]

    def thresholds(self, pack: CharacterPack) -> tuple[float, float]:
        """``(min_similarity, min_overlap)`` for ``pack``."""
        return self.min_similarity, self.min_overlap

    def accepts(self, hit: LineHit[LineT], pack: CharacterPack) -> bool:
        min_similarity, min_overlap = self.thresholds(pack)
        return hit.similarity >= min_similarity and hit.overlap >= min_overlap

    def match_sync(self, pack: CharacterPack, texts: Sequence[str]) -> LineHit[LineT] | None:
        """The best line for any of ``texts`` that passes both thresholds, if one does.

        NOTE: the word overlap is checked first and costs no embedding; most replies share few words
        with any captioned line, so they never pay for the query embedding.
        """
        entry = self._entry(pack)
        _, min_overlap = self.thresholds(pack)
        best: LineHit[LineT] | None = None
        for text in texts:
            if not entry.shots or not text.strip():
                continue
            overlaps = self._overlaps(entry, text)
            if not (overlaps >= min_overlap).any():
                continue
            for hit in self._rank(entry, text, overlaps):
                if self.accepts(hit, pack) and (
                    best is None or hit.similarity + hit.overlap > best.similarity + best.overlap
                ):
                    best = hit
        return best

    async def match(self, pack: CharacterPack, texts: Sequence[str]) -> LineHit[LineT] | None:
        return await asyncio.to_thread(self.match_sync, pack, texts)

    async def best(self, pack: CharacterPack, words: str) -> LineHit[LineT] | None:
        """The closest line to ``words`` whatever the thresholds (``/scene <words>``)."""
        hits = await asyncio.to_thread(self.rank_sync, pack, words)
        return hits[0] if hits else None


class ScreenshotMatcher(LineMatcher[Screenshot]):
    """Finds the screenshot of a pack whose line is closest to a text."""

    def lines_of(self, pack: CharacterPack) -> list[Screenshot]:
        return list(pack.screenshots)

    def thresholds(self, pack: CharacterPack) -> tuple[float, float]:
        """``(min_similarity, min_overlap)`` for ``pack``: its own settings, else ``[images]``."""
        similarity, overlap = pack.settings.image_min_similarity, pack.settings.image_min_overlap
        return (
            self.min_similarity if similarity is None else similarity,
            self.min_overlap if overlap is None else overlap,
        )

    @staticmethod
    def random(pack: CharacterPack, rng: random.Random | None = None) -> Screenshot | None:
        return (rng or random).choice(pack.screenshots) if pack.screenshots else None


def prepare_image(path: Path, *, max_side: int, max_bytes: int, cache_dir: Path) -> Path | None:
    """A file fit to send: ``path`` itself, or a downscaled JPEG copy; ``None`` when it is unusable.

    Blocking (Pillow); call it in a thread. A missing or corrupt file is logged and skipped.
    """
    try:
        size = path.stat().st_size
        with PILImage.open(path) as image:
            image.load()
            if size <= max_bytes and max(image.size) <= max_side:
                return path
            key = hashlib.sha256(f"{path}:{size}:{path.stat().st_mtime_ns}:{max_side}".encode()).hexdigest()[
                :16
            ]
            target = cache_dir / f"{key}.jpg"
            if target.exists():
                return target
            image.thumbnail((max_side, max_side))
            cache_dir.mkdir(parents=True, exist_ok=True)
            quality = 85
            partial = target.with_suffix(".part")
            while True:
                image.convert("RGB").save(partial, "JPEG", quality=quality, optimize=True)
                if partial.stat().st_size <= max_bytes or quality <= 40:
                    break
                quality -= 15
            partial.replace(target)
            return target
    except FileNotFoundError:
        log.warning("screenshot %s is missing; sent the reply without it", path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        log.warning("screenshot %s cannot be read (%s); sent the reply without it", path, exc)
    return None


async def screenshot_image(shot: Screenshot, config: ImagesConfig, cache_dir: Path) -> Image | None:
    """The :class:`~bot.messages.Image` to post for ``shot``, downscaled if needed; ``None`` if unusable."""
    path = await asyncio.to_thread(
        prepare_image, shot.path, max_side=config.max_side, max_bytes=config.max_bytes, cache_dir=cache_dir
    )
    return Image(path, shot.text) if path is not None else None


class ClipMatcher(LineMatcher[VoiceClip]):
    """Finds the character's own recorded line (``voices.jsonl``) that a reply says again, with
    ``[voice]``'s thresholds: a clip says its words aloud, so it needs a closer match than a picture."""

    def lines_of(self, pack: CharacterPack) -> list[VoiceClip]:
        return list(pack.voices)
