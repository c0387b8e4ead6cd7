"""Plot the loss curves that ``train_situated.py --log`` writes, one line per log, to a PNG.

    python benchmarks/plot_training.py benchmarks/results/train_minilm.json --out curve.png

Each curve is the per-step InfoNCE loss smoothed by a moving average (``--window`` steps), so the
trend shows through the noise of 24-window batches.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def smoothed(losses: list[float], window: int) -> np.ndarray:
    values = np.asarray(losses, dtype=float)
    if len(values) < window:
        return values
    return np.convolve(values, np.ones(window) / window, mode="valid")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="+", type=Path, help="JSON logs of train_situated.py")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--window", type=int, default=25)
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for path in args.logs:
        record = json.loads(path.read_text(encoding="utf-8"))
        curve = smoothed(record["losses"], args.window)
        start = len(record["losses"]) - len(curve) + 1
        label = f"{path.stem} ({record['steps']} steps, {record['train_seconds']:.0f} s)"
        ax.plot(np.arange(start, start + len(curve)), curve, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel(f"InfoNCE loss ({args.window}-step mean)")
    ax.set_title("Situated adapter training (MiniLM, LoRA)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
