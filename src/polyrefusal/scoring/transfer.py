"""The cross-lingual transfer matrix: training configuration x evaluation language, ASR and its
change against the base model, and an ordering of the single-language configurations that
shows which languages transfer to which.

Ordering: the rows ``single_<lang>`` of the change-in-ASR matrix are clustered hierarchically
(scipy, average linkage on the Euclidean distance between rows; a row is the effect of training
on one language on every evaluation language) and put in the optimal leaf order (seriation), so
training languages with similar transfer profiles sit next to each other; the evaluation
languages are put in the same order, so transfer blocks show up along the diagonal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

SINGLE_PREFIX = "single_"


def transfer_matrix(asr, models: Sequence[str], langs: Sequence[str], value: str = "asr"):
    """Rows = models (in the given order, base first), columns = evaluation languages."""
    m = asr.pivot(index="config", columns="lang", values=value)
    m = m.reindex(index=list(models), columns=list(langs))
    m.index.name, m.columns.name = "config", None
    return m


def transfer_delta(matrix, base: str = "base"):
    """Change in ASR against the base model (negative = the configuration lowers ASR)."""
    return matrix.sub(matrix.loc[base], axis=1)


def single_language_matrix(delta, langs: Sequence[str]):
    """Square part of the delta matrix: rows = the single training language (``single_<l>``
    configurations present), columns = evaluation languages."""
    rows = [lang for lang in langs if f"{SINGLE_PREFIX}{lang}" in delta.index]
    sq = delta.loc[[f"{SINGLE_PREFIX}{lang}" for lang in rows], list(langs)].copy()
    sq.index = rows
    sq.index.name, sq.columns.name = "train_lang", None
    return sq


@dataclass
class Ordering:
    rows: list[str]
    columns: list[str]
    method: str
    linkage: list = field(default_factory=list)  # scipy linkage matrix (as lists) or []
    clusters: dict = field(default_factory=dict)  # row -> cluster id (1-based)


def seriate(matrix, method: str = "average") -> Ordering:
    """Order the rows of ``matrix`` by hierarchical clustering with optimal leaf ordering, and
    its columns the same way where they name the same items (the single-language square
    matrix), else by the columns' own clustering. Missing values count as 0 (no change).
    Fewer than three rows keep their order (nothing to seriate)."""
    from scipy.cluster.hierarchy import fcluster, linkage, optimal_leaf_ordering
    from scipy.spatial.distance import pdist

    rows, cols = list(matrix.index), list(matrix.columns)
    x = np.nan_to_num(matrix.to_numpy(dtype=float), nan=0.0)
    if len(rows) < 3:
        return Ordering(rows, cols, "input order (fewer than 3 rows)")
    dist = pdist(x, metric="euclidean")
    z = optimal_leaf_ordering(linkage(dist, method=method), dist)
    from scipy.cluster.hierarchy import leaves_list

    row_order = [rows[i] for i in leaves_list(z)]
    k = max(1, int(math.ceil(math.sqrt(len(rows)))))
    labels = fcluster(z, t=k, criterion="maxclust")
    clusters = {rows[i]: int(labels[i]) for i in range(len(rows))}
    if set(rows) <= set(cols):
        col_order = row_order + [c for c in cols if c not in rows]
    elif len(cols) >= 3:
        dc = pdist(x.T, metric="euclidean")
        zc = optimal_leaf_ordering(linkage(dc, method=method), dc)
        col_order = [cols[i] for i in leaves_list(zc)]
    else:
        col_order = cols
    return Ordering(row_order, col_order,
                    f"hierarchical clustering ({method} linkage, Euclidean) + optimal leaf ordering",
                    z.tolist(), clusters)


def transfer_summary(square):
    """Per training language: effect on itself (diagonal), mean effect on the other languages,
    and the evaluation language it helps most (most negative change) besides itself; per
    evaluation language the mean change it receives from the other training languages."""
    import pandas as pd

    rows = []
    for train in square.index:
        row = square.loc[train]
        others = row.drop(labels=[train], errors="ignore").dropna()
        best = others.idxmin() if len(others) else None
        received = square[train].drop(labels=[train], errors="ignore").dropna() if train in square.columns else None
        rows.append({
            "train_lang": train,
            "self": float(row.get(train, math.nan)),
            "others_mean": float(others.mean()) if len(others) else math.nan,
            "best_other": best, "best_other_delta": float(others.min()) if len(others) else math.nan,
            "received_mean": float(received.mean()) if received is not None and len(received) else math.nan,
        })
    return pd.DataFrame(rows, columns=["train_lang", "self", "others_mean", "best_other",
                                       "best_other_delta", "received_mean"])
