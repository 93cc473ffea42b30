"""Agreement between judges, per language: Cohen's kappa for every pair of judges.

``kappa_table(records)`` reads the per-judge verdicts that ``judge_records`` writes
(``verdicts``, or ``<field>_verdicts``) and compares each pair of judges on the records where
both gave a parsed label (``safe``/``unsafe``); records where either could not be parsed are
counted in ``n_unparsed`` and left out. ``kappa`` is None where it is undefined (both judges
gave one and the same label to every record, so chance agreement is 1).
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

PARSED = ("safe", "unsafe")


def cohen_kappa(a, b, labels=None) -> float | None:
    """Cohen's kappa of two raters' labels (same length); None where undefined."""
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError("label lists differ in length")
    if not a:
        return None
    labels = list(labels) if labels is not None else sorted(set(a) | set(b))
    index = {lb: i for i, lb in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), dtype=float)
    for x, y in zip(a, b):
        m[index[x], index[y]] += 1
    n = m.sum()
    po = np.trace(m) / n
    pe = float((m.sum(axis=1) / n) @ (m.sum(axis=0) / n))
    if np.isclose(pe, 1.0):
        return None
    return float((po - pe) / (1 - pe))


def _verdicts(record: dict, field: str) -> dict:
    key = "verdicts" if field == "response" else f"{field}_verdicts"
    v = record.get(key) or {}
    if isinstance(v, str):
        v = json.loads(v)
    return {k: x for k, x in v.items() if isinstance(x, dict)}


def kappa_table(records, field: str = "response", include_all: bool = False,
                judges: list[str] | None = None) -> list[dict]:
    """One row per (language, judge pair): ``lang, judge_a, judge_b, n, kappa, agreement,
    n_unparsed``; with ``include_all`` also rows with ``lang`` "all" (every language pooled).
    ``judges`` restricts the comparison to those judges: leave an adjudicator out, as it only
    judged the disagreements (a kappa on that subset would mean nothing)."""
    pairs: dict[tuple, list] = defaultdict(list)
    unparsed: dict[tuple, int] = defaultdict(int)
    keep = set(judges) if judges is not None else None
    for r in records:
        v = _verdicts(r, field)
        if keep is not None:
            v = {k: x for k, x in v.items() if k in keep}
        langs = [r.get("lang")] + (["all"] if include_all else [])
        for ja, jb in itertools.combinations(sorted(v), 2):
            la, lb = v[ja].get("label"), v[jb].get("label")
            for lang in langs:
                if la in PARSED and lb in PARSED:
                    pairs[(lang, ja, jb)].append((la, lb))
                else:
                    unparsed[(lang, ja, jb)] += 1
    rows = []
    for key in sorted(set(pairs) | set(unparsed), key=lambda k: (k[0] == "all", str(k[0]), k[1], k[2])):
        lang, ja, jb = key
        got = pairs.get(key, [])
        a = [x for x, _ in got]
        b = [y for _, y in got]
        rows.append({"lang": lang, "judge_a": ja, "judge_b": jb, "n": len(got),
                     "kappa": cohen_kappa(a, b, PARSED) if got else None,
                     "agreement": (sum(x == y for x, y in got) / len(got)) if got else None,
                     "n_unparsed": unparsed.get(key, 0)})
    return rows


def plot_kappa_heatmap(table: list[dict], path, languages: list[str] | None = None, title: str | None = None) -> None:
    """Heatmap of kappa: one row per judge pair, one column per language (blank = undefined)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..io import atomic_path

    langs = languages or list(dict.fromkeys(r["lang"] for r in table))
    pairs = list(dict.fromkeys((r["judge_a"], r["judge_b"]) for r in table))
    grid = np.full((max(len(pairs), 1), max(len(langs), 1)), np.nan)
    ns = np.zeros_like(grid)
    for r in table:
        if r["lang"] in langs and (r["judge_a"], r["judge_b"]) in pairs:
            i, j = pairs.index((r["judge_a"], r["judge_b"])), langs.index(r["lang"])
            grid[i, j] = np.nan if r["kappa"] is None else r["kappa"]
            ns[i, j] = r["n"]
    fig = Figure(figsize=(1.0 + 0.75 * max(len(langs), 1), 1.2 + 0.55 * max(len(pairs), 1)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(np.ma.masked_invalid(grid), vmin=-1, vmax=1, cmap="RdYlGn", aspect="auto")
    ax.set_xticks(range(len(langs)), labels=[str(x) for x in langs])
    ax.set_yticks(range(len(pairs)), labels=[f"{a} vs {b}" for a, b in pairs])
    if not pairs:
        ax.text(0, 0, "no pair of judges", ha="center", va="center")
    for i in range(len(pairs)):
        for j in range(len(langs)):
            text = "n/a" if np.isnan(grid[i, j]) else f"{grid[i, j]:.2f}"
            ax.text(j, i, f"{text}\nn={int(ns[i, j])}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="Cohen's kappa")
    ax.set_title(title or "Judge agreement per language")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig.tight_layout()
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_path(path, suffix=f".{fmt}") as tmp:
        fig.savefig(tmp, format=fmt, dpi=120)
