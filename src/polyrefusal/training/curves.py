"""Training curves: each trained model directory holds ``train_log.csv`` (written by dpo.py:
step, epoch, loss, reward_margin, reward_accuracy, reward_chosen, reward_rejected, logps_*,
learning_rate, grad_norm). DVC renders them as plots (``plots:`` in dvc.yaml); the report
embeds :func:`plot_curves`' figure and :func:`curve_summary`'s table."""

from __future__ import annotations

import csv
import os
from pathlib import Path

#: (column, panel title) of the three panels of :func:`plot_curves`.
PANELS = (("loss", "training loss (DPO + any SFT term)"), ("reward_margin", "reward margin (chosen - rejected)"),
          ("reward_accuracy", "reward accuracy"))


def read_curve(path: str | os.PathLike) -> list[dict]:
    """Rows of a ``train_log.csv`` (or of the model directory holding one), numbers as floats
    (empty cells as None)."""
    path = Path(path)
    if path.is_dir():
        path = path / "train_log.csv"
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rows.append({k: (float(v) if v not in ("", None) else None) for k, v in row.items()})
    return rows


def plot_curves(model_dirs: dict[str, str | os.PathLike], out_png: str | os.PathLike,
                smooth: int = 1) -> Path:
    """One figure with loss, reward margin and reward accuracy against step, one line per
    model (``{name: model dir or train_log.csv}``); written atomically to ``out_png``.
    ``smooth`` > 1 applies a trailing moving average of that many logged steps."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_path

    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 3.6), constrained_layout=True)
    for name, where in model_dirs.items():
        rows = read_curve(where)
        steps = [r["step"] for r in rows]
        for ax, (col, _) in zip(axes, PANELS):
            ys = [r.get(col) for r in rows]
            pts = [(s, y) for s, y in zip(steps, _moving_average(ys, smooth)) if y is not None]
            if pts:
                ax.plot(*zip(*pts), label=name, linewidth=1.2)
    for ax, (col, title) in zip(axes, PANELS):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if col == "reward_accuracy":
            ax.set_ylim(-0.05, 1.05)
    if model_dirs:
        axes[-1].legend(fontsize="small", loc="best", ncol=1 + len(model_dirs) // 8)
    out_png = Path(out_png)
    with atomic_path(out_png, suffix=".png.tmp") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out_png


def curve_summary(model_dirs: dict[str, str | os.PathLike]) -> list[dict]:
    """Per model: steps, first/last loss, last reward margin and accuracy (for a report table)."""
    out = []
    for name, where in model_dirs.items():
        rows = [r for r in read_curve(where) if r.get("loss") is not None]
        if not rows:
            out.append({"config": name, "steps": 0})
            continue
        out.append({"config": name, "steps": int(rows[-1]["step"]), "first_loss": rows[0]["loss"],
                    "last_loss": rows[-1]["loss"], "last_reward_margin": rows[-1].get("reward_margin"),
                    "last_reward_accuracy": rows[-1].get("reward_accuracy")})
    return out


def _moving_average(values: list, window: int) -> list:
    if window <= 1:
        return values
    out = []
    for i in range(len(values)):
        win = [v for v in values[max(0, i - window + 1): i + 1] if v is not None]
        out.append(sum(win) / len(win) if win and values[i] is not None else None)
    return out
