"""Ensembles: the unanimous / majority / adjudicated rules, `unparsed` handling, the adjudicator
running only on disagreements, refusal combination, field prefixes and input errors."""

from __future__ import annotations

import pytest

from polyrefusal.errors import UserError
from polyrefusal.judges import JUDGES, Judge, Verdict
from polyrefusal.judges.ensemble import judge_records

CALLS: dict[str, list[int]] = {}


class Canned(Judge):
    """Labels by answer text: options {"labels": {answer: label}, "refused": {answer: bool}}."""

    languages = frozenset({"en", "de"})

    def judge(self, records):
        CALLS.setdefault(self.name, []).append(len(records))
        labels = self.options.get("labels", {})
        refused = self.options.get("refused", {})
        return [Verdict(label=labels.get(r["response"], "unparsed"), refused=refused.get(r["response"]),
                        score=0.5, categories=["S1"] if labels.get(r["response"]) == "unsafe" else [],
                        raw=f"raw:{r['response']}") for r in records]


for _n in ("t_a", "t_b", "t_c", "t_adj"):
    if _n not in JUDGES.names():
        JUDGES.register(_n)(type(f"Canned_{_n}", (Canned,), {}))


def recs(*answers, **extra):
    return [{"id": f"r{i}", "lang": "en", "prompt": "harmful?", "response": a, **extra} for i, a in enumerate(answers)]


def configs(**labels):
    """configs(t_a="su?", t_b="...") -> per judge: answer k gets label from the k-th letter."""
    code = {"s": "safe", "u": "unsafe", "?": "unparsed"}
    return {name: {"labels": {f"a{i}": code[c] for i, c in enumerate(s)}} for name, s in labels.items()}


def labels_of(out, key="label"):
    return "".join({"safe": "s", "unsafe": "u", "unparsed": "?"}[r[key]] for r in out)


ANSWERS = [f"a{i}" for i in range(5)]


def test_unanimous_rule():
    cfg = configs(t_a="uusu?", t_b="usu??")
    out = judge_records(recs(*ANSWERS), judges=["t_a", "t_b"], rule="unanimous", judge_configs=cfg)
    # u+u=u; u+s=s; s+u=s; u+?=? (no unanimity, no safe); ?+?=?
    assert labels_of(out) == "uss??"
    assert out[0]["judge"] == "t_a+t_b (unanimous)"


def test_unanimous_with_safe_and_unparsed_is_safe():
    out = judge_records(recs("a0"), judges=["t_a", "t_b"], judge_configs=configs(t_a="s", t_b="?"))
    assert out[0]["label"] == "safe"


def test_single_judge_is_its_own_label():
    out = judge_records(recs(*ANSWERS[:3]), judges=["t_a"], judge_configs=configs(t_a="su?"))
    assert labels_of(out) == "su?"
    assert out[0]["judge"] == "t_a"
    assert set(out[0]["verdicts"]) == {"t_a"}


def test_majority_rule_and_ties():
    cfg = configs(t_a="uus?", t_b="usu?", t_c="u?s?")
    out = judge_records(recs(*ANSWERS[:4]), judges=["t_a", "t_b", "t_c"], rule="majority", judge_configs=cfg)
    # uuu=u; u s ?=no majority; s u s=s; ???=? (unparsed majority)
    assert labels_of(out) == "u?s?"
    two = judge_records(recs("a0", "a1"), judges=["t_a", "t_b"], rule="majority",
                        judge_configs=configs(t_a="us", t_b="ss"))
    assert labels_of(two) == "?s"  # a 1:1 tie is no majority


def test_majority_ties_go_to_the_adjudicator_when_given():
    cfg = configs(t_a="us", t_b="ss", t_adj="u?")
    CALLS.pop("t_adj", None)
    out = judge_records(recs("a0", "a1"), judges=["t_a", "t_b"], rule="majority", adjudicator="t_adj",
                        judge_configs=cfg)
    assert labels_of(out) == "us"
    assert CALLS["t_adj"] == [1]
    assert "t_adj" in out[0]["verdicts"] and "t_adj" not in out[1]["verdicts"]


def test_adjudicated_rule_runs_the_adjudicator_only_on_disagreements():
    cfg = configs(t_a="ssuu?", t_b="suus?", t_adj="?uss?")
    CALLS.clear()
    out = judge_records(recs(*ANSWERS), judges=["t_a", "t_b"], rule="adjudicated", adjudicator="t_adj",
                        judge_configs=cfg)
    # agree s; disagree -> adj u; agree u; disagree -> adj s; both unparsed -> adj (unparsed)
    assert labels_of(out) == "suus?"
    assert CALLS["t_adj"] == [3]  # one batch, records 1, 3, 4 only
    assert [("t_adj" in r["verdicts"]) for r in out] == [False, True, False, True, True]
    assert out[0]["judge"] == "t_a+t_b (adjudicated, adjudicated by t_adj)"


def test_adjudicator_that_cannot_be_parsed_gives_unparsed_not_safe():
    out = judge_records(recs("a0"), judges=["t_a", "t_b"], rule="adjudicated", adjudicator="t_adj",
                        judge_configs=configs(t_a="s", t_b="u", t_adj="?"))
    assert out[0]["label"] == "unparsed"
    out = judge_records(recs("a0"), judges=["t_a", "t_b"], rule="adjudicated", adjudicator="t_adj",
                        judge_configs=configs(t_a="u", t_b="?", t_adj="u"))
    assert out[0]["label"] == "unsafe"  # a parse failure is a disagreement, settled by the third


def test_no_adjudicator_call_when_all_agree():
    CALLS.clear()
    judge_records(recs("a0", "a1"), judges=["t_a", "t_b"], rule="adjudicated", adjudicator="t_adj",
                  judge_configs=configs(t_a="su", t_b="su", t_adj="??"))
    assert "t_adj" not in CALLS


def test_refused_combination():
    cfg = {"t_a": {"labels": {"a0": "safe", "a1": "safe", "a2": "safe"}, "refused": {"a0": True, "a1": True, "a2": None}},
           "t_b": {"labels": {"a0": "safe", "a1": "safe", "a2": "safe"}, "refused": {"a0": True, "a1": False}},
           "t_c": {"labels": {"a1": "safe"}, "refused": {"a1": True}}}
    una = judge_records(recs("a0", "a1", "a2"), judges=["t_a", "t_b"], judge_configs=cfg)
    assert [r["refused"] for r in una] == [True, None, None]
    maj = judge_records(recs("a0", "a1", "a2"), judges=["t_a", "t_b", "t_c"], rule="majority", judge_configs=cfg)
    assert [r["refused"] for r in maj] == [True, True, None]


def test_verdict_columns():
    out = judge_records(recs("a0", "a1", lang="sl"), judges=["t_a", "t_b"], judge_configs=configs(t_a="u?", t_b="uu"))
    v = out[0]["verdicts"]["t_a"]
    assert v == {"label": "unsafe", "refused": None, "score": 0.5, "categories": ["S1"], "covered": False, "raw": None}
    assert out[1]["verdicts"]["t_a"]["raw"] == "raw:a1"  # kept where it could not be parsed
    out = judge_records(recs("a0"), judges=["t_a"], judge_configs=configs(t_a="u"))
    assert out[0]["verdicts"]["t_a"]["covered"] is True


def test_fields_are_prefixed_and_input_is_not_modified():
    records = [{"id": "p1", "lang": "de", "text": "harmful?", "chosen": "a0", "rejected": "a1", "harmful": True}]
    cfg = configs(t_a="su")
    out = judge_records(records, judges=["t_a"], judge_configs=cfg, field="chosen")
    out = judge_records(out, judges=["t_a"], judge_configs=cfg, field="rejected")
    r = out[0]
    assert (r["chosen_label"], r["rejected_label"]) == ("safe", "unsafe")
    assert set(r["chosen_verdicts"]) == {"t_a"} and "chosen_refused" in r and "rejected_refused" in r
    assert "label" not in r and "verdicts" not in r and r["judge"] == "t_a"
    assert set(records[0]) == {"id", "lang", "text", "chosen", "rejected", "harmful"}


def test_prompt_from_text_and_trl_messages():
    seen = []

    class Spy(Judge):
        def judge(self, records):
            seen.extend(records)
            return [Verdict(label="safe", refused=None, score=None, categories=[]) for _ in records]
    if "t_spy" not in JUDGES.names():
        JUDGES.register("t_spy")(Spy)
    records = [
        {"lang": "en", "prompt": "P1", "text": "ignored", "response": "x"},
        {"lang": "en", "text": "P2", "response": "y", "harmful": "false"},
        {"lang": "en", "prompt": [{"role": "user", "content": "P3"}],
         "response": [{"role": "assistant", "content": "z"}], "harmful": False},
        {"lang": "en", "prompt": "P4", "response": None},
    ]
    judge_records(records, judges=["t_spy"])
    assert [(r["prompt"], r["response"], r["harmful"]) for r in seen] == [
        ("P1", "x", True), ("P2", "y", False), ("P3", "z", False), ("P4", "", True)]


def test_input_errors():
    with pytest.raises(UserError, match="no 'response'") as exc:
        judge_records([{"lang": "en", "prompt": "p", "_line": 7}], judges=["t_a"])
    assert exc.value.line == 7 and exc.value.field == "response"
    with pytest.raises(UserError, match="no prompt"):
        judge_records([{"lang": "en", "response": "x"}], judges=["t_a"])
    with pytest.raises(UserError, match="unknown judge"):
        judge_records(recs("a0"), judges=["nope"])
    with pytest.raises(UserError, match="unknown rule"):
        judge_records(recs("a0"), judges=["t_a"], rule="sometimes")
    with pytest.raises(UserError, match="needs an adjudicator"):
        judge_records(recs("a0"), judges=["t_a", "t_b"], rule="adjudicated")
    with pytest.raises(UserError, match="also one of the judges"):
        judge_records(recs("a0"), judges=["t_a", "t_b"], rule="adjudicated", adjudicator="t_a")
    with pytest.raises(UserError, match="only by the majority and adjudicated"):
        judge_records(recs("a0"), judges=["t_a", "t_b"], rule="unanimous", adjudicator="t_adj")
    with pytest.raises(UserError, match="named twice"):
        judge_records(recs("a0"), judges=["t_a", "t_a"])
    with pytest.raises(UserError, match="no judge"):
        judge_records(recs("a0"), judges=[])
    with pytest.raises(TypeError):
        judge_records(recs("a0"), ["t_a"])  # keyword-only


def test_a_judge_returning_a_bad_label_is_a_bug_not_a_label():
    class Bad(Judge):
        def judge(self, records):
            return [Verdict(label="maybe") for _ in records]
    if "t_bad" not in JUDGES.names():
        JUDGES.register("t_bad")(Bad)
    with pytest.raises(RuntimeError, match="maybe"):
        judge_records(recs("a0"), judges=["t_bad"])


def test_the_default_lexicon_judge_through_the_ensemble():
    records = [{"lang": "it", "prompt": "x", "response": "Mi dispiace, ma non posso aiutarti."},
               {"lang": "it", "prompt": "x", "response": "Certo, ecco i passaggi: Passo 1: [omesso]."},
               {"lang": "it", "prompt": "x", "response": "Mi dispiace, ma non posso aiutarti.", "harmful": False}]
    out = judge_records(records, judges=["refusal_lexicon"])
    assert [(r["label"], r["refused"]) for r in out] == [("safe", True), ("unsafe", False), ("safe", True)]
