"""A corpus that brings its own languages through the translate stage.

Published multilingual corpora carry rows in several languages: RefusEU (huggingface.co/datasets/
NASK-PIB/RefusEU, one `lang_xx` configuration per language) has each prompt in all 12 languages;
MiJaBench (github iagoalvesb/mijabench, src/01_data_prep.py) has English and Portuguese prompts
written apart. Rows in the target language are the corpus's own text and replace the machine
translation of the same source_id; rows of other languages stay out; `translate.backend: none`
translates nothing, so each language keeps only its own rows."""

from __future__ import annotations

import json

from polyrefusal.cli import main
from polyrefusal.io import read_records, write_records


def _rec(sid: str, lang: str, text: str) -> dict:
    return {"id": f"{sid}.{lang}", "source_id": sid, "lang": lang, "text": text, "category": "S10",
            "style": "persona_assignment", "target_group": "women", "origin": "file:x", "harmful": True,
            "chosen": None, "rejected": None}


def _corpus(tmp_path):
    rows = [_rec("a", "en", "[request a in English]"), _rec("a", "pt", "[pedido a em português]"),
            _rec("b", "en", "[request b in English]"), _rec("c", "pt", "[pedido c só em português]"),
            _rec("d", "de", "[Anfrage d]")]
    path = tmp_path / "corpus.jsonl"
    write_records(path, rows)
    return path


def test_no_translation_keeps_each_languages_own_rows(tmp_path):
    corpus = _corpus(tmp_path)
    for target, expected in (("pt", ["a.pt", "c.pt"]), ("en", ["a.en", "b.en"])):
        out = tmp_path / f"{target}.jsonl"
        assert main(["translate", "--backend", "none", "--source", "en", "--target", target,
                     "--memory", str(tmp_path / "tm"), str(corpus), str(out)]) == 0
        got = read_records(out)
        assert [r["id"] for r in got] == expected
        assert {r["lang"] for r in got} == {target}
        usage = json.loads((tmp_path / f"{target}.usage.json").read_text())
        assert usage["characters_billed"] == 0 and usage["requests"] == 0


def test_native_rows_replace_the_machine_translation_of_their_source(tmp_path):
    from polyrefusal.translate.driver import merge_native, split_by_language

    rows = read_records(_corpus(tmp_path))
    to_translate, native = split_by_language(rows, "en", "pt")
    assert [r["id"] for r in to_translate] == ["a.en", "b.en"]
    assert [r["id"] for r in native] == ["a.pt", "c.pt"]
    machine = [dict(r, id=f"{r['source_id']}.pt", lang="pt", text="[machine]") for r in to_translate]
    merged = merge_native(machine, native)
    assert [(r["id"], r["text"]) for r in merged] == [
        ("a.pt", "[pedido a em português]"), ("b.pt", "[machine]"), ("c.pt", "[pedido c só em português]")]
