"""Summaries of repeated measurements: every figure the bench prints is a median and a 95th percentile."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class Percentiles:
    """The median and 95th percentile of ``count`` samples (in the samples' unit)."""

    median: float
    p95: float
    count: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Percentiles:
        if not samples:
            raise ValueError("no samples to summarise")
        ordered = sorted(samples)
        index = max(0, min(len(ordered) - 1, round(0.95 * len(ordered)) - 1))
        return cls(statistics.median(ordered), ordered[index], len(ordered))

    def scaled(self, factor: float) -> Percentiles:
        return Percentiles(self.median * factor, self.p95 * factor, self.count)

    def __str__(self) -> str:
        return f"{self.median:.2f} / {self.p95:.2f}"
