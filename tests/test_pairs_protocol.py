"""The pairs and split stages apply the study's data rules (polyrefusal.protocol) from their flags.

RefusEU (Krasnodębska et al., Findings of ACL 2026; dataset card huggingface.co/datasets/NASK-PIB/
RefusEU): prompts kept only where both guards find them unsafe; a pair kept only where both find the
refusal safe and at least one the compliance unsafe; 100 test prompts per hazard category and language."""

from __future__ import annotations

import json

import pytest

from polyrefusal.cli import main
from polyrefusal.io import read_records, write_records


def _v(label, adjudicator=False):
    out = {"label": label, "refused": None, "score": None, "categories": [], "covered": True, "raw": None}
    return {**out, "adjudicator": True} if adjudicator else out


def _judged(sid, prompt, chosen, rejected, harmful=True):
    return {"id": f"{sid}.en", "source_id": sid, "lang": "en", "text": f"[request {sid}]", "category": "S1",
            "style": "role_play", "target_group": None, "origin": "builtin", "harmful": harmful,
            "chosen": "[refusal]", "rejected": "[compliance shape]", "chosen_refused": None, "rejected_refused": None,
            "prompt_verdicts": {"llama_guard": _v(prompt[0]), "polyguard": _v(prompt[1])},
            "chosen_verdicts": {"llama_guard": _v(chosen[0]), "polyguard": _v(chosen[1])},
            "rejected_verdicts": {"llama_guard": _v(rejected[0]), "polyguard": _v(rejected[1])}}


@pytest.fixture
def judged(tmp_path):
    rows = [_judged("a", ("unsafe", "unsafe"), ("safe", "safe"), ("unsafe", "safe")),   # kept
            _judged("b", ("unsafe", "safe"), ("safe", "safe"), ("unsafe", "unsafe")),   # prompt not unsafe to both
            _judged("c", ("unsafe", "unsafe"), ("safe", "unsafe"), ("unsafe", "unsafe")),  # refusal not safe to both
            _judged("d", ("unsafe", "unsafe"), ("safe", "safe"), ("safe", "safe")),     # compliance safe to both
            _judged("t", ("unsafe", "unsafe"), ("safe", "safe"), ("unsafe", "safe"))]   # a test prompt
    path = tmp_path / "judged.jsonl"
    write_records(path, rows)
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"source_ids": {"a": "train", "b": "train", "c": "train", "d": "train", "t": "test"}}))
    return path, split


def test_refuseu_rules_through_the_pairs_command(tmp_path, judged):
    path, split = judged
    out = [tmp_path / n for n in ("train.jsonl", "test.jsonl", "stats.json")]
    assert main(["pairs", "--keep", "guards", "--unsafe-prompts-only", "--split", str(split), "--stats", str(out[2]),
                 str(path), str(out[0]), str(out[1])]) == 0
    assert [r["source_id"] for r in read_records(out[0])] == ["a"]
    assert [r["source_id"] for r in read_records(out[1])] == ["t"]
    assert json.loads(out[2].read_text()) == {"prompt_not_unsafe": 1, "test": 1, "train_dropped": 2, "train_kept": 1}


def test_an_unknown_rule_is_refused_by_the_command(tmp_path, judged, capsys):
    path, split = judged
    with pytest.raises(SystemExit) as exc:
        main(["pairs", "--keep", "both", "--split", str(split), "--stats", str(tmp_path / "s.json"),
              str(path), str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")])
    assert exc.value.code == 2
    assert "pairs.keep" in capsys.readouterr().err
    assert not (tmp_path / "a.jsonl").exists()


def test_split_caps_test_prompts_per_category(tmp_path):
    rows = [{"id": f"{c}{s}{i}.en", "source_id": f"{c}{s}{i}", "lang": "en", "text": "[request]", "category": c,
             "style": s, "harmful": True} for c in ("S1", "S2") for s in ("x", "y", "z") for i in range(4)]
    corpus = tmp_path / "corpus.jsonl"
    write_records(corpus, rows)
    out = tmp_path / "split.json"
    assert main(["split", "--test-fraction", "0.5", "--seed", "1", "--test-per-category", "3", str(corpus), str(out)]) == 0
    sides = json.loads(out.read_text())["source_ids"]
    for c in ("S1", "S2"):
        assert sum(v == "test" for k, v in sides.items() if k.startswith(c)) == 3
    assert json.loads(out.read_text())["test_per_category"] == 3
