"""`polyrefusal export-dataset --layout refuseu`: the study's judged pairs as a dataset in
RefusEU's layout, and back.

Layout source: the dataset card huggingface.co/datasets/NASK-PIB/RefusEU (README.md): a `configs:`
YAML header with one `lang_xx` configuration per language, splits `train` (`lang_xx/train-*`) and
`test` (`lang_xx/test-*`), rows with `id`, `row_id`, `category` and `chosen` / `rejected` as chat
message lists ([{content, role}]). The pairs come from the project's own `pairs` stage format
(TRL's conversational preference format, src/polyrefusal/stages/pairs.py `to_trl`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from polyrefusal import cli
from polyrefusal.corpus import FIELDS, builtin_records, import_corpus, read_corpus_file
from polyrefusal.io import write_records
from polyrefusal.stages.pairs import to_trl

from ..helpers.corpus import write_params

REFUSAL = {"en": "I can't help with that.", "de": "Dabei kann ich nicht helfen."}
COMPLY = {"en": "Sure, here it is: [omitted]", "de": "Klar, hier ist es: [ausgelassen]"}


def judged(lang: str, n: int, offset: int) -> list[dict]:
    """Corpus records with both answers, as the judge stage leaves them (the built-in seed's
    prompts: harm axis, demographic axis and benign controls)."""
    seed = builtin_records(lang)
    picks = [r for r in seed if r["harmful"] and not r["target_group"]][offset:offset + n] \
        + [r for r in seed if r["target_group"]][offset:offset + n] \
        + [r for r in seed if not r["harmful"]][offset:offset + 1]
    return [dict(r, chosen=REFUSAL[lang], rejected=COMPLY[lang]) for r in picks]


@pytest.fixture
def pairs_dir(tmp_path) -> tuple[Path, dict[str, list[dict]]]:
    out = tmp_path / "pairs"
    records = {}
    for lang in ("en", "de"):
        train, test = judged(lang, 3, 0), judged(lang, 2, 5)
        write_records(out / f"{lang}.train.jsonl", [to_trl(r) for r in train])
        write_records(out / f"{lang}.test.jsonl", [to_trl(r) for r in test])
        records[lang] = train + test
    return out, records


def export(pairs: Path, out: Path, *extra: str) -> int:
    return cli.main(["export-dataset", "--layout", "refuseu", "--pairs-dir", str(pairs), "--out", str(out), *extra])


def test_export_writes_the_layout_and_a_card(pairs_dir, tmp_path):
    import pyarrow.parquet as pq

    pairs, records = pairs_dir
    out = tmp_path / "dataset"
    assert export(pairs, out) == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "README.md", "lang_de/test-00000-of-00001.parquet", "lang_de/train-00000-of-00001.parquet",
        "lang_en/test-00000-of-00001.parquet", "lang_en/train-00000-of-00001.parquet"]
    header = yaml.safe_load(out.joinpath("README.md").read_text().split("---")[1])
    assert header["configs"] == [{"config_name": f"lang_{lang}", "data_files": [
        {"split": "train", "path": f"lang_{lang}/train-*"}, {"split": "test", "path": f"lang_{lang}/test-*"}]}
        for lang in ("de", "en")]
    assert header["language"] == ["de", "en"]
    row = pq.read_table(out / "lang_de" / "train-00000-of-00001.parquet").to_pylist()[0]
    first = records["de"][0]
    assert list(row)[:5] == ["id", "row_id", "category", "chosen", "rejected"]
    assert row["id"] == f"{first['source_id']}_de" and row["row_id"] == 0
    assert row["chosen"] == [{"content": first["text"], "role": "user"},
                             {"content": REFUSAL["de"], "role": "assistant"}]
    assert row["rejected"][-1] == {"content": COMPLY["de"], "role": "assistant"}


def test_importing_the_export_gives_back_the_same_records(pairs_dir, tmp_path):
    pairs, records = pairs_dir
    out = tmp_path / "dataset"
    assert export(pairs, out) == 0
    want = [{k: r.get(k) for k in FIELDS} for lang in ("de", "en") for r in records[lang]]
    got = import_corpus(str(out), lang="en", layout="refuseu")
    assert got == want
    only_de = import_corpus(str(out), lang="en", layout="refuseu", subset="lang_de")
    assert only_de == [r for r in want if r["lang"] == "de"]


def test_the_export_is_a_corpus_source_and_a_datasets_directory(pairs_dir, tmp_path, capsys):
    import datasets

    pairs, records = pairs_dir
    out = tmp_path / "dataset"
    assert export(pairs, out, "--languages", "de") == 0
    params = write_params(tmp_path, source=str(out), layout="refuseu", subset="lang_de")
    corpus = tmp_path / "source.parquet"
    assert cli.main(["corpus", "--params", str(params), str(corpus)]) == 0, capsys.readouterr().err
    assert [r["id"] for r in read_corpus_file(corpus)] == [r["id"] for r in records["de"]]
    # datasets reads the card's configs the way it reads the hub's.
    ds = datasets.load_dataset(str(out), "lang_de", cache_dir=str(tmp_path / "hf_cache"))
    assert {s: ds[s].num_rows for s in ds} == {"train": 7, "test": 5}
    assert ds["test"][0]["chosen"][0]["role"] == "user"


def test_a_bad_pairs_line_fails_before_anything_is_written(pairs_dir, tmp_path, capsys):
    pairs, _ = pairs_dir
    path = pairs / "de.test.jsonl"
    lines = path.read_text().splitlines()
    broken = dict(json.loads(lines[1]), chosen=[{"role": "user", "content": "[prompt]"}])
    path.write_text("\n".join([lines[0], json.dumps(broken), *lines[2:]]) + "\n")
    out = tmp_path / "dataset"
    capsys.readouterr()
    assert export(pairs, out) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{path}:2: field 'chosen': expected a chat message list with a turn of role 'assistant'" in err
    assert not out.exists() and not list(tmp_path.glob(".dataset.*"))


def test_unknown_language_is_an_error(pairs_dir, tmp_path, capsys):
    pairs, _ = pairs_dir
    assert export(pairs, tmp_path / "dataset", "--languages", "de,sk") == 2
    assert "no pairs for sk" in capsys.readouterr().err
