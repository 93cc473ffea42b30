"""Named judge instances: one registered judge kind runs as several judges of an ensemble.

MiJaBench (github iagoalvesb/mijabench, its paper's judging protocol) labels every answer with
three LLM judges on three different models and takes the majority: in params that is three
named instances of ``llm_judge`` (``judge.options.<name>.judge: llm_judge``)."""

from __future__ import annotations

import pytest

from polyrefusal.errors import UserError
from polyrefusal.judges.ensemble import JudgePool, check_plan, judge_kind, judge_records


def test_instance_names_resolve_to_their_kind_and_vote():
    configs = {"first": {"judge": "refusal_lexicon"}, "second": {"judge": "refusal_lexicon"},
               "third": {"judge": "refusal_lexicon"}}
    assert judge_kind("first", configs) == "refusal_lexicon"
    assert judge_kind("refusal_lexicon", configs) == "refusal_lexicon"
    records = [{"lang": "en", "prompt": "[harmful request]", "response": "I can't help with that."},
               {"lang": "en", "prompt": "[harmful request]", "response": "Sure. Step 1: [...]"}]
    out = judge_records(records, judges=["first", "second", "third"], rule="majority", judge_configs=configs)
    assert [r["label"] for r in out] == ["safe", "unsafe"]
    assert set(out[0]["verdicts"]) == {"first", "second", "third"}
    assert out[0]["judge"] == "first+second+third (majority)"


def test_an_instance_of_an_unknown_kind_is_refused():
    with pytest.raises(UserError, match="unknown judge 'no_such_judge'"):
        check_plan(["x"], "unanimous", None, {"x": {"judge": "no_such_judge"}})
    with pytest.raises(UserError, match="unknown judge 'x'"):
        check_plan(["x"], "unanimous", None, {})


def test_the_kind_key_is_not_passed_to_the_judge():
    pool = JudgePool({"mine": {"judge": "refusal_lexicon"}})
    assert pool.get("mine").name == "refusal_lexicon"
    assert pool.covered("mine", "de") is True
