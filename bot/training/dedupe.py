"""Exact and near duplicates among training conversations.

A duplicate teaches a model to parrot, and one on each side of the train/validation split makes the
validation loss a lie. Exact duplicates are the same text once case, spaces and punctuation are put
aside; near duplicates share at least :data:`NEAR` of their character shingles (Jaccard), found with
MinHash and banded locality-sensitive hashing, then checked exactly. Every hash is deterministic (a
rolling hash of code points and fixed seeds, never Python's salted ``hash``), so an export comes out
the same each time.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SHINGLE = 4
"""Characters per shingle: short enough for Chinese, long enough that English words count."""
NEAR = 0.8
"""Jaccard similarity of shingle sets at or above which two conversations are near duplicates."""
PERMUTATIONS = 128
BANDS = 16
"""16 bands of 8 rows: a pair at the :data:`NEAR` similarity is a candidate with probability 0.95, a
pair at half of it with 0.06, so few pairs are checked exactly."""
_PRIME = (1 << 61) - 1
_RANDOM = np.random.default_rng(20261207)
_A = _RANDOM.integers(1, _PRIME, PERMUTATIONS, dtype=np.uint64)
_B = _RANDOM.integers(0, _PRIME, PERMUTATIONS, dtype=np.uint64)


_NOT_WORD = re.compile(r"[\W_]+")
_MIX = np.uint64(0x9E3779B97F4A7C15)


def normalized(text: str) -> str:
    """``text`` folded for comparison: NFKC, case folded, without spaces or punctuation."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


def shingles(text: str) -> np.ndarray:
    """The distinct hashes of ``text``'s :data:`SHINGLE`-character shingles, sorted (uint64)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(codes) <= SHINGLE:
        codes = np.concatenate([codes, np.zeros(SHINGLE - len(codes) + 1, dtype=np.uint64)])
    hashes = np.zeros(len(codes) - SHINGLE + 1, dtype=np.uint64)
    for offset in range(SHINGLE):
        # NOTE: uint64 arithmetic wraps, which is what a rolling hash wants.
        hashes = hashes * _MIX + codes[offset : len(codes) - SHINGLE + 1 + offset]
    unique: np.ndarray = np.unique(hashes)
    return unique


def _signature(values: np.ndarray) -> np.ndarray:
    """The MinHash signature: per permutation ``(a·x + b) mod p``, the least over the shingles."""
    # NOTE: uint64 arithmetic wraps; the wrap is a fixed permutation of its own, which is all
    # MinHash needs (the same function for every set), so no big integers are required.
    mixed = (values[None, :] * _A[:, None] + _B[:, None]) % np.uint64(_PRIME)
    signature: np.ndarray = mixed.min(axis=1)
    return signature


@dataclass(slots=True, frozen=True)
class Duplicates:
    """Which of the texts to keep, and how many of the others were exact or near duplicates."""

    kept: list[int]
    exact: int
    near: int


def find_duplicates(texts: Sequence[str]) -> Duplicates:
    """Keep the first of every group of exact or near duplicates, in the order given."""
    kept: list[int] = []
    seen: set[str] = set()
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    kept_shingles: dict[int, np.ndarray] = {}
    rows = PERMUTATIONS // BANDS
    exact = near = 0
    for index, text in enumerate(texts):
        folded = normalized(text)
        digest = hashlib.sha256(folded.encode()).hexdigest()
        if digest in seen:
            exact += 1
            continue
        seen.add(digest)
        hashes = shingles(folded)
        signature = _signature(hashes)
        bands = [(band, signature[band * rows : (band + 1) * rows].tobytes()) for band in range(BANDS)]
        candidates = {other for key in bands for other in buckets.get(key, ())}
        if any(jaccard(hashes, kept_shingles[other]) >= NEAR for other in sorted(candidates)):
            near += 1
            continue
        kept.append(index)
        kept_shingles[index] = hashes
        for key in bands:
            buckets[key].append(index)
    return Duplicates(kept, exact, near)


def jaccard(first: np.ndarray, second: np.ndarray) -> float:
    """Jaccard similarity of two results of :func:`shingles`."""
    shared = len(np.intersect1d(first, second, assume_unique=True))
    union = len(first) + len(second) - shared
    return shared / union if union else 1.0
