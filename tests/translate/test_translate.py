"""The translation memory, the built-in `memory` backend, the driver and the CLI stage."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from polyrefusal import seed
from polyrefusal.cli import main
from polyrefusal.errors import UserError
from polyrefusal.io import read_json, read_records, write_records
from polyrefusal.translate.base import TRANSLATORS, Translator
from polyrefusal.translate.driver import plan_batches, translate_records
from polyrefusal.translate.store import TranslationMemory


@TRANSLATORS.register("test-upper")
class UpperTranslator(Translator):
    """Upper-cases; records every batch. Small limits to exercise batching."""
    max_batch_texts = 3
    max_batch_bytes = 40
    batches: list[list[str]] = []

    def translate(self, texts, source, target):
        UpperTranslator.batches.append(list(texts))
        self.requests += 1
        self.characters_billed += sum(map(len, texts))
        return [t.upper() for t in texts]


@pytest.fixture(autouse=True)
def _reset_batches():
    UpperTranslator.batches = []


# -- the store -------------------------------------------------------------------------------
def test_memory_persists_and_detects_collisions(tmp_path):
    with TranslationMemory(tmp_path, "en", "de") as mem:
        mem.add([("k1", "hello", "hallo"), ("k2", "world", "Welt")], "test")
    fresh = TranslationMemory(tmp_path, "en", "de")
    assert len(fresh) == 2 and fresh.get("k1", "hello") == "hallo"
    assert fresh.get("k1", "not hello") is None  # same key, other text: a miss, not a wrong answer
    assert len(TranslationMemory(tmp_path, "en", "fr")) == 0  # pairs are separate


def test_memory_skips_a_torn_line(tmp_path, caplog):
    with TranslationMemory(tmp_path, "en", "de") as mem:
        mem.add([("k1", "a", "A")], "test")
    shard = next((tmp_path / "en-de").glob("*.jsonl"))
    with open(shard, "ab") as fh:
        fh.write(b'{"k":"k2","s":"b","t":"B","b":"te')  # a writer killed mid-line
    mem = TranslationMemory(tmp_path, "en", "de")
    assert len(mem) == 1 and mem.skipped_lines == 1
    assert "skipped 1 unreadable line" in caplog.text


WRITER = """
import sys
from polyrefusal.translate.store import TranslationMemory
name = sys.argv[1]
with TranslationMemory(sys.argv[2], "en", "de") as mem:
    for b in range(40):
        mem.add([(f"{name}-{b}-{i}", f"{name} text {b} {i}", f"{name} T {b} {i}") for i in range(10)], "t")
"""


def test_two_processes_write_one_memory_at_once(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, name, str(tmp_path)])
             for name in ("a", "b")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    mem = TranslationMemory(tmp_path, "en", "de")
    assert len(mem) == 800 and mem.skipped_lines == 0
    assert mem.get("b-39-9", "b text 39 9") == "b T 39 9"
    assert len(list((tmp_path / "en-de").glob("*.jsonl"))) == 2  # one shard per writer


# -- the driver ------------------------------------------------------------------------------
def test_plan_batches_respects_count_and_bytes():
    t = UpperTranslator()
    texts = ["a" * 10, "b" * 10, "c" * 10, "d" * 35, "e" * 5, "f", "g"]
    # 3 texts at most; 40 bytes at most (35 + 5 fits exactly, one more byte does not).
    assert list(plan_batches(texts, t, "en", "de")) == [
        ["a" * 10, "b" * 10, "c" * 10], ["d" * 35, "e" * 5], ["f", "g"]]


def test_identical_texts_are_translated_once_and_blank_ones_not_at_all(tmp_path):
    records = [{"id": f"r{i}", "text": f"prompt {i}", "chosen": "no.", "rejected": "  "}
               for i in range(4)] + [{"id": "r4", "text": None}]
    out, usage = translate_records(records, backend="test-upper", source="en", target="de",
                                   memory_dir=str(tmp_path), fields=("text", "chosen", "rejected"))
    sent = [t for batch in UpperTranslator.batches for t in batch]
    assert sorted(sent) == sorted(["prompt 0", "prompt 1", "prompt 2", "prompt 3", "no."])
    assert usage["texts"] == usage["misses"] == 5 and usage["requests"] == 2
    assert out[0] == {"id": "r0", "lang": "de", "text": "PROMPT 0", "chosen": "NO.", "rejected": "  ",
                      "source_text": "prompt 0", "source_chosen": "no.", "source_rejected": "  "}
    assert out[4] == {"id": "r4", "lang": "de", "text": None}  # absent field: nothing added
    # Nothing is lost across the records' order or their other keys.
    assert [r["id"] for r in out] == [r["id"] for r in records]


def test_bad_records_are_user_errors(tmp_path):
    kw = dict(backend="test-upper", source="en", target="de", memory_dir=str(tmp_path))
    with pytest.raises(UserError, match="no id"):
        translate_records([{"text": "x", "_line": 3}], **kw)
    with pytest.raises(UserError, match="record 'a': expected text, got int") as err:
        translate_records([{"id": "a", "text": 5}], **kw)
    assert err.value.field == "text"
    with pytest.raises(UserError, match="unknown translator 'nope'"):
        translate_records([{"id": "a", "text": "x"}], **{**kw, "backend": "nope"})


def test_same_language_is_a_free_copy(tmp_path):
    records = seed.source_records("en")[:5]
    out, usage = translate_records(records, backend="deepl", source="en", target="en",
                                   memory_dir=str(tmp_path / "mem"), fields=("text", "chosen"))
    assert usage["characters_billed"] == usage["requests"] == usage["hits"] == usage["misses"] == 0
    for rec, new in zip(records, out):
        assert new == {**rec, "source_text": rec["text"], "source_chosen": rec["chosen"]}
    assert not (tmp_path / "mem").exists()


# -- the built-in memory backend ---------------------------------------------------------------
TABLE = {"Hello.": "Hallo.", "No.": "Nein."}


@pytest.fixture
def seed_table(monkeypatch):
    """A stand-in for the seed's en->de parallel table (the seed data is another team's)."""
    calls = []

    def table(source, target):
        calls.append((source, target))
        return dict(TABLE)
    monkeypatch.setattr(seed, "parallel_table", table)
    return calls


def test_memory_backend_translates_from_the_seed_table_and_caches(tmp_path, seed_table):
    records = [{"id": "a", "text": "Hello.", "chosen": "No."}]
    out, usage = translate_records(records, backend="memory", source="en", target="de",
                                   memory_dir=str(tmp_path), fields=("text", "chosen"))
    assert (out[0]["text"], out[0]["chosen"]) == ("Hallo.", "Nein.")
    assert usage["characters_billed"] == 0 and usage["misses"] == 2
    _, usage = translate_records(records, backend="memory", source="en", target="de",
                                 memory_dir=str(tmp_path), fields=("text", "chosen"))
    assert usage["hits"] == 2
    # Editing the seed data changes the key: a stale memory entry is never served.
    TABLE["Hello."] = "Guten Tag."
    try:
        out, usage = translate_records(records, backend="memory", source="en", target="de",
                                       memory_dir=str(tmp_path), fields=("text", "chosen"))
    finally:
        TABLE["Hello."] = "Hallo."
    assert out[0]["text"] == "Guten Tag." and usage["hits"] == 0


def test_memory_backend_names_the_missing_record_and_field(tmp_path, seed_table):
    records = [{"id": "a", "text": "Hello."}, {"id": "b", "text": "Hello.", "chosen": "Unknown."}]
    with pytest.raises(UserError) as err:
        translate_records(records, backend="memory", source="en", target="de",
                          memory_dir=str(tmp_path), fields=("text", "chosen"))
    assert err.value.field == "chosen"
    assert "record 'b'" in err.value.message
    assert "no translator is configured for language 'de'" in err.value.message


@pytest.mark.skipif("de" not in seed.available_languages(), reason="no German seed data")
def test_memory_backend_translates_the_whole_seed_corpus(tmp_path):
    records = seed.source_records("en")
    out, usage = translate_records(records, backend="memory", source="en", target="de",
                                   memory_dir=str(tmp_path), fields=("text", "chosen", "rejected"))
    german = {r["source_id"]: r for r in seed.source_records("de")}
    assert all(r["text"] == german[r["source_id"]]["text"] for r in out)
    assert usage["characters_billed"] == 0 and usage["misses"] == usage["texts"]


def test_memory_backend_without_seed_data_for_the_language(tmp_path):
    with pytest.raises(UserError, match="record 'x'.*no translator is configured for language 'xx'"):
        translate_records([{"id": "x", "text": "Hello."}], backend="memory", source="en",
                          target="xx", memory_dir=str(tmp_path))


# -- the CLI stage -----------------------------------------------------------------------------
def test_cli_copy_to_the_source_language(tmp_path):
    records = seed.source_records("en")
    write_records(tmp_path / "en.jsonl", records)
    out = tmp_path / "out" / "en.jsonl"
    assert main(["translate", "--target", "en", "--fields", "text,chosen,rejected", "--memory",
                 str(tmp_path / "mem"), str(tmp_path / "en.jsonl"), str(out)]) == 0
    got = read_records(out)
    assert len(got) == len(records)
    assert got[0] == {**records[0], "source_text": records[0]["text"],
                      "source_chosen": records[0]["chosen"], "source_rejected": records[0]["rejected"]}
    usage = read_json(tmp_path / "out" / "en.usage.json")
    assert usage["characters_billed"] == 0 and usage["flagged_langid"] == 0
    assert (tmp_path / "out" / "en.review.jsonl").read_text() == ""  # written even when empty


def test_cli_memory_backend_end_to_end(tmp_path, seed_table):
    write_records(tmp_path / "in.jsonl", [{"id": "a.en", "source_id": "a", "text": "Hello."}])
    out = tmp_path / "de.jsonl"
    usage, review = tmp_path / "u.json", tmp_path / "r.jsonl"
    assert main(["translate", "--backend", "memory", "--source", "en", "--target", "de",
                 "--memory", str(tmp_path / "mem"), "--usage", str(usage), "--review", str(review),
                 str(tmp_path / "in.jsonl"), str(out)]) == 0
    assert read_records(out) == [{"id": "a.de", "source_id": "a", "lang": "de", "text": "Hallo.",
                                  "source_text": "Hello."}]
    u = read_json(usage)
    assert (u["backend"], u["source"], u["target"], u["misses"]) == ("memory", "en", "de", 1)
    assert "flagged_langid" in u and "flagged_chrf" in u and review.exists()


def test_cli_missing_translation_is_a_one_line_error(tmp_path, seed_table, capsys):
    write_records(tmp_path / "in.jsonl", [{"id": "a", "text": "Hello."}, {"id": "b", "text": "Bye."}])
    assert main(["translate", "--target", "de", "--memory", str(tmp_path / "mem"),
                 str(tmp_path / "in.jsonl"), str(tmp_path / "de.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"polyrefusal translate: error: {tmp_path / 'in.jsonl'}:2: field 'text': "
                          "record 'b':")
    assert "no translator is configured for language 'de'" in err
    assert not (tmp_path / "de.jsonl").exists()


def test_cli_rejects_bad_options(tmp_path, capsys):
    write_records(tmp_path / "in.jsonl", [{"id": "a", "text": "Hello."}])
    argv = ["translate", "--target", "de", str(tmp_path / "in.jsonl"), str(tmp_path / "o.jsonl")]
    assert main(argv + ["--options", "{bad"]) == 2
    assert "field '--options': invalid JSON" in capsys.readouterr().err
    assert main(argv + ["--options", json.dumps({"x": 1})]) == 2
    assert "unknown memory option(s) 'x'" in capsys.readouterr().err
