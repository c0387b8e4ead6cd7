"""PNG charts of evaluation reports: ``rag eval --plot`` and ``rag eval-qa --plot``.

matplotlib is optional and imported on first use; figures are drawn with the Agg canvas (no
display, no pyplot state), so they work in scripts, tests and notebooks alike
(``display(fig)`` in Jupyter shows one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Bar colours by kind of run: an encoder alone, a fusion of ours, a peer's fusion.
KIND_COLOURS = {"encoder": "#4c72b0", "fusion": "#dd8452", "peer": "#8c8c8c"}


def _figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas; a clear error when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plotting needs matplotlib: pip install matplotlib (or the 'test' extra)"
        ) from exc
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def run_kind(name: str) -> str:
    """``encoder``, ``fusion`` or ``peer``, from a run's name (``fusion:...``, ``peer:...``)."""
    prefix = name.split(":", 1)[0]
    return prefix if prefix in ("fusion", "peer") else "encoder"


def _value(row: Mapping[str, Any], key: str) -> float:
    value = row.get(key)
    return float("nan") if value is None else float(value)


def eval_figure(
    report: Mapping[str, Any], metrics: Sequence[str] = ("ndcg@10", "recall@100")
) -> Figure:
    """Horizontal bars of ``metrics`` per run of a ``rag eval`` report, coloured by kind."""
    runs = list(report["runs"])
    metrics = [m for m in metrics if any(m in r for r in runs)] or list(metrics[:1])
    fig = _figure(4.0 * len(metrics) + 1.5, 0.35 * len(runs) + 1.4)
    axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    names = [str(r["name"]) for r in runs]
    colours = [KIND_COLOURS[run_kind(n)] for n in names]
    positions = list(range(len(runs)))
    for ax, metric in zip(axes, metrics, strict=True):
        values = [_value(r, metric) for r in runs]
        ax.barh(positions, [0.0 if math.isnan(v) else v for v in values], color=colours)
        for y, v in zip(positions, values, strict=True):
            ax.text(0.01, y, "-" if math.isnan(v) else f"{v:.3f}", va="center", color="white")
        ax.set_xlim(0, 1)
        ax.set_title(metric)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(positions, names)
    axes[0].invert_yaxis()
    title = f"{report.get('dataset', '')} ({report.get('split', '')})".strip()
    fig.suptitle(title if title != "()" else "retrieval quality")
    return fig


def qa_figure(result: Mapping[str, Any]) -> Figure:
    """Accuracy and AUROC of the confidence per strategy of a ``rag eval-qa`` result; with
    per-question records, each answer's confidence beside it (green right, red wrong)."""
    runs = list(result["runs"])
    names = [str(r["name"]) for r in runs]
    records = list(result.get("records") or [])
    fig = _figure(11.0 if records else 6.0, 0.4 * len(runs) + 1.6)
    axes = fig.subplots(1, 2 if records else 1, squeeze=False)[0]
    positions = list(range(len(runs)))
    ax = axes[0]
    height = 0.4
    for offset, key, colour in (
        (-height / 2, "accuracy", "#4c72b0"),
        (height / 2, "auroc", "#c44e52"),
    ):
        values = [_value(r, key) for r in runs]
        ax.barh(
            [p + offset for p in positions],
            [0.0 if math.isnan(v) else v for v in values],
            height=height,
            color=colour,
            label="AUROC of the confidence" if key == "auroc" else key,
        )
    ax.set_yticks(positions, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.axvline(0.5, color="grey", lw=0.8, ls=":")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=2, fontsize="small")
    ax.set_title("accuracy and confidence per strategy")
    if records:
        _confidence_strip(axes[1], runs, records)
    fig.suptitle(
        f"{result.get('dataset', 'QA')}: {result.get('questions', len(records))} questions"
    )
    return fig


def _confidence_strip(ax: Any, runs: Sequence[Mapping[str, Any]], records: Sequence[Any]) -> None:
    """Each question's confidence (the run's own metric) per run, coloured by correctness."""
    for y, row in enumerate(runs):
        name, metric = row["name"], row.get("auroc_metric", "self_certainty")
        for record in records:
            run = record["runs"].get(name)
            if run is None:
                continue
            score = run.get("scores", {}).get(metric)
            if score is None or not math.isfinite(score):
                continue
            colour = "#55a868" if run["correct"] else "#c44e52"
            ax.scatter(score, y, color=colour, alpha=0.7, s=18)
    ax.set_yticks(range(len(runs)), [""] * len(runs))
    ax.set_ylim(len(runs) - 0.5, -0.5)
    ax.set_xlabel("confidence (run's metric)")
    ax.set_title("each answer: green right, red wrong")
    ax.grid(axis="x", alpha=0.3)


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (parent folders made)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110)
    return path


def plot_eval(report: Mapping[str, Any], path: str | Path) -> Path:
    """The ``rag eval`` chart of ``report`` as a PNG at ``path``."""
    return save_figure(eval_figure(report), path)


def plot_qa(result: Mapping[str, Any], path: str | Path) -> Path:
    """The ``rag eval-qa`` chart of ``result`` as a PNG at ``path``."""
    return save_figure(qa_figure(result), path)


__all__ = ["eval_figure", "plot_eval", "plot_qa", "qa_figure", "run_kind", "save_figure"]
