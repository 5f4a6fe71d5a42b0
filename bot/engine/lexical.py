"""Lexical side of scene retrieval: a tokeniser for mixed Chinese/English text and a small BM25.

Dense embeddings find paraphrases; BM25 finds the exact rare words a paraphrase model blurs: names,
places, objects ("ferry", "月饼"). The two rankings are fused in :mod:`bot.engine.retrieval`.

Tokens:

* Chinese (any run of Han characters, kana included) gives jieba's words *and* the run's character
  bigrams. jieba alone misses matches when it cuts the query and the scene differently (``下雨天`` vs
  ``下雨``); bigrams alone miss one-character words (``猫``, ``茶``). Together a whole-word match counts
  a little more than a bigram-only match, which is what we want.
* Everything else: lowercase words, apostrophes dropped, a tiny stop-word list, and naive plural
  stripping (``cats`` → ``cat``, ``stories`` → ``story``). Query and scenes go through the same
  function, so consistency matters more than linguistic correctness.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUNS = re.compile(rf"(?P<cjk>[{_CJK}]+)|(?P<word>[^\W_{_CJK}]+(?:['\u2019][^\W_{_CJK}]+)*)")

ENGLISH_STOP_WORDS = frozenset(
    """a about after all also am an and any are as at be been but by can could did do does for from had
    has have he her here him his how i if in into is it its just me my no not of on or our out over she
    so some than that the their them then there these they this those to too up us was we were what when
    where which who why will with would you your""".split()
)
"""Words that say nothing about a scene's topic. Kept tiny: BM25's IDF already discounts common words."""

CHINESE_STOP_WORDS = frozenset(
    "的 了 吗 吧 呢 啊 呀 嘛 哦 哈 么 着 地 得 之 和 与 及 是 在 也 就 都 而".split()
)
"""Particles and glue characters; they are dropped as jieba words, bigrams that contain them stay."""

_jieba_lock = threading.Lock()
_jieba_ready = False


def _jieba_cut(text: str) -> list[str]:
    """``jieba.lcut`` with jieba imported and its dictionary loaded once, quietly.

    NOTE: jieba logs "Building prefix dict ..." at DEBUG through its own stderr handler and loads its
    dictionary (~1 s) on first use; doing it here, under a lock, keeps both out of the event loop
    as long as the first tokenisation happens in a worker thread (index building does).
    """
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        with _jieba_lock:
            if not _jieba_ready:
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_ready = True
    words: list[str] = jieba.lcut(text)
    return words


def _english_token(word: str) -> str | None:
    word = word.replace("\u2019", "'")
    if word.endswith("'s"):
        word = word[:-2]
    word = word.replace("'", "")
    if len(word) < 2 and not word.isdigit():
        return None
    if word in ENGLISH_STOP_WORDS:
        return None
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lexical tokens of ``text`` (see the module docstring); mixed text is handled run by run."""
    tokens: list[str] = []
    for match in _RUNS.finditer(text.lower()):
        run = match["cjk"]
        if run is None:
            token = _english_token(match["word"])
            if token is not None:
                tokens.append(token)
            continue
        tokens.extend(word for word in _jieba_cut(run) if word not in CHINESE_STOP_WORDS)
        tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
    return tokens


FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]


@dataclass(slots=True, frozen=True)
class _Postings:
    docs: IntArray
    weights: FloatArray
    """The term's whole BM25 contribution to each of ``docs``: it depends only on the index."""


class BM25:
    """Okapi BM25 over pre-tokenised documents, scored through the query's terms only.

    Every per-(term, document) weight is computed at build time, so a search costs one vectorised
    ``scores[docs] += weights`` per distinct query term: microseconds for a few hundred scenes.
    IDF is the non-negative ``log(1 + (N - df + 0.5) / (df + 0.5))`` so that a word found in most
    scenes never counts against them.
    """

    def __init__(self, documents: Sequence[Sequence[str]], *, k1: float = 1.2, b: float = 0.75) -> None:
        self.size = len(documents)
        lengths = np.array([len(doc) for doc in documents], dtype=np.float32)
        average = float(lengths.mean()) if self.size and lengths.sum() > 0 else 1.0
        norm = k1 * (1.0 - b + b * lengths / average)
        by_term: dict[str, tuple[list[int], list[int]]] = {}
        for index, doc in enumerate(documents):
            for term, count in Counter(doc).items():
                docs, counts = by_term.setdefault(term, ([], []))
                docs.append(index)
                counts.append(count)
        self._postings: dict[str, _Postings] = {}
        self._idf: dict[str, float] = {}
        for term, (docs, counts) in by_term.items():
            idf = self._idf[term] = self._idf_of(len(docs))
            doc_ids = np.array(docs, dtype=np.int32)
            tf = np.array(counts, dtype=np.float32)
            weights = (idf * tf * (k1 + 1.0) / (tf + norm[doc_ids])).astype(np.float32)
            self._postings[term] = _Postings(doc_ids, weights)
        self._unseen_idf = self._idf_of(0)

    def _idf_of(self, df: int) -> float:
        return idf(self.size, df)

    def __contains__(self, term: object) -> bool:
        return term in self._postings

    @staticmethod
    def _weighted(query: Mapping[str, float] | Iterable[str]) -> Mapping[str, float]:
        return query if isinstance(query, Mapping) else dict.fromkeys(query, 1.0)

    def scores(self, query: Mapping[str, float] | Iterable[str]) -> FloatArray:
        """BM25 score of every document; ``query`` is terms, or terms mapped to weights.

        A term repeated in an iterable counts once (classic BM25 ignores query term frequency).
        """
        result = np.zeros(self.size, dtype=np.float32)
        for term, weight in self._weighted(query).items():
            postings = self._postings.get(term)
            if postings is not None and weight:
                result[postings.docs] += np.float32(weight) * postings.weights
        return result

    def reference(self, query: Mapping[str, float] | Iterable[str]) -> float:
        """The score of a document holding every query term once at average length: ``sum(w * idf)``.

        A term no document holds counts at the highest IDF: a query made mostly of words the corpus
        never uses is poorly covered by whichever document matches its one common word.
        """
        return sum(
            weight * self._idf.get(term, self._unseen_idf) for term, weight in self._weighted(query).items()
        )

    def coverage(self, query: Mapping[str, float] | Iterable[str]) -> FloatArray:
        """:meth:`scores` divided by :meth:`reference`: comparable across queries and corpora.

        About 1 when a document holds every query term once at average length; 0 when it holds none;
        above 1 for repeated terms in short documents.
        """
        reference = self.reference(query)
        scores = self.scores(query)
        return scores / np.float32(reference) if reference > 0 else scores


def idf(size: int, df: int) -> float:
    """BM25's non-negative inverse document frequency of a term ``df`` of ``size`` documents hold."""
    return math.log(1.0 + (size - df + 0.5) / (df + 0.5))


def coverage_of(
    counts: Sequence[Mapping[str, int]],
    lengths: FloatArray,
    query: Mapping[str, float],
    *,
    k1: float = 1.2,
    b: float = 0.75,
) -> FloatArray:
    """:meth:`BM25.coverage` of ``query`` over documents given as term counts and lengths, computed for
    the query's terms only: for a corpus searched once (recall's thousands of older messages, a new
    set at every reply) this costs a lookup per document and query term instead of a whole index."""
    size = len(counts)
    if not size:
        return np.zeros(0, dtype=np.float32)
    average = float(lengths.mean()) if lengths.sum() > 0 else 1.0
    norm = k1 * (1.0 - b + b * lengths / average)
    scores = np.zeros(size, dtype=np.float32)
    reference = 0.0
    for term, weight in query.items():
        tf = np.fromiter((count.get(term, 0) for count in counts), dtype=np.float32, count=size)
        term_idf = idf(size, int(np.count_nonzero(tf)))
        reference += weight * term_idf
        if weight and tf.any():
            scores += np.float32(weight * term_idf) * tf * (k1 + 1.0) / (tf + norm)
    return scores / np.float32(reference) if reference > 0 else scores


def word_count(text: str) -> int:
    """How many words of ``text`` carry meaning: English words and jieba's Chinese words, stop words out.

    Unlike :func:`tokenize` it counts no bigrams, so a Chinese and an English sentence saying the same
    thing get about the same count; retrieval uses it to tell a message that stands alone from a short
    follow-up ("why?", "然后呢？") that needs the line before it.
    """
    count = 0
    for match in _RUNS.finditer(text.lower()):
        run = match["cjk"]
        if run is None:
            count += _english_token(match["word"]) is not None
        else:
            count += sum(word not in CHINESE_STOP_WORDS for word in _jieba_cut(run))
    return count
