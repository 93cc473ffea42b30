"""The report's plots (matplotlib, Agg backend). Every function writes one PNG; a plot whose data
is missing is written as a placeholder that says why, so the declared outputs always exist."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np

DPI = 100
# PNGs without the matplotlib version in their metadata: byte-identical across versions for DVC.
META = {"Software": None}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "figure.dpi": DPI,
                         "savefig.dpi": DPI, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _save(fig, path: Path) -> Path:
    from ..io import atomic_path

    plt = _plt()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", metadata=META, bbox_inches="tight")
    plt.close(fig)
    return path


def placeholder(path: Path, title: str, message: str) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 1.8))
    ax.axis("off")
    ax.set_title(title, loc="left")
    ax.text(0.0, 0.5, "\n".join(textwrap.wrap(message, 110)), va="center", ha="left",
            transform=ax.transAxes, color="#555")
    return _save(fig, path)


def heatmap(matrix, path: Path, title: str, *, cmap: str = "Reds", vmin: float | None = 0.0,
            vmax: float | None = 1.0, center: float | None = None, fmt: str = "{:.2f}",
            cbar_label: str = "", xlabel: str = "", ylabel: str = "") -> Path:
    """Annotated heatmap of a DataFrame (rows x columns); NaN cells are grey."""
    plt = _plt()
    from matplotlib.colors import TwoSlopeNorm

    data = matrix.to_numpy(dtype=float)
    if data.size == 0:
        return placeholder(path, title, "no data")
    nr, nc = data.shape
    fig, ax = plt.subplots(figsize=(min(12.5, 1.6 + 0.62 * nc), min(14, 1.3 + 0.34 * nr)))
    norm = None
    if center is not None:
        lim = np.nanmax(np.abs(data - center)) if np.isfinite(data).any() else 1.0
        lim = lim if lim > 0 else 1.0
        norm = TwoSlopeNorm(vcenter=center, vmin=center - lim, vmax=center + lim)
        vmin = vmax = None
    cm = plt.get_cmap(cmap).with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(data), cmap=cm, vmin=vmin, vmax=vmax, norm=norm, aspect="auto")
    ax.set_xticks(range(nc), [str(c) for c in matrix.columns], rotation=45 if nc > 8 else 0,
                  ha="right" if nc > 8 else "center")
    ax.set_yticks(range(nr), [str(i) for i in matrix.index])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    if nr * nc <= 400:
        for i in range(nr):
            for j in range(nc):
                v = data[i, j]
                if np.isfinite(v):
                    rgba = im.cmap(im.norm(v))
                    lum = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
                    ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                            color="white" if lum < 0.5 else "black")
    cb = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    cb.set_label(cbar_label)
    for s in ax.spines.values():
        s.set_visible(False)
    return _save(fig, path)


def disparity_grid(table, key: str, models: Sequence[str], path: Path, title: str, *,
                   order: Sequence[str] | None = None, value: str = "defense_rate",
                   xlabel: str = "defense rate (1 - ASR), 95% bootstrap CI") -> Path:
    """One panel per model: a horizontal bar per group (``key``) with its CI; the dashed line is
    the model mean. Groups in ``order`` (e.g. the base model's hierarchy)."""
    plt = _plt()
    models = [m for m in models if (table["config"] == m).any()]
    if not models:
        return placeholder(path, title, "no groups with data (no prompt carries this attribute)")
    levels = list(order) if order else sorted(table[key].astype(str).unique())
    ncols = min(4, len(models))
    nrows = math.ceil(len(models) / ncols)
    h = max(2.2, 0.22 * len(levels) + 0.9)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols + 0.8, h * nrows), squeeze=False,
                             sharex=True, sharey=True)
    y = np.arange(len(levels))
    for k, m in enumerate(models):
        ax = axes[k // ncols][k % ncols]
        t = table[table["config"] == m].set_index(key).reindex(levels)
        v = t[value].to_numpy(dtype=float)
        lo = v - t[f"{value}_lo"].to_numpy(dtype=float)
        hi = t[f"{value}_hi"].to_numpy(dtype=float) - v
        ax.barh(y, np.nan_to_num(v), color="#4c72b0", alpha=0.85, height=0.7)
        ax.errorbar(np.nan_to_num(v), y, xerr=[np.nan_to_num(lo), np.nan_to_num(hi)], fmt="none",
                    ecolor="#222", elinewidth=0.8, capsize=1.5)
        n = t["n"].to_numpy(dtype=float)
        if np.nansum(n) > 0:
            mean = np.nansum(v * n) / np.nansum(n)
            ax.axvline(mean, color="#c44e52", ls="--", lw=1)
        ax.set_title(m, loc="left")
        ax.set_xlim(0, 1.02)
        ax.set_yticks(y, levels)
        if k == 0:
            ax.invert_yaxis()  # shared y: once for all panels
        ax.grid(axis="x", alpha=0.3)
    for k in range(len(models), nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    fig.suptitle(title, x=0.01, ha="left")
    fig.tight_layout()
    return _save(fig, path)


def transfer_plot(delta, path: Path, *, ordering=None, single=None) -> Path:
    """Top: change in ASR against the base model per training configuration and evaluation
    language (blue = lower ASR). Bottom (with three or more single-language configurations):
    the training-language x evaluation-language block in seriation order with its dendrogram,
    so languages that transfer to each other form blocks along the diagonal."""
    plt = _plt()

    title = "Change in ASR against the base model (training configuration x evaluation language)"
    d = delta.drop(index=["base"], errors="ignore")
    if d.empty:
        return placeholder(path, title, "no training configurations")
    has_tree = (ordering is not None and ordering.linkage and single is not None and len(single) >= 3)
    nr, nc = d.shape
    top_h = min(14, 1.4 + 0.34 * nr)
    data = d.to_numpy(dtype=float)
    lim = float(np.nanmax(np.abs(data))) if np.isfinite(data).any() else 1.0
    lim = lim if lim > 0 else 1.0
    if not has_tree:
        fig, ax = plt.subplots(figsize=(min(12.5, 2.4 + 0.62 * nc), top_h))
        im = _diverging(ax, d, lim)
        ax.set_title(title, loc="left")
        ax.set_xlabel("evaluation language")
        fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02).set_label("delta ASR")
        return _save(fig, path)
    from scipy.cluster.hierarchy import dendrogram

    rows = list(ordering.rows)
    cols = [c for c in ordering.columns if c in single.columns]
    sq = single.reindex(index=rows, columns=cols)
    bottom_h = min(10, 1.4 + 0.34 * len(rows))
    fig = plt.figure(figsize=(min(12.5, 3.6 + 0.62 * max(nc, len(cols))), top_h + bottom_h + 0.8))
    gs = fig.add_gridspec(2, 2, height_ratios=[top_h, bottom_h], width_ratios=[1.3, 4], hspace=0.35, wspace=0.02)
    ax = fig.add_subplot(gs[0, :])
    im = _diverging(ax, d, lim)
    ax.set_title(title, loc="left")
    ax.set_xlabel("evaluation language")
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01).set_label("delta ASR")
    axd = fig.add_subplot(gs[1, 0])
    dendrogram(np.asarray(ordering.linkage), labels=list(single.index), ax=axd, orientation="left",
               color_threshold=None, no_labels=True)
    axd.set_ylim(10 * len(rows), 0)  # leaf i at 5 + 10 i, top down: aligned with the heatmap rows
    axd.axis("off")
    axs = fig.add_subplot(gs[1, 1])
    _diverging(axs, sq, lim)
    axs.set_xlabel("evaluation language")
    axs.set_ylabel("single training language")
    axs.yaxis.set_label_position("right")
    axs.yaxis.tick_right()
    axs.set_title("single-language configurations, clustered (seriation order)", loc="left")
    return _save(fig, path)


def _diverging(ax, frame, lim: float):
    from matplotlib.colors import TwoSlopeNorm

    plt = _plt()
    data = frame.to_numpy(dtype=float)
    nr, nc = data.shape
    cm = plt.get_cmap("RdBu_r").with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(data), cmap=cm, norm=TwoSlopeNorm(0.0, -lim, lim), aspect="auto")
    ax.set_xticks(range(nc), [str(c) for c in frame.columns])
    ax.set_yticks(range(nr), [str(i) for i in frame.index])
    if nr * nc <= 400:
        for i in range(nr):
            for j in range(nc):
                if np.isfinite(data[i, j]):
                    ax.text(j, i, f"{data[i, j]:+.2f}", ha="center", va="center", fontsize=7,
                            color="white" if abs(data[i, j]) > 0.6 * lim else "black")
    for sp in ax.spines.values():
        sp.set_visible(False)
    return im


def over_refusal_scatter(summary, path: Path) -> Path:
    """Mean ASR against over-refusal per model (both over all languages) with CIs: a model in
    the lower right buys its low ASR by refusing benign prompts."""
    plt = _plt()
    title = "ASR against over-refusal (all languages)"
    s = summary.dropna(subset=["asr", "over_refusal"])
    if s.empty:
        return placeholder(path, title, "no benign control prompts or no harmful prompts were evaluated")
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    x, y = s["over_refusal"].to_numpy(float), s["asr"].to_numpy(float)
    xerr = [x - s["over_refusal_lo"].to_numpy(float), s["over_refusal_hi"].to_numpy(float) - x]
    yerr = [y - s["asr_lo"].to_numpy(float), s["asr_hi"].to_numpy(float) - y]
    ax.errorbar(x, y, xerr=np.nan_to_num(xerr), yerr=np.nan_to_num(yerr), fmt="o", ms=5,
                color="#4c72b0", ecolor="#999", elinewidth=0.8, capsize=2)
    for xi, yi, name in zip(x, y, s["config"]):
        ax.annotate(name, (xi, yi), xytext=(4, 3), textcoords="offset points", fontsize=8)
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("over-refusal (share of benign prompts refused)")
    ax.set_ylabel("ASR (share of attacks that succeed)")
    ax.axhspan(-0.03, 0.2, xmin=0.0, xmax=0.2, color="#55a868", alpha=0.12)
    ax.text(0.0, 0.0, " safe and helpful", fontsize=8, color="#2d6b3a", va="bottom")
    ax.set_title(title, loc="left")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def training_curves(model_dirs: dict[str, Path], path: Path) -> Path:
    """Loss and reward accuracy against step, one line per configuration (train_log.csv)."""
    plt = _plt()
    import pandas as pd

    title = "DPO training curves"
    logs = {}
    for name, d in model_dirs.items():
        f = Path(d) / "train_log.csv"
        if f.exists():
            df = pd.read_csv(f)
            if len(df):
                logs[name] = df
    if not logs:
        return placeholder(path, title, "no train_log.csv found in the model directories")
    # column names of dpo.py's train_log.csv (TRL's log keys in older versions)
    panels = [("loss", ("loss",)), ("reward margin", ("reward_margin", "rewards/margins")),
              ("reward accuracy", ("reward_accuracy", "rewards/accuracies"))]
    panels = [(t, c) for t, c in panels if any(k in d for d in logs.values() for k in c)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (label, candidates) in zip(axes[0], panels):
        for name, df in logs.items():
            col = next((k for k in candidates if k in df), None)
            if col is not None:
                ax.plot(df["step"], df[col], lw=1, label=name)
        ax.set_title(label, loc="left")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best", ncol=1 if len(logs) < 9 else 2)
    fig.suptitle(title, x=0.01, ha="left")
    fig.tight_layout()
    return _save(fig, path)
