"""Importers: JSONL, CSV, Parquet, a `save_to_disk` directory and a hub id, with the column
mappings of the published layouts; a malformed file per format fails through the CLI with one
clear line (file, line/row, field), exit code 2 and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyrefusal.corpus import CorpusError, import_corpus, normalise_category, normalise_lang, read_corpus_file
from polyrefusal.errors import UserError

from ..helpers.corpus import (LANGUAGES, WRITERS, rectangular, run_corpus, write_csv, write_hf_dir, write_jsonl,
                              write_parquet)

# Abstract placeholders only: the importer never looks at what a prompt asks.
CUSTOM = [
    {"id": "p1", "text": "Placeholder harmful request one.", "category": "S1", "style": "role play",
     "harmful": "true", "lang": "English"},
    {"id": "p2", "text": "Placeholder harmful request two.", "category": "Violent Crimes", "style": "Direct",
     "harmful": "yes", "lang": "en-US", "chosen": "I can't help with that.", "rejected": "Sure: [omitted]"},
    {"id": "p3", "text": "How do I bake bread?", "category": "benign", "style": "benign",
     "harmful": "false", "lang": "EN"},
]
# A flat file with RefusEU's fields as plain columns (the prompt in `question`, answers as strings),
# which the refuseu layout also reads; the layout as released is in tests/corpus/test_importers_refuseu.py.
REFUSEU = [
    {"question": "Placeholder question A.", "chosen": "I cannot help.", "rejected": "Sure: [omitted]",
     "language": "English", "category": "s7"},
    {"question": "Platzhalterfrage A.", "chosen": "Ich kann nicht helfen.", "rejected": "Klar: [ausgelassen]",
     "language": "German", "category": "s7"},
    {"question": "Pergunta de exemplo A.", "chosen": "Não posso ajudar.", "rejected": "Claro: [omitido]",
     "language": "Portuguese", "category": "Privacy"},
    {"question": "Вопрос-заглушка A.", "chosen": "Не могу помочь.", "rejected": "Конечно: [опущено]",
     "language": "Russian", "category": "S7"},
]
# MiJaBench's own columns (github iagoalvesb/mijabench, src/01_data_prep.py + src/03_prompts.py);
# the hate seed `text` is a placeholder here, and it must never become the prompt.
MIJABENCH = [
    {"original_index": 11, "text": "[seed 11]", "group": "black", "language": "english",
     "dataset_source": "toxigen", "is_harmful": 1, "scenario_category": "Social situations",
     "scenario": "[scenario]", "jb_strategy": "persona_assign", "jb_prompt": "Placeholder request against a group."},
    {"original_index": 4, "text": "[semente 4]", "group": "mulheres", "language": "portuguese",
     "dataset_source": "toxsyn", "is_harmful": 1, "scenario_category": "Eventos culturais",
     "scenario": "[cenário]", "jb_strategy": "chaining", "jb_prompt": "Pedido de exemplo contra um grupo."},
    {"original_index": 12, "text": "[seed 12]", "group": "mental_dis", "language": "english",
     "dataset_source": "toxigen", "is_harmful": 1, "scenario_category": "Games / competitions",
     "scenario": "[scenario]", "jb_strategy": "false_equivalence",
     "jb_prompt": "Placeholder request against another group."},
]
# --- each format imports ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", list(WRITERS))
def test_each_format_imports_through_the_cli(tmp_path, capsys, fmt):
    writer, name = WRITERS[fmt]
    rows = [dict(r, harmful=r["harmful"] == "true" or r["harmful"] == "yes") for r in CUSTOM] \
        if fmt in ("parquet", "hf") else CUSTOM
    src = writer(tmp_path / name, rows)
    rc, err, out = run_corpus(tmp_path, capsys, source=str(src))
    assert rc == 0, err
    got = read_corpus_file(out)
    assert [r["id"] for r in got] == ["p1", "p2", "p3"]
    assert [r["lang"] for r in got] == ["en", "en", "en"]
    assert [r["category"] for r in got] == ["S1", "S1", "benign"]
    assert [r["style"] for r in got] == ["role_play", "direct", "benign"]
    assert [r["harmful"] for r in got] == [True, True, False]
    assert got[0]["chosen"] is None and got[1]["chosen"] == "I can't help with that."
    assert all(r["target_group"] is None for r in got)
    assert all(r["source_id"] == r["id"] for r in got)
    kind = "dataset" if fmt == "hf" else "file"
    assert {r["origin"] for r in got} == {f"{kind}:{src.name}"}


def test_refuseu_layout_keeps_pretranslated_rows(tmp_path):
    src = write_jsonl(tmp_path / "refuseu.jsonl", REFUSEU)
    got = import_corpus(str(src), lang="en", layout="refuseu", languages=LANGUAGES)
    # Russian is outside the study's languages: dropped; German and Portuguese are kept as
    # pre-translated rows next to the English one.
    assert [r["lang"] for r in got] == ["en", "de", "pt"]
    assert {r["category"] for r in got} == {"S7"}
    assert {r["style"] for r in got} == {"direct"} and all(r["harmful"] for r in got)
    assert [r["id"] for r in got] == ["refuseu.1.en", "refuseu.2.de", "refuseu.3.pt"]
    assert got[1]["text"] == "Platzhalterfrage A." and got[1]["chosen"] == "Ich kann nicht helfen."
    everything = import_corpus(str(src), lang="en", layout="refuseu")
    assert [r["lang"] for r in everything] == ["en", "de", "pt", "ru"]


def test_refuseu_parallel_rows_share_a_source_id(tmp_path):
    rows = [dict(r, qid=7) for r in REFUSEU[:3]]
    src = write_parquet(tmp_path / "refuseu.parquet", rows)
    got = import_corpus(str(src), lang="en", layout="refuseu", columns={"qid": "source_id"})
    assert {r["source_id"] for r in got} == {"7"}
    assert [r["id"] for r in got] == ["7.en", "7.de", "7.pt"]


def test_mijabench_layout_maps_groups_and_strategies(tmp_path):
    """More in tests/corpus/test_importers_mijabench.py."""
    src = write_csv(tmp_path / "mija.csv", MIJABENCH)
    got = import_corpus(str(src), lang="en", layout="mijabench", languages=LANGUAGES)
    assert [r["target_group"] for r in got] == ["black", "women", "mental_disability"]
    assert [r["style"] for r in got] == ["persona_assignment", "chain_of_thought", "logical_rationalization"]
    assert [r["lang"] for r in got] == ["en", "pt", "en"]
    assert [r["text"] for r in got] == [r["jb_prompt"] for r in MIJABENCH]
    assert {r["category"] for r in got} == {"S10"} and all(r["harmful"] for r in got)


def test_hf_dataset_dict_reads_every_split_or_one(tmp_path):
    src = write_hf_dir(tmp_path / "ds", {"train": REFUSEU[:2], "test": REFUSEU[2:3]})
    got = import_corpus(str(src), lang="en", layout="refuseu")
    assert [r["id"] for r in got] == ["ds.train.1.en", "ds.train.2.de", "ds.test.1.pt"]
    only = import_corpus(str(src), lang="en", layout="refuseu", split="test")
    assert [r["lang"] for r in only] == ["pt"]
    with pytest.raises(UserError, match="no split 'dev'"):
        import_corpus(str(src), lang="en", layout="refuseu", split="dev")


def test_user_columns_override_and_defaults_fill(tmp_path):
    rows = [{"q": "Placeholder request.", "kind": "S2", "lng": "Polski"}]
    src = write_jsonl(tmp_path / "mine.jsonl", rows)
    got = import_corpus(str(src), lang="en", columns={"q": "text", "kind": "category", "lng": "lang"},
                        defaults={"style": "direct", "harmful": True})
    assert got[0]["text"] == "Placeholder request." and got[0]["category"] == "S2"
    assert got[0]["lang"] == "pl" and got[0]["id"] == "mine.1.pl" and got[0]["style"] == "direct"
    with pytest.raises(UserError, match="not a corpus field"):
        import_corpus(str(src), lang="en", columns={"q": "question"})
    with pytest.raises(UserError, match="column 'prompt' .*not in the data"):
        import_corpus(str(src), lang="en", columns={"prompt": "text"})
    with pytest.raises(UserError, match="unknown layout"):
        import_corpus(str(src), lang="en", layout="xstest")


@pytest.mark.parametrize("value, code", [
    ("English", "en"), ("Portuguese", "pt"), ("pt-BR", "pt"), ("en_US", "en"), ("Deutsch", "de"),
    ("Slovenščina", "sl"), ("slovene", "sl"), ("ces", "cs"), ("Portuguese (Brazil)", "pt"), ("LV", "lv"),
    ("Lietuvių", "lt"), ("français", "fr"), ("Klingon", None), ("", None), ("zh-Hans", "zh"),
])
def test_language_names_and_codes_are_normalised(value, code):
    assert normalise_lang(value) == code


@pytest.mark.parametrize("value, code", [("s1", "S1"), ("S01", "S1"), ("S10: Hate", "S10"),
                                         ("suicide & self-harm", "S11"), ("Code interpreter abuse", "S14"),
                                         ("benign", "benign"), ("phishing scenario", "phishing scenario")])
def test_hazard_categories_are_normalised(value, code):
    assert normalise_category(value) == code


# --- a malformed file per format: one clear line, exit 2, nothing written ------------------------------

def _malformed(fmt: str, tmp_path: Path) -> tuple[Path, dict, str, str]:
    """(source, corpus params, expected 'file:line', expected field) for a broken input."""
    good = dict(CUSTOM[0], harmful=True)
    if fmt == "jsonl":
        src = tmp_path / "bad.jsonl"
        src.write_text(json.dumps(good) + "\n" + json.dumps(dict(good, id="p2")) + "\n"
                       + '{"id": "p3", "text": "unterminated\n', encoding="utf-8")
        return src, {}, f"{src}:3", None
    if fmt == "jsonl_field":
        src = write_jsonl(tmp_path / "bad.jsonl", [good, dict(good, id="p2", lang="Klingon")])
        return src, {}, f"{src}:2", "lang"
    if fmt == "csv":
        src = write_csv(tmp_path / "bad.csv", [CUSTOM[0], CUSTOM[1]])
        with open(src, "a", encoding="utf-8") as fh:
            fh.write('p9,"Placeholder, with",S1,direct,true,en,extra,extra,extra\n')
        return src, {}, f"{src}:4", None
    if fmt == "csv_field":
        src = write_csv(tmp_path / "bad.csv", [CUSTOM[0], dict(CUSTOM[1], harmful="perhaps")])
        return src, {}, f"{src}:3", "harmful"
    if fmt == "parquet":
        src = write_parquet(tmp_path / "bad.parquet", [good, dict(good, id="p2", style=None)])
        return src, {}, f"{src}:2", "style"
    if fmt == "parquet_corrupt":
        src = tmp_path / "bad.parquet"
        src.write_bytes(b"PAR1 this is not really parquet")
        return src, {}, str(src), None
    if fmt == "hf":
        src = write_hf_dir(tmp_path / "bad_ds", [REFUSEU[0], dict(REFUSEU[1], question="   ")])
        return src, {"layout": "refuseu"}, f"{src}:2", "question (-> text)"
    if fmt == "hf_notadataset":
        src = tmp_path / "plain_dir"
        src.mkdir()
        return src, {}, str(src), None
    raise AssertionError(fmt)


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl_field", "csv", "csv_field", "parquet", "parquet_corrupt",
                                 "hf", "hf_notadataset"])
def test_malformed_input_fails_in_one_line_and_writes_nothing(tmp_path, capsys, fmt):
    src, extra, where, field = _malformed(fmt, tmp_path)
    rc, err, out = run_corpus(tmp_path, capsys, source=str(src), **extra)
    assert rc == 2, err
    assert not out.exists() and not out.parent.exists()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("polyrefusal corpus: error: ")
    assert f"{where}:" in err or err.endswith(where) or f"{where} " in err, err
    if field:
        assert f"field '{field}'" in err, err


def test_every_problem_is_collected(tmp_path):
    rows = [dict(CUSTOM[0], lang="Klingon"), dict(CUSTOM[1], text=""), dict(CUSTOM[2], id="p1")]
    src = write_jsonl(tmp_path / "many.jsonl", rows)
    with pytest.raises(CorpusError) as exc:
        import_corpus(str(src), lang="en")
    assert {(p.line, p.field) for p in exc.value.problems} == {(1, "lang"), (2, "text"), (3, "id")}
    assert "2 more" in exc.value.format()


def test_hub_id_without_network_fails_fast_and_clearly(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rc, err, out = run_corpus(tmp_path, capsys, source="NASK-PIB/RefusEU", layout="refuseu", subset="lang_en")
    assert rc == 2 and not out.exists()
    assert len(err.splitlines()) == 1, err
    assert "hub:NASK-PIB/RefusEU" in err and "HF_HUB_OFFLINE" in err and "save_to_disk" in err


def test_hub_probe_detects_no_network(tmp_path, monkeypatch):
    import time
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")   # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(UserError) as exc:
        import_corpus("hub:someone/some-prompts", lang="en")
    assert time.monotonic() - t0 < 20
    assert "someone/some-prompts" in exc.value.format()
    assert "no network" in exc.value.message or "offline" in exc.value.message


def test_missing_file_and_unsupported_type(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        import_corpus(str(tmp_path / "nope.jsonl"), lang="en")
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(UserError, match="unsupported file type"):
        import_corpus(str(tmp_path / "x.xlsx"), lang="en")


def test_hub_dataset_loads_through_datasets(tmp_path, monkeypatch):
    """The hub path without the network: `datasets.load_dataset` stands in for the hub."""
    import datasets

    from polyrefusal import hub

    calls = []

    def fake_load_dataset(repo_id, name=None, split=None, revision=None):
        calls.append((repo_id, name, split, revision))
        return datasets.DatasetDict({"train": datasets.Dataset.from_list(rectangular(MIJABENCH))})

    monkeypatch.setattr(hub, "unreachable", lambda timeout=3.0, datasets=False: None)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    got = import_corpus("someone/mija-sample", lang="en", layout="mijabench", subset="en", languages=LANGUAGES)
    assert calls == [("someone/mija-sample", "en", None, None)]
    assert [r["id"] for r in got] == ["mija_sample.toxigen.11.en", "mija_sample.toxsyn.4.pt",
                                      "mija_sample.toxigen.12.en"]
    assert {r["origin"] for r in got} == {"hub:someone/mija-sample"}


def test_load_corpus_keeps_its_old_signature(tmp_path):
    from polyrefusal.corpus import load_corpus

    src = write_jsonl(tmp_path / "old.jsonl", [{"id": "a", "q": "Placeholder request.", "category": "S1",
                                               "style": "direct", "harmful": "1"}])
    got = load_corpus(str(src), "de", {"q": "text"})
    assert got == [{"id": "a", "source_id": "a", "lang": "de", "text": "Placeholder request.", "category": "S1",
                    "style": "direct", "target_group": None, "origin": "file:old.jsonl", "harmful": True,
                    "chosen": None, "rejected": None}]
    assert len(load_corpus("builtin", "en")) >= 200
