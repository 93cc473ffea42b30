"""The study's data rules (polyrefusal.protocol).

RefusEU's rule (Krasnodębska et al., Findings of ACL 2026; dataset card huggingface.co/datasets/
NASK-PIB/RefusEU, 1,400 test prompts per language = 100 per hazard category): a pair is kept
only where both guards find the refusal safe and at least one finds the compliance unsafe."""

from __future__ import annotations

import pytest

from polyrefusal.protocol import cap_test_per_category, keeps_pair


def _v(label, adjudicator=False):
    out = {"label": label, "refused": None, "score": None, "categories": [], "covered": True, "raw": None}
    return {**out, "adjudicator": True} if adjudicator else out


@pytest.mark.parametrize("chosen, rejected, kept", [
    ({"llama_guard": _v("safe"), "polyguard": _v("safe")}, {"llama_guard": _v("unsafe"), "polyguard": _v("safe")}, True),
    ({"llama_guard": _v("safe"), "polyguard": _v("safe")}, {"llama_guard": _v("unsafe"), "polyguard": _v("unsafe")}, True),
    ({"llama_guard": _v("safe"), "polyguard": _v("safe")}, {"llama_guard": _v("safe"), "polyguard": _v("safe")}, False),
    # the panel disagrees on the refusal: the adjudicator's "safe" does not make it kept
    ({"llama_guard": _v("safe"), "polyguard": _v("unsafe"), "llm_judge": _v("safe", True)},
     {"llama_guard": _v("unsafe"), "polyguard": _v("unsafe")}, False),
    # one guard could not be parsed on the compliance, the other says safe: the adjudicator's
    # "unsafe" is not a guard's
    ({"llama_guard": _v("safe"), "polyguard": _v("safe")},
     {"llama_guard": _v("safe"), "polyguard": _v("unparsed"), "llm_judge": _v("unsafe", True)}, False),
    ({"llama_guard": _v("unparsed"), "polyguard": _v("safe")}, {"llama_guard": _v("unsafe"), "polyguard": _v("unsafe")}, False),
])
def test_guards_rule(chosen, rejected, kept):
    assert keeps_pair({"chosen_verdicts": chosen, "rejected_verdicts": rejected}, "guards") is kept


def test_refusal_rule_is_the_combined_decision():
    assert keeps_pair({"chosen_refused": True, "rejected_refused": False})
    assert not keeps_pair({"chosen_refused": True, "rejected_refused": None})
    with pytest.raises(ValueError):
        keeps_pair({}, "nope")


def test_test_prompts_are_capped_per_category_the_same_in_every_language():
    records = [{"source_id": f"{c}{i}", "category": c, "harmful": True} for c in ("S1", "S2") for i in range(5)]
    records += [{"source_id": "b1", "category": "benign", "harmful": False}]
    sides = {r["source_id"]: "test" for r in records}
    sides["S1_0"] = "train"
    capped = cap_test_per_category(sides, records, 2, seed=0)
    for c in ("S1", "S2"):
        assert sum(capped[f"{c}{i}"] == "test" for i in range(5)) == 2
        assert sum(capped[f"{c}{i}"] == "unused" for i in range(5)) == 3
    assert capped["b1"] == "test"
    assert capped == cap_test_per_category(sides, records, 2, seed=0)
    assert cap_test_per_category(sides, records, None, seed=0) == sides


def test_a_prompt_is_kept_only_where_every_guard_finds_it_unsafe():
    from polyrefusal.errors import UserError
    from polyrefusal.protocol import keeps_prompt

    assert keeps_prompt({"prompt_verdicts": {"llama_guard": _v("unsafe"), "polyguard": _v("unsafe")}})
    assert not keeps_prompt({"prompt_verdicts": {"llama_guard": _v("unsafe"), "polyguard": _v("safe")}})
    assert not keeps_prompt({"prompt_verdicts": {"llama_guard": _v("unsafe"), "polyguard": _v("safe"),
                                                 "llm_judge": _v("unsafe", True)}})
    with pytest.raises(UserError, match="labels the field `prompt`"):
        keeps_prompt({"text": "[request]"}, "judged.parquet")
