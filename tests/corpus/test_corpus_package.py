"""The corpus as a small package, one reader per file format, one hub probe (issue 17).

Formats of the fixtures, from their official descriptions:

* JSON Lines (https://jsonlines.org): UTF-8, one JSON value per line, lines end in ``\\n``;
  the project reads a byte-order mark opening the file as no content (tests/workflow/test_bad_inputs_records.py).
* CSV (RFC 4180, https://www.rfc-editor.org/rfc/rfc4180, section 2): an optional header line,
  then records that each hold the same number of comma-separated fields.
* Parquet written by pandas (pandas' developer guide, "Storing pandas DataFrame objects in Apache
  Parquet format", https://pandas.pydata.org/docs/development/developer.html): an index that is
  not a RangeIndex is stored as a data column, named ``__index_level_N__`` when it is unnamed.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from polyrefusal import hub
from polyrefusal.corpus import CorpusError, import_corpus
from polyrefusal.errors import UserError
from polyrefusal.io import MAX_LINE_BYTES, read_records

from ..helpers.project import ROOT

PACKAGE = ROOT / "src" / "polyrefusal"
#: The package's modules, lowest layer first: each may import only the ones before it.
LAYERS = ("schema", "readers", "layouts", "build")
ROW = dict(id="p1.en", source_id="p1", lang="en", text="A placeholder request.", category="S2",
           style="direct", origin="file:x", harmful=True)


def _imports(path: Path) -> list[tuple[bool, int, str | None, list[str]]]:
    """(at module level, level, module, names) of every import statement of a file, nested
    ones too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            out.append((id(node) in top, node.level, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.append((id(node) in top, 0, None, [a.name for a in node.names]))
    return out


def test_each_module_imports_on_its_own_without_a_cycle():
    for name in LAYERS:
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import polyrefusal.corpus.{name}"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "circular" not in proc.stderr.lower() and "Error" not in proc.stderr, name


def test_layers_import_only_downwards_and_at_module_level():
    """No module of the package imports a later one, nor its own package (which re-exports
    everything), nor a project module from inside a function (the old way around the cycle)."""
    for i, name in enumerate(LAYERS):
        for at_top, level, module, _ in _imports(PACKAGE / "corpus" / f"{name}.py"):
            if level == 1:
                assert module in LAYERS[:i], f"corpus/{name}.py imports .{module}"
            if level == 2:
                assert module != "corpus", f"corpus/{name}.py imports its own package"
            if level >= 1:
                assert at_top, f"corpus/{name}.py imports {'.' * level}{module} inside a function"


def test_the_importers_module_is_gone_and_the_old_names_still_import():
    import importlib.util

    assert importlib.util.find_spec("polyrefusal.importers") is None
    from polyrefusal.corpus import (FIELDS, LAYOUTS, MIJABENCH_GROUPS, SCHEMA, corpus_from_params,  # noqa: F401
                                    is_messages, message_turn, read_corpus_file, seed_axes, validate)
    assert set(LAYOUTS) == {"custom", "refuseu", "mijabench"} and FIELDS == tuple(SCHEMA)


def test_corpus_readers_parse_no_format_themselves():
    """JSONL, CSV and Parquet are parsed in polyrefusal.io only."""
    for _, _, module, names in _imports(PACKAGE / "corpus" / "readers.py"):
        assert not {"csv", "json", "pandas", "pyarrow", "pyarrow.parquet"} & {module, *names}, (module, names)


def _first(exc: CorpusError) -> tuple:
    p = exc.problems[0]
    return p.message, p.file, p.line


@pytest.mark.parametrize("name, content, line", [
    ("bad.jsonl", json.dumps(ROW) + "\n" + '{"id": "p2.en", "text": \n', 2),
    ("bad.jsonl", json.dumps(ROW) + "\n[1, 2]\n", 2),
    ("big.jsonl", json.dumps(dict(ROW, text="x" * MAX_LINE_BYTES)) + "\n", 1),
    ("ragged.csv", ",".join(ROW) + "\n" + ",".join(str(v) for v in ROW.values()) + "\np2.en,p2,en\n", 3),
    ("dupe.csv", "id,text,id\na,b,c\n", 1),
])
def test_a_stage_and_the_corpus_import_give_the_same_message(tmp_path, name, content, line):
    """One reader per format: the stages' `read_records` raises the problem that the corpus
    import collects, word for word, with the same file and line."""
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError) as stage:
        read_records(path)
    with pytest.raises(CorpusError) as corpus:
        import_corpus(str(path), lang="en")
    assert (stage.value.message, stage.value.file, stage.value.line) == _first(corpus.value)
    assert stage.value.line == line


def test_parquet_rows_read_alike_and_drop_only_an_unnamed_pandas_index(tmp_path):
    import pandas as pd

    frame = pd.DataFrame([dict(ROW, id="p2.en", source_id="p2"), ROW], index=["b", "a"])  # not a RangeIndex
    frame.to_parquet(tmp_path / "c.parquet")
    got = read_records(tmp_path / "c.parquet")
    assert [r["id"] for r in got] == ["p2.en", "p1.en"] and "__index_level_0__" not in got[0]
    assert [r["id"] for r in import_corpus(str(tmp_path / "c.parquet"), lang="en")] == ["p2.en", "p1.en"]
    frame.rename_axis("row").to_parquet(tmp_path / "named.parquet")
    assert read_records(tmp_path / "named.parquet")[0]["row"] == "b"  # a named index is data


def test_one_hub_probe_in_the_source():
    """Only polyrefusal/hub.py opens a connection to the hub or reads its offline switches."""
    for path in PACKAGE.rglob("*.py"):
        if path.name == "hub.py" and path.parent == PACKAGE:
            continue
        text = path.read_text(encoding="utf-8")
        assert "create_connection" not in text, path
        assert 'environ.get("HF_HUB_OFFLINE"' not in text and 'environ.get("HF_DATASETS_OFFLINE"' not in text, path


def test_the_probe_reads_offline_switches_as_huggingface_hub_does(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    assert hub.unreachable(timeout=2).startswith("no network: the Hugging Face Hub is unreachable at 127.0.0.1:9")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # datasets' own switch: dataset loads only
    assert hub.unreachable(datasets=True) == "HF_DATASETS_OFFLINE is set (offline mode)"
    assert hub.unreachable(timeout=2).startswith("no network")
    monkeypatch.setenv("HF_HUB_OFFLINE", "on")  # huggingface_hub's ENV_VARS_TRUE_VALUES, any case
    assert hub.unreachable() == hub.unreachable(datasets=True) == "HF_HUB_OFFLINE is set (offline mode)"
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    assert hub.unreachable(timeout=2).startswith("no network")


def test_models_and_datasets_give_the_same_offline_reason(monkeypatch, tmp_path):
    from polyrefusal.generate.identity import locate_model

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "yes")
    with pytest.raises(UserError) as model:
        locate_model("someone/some-model", None)
    with pytest.raises(UserError) as data:
        import_corpus("hub:someone/some-prompts", lang="en")
    assert "HF_HUB_OFFLINE is set (offline mode)" in model.value.message
    assert "HF_HUB_OFFLINE is set (offline mode)" in data.value.message
