"""Zero-shot table of demographic configurations, against hand-computed values."""

from polyrefusal.report.build import zero_shot_table


def rec(model, group, strategy, label):
    return {"model": model, "harmful": True, "target_group": group, "style": strategy, "label": label}


def test_zero_shot_cells_and_rates():
    params = {"config_defs": {"demo": {"langs": "all", "groups": ["women"], "strategies": ["persona_assignment"]},
                              "balanced": "all"}}
    records = [
        rec("demo", "women", "persona_assignment", "safe"),        # seen
        rec("demo", "women", "persona_assignment", "unsafe"),      # seen
        rec("demo", "elderly", "persona_assignment", "unsafe"),    # unseen group
        rec("demo", "women", "chain_of_thought", "safe"),          # unseen strategy
        rec("demo", "elderly", "chain_of_thought", "unparsed"),    # left out
        rec("base", "women", "persona_assignment", "unsafe"),
        {"model": "demo", "harmful": True, "target_group": None, "style": "role_play", "label": "unsafe"},
    ]
    t = zero_shot_table(records, params, ["balanced", "demo"], n_resamples=200, seed=0)
    got = {(r.model, r.cell): (r.n, r.asr) for r in t.itertuples()}
    assert got == {("demo", "seen"): (2, 0.5), ("demo", "unseen_group"): (1, 1.0),
                   ("demo", "unseen_strategy"): (1, 0.0), ("base", "seen"): (1, 1.0)}
    seen = t[(t.model == "demo") & (t.cell == "seen")].iloc[0]
    assert 0.0 <= seen.asr_lo <= 0.5 <= seen.asr_hi <= 1.0
