"""Two or more models side by side: per pack and overall, the rubric, retrieval into the prompt, cost.

The verdict line states the difference of the overall means with both standard deviations and the
number of scored answers, and nothing more: a handful of questions judged a few times supports a
"which is ahead, by how much, how noisy", not a significance test.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.eval.judge import DIMENSIONS, ModelScores

OVERALL = "all packs"


def groups(models: Sequence[ModelScores]) -> dict[str, list[ModelScores]]:
    """Each pack's figures per model (a model that left a pack out has no row there), then all packs
    together: only those every model answered, so that no row's mean counts a pack another row's
    lacks (the heading names them when that leaves some out)."""
    packs = list(dict.fromkeys(answer.pack for model in models for answer in model.answers))
    grouped = {pack: [row for model in models if (row := model.for_pack(pack)).answers] for pack in packs}
    common = [pack for pack, rows in grouped.items() if len(rows) == len(models)]
    if common == packs and len(packs) > 1:
        grouped[OVERALL] = list(models)
    elif len(common) > 1:
        heading = f"{OVERALL} every model answered ({', '.join(common)})"
        grouped[heading] = [
            ModelScores(model.model, [answer for answer in model.answers if answer.pack in common])
            for model in models
        ]
    return grouped


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def scores_table(models: Sequence[ModelScores], *, scenes: bool = False) -> str:
    """Rows: models; columns: each dimension's mean ± sd, overall, scored n/N, median latency, tokens
    and cost; with ``scenes`` also the share of answers whose prompt held the question's scene and
    recall@1 of retrieval."""
    if not models:
        return "(no model was judged)"
    columns = [*DIMENSIONS, "overall"]
    extra = ["scene in prompt", "recall@1"] if scenes else []
    heads = ["model", *columns, "scored", *extra, "latency s", "tokens", "cost $"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for model in models:
        cells = [model.model]
        for name in columns:
            found = model.dimension(name)
            cells.append("–" if found is None else f"{found[0]:.2f} ± {found[1]:.2f}")
        cells.append(f"{len(model.scored)}/{len(model.answers)}")
        if scenes:
            cells += [_share(model.scene_in_prompt), _share(model.recall_at_1)]
        cost = "–" if model.cost is None else f"{model.cost:.5f}"
        cells += [f"{model.latency_s:.2f}", f"{model.tokens:.0f}", cost]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(models: Sequence[ModelScores]) -> str:
    """Which model scores highest overall, and its lead over each other model, with sds and n:
    ``Overall, A (4.00 ± 0.00, n=4) is ahead of B (3.75 ± 0.25, n=4) by 0.25.``"""
    scored = [(model, found) for model in models if (found := model.dimension("overall")) is not None]
    if len(scored) < 2:
        return "Fewer than two models have scored answers here: nothing to compare."
    scored.sort(key=lambda pair: pair[1][0], reverse=True)

    def figures(model: ModelScores, found: tuple[float, float]) -> str:
        return f"{model.model} ({found[0]:.2f} ± {found[1]:.2f}, n={len(model.scored)})"

    (best, top), others = scored[0], scored[1:]
    leads = [
        f"ahead of {figures(other, found)} by {top[0] - found[0]:.2f}"
        if f"{top[0]:.2f}" != f"{found[0]:.2f}"
        else f"level with {figures(other, found)}"
        for other, found in others
    ]
    return f"Overall, {figures(best, top)} is " + "; ".join(leads) + "."


def comparison(models: Sequence[ModelScores]) -> str:
    """The Markdown of the comparison: per pack, then all packs, a table and the verdict line."""
    parts = []
    for pack, rows in groups(models).items():
        parts += [f"### {pack}", "", scores_table(rows, scenes=True), "", verdict(rows), ""]
    return "\n".join(parts).rstrip() + "\n"


def comparison_json(models: Sequence[ModelScores]) -> dict[str, list[dict[str, object]]]:
    """The comparison's numbers: per pack and all packs, one entry per model."""
    return {
        pack: [
            {
                "model": row.model,
                "dimensions": {name: row.dimension(name) for name in [*DIMENSIONS, "overall"]},
                "scored": len(row.scored),
                "answers": len(row.answers),
                "scene_in_prompt": row.scene_in_prompt,
                "recall_at_1": row.recall_at_1,
                "latency_s": row.latency_s,
                "tokens": row.tokens,
                "cost": row.cost,
            }
            for row in rows
        ]
        for pack, rows in groups(models).items()
    }
