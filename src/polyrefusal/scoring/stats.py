"""Statistics for the report: percentile-bootstrap confidence intervals, rate tables grouped by
any keys, and disparity across groups (gap, ratio, deviation from the mean, ranking).

Conventions (stated in the report too):

- A *rate* is the mean of 0/1 outcomes (ASR: 1 = attack succeeded; over-refusal: 1 = a benign
  prompt refused; consistency: 1 = answer in the prompt's language).
- Confidence intervals are 95 % percentile-bootstrap intervals over 1,000 resamples by default:
  the outcomes are resampled with replacement (``numpy.random.default_rng``), the statistic is
  recomputed on each resample, and the 2.5th and 97.5th percentiles (numpy's default linear
  interpolation) are the bounds.
- Every cell is seeded from the run's seed *and* the cell's key (``seed_for``), so a cell's
  interval does not change when other models or languages are added.
- Several independent groups (target groups, languages) are resampled *within* each group
  (stratified bootstrap), so the groups keep their sizes and every replicate yields a gap,
  ratio, deviations and ranks computed on the same resampled data.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

N_RESAMPLES = 1000
LEVEL = 0.95
SEED = 0


def seed_for(seed: int, *key) -> np.random.Generator:
    """A generator seeded by the run seed and a cell key (stable across Python runs)."""
    text = "\x1f".join(map(str, key)).encode("utf-8")
    return np.random.default_rng([int(seed), zlib.crc32(text)])


def _bounds(replicates: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile bounds; with infinite replicates (a ratio over a zero) the order statistics
    are used, so an infinite bound is reported as inf rather than nan."""
    a = (1.0 - level) / 2.0
    reps = np.asarray(replicates, dtype=float)
    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        return (math.nan, math.nan)
    method = "linear" if np.all(np.isfinite(reps)) else "inverted_cdf"
    lo, hi = np.quantile(reps, [a, 1.0 - a], method=method)
    return (float(lo), float(hi))


def bootstrap_replicates(values: Sequence[float], n_resamples: int = N_RESAMPLES,
                         rng: np.random.Generator | int | None = SEED,
                         stat: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """``n_resamples`` bootstrap replicates of ``stat`` (default: the mean) over ``values``.
    ``stat`` gets a (n_resamples, n) array and returns one value per row."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return np.full(n_resamples, np.nan)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    idx = rng.integers(0, x.size, size=(n_resamples, x.size))
    sample = x[idx]
    return sample.mean(axis=1) if stat is None else np.asarray(stat(sample), dtype=float)


def bootstrap_ci(values: Sequence[float], n_resamples: int = N_RESAMPLES,
                 seed: np.random.Generator | int | None = SEED, level: float = LEVEL,
                 stat: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean (or ``stat``) of ``values``.
    Empty input gives (nan, nan)."""
    if len(values) == 0:
        return (math.nan, math.nan)
    return _bounds(bootstrap_replicates(values, n_resamples, seed, stat), level)


@dataclass(frozen=True)
class Rate:
    n: int
    k: float
    rate: float
    lo: float
    hi: float


def rate_ci(values: Sequence[float], n_resamples: int = N_RESAMPLES,
            seed: np.random.Generator | int | None = SEED, level: float = LEVEL) -> Rate:
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return Rate(0, 0, math.nan, math.nan, math.nan)
    lo, hi = bootstrap_ci(x, n_resamples, seed, level)
    return Rate(int(x.size), float(x.sum()), float(x.mean()), lo, hi)


def rate_table(df, by: Sequence[str], value: str, *, n_resamples: int = N_RESAMPLES,
               seed: int = SEED, level: float = LEVEL, name: str = "rate", key_prefix: str = ""):
    """One row per group of ``by`` with ``n``, ``k`` (sum of ``value``), ``<name>`` (mean) and
    ``<name>_lo``/``<name>_hi`` (bootstrap CI). Rows where ``value`` is NaN are left out."""
    import pandas as pd

    by = list(by)
    d = df[df[value].notna()]
    rows = []
    if by:
        groups = d.groupby(by, sort=True, dropna=False)
    else:
        groups = [((), d)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        r = rate_ci(g[value].to_numpy(dtype=float), n_resamples,
                    seed_for(seed, key_prefix, value, *key), level)
        rows.append({**dict(zip(by, key)), "n": r.n, "k": int(r.k), name: r.rate,
                     f"{name}_lo": r.lo, f"{name}_hi": r.hi})
    return pd.DataFrame(rows, columns=[*by, "n", "k", name, f"{name}_lo", f"{name}_hi"])


def mean_of_means_ci(groups: Mapping[str, Sequence[float]], n_resamples: int = N_RESAMPLES,
                     seed: np.random.Generator | int | None = SEED,
                     level: float = LEVEL) -> tuple[float, float, float]:
    """The unweighted mean of per-group means (e.g. mean ASR over languages) and its
    stratified-bootstrap CI (each group resampled within itself). Empty groups are skipped."""
    arrays = [np.asarray(v, dtype=float) for v in groups.values() if len(v)]
    if not arrays:
        return (math.nan, math.nan, math.nan)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    reps = np.mean([bootstrap_replicates(a, n_resamples, rng) for a in arrays], axis=0)
    point = float(np.mean([a.mean() for a in arrays]))
    lo, hi = _bounds(reps, level)
    return (point, lo, hi)


def paired_difference_ci(after: Sequence[float], before: Sequence[float],
                         n_resamples: int = N_RESAMPLES,
                         seed: np.random.Generator | int | None = SEED,
                         level: float = LEVEL) -> tuple[float, float, float]:
    """Mean of ``after - before`` over paired items (same questions), with a bootstrap CI over
    items."""
    a, b = np.asarray(after, dtype=float), np.asarray(before, dtype=float)
    if a.shape != b.shape:
        raise ValueError("paired samples must have the same length")
    if a.size == 0:
        return (math.nan, math.nan, math.nan)
    d = a - b
    lo, hi = bootstrap_ci(d, n_resamples, seed, level)
    return (float(d.mean()), lo, hi)


# --- disparity --------------------------------------------------------------------------------

def _ranks(rates: np.ndarray) -> np.ndarray:
    """Rank along the last axis, 1 = lowest rate (for ASR: the best-defended), ties averaged."""
    x = np.asarray(rates, dtype=float)
    less = (x[..., :, None] > x[..., None, :]).sum(axis=-1)
    equal = (x[..., :, None] == x[..., None, :]).sum(axis=-1)  # includes the element itself
    return less + (equal + 1) / 2.0


def _ratio(mx: np.ndarray, mn: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(mn > 0, mx / np.where(mn > 0, mn, 1.0), np.where(mx > 0, np.inf, np.nan))
    return out


@dataclass
class Disparity:
    """Disparity of a rate across groups: ``groups`` (one row per group) and ``summary``."""

    groups: "object"  # pandas DataFrame
    summary: dict


def disparity(outcomes: Mapping[str, Sequence[float]], *, n_resamples: int = N_RESAMPLES,
              seed: np.random.Generator | int | None = SEED, level: float = LEVEL,
              name: str = "asr") -> Disparity:
    """Disparity of a rate (default: ASR) across groups, with stratified-bootstrap CIs.

    ``outcomes`` maps each group to its 0/1 outcomes; groups without outcomes are left out.
    Per group: ``n``, rate and CI, ``deviation`` from the pooled mean of all groups (the model
    mean: successes over prompts of all the groups) and its CI, ``rank`` (1 = lowest rate =
    best defended, ties averaged) and a rank CI. Summary: ``gap`` = max - min rate, ``ratio`` =
    max / min (inf when the minimum is 0 and the maximum is not; nan when both are 0), the
    groups at the extremes, and CIs of gap and ratio.
    """
    import pandas as pd

    names = [g for g, v in outcomes.items() if len(v)]
    arrays = [np.asarray(outcomes[g], dtype=float) for g in names]
    cols = ["group", "n", name, f"{name}_lo", f"{name}_hi", "deviation", "deviation_lo",
            "deviation_hi", "rank", "rank_lo", "rank_hi"]
    if not names:
        return Disparity(pd.DataFrame(columns=cols), {"n_groups": 0})
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    point = np.array([a.mean() for a in arrays])
    sizes = np.array([a.size for a in arrays], dtype=float)
    pooled = float((point * sizes).sum() / sizes.sum())
    # replicates: (n_resamples, n_groups)
    reps = np.stack([bootstrap_replicates(a, n_resamples, rng) for a in arrays], axis=1)
    pooled_reps = (reps * sizes).sum(axis=1) / sizes.sum()
    dev_reps = reps - pooled_reps[:, None]
    rank_point = _ranks(point)
    rank_reps = _ranks(reps)
    rows = []
    for j, g in enumerate(names):
        lo, hi = _bounds(reps[:, j], level)
        dlo, dhi = _bounds(dev_reps[:, j], level)
        rlo, rhi = _bounds(rank_reps[:, j], level)
        rows.append({"group": g, "n": int(sizes[j]), name: float(point[j]), f"{name}_lo": lo,
                     f"{name}_hi": hi, "deviation": float(point[j] - pooled), "deviation_lo": dlo,
                     "deviation_hi": dhi, "rank": float(rank_point[j]), "rank_lo": rlo, "rank_hi": rhi})
    groups = pd.DataFrame(rows, columns=cols)
    gap_reps = reps.max(axis=1) - reps.min(axis=1)
    ratio_reps = _ratio(reps.max(axis=1), reps.min(axis=1))
    mx, mn = float(point.max()), float(point.min())
    ratio = float(_ratio(np.array(mx), np.array(mn)))
    order = np.argsort(point, kind="stable")
    summary = {
        "n_groups": len(names), "mean": pooled,
        "min_group": names[int(order[0])], "min": mn,
        "max_group": names[int(order[-1])], "max": mx,
        "gap": mx - mn, "gap_lo": _bounds(gap_reps, level)[0], "gap_hi": _bounds(gap_reps, level)[1],
        "ratio": ratio, "ratio_lo": _bounds(ratio_reps, level)[0],
        "ratio_hi": _bounds(ratio_reps, level)[1],
    }
    return Disparity(groups, summary)


def hierarchy(groups_df, name: str = "asr", key: str = "group") -> list[str]:
    """Groups from best defended (lowest rate) to worst: the "demographic hierarchy" (ties in
    name order)."""
    return [str(g) for g in groups_df.sort_values([name, key], kind="stable")[key]]


def hierarchy_text(groups_df, name: str = "asr", key: str = "group", digits: int = 6) -> str:
    """The hierarchy as text, best defended first: ``a > b = c > d`` (``=`` for equal rates)."""
    rows = groups_df.sort_values([name, key], kind="stable")
    out, prev = [], None
    for g, v in zip(rows[key], rows[name]):
        v = round(float(v), digits)
        if out:
            out.append(" = " if v == prev else " > ")
        out.append(str(g))
        prev = v
    return "".join(out)


def excludes(lo: float, hi: float, value: float = 0.0) -> bool:
    """Whether an interval excludes ``value`` (a difference that the CI calls real)."""
    return not (math.isnan(lo) or math.isnan(hi)) and (lo > value or hi < value)


def fmt_ci(point: float | None, lo: float | None, hi: float | None, digits: int = 3,
           signed: bool = False) -> str:
    """``0.412 [0.350, 0.480]``; '–' for a missing value."""
    def f(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "–"
        if isinstance(v, float) and math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"
    if point is None or (isinstance(point, float) and math.isnan(point)):
        return "–"
    return f"{f(point)} [{f(lo)}, {f(hi)}]"
