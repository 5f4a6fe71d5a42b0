"""The evaluation report: Markdown tables, every number as JSON, and two plots."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from types import ModuleType

from bot.errors import ConfigError, missing_extra
from bot.eval.compare import comparison, comparison_json, groups, scores_table
from bot.eval.judge import DIMENSIONS, ModelScores
from bot.eval.retrieval import RetrievalScores


def pyplot() -> ModuleType:
    """matplotlib's ``pyplot``, drawing off-screen; a :class:`ConfigError` naming the extra when missing."""
    try:
        import matplotlib
    except ModuleNotFoundError as exc:
        raise missing_extra(ConfigError, "drawing the report's plots", "matplotlib", "eval") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def retrieval_table(scores: Sequence[RetrievalScores]) -> str:
    if not scores:
        return "(no pack has questions)"
    ks = sorted(scores[0].recall)
    head = "| pack | mode | questions | " + " | ".join(f"recall@{k}" for k in ks) + " | MRR |"
    lines = [head, "|" + "---|" * (4 + len(ks))]
    for row in scores:
        recalls = " | ".join(f"{row.recall[k]:.2f}" for k in ks)
        lines.append(f"| {row.pack} | {row.mode} | {row.questions} | {recalls} | {row.mrr:.2f} |")
    return "\n".join(lines)


def judge_table(models: Sequence[ModelScores]) -> str:
    return scores_table(models)


def plot_retrieval(scores: Sequence[RetrievalScores], path: Path) -> None:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 4))
    labels = [f"{row.pack}\n{row.mode}" for row in scores]
    metrics = [*(f"recall@{k}" for k in sorted(scores[0].recall)), "MRR"] if scores else []
    width = 0.8 / max(len(metrics), 1)
    for number, metric in enumerate(metrics):
        values = [row.mrr if metric == "MRR" else row.recall[int(metric.split("@")[1])] for row in scores]
        axis.bar([i + number * width for i in range(len(scores))], values, width, label=metric)
    axis.set_xticks([i + width * (len(metrics) - 1) / 2 for i in range(len(scores))], labels, fontsize=7)
    axis.set_ylim(0, 1)
    axis.set_title("Retrieval of the named scene")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def plot_judge(models: Sequence[ModelScores], path: Path) -> None:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(models), 1)
    for number, model in enumerate(models):
        found = [model.dimension(name) for name in DIMENSIONS]
        means = [value[0] if value else 0.0 for value in found]
        errors = [value[1] if value else 0.0 for value in found]
        positions = [i + number * width for i in range(len(DIMENSIONS))]
        axis.bar(positions, means, width, yerr=errors, capsize=3, label=model.model)
    axis.set_xticks([i + width * (len(models) - 1) / 2 for i in range(len(DIMENSIONS))], DIMENSIONS)
    axis.set_ylim(0, 5)
    axis.set_title("Judge scores (mean ± sd, 1–5)")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def plot_compare(models: Sequence[ModelScores], path: Path) -> None:
    """One panel per pack (and all packs): each dimension's mean ± sd, a bar per model."""
    plt = pyplot()
    grouped = groups(models)
    figure, axes = plt.subplots(1, len(grouped), figsize=(4 * len(grouped), 4), squeeze=False)
    names = [model.model for model in models]
    width = 0.8 / max(len(names), 1)
    for axis, (pack, rows) in zip(axes[0], grouped.items(), strict=True):
        by_name = {row.model: row for row in rows}
        for number, name in enumerate(names):
            row = by_name.get(name)
            if row is None:
                continue  # the model left this pack out
            found = [row.dimension(dimension) for dimension in DIMENSIONS]
            axis.bar(
                [i + number * width for i in range(len(DIMENSIONS))],
                [value[0] if value else 0.0 for value in found],
                width,
                yerr=[value[1] if value else 0.0 for value in found],
                capsize=3,
                color=f"C{number}",
                label=name,
            )
        axis.set_xticks(
            [i + width * (len(names) - 1) / 2 for i in range(len(DIMENSIONS))], DIMENSIONS, fontsize=7
        )
        axis.set_ylim(0, 5)
        axis.set_title(pack)
    handles = {
        label: handle
        for axis in axes[0]
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True)
    }
    figure.legend(handles.values(), handles.keys(), fontsize=7, loc="lower center", ncols=len(handles))
    figure.suptitle("Judge scores per pack (mean ± sd, 1–5)")
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    figure.savefig(path)
    plt.close(figure)


def write_report(
    folder: Path,
    retrieval: Sequence[RetrievalScores],
    models: Sequence[ModelScores],
    settings: dict[str, object],
) -> Path:
    """``report.md``, ``results.json`` and the plots in ``folder``; returns the report's path."""
    folder.mkdir(parents=True, exist_ok=True)
    if retrieval:
        plot_retrieval(retrieval, folder / "retrieval.png")
    if models:
        plot_judge(models, folder / "judge.png")
    if len(models) > 1:
        plot_compare(models, folder / "compare.png")
    summaries = [model.summary() for model in models]
    settings_lines = "\n".join(f"- {key}: {value}" for key, value in settings.items())
    text = [
        "# Evaluation report",
        "",
        "## Settings",
        settings_lines,
        "",
        "## Retrieval",
        retrieval_table(retrieval),
        "",
    ]
    if retrieval:
        text += ["![retrieval](retrieval.png)", ""]
    text += ["## Role-play quality (judge model)", judge_table(models), ""]
    if models:
        text += ["![judge](judge.png)", "", *[f"- {line}" for line in summaries], ""]
    if len(models) > 1:
        text += [
            "## Comparison",
            "",
            "Per pack, then over the packs every model answered: each rubric dimension's mean ± sd; "
            "*scored*: answers the judge scored / answers; *scene in prompt*: the share of answers "
            "whose prompt held the scene the question names; *recall@1*: the share whose retrieval put "
            "it first; median latency, tokens and cost per answer.",
            "",
            comparison(models),
            "![compare](compare.png)",
            "",
        ]
    report = folder / "report.md"
    report.write_text("\n".join(text), encoding="utf-8")
    results = {
        "settings": settings,
        "retrieval": [asdict(row) for row in retrieval],
        "models": [
            {
                "model": model.model,
                "summary": model.summary(),
                "dimensions": {name: model.dimension(name) for name in [*DIMENSIONS, "overall"]},
                "scene_in_prompt": model.scene_in_prompt,
                "recall_at_1": model.recall_at_1,
                "answers": [asdict(answer) for answer in model.answers],
            }
            for model in models
        ],
        "comparison": comparison_json(models) if len(models) > 1 else {},
    }
    (folder / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    return report
