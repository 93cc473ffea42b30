"""Capability cost: the shipped multiple-choice set, the lm-eval task definitions over local
files (the project's set or Global MMLU's layout), and a real lm-evaluation-harness run of a
tiny random model with the network blocked."""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path

import pytest
import yaml

from polyrefusal import ALL_LANGUAGES
from polyrefusal.scoring import capability as C

from ..helpers.project import ROOT


def test_builtin_set_covers_every_study_language_with_the_same_questions():
    assert C.builtin_languages() == sorted(ALL_LANGUAGES)
    sets = {lang: C.load_questions(C.builtin_dir() / f"{lang}.jsonl") for lang in ALL_LANGUAGES}
    en = sets["en"]
    assert len(en) == 20
    answers = [q["answer"] for q in en]
    assert sorted(answers) == sorted("ABCD" * 5)  # balanced answer key
    for lang, qs in sets.items():
        assert [q["sample_id"] for q in qs] == [q["sample_id"] for q in en], lang
        assert [q["answer"] for q in qs] == answers, lang
        for q in qs:
            opts = [q[f"option_{x}"] for x in "abcd"]
            assert len(set(opts)) == 4 and all(o.strip() for o in opts), (lang, q["sample_id"])
        if lang != "en":  # translated, not copied
            assert sum(q["question"] == e["question"] for q, e in zip(qs, en)) == 0, lang


def test_global_mmlu_layout_and_coverage(tmp_path):
    import pandas as pd

    rows = [{"sample_id": f"astronomy/test/{i}", "subject": "astronomy", "question": f"Q{i}?",
             "option_a": "a", "option_b": "b", "option_c": "c", "option_d": "d", "answer": "ABCD"[i % 4],
             "cultural_sensitivity_label": "CA"} for i in range(12)]
    (tmp_path / "de").mkdir()
    pd.DataFrame(rows).to_parquet(tmp_path / "de" / "test-00000-of-00001.parquet")
    (tmp_path / "pl.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    assert C.dataset_file(str(tmp_path), "de").name == "test-00000-of-00001.parquet"
    assert C.dataset_file(str(tmp_path), "pl").name == "pl.jsonl"
    assert C.dataset_file(str(tmp_path), "sl") is None  # not covered: reported, never scored 0
    qs = C.load_questions(C.dataset_file(str(tmp_path), "de"))
    assert len(qs) == 12 and qs[1]["answer"] == "B" and set(qs[0]) >= set(C.COLUMNS)
    # a seeded subset, the same sample ids whatever the language or the file order
    a = {q["sample_id"] for q in C.select(qs, 5, seed=1)}
    b = {q["sample_id"] for q in C.select(list(reversed(qs)), 5, seed=1)}
    assert len(a) == 5 and a == b
    assert {q["sample_id"] for q in C.select(qs, 5, seed=2)} != a
    assert {"sk", "sl", "lv"}.isdisjoint(C.GLOBAL_MMLU_LANGUAGES)


def test_bad_question_file_names_the_line(tmp_path):
    from polyrefusal.errors import UserError

    bad = tmp_path / "en.jsonl"
    bad.write_text(json.dumps({"question": "q", "option_a": "a", "option_b": "b", "option_c": "c",
                               "option_d": "d", "answer": "E"}) + "\n")
    with pytest.raises(UserError, match="answer must be one of"):
        C.load_questions(bad)


@pytest.mark.parametrize("fmt", ["letters", "cloze"])
def test_task_yaml_reads_local_jsonl(tmp_path, fmt):
    qs = C.load_questions(C.builtin_dir() / "de.jsonl")[:3]
    names = C.write_tasks(tmp_path, {"de": qs}, fmt)
    assert names == {"de": "polyrefusal_mc_de"}
    task = yaml.safe_load((tmp_path / "polyrefusal_mc_de.yaml").read_text())
    assert task["dataset_path"] == "json" and task["output_type"] == "multiple_choice"
    data = Path(task["dataset_kwargs"]["data_files"]["test"])
    assert data.is_absolute() and len(data.read_text().splitlines()) == 3
    assert task["metric_list"][0]["metric"] == "acc"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A random 1-layer Llama with a byte-level BPE tokenizer (no download)."""
    from polyrefusal.training.embedded import build_model, build_tokenizer

    out = tmp_path_factory.mktemp("tiny") / "model"
    texts = [q["question"] + " " + q["option_a"] for lang in ("en", "de")
             for q in C.load_questions(C.builtin_dir() / f"{lang}.jsonl")]
    tok = build_tokenizer(texts, 300)
    model = build_model(tok, {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                              "num_attention_heads": 2, "max_position_embeddings": 256, "seed": 0})
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] if len(args) > 1 else args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_capability_stage_runs_lm_eval_offline(tiny_model, tmp_path, no_network):
    from polyrefusal.stages import capability

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(languages=["en", "de", "sl"], train_configs=["balanced"])
    params["capability"] = {"source": "builtin", "format": "cloze", "limit": 4, "batch_size": 4}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    # Global MMLU-style directory without sl: sl is reported as not covered
    src = tmp_path / "mc"
    src.mkdir()
    for lang in ("en", "de"):
        (src / f"{lang}.jsonl").write_text((C.builtin_dir() / f"{lang}.jsonl").read_text())
    p = argparse.ArgumentParser()
    capability.add_arguments(p)
    out = tmp_path / "results" / "capability" / "tiny.json"
    capability.run(p.parse_args(["--model", str(tiny_model), "--name", "tiny", "--params",
                                 str(tmp_path / "params.yaml"), "--source", str(src), str(out)]))
    res = json.loads(out.read_text())
    assert res["model"] == "tiny" and res["format"] == "cloze" and res["lm_eval_version"]
    assert res["not_covered"] == ["sl"]
    assert sorted(res["languages"]) == ["de", "en"]
    for lang, r in res["languages"].items():
        assert r["n"] == 4 and len(r["items"]) == 4
        assert set(r["items"].values()) <= {0, 1}
        assert r["acc"] == pytest.approx(sum(r["items"].values()) / 4)
    # the same questions in both languages (seeded selection by sample id)
    assert set(res["languages"]["en"]["items"]) == set(res["languages"]["de"]["items"])
    assert not list(out.parent.glob(".capability-*"))  # the task directory is cleaned up
