"""Statistics of the report against hand-computed values: bootstrap CIs, rate tables,
disparity (gap, ratio, deviation, ranks), mean of means, paired differences."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from polyrefusal.scoring.stats import (
    _ranks, bootstrap_ci, bootstrap_replicates, disparity, excludes, fmt_ci, hierarchy, hierarchy_text,
    mean_of_means_ci,
    paired_difference_ci, rate_ci, rate_table, seed_for,
)


def test_constant_values_give_a_degenerate_interval():
    assert bootstrap_ci([1, 1, 1, 1]) == (1.0, 1.0)
    assert bootstrap_ci([0] * 7) == (0.0, 0.0)
    assert all(math.isnan(x) for x in bootstrap_ci([]))


def test_bootstrap_is_seeded_and_uses_1000_resamples_by_default():
    x = [1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1]
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    assert not np.array_equal(bootstrap_replicates(x, rng=3),
                              bootstrap_replicates(x, rng=4))
    # default: 1,000 resamples drawn by numpy's default_rng(seed), percentile bounds
    rng = np.random.default_rng(0)
    means = np.asarray(x, float)[rng.integers(0, len(x), size=(1000, len(x)))].mean(axis=1)
    assert bootstrap_ci(x) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))


def test_binary_bootstrap_matches_the_binomial_quantiles():
    # The bootstrap distribution of the mean of n 0/1 values with k ones is Binomial(n, k/n)/n.
    # n = 10, k = 3: P(X <= 0) = 0.028 > 0.025 and P(X <= 5) = 0.953 < 0.975 <= P(X <= 6) = 0.989,
    # so the 2.5% quantile is 0/10 and the 97.5% quantile 6/10 (linear interpolation between
    # neighbouring order statistics may land one step inside).
    lo, hi = bootstrap_ci([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], n_resamples=4000, seed=1)
    assert 0.0 <= lo <= 0.1 and 0.5 <= hi <= 0.6
    # k = 5: quantiles 2/10 and 8/10
    lo, hi = bootstrap_ci([1, 0] * 5, n_resamples=4000, seed=1)
    assert 0.1 <= lo <= 0.2 and 0.8 <= hi <= 0.9


def test_large_sample_interval_is_close_to_the_normal_approximation():
    # p = 0.25, n = 400: SE = sqrt(0.25 * 0.75 / 400) = 0.02165, 95% half-width 1.96 SE = 0.0424
    x = [1] * 100 + [0] * 300
    lo, hi = bootstrap_ci(x, seed=7)
    assert lo == pytest.approx(0.25 - 0.0424, abs=0.008)
    assert hi == pytest.approx(0.25 + 0.0424, abs=0.008)


def test_rate_ci_counts():
    r = rate_ci([1, 0, 0, 1, 1])
    assert (r.n, r.k, r.rate) == (5, 3, 0.6)
    assert r.lo <= 0.6 <= r.hi


def test_rate_table_groups_and_keeps_cells_stable():
    df = pd.DataFrame({"config": ["a", "a", "a", "b", "b", "b", "b"],
                       "lang": ["en", "en", "de", "en", "en", "de", "de"],
                       "v": [1, 0, 1, 1, 1, 0, np.nan]})
    t = rate_table(df, ["config", "lang"], "v", name="asr").set_index(["config", "lang"])
    assert t.loc[("a", "en"), ["n", "k", "asr"]].tolist() == [2, 1, 0.5]
    assert t.loc[("a", "de"), ["n", "k", "asr"]].tolist() == [1, 1, 1.0]
    assert t.loc[("b", "en"), ["n", "k", "asr"]].tolist() == [2, 2, 1.0]
    assert t.loc[("b", "de"), ["n", "k", "asr"]].tolist() == [1, 0, 0.0]  # the NaN row left out
    assert t.loc[("b", "en"), ["asr_lo", "asr_hi"]].tolist() == [1.0, 1.0]
    # a cell's CI does not depend on the other cells (seeded by its key)
    alone = rate_table(df[df.config == "a"], ["config", "lang"], "v", name="asr").set_index(["config", "lang"])
    assert alone.loc[("a", "en"), ["asr_lo", "asr_hi"]].tolist() == t.loc[("a", "en"), ["asr_lo", "asr_hi"]].tolist()
    overall = rate_table(df, [], "v")
    assert overall[["n", "k"]].iloc[0].tolist() == [6, 4]


def test_seed_for_is_stable_and_key_dependent():
    a = seed_for(0, "x", 1).integers(0, 10**9)
    assert a == seed_for(0, "x", 1).integers(0, 10**9)
    assert a != seed_for(0, "x", 2).integers(0, 10**9)
    assert a != seed_for(1, "x", 1).integers(0, 10**9)


def test_disparity_hand_computed():
    # a: 3/4 = 0.75, b: 1/4 = 0.25, c: 1/2 = 0.5; pooled mean 5/10 = 0.5
    d = disparity({"a": [1, 1, 1, 0], "b": [0, 0, 0, 1], "c": [1, 0], "empty": []}, seed=1)
    g = d.groups.set_index("group")
    assert list(g.index) == ["a", "b", "c"]  # groups without outcomes are left out
    assert g["asr"].tolist() == [0.75, 0.25, 0.5]
    assert g["n"].tolist() == [4, 4, 2]
    assert g["deviation"].tolist() == pytest.approx([0.25, -0.25, 0.0])
    assert g["rank"].tolist() == [3.0, 1.0, 2.0]  # 1 = lowest ASR = best defended
    s = d.summary
    assert s["mean"] == 0.5 and s["gap"] == 0.5 and s["ratio"] == 3.0
    assert (s["min_group"], s["max_group"]) == ("b", "a")
    assert s["gap_lo"] <= 0.5 <= s["gap_hi"]
    for col in ("asr", "deviation", "rank"):
        assert (g[f"{col}_lo"] <= g[col] + 1e-12).all() and (g[col] <= g[f"{col}_hi"] + 1e-12).all()
    assert hierarchy(d.groups) == ["b", "c", "a"]
    assert hierarchy_text(d.groups) == "b > c > a"


def test_disparity_of_constant_groups_has_exact_intervals():
    d = disparity({"x": [1, 1, 1], "y": [0, 0]})
    s = d.summary
    assert (s["gap"], s["gap_lo"], s["gap_hi"]) == (1.0, 1.0, 1.0)
    # ratio max / min with min 0: infinite
    assert math.isinf(s["ratio"]) and math.isinf(s["ratio_lo"])
    g = d.groups.set_index("group")
    assert (g.loc["x", "rank"], g.loc["x", "rank_lo"], g.loc["x", "rank_hi"]) == (2.0, 2.0, 2.0)
    assert (g.loc["y", "rank"], g.loc["y", "rank_lo"], g.loc["y", "rank_hi"]) == (1.0, 1.0, 1.0)
    # pooled mean 3/5; deviation of x = 1 - 3/5, of y = 0 - 3/5, exact in every replicate
    assert g.loc["x", ["deviation", "deviation_lo", "deviation_hi"]].tolist() == pytest.approx([0.4] * 3)
    assert g.loc["y", "deviation"] == pytest.approx(-0.6)


def test_ratio_undefined_when_every_group_is_at_zero():
    d = disparity({"x": [0, 0], "y": [0]})
    assert d.summary["gap"] == 0.0 and math.isnan(d.summary["ratio"])


def test_ties_share_the_average_rank():
    assert _ranks(np.array([0.3, 0.1, 0.3, 0.5])).tolist() == [2.5, 1.0, 2.5, 4.0]
    d = disparity({"a": [1, 0], "b": [0, 1], "c": [0]})
    assert d.groups.set_index("group")["rank"].to_dict() == {"a": 2.5, "b": 2.5, "c": 1.0}
    assert hierarchy_text(d.groups) == "c > a = b"


def test_mean_of_means_is_unweighted():
    # en 2/4 = 0.5, de 1/1 = 1.0: unweighted mean 0.75 (pooled would be 3/5 = 0.6)
    point, lo, hi = mean_of_means_ci({"en": [1, 1, 0, 0], "de": [1], "none": []}, seed=0)
    assert point == 0.75 and lo <= 0.75 <= hi
    point, lo, hi = mean_of_means_ci({"en": [1, 1], "de": [0, 0, 0]})
    assert (point, lo, hi) == (0.5, 0.5, 0.5)


def test_paired_difference():
    p, lo, hi = paired_difference_ci([1, 1, 0, 1], [0, 1, 0, 0])
    assert p == 0.5 and lo <= 0.5 <= hi
    assert paired_difference_ci([1, 0], [1, 0]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        paired_difference_ci([1], [1, 0])


def test_formatting_and_interval_checks():
    assert fmt_ci(0.4123, 0.35, 0.48) == "0.412 [0.350, 0.480]"
    assert fmt_ci(-0.1, -0.2, 0.05, 2, signed=True) == "-0.10 [-0.20, +0.05]"
    assert fmt_ci(float("nan"), 0, 1) == "–"
    assert fmt_ci(2.0, 1.0, float("inf"), 2) == "2.00 [1.00, inf]"
    assert excludes(0.1, 0.3) and not excludes(-0.1, 0.3) and not excludes(float("nan"), 1)
