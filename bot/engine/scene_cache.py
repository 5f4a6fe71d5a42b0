"""Scene embeddings of a pack: computed once per pack and model, in batches, and cached on disk.

The cache is ``<data_dir>/embeddings/<embedder name>/<pack id>-<content hash>.npy``: an edited pack
has a new content hash and so a new file, and the old one is removed; another model has another
folder. A cache file that cannot be read or does not fit the pack is rebuilt with a warning.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bot.engine.embedder import Embedder, FloatArray, safe_name
from bot.engine.packs import CharacterPack, Scene

log = logging.getLogger(__name__)

MAX_SCENE_CHARS = 1000
"""Characters of a scene's text that are embedded (BM25 sees all of it).

e5 reads 512 tokens at a time: about 2,000 English or 500-1,000 Chinese characters. Classic scenes are
usually a few lines; the cap only bounds the cost of the odd long one, whose opening sets the topic.
"""

EMBEDDINGS_DIR = "embeddings"


def scene_passage(scene: Scene) -> str:
    """The text of ``scene`` that is embedded: its lines, cut at a line end near :data:`MAX_SCENE_CHARS`."""
    text = scene.text
    if len(text) <= MAX_SCENE_CHARS:
        return text
    cut = text[:MAX_SCENE_CHARS]
    end = cut.rfind("\n")
    return cut[:end] if end > MAX_SCENE_CHARS // 2 else cut


def cache_path(data_dir: Path, embedder: Embedder, pack: CharacterPack) -> Path:
    """Where the scene vectors of ``pack`` made by ``embedder`` are cached."""
    return data_dir / EMBEDDINGS_DIR / safe_name(embedder.name) / f"{pack.id}-{pack.content_hash}.npy"


def _read_cache(path: Path, rows: int, dim: int) -> FloatArray | None:
    """The cached vectors, or None (with a warning) when the file is unreadable or does not fit."""
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError) as exc:
        log.warning("embedding cache %s is unreadable (%s); rebuilding it", path, exc)
        return None
    if array.shape != (rows, dim) or array.dtype != np.float32 or not np.isfinite(array).all():
        log.warning(
            "embedding cache %s holds %s %s, expected (%d, %d) float32; rebuilding it",
            path,
            array.shape,
            array.dtype,
            rows,
            dim,
        )
        return None
    return np.ascontiguousarray(array)


def _write_cache(path: Path, vectors: FloatArray, pack_id: str) -> None:
    """Write ``vectors`` atomically (temp file + rename) and drop this pack's stale cache files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            np.save(file, vectors, allow_pickle=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    stale = re.compile(rf"{re.escape(pack_id)}-[0-9a-f]+\.npy")
    for other in path.parent.glob(f"{pack_id}-*.npy"):
        if other != path and stale.fullmatch(other.name):
            with contextlib.suppress(OSError):
                other.unlink()


Progress = Callable[[int, int], None]
"""Hears ``(scenes done, scenes in all)`` while a pack is indexed; called from a worker thread."""


def _embed_scenes(
    embedder: Embedder, scenes: Sequence[Scene], batch_size: int, progress: Progress | None = None
) -> FloatArray:
    passages = [scene_passage(scene) for scene in scenes]
    if not passages:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    batches = []
    for start in range(0, len(passages), batch_size):
        batches.append(embedder.embed_passages(passages[start : start + batch_size]))
        if progress is not None:
            progress(min(start + batch_size, len(passages)), len(passages))
    vectors = np.ascontiguousarray(np.concatenate(batches), dtype=np.float32)
    if vectors.shape != (len(passages), embedder.dim):
        raise ValueError(f"embedder returned {vectors.shape}, expected ({len(passages)}, {embedder.dim})")
    return vectors


def scene_vectors(
    pack: CharacterPack,
    embedder: Embedder,
    *,
    data_dir: Path | None = None,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> FloatArray | None:
    """The embeddings of the pack's scenes, from the cache or computed (and cached); None on failure.

    ``progress`` hears each batch computed (nothing when the cache has them all).
    """
    try:
        embedder.load()
        dim = embedder.dim
    except Exception as exc:
        log.warning(
            "embedder %s is unavailable (%s); pack %r uses lexical retrieval only",
            embedder.name,
            exc,
            pack.id,
        )
        return None
    path = cache_path(data_dir, embedder, pack) if data_dir is not None else None
    if path is not None:
        cached = _read_cache(path, len(pack.scenes), dim)
        if cached is not None:
            log.debug("pack %r: scene embeddings loaded from %s", pack.id, path)
            return cached
    started = time.perf_counter()
    try:
        vectors = _embed_scenes(embedder, pack.scenes, batch_size, progress)
    except Exception as exc:
        log.warning("embedding the scenes of pack %r failed (%s); using lexical retrieval only", pack.id, exc)
        return None
    log.info(
        "pack %r: embedded %d scenes with %s in %.1f s",
        pack.id,
        len(pack.scenes),
        embedder.name,
        time.perf_counter() - started,
    )
    if path is not None:
        try:
            _write_cache(path, vectors, pack.id)
        except OSError as exc:
            log.warning(
                "cannot write the embedding cache %s (%s); it will be recomputed next start", path, exc
            )
    return vectors
