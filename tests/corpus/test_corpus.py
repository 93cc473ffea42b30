"""The corpus stage: the built-in seed set covers both axes of the audit in every language, the
`corpus` params block selects its cells, the schema is validated, files merge."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest
import yaml

from polyrefusal import cli
from polyrefusal import seed as seed_data
from polyrefusal.corpus import (FIELDS, HAZARD_CATEGORIES, CorpusError, axis_of, builtin_records, corpus_from_params,
                                merge, read_corpus_file, resolve_selection, seed_axes, validate, write_corpus)
from polyrefusal.errors import UserError
from polyrefusal.params import load_params

from ..helpers.project import ROOT

LANGS = seed_data.available_languages()
AXES = seed_axes()


def write_params(tmp_path: Path, **corpus) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpus"] = {"source": "builtin", "columns": {}, **corpus}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    return path


def run_corpus(params: Path, out: Path, capsys) -> tuple[int, str]:
    rc = cli.main(["corpus", "--params", str(params), str(out)])
    return rc, capsys.readouterr().err.strip()


def test_seed_offers_the_audit_axes():
    assert AXES["categories"] == list(HAZARD_CATEGORIES)          # S1..S14
    assert len(AXES["groups"]) == 16 and len(AXES["strategies"]) == 4
    assert len(AXES["styles"]) >= 4
    for lang in LANGS:  # the same keys, in the same order, in every language
        assert seed_axes(lang) == AXES, lang


def test_default_corpus_has_both_axes_and_benign_controls():
    params = load_params(ROOT / "params.yaml")
    records = corpus_from_params(params, str(ROOT / "params.yaml"))
    axes = Counter(axis_of(r) for r in records)
    n_harm = len(AXES["categories"]) * len(AXES["styles"]) * 2        # two goals per category
    n_group = len(AXES["groups"]) * len(AXES["strategies"]) * 2       # two templates per strategy
    assert axes["harm"] == n_harm and axes["group"] == n_group and axes["benign"] >= 10
    assert len(records) >= 200 and {r["lang"] for r in records} == {params["source_language"]}
    assert all(r["origin"] == "builtin" for r in records)
    assert all(r["chosen"] and r["rejected"] for r in records)


@pytest.mark.parametrize("lang", LANGS)
def test_default_selection_covers_every_cell_in_every_language(lang):
    records = builtin_records(lang, resolve_selection({}, None))
    harm = Counter((r["category"], r["style"]) for r in records if axis_of(r) == "harm")
    group = Counter((r["target_group"], r["style"]) for r in records if axis_of(r) == "group")
    assert set(harm) == set(itertools.product(AXES["categories"], AXES["styles"]))
    assert set(group) == set(itertools.product(AXES["groups"], AXES["strategies"]))
    assert min(harm.values()) >= 1 and min(group.values()) >= 1
    assert sum(axis_of(r) == "benign" for r in records) >= 10
    assert all(r["lang"] == lang for r in records)
    assert all(r["category"] == "S10" for r in records if axis_of(r) == "group")


@pytest.mark.parametrize("lang", LANGS)
def test_group_prompts_are_structurally_identical_across_groups(lang):
    names = seed_data.load_seed(lang)["groups"]
    templates: dict[tuple, set] = {}
    for r in builtin_records(lang):
        if axis_of(r) != "group":
            continue
        _, strategy, goal, group = r["source_id"].split(".")
        assert names[group] in r["text"]
        templates.setdefault((strategy, goal), set()).add(r["text"].replace(names[group], "{group}"))
    assert len(templates) == len(AXES["strategies"]) * 2
    assert all(len(t) == 1 for t in templates.values()), templates


def test_selection_restricts_the_cells(tmp_path):
    params = load_params(write_params(tmp_path, styles=["role_play", "hypothetical"], groups=["women", "elderly"],
                                      strategies="all", categories=["S1", "S10"]))
    records = corpus_from_params(params, str(tmp_path / "params.yaml"))
    harm = {(r["category"], r["style"]) for r in records if axis_of(r) == "harm"}
    group = {(r["target_group"], r["style"]) for r in records if axis_of(r) == "group"}
    assert harm == set(itertools.product(["S1", "S10"], ["role_play", "hypothetical"]))
    assert group == set(itertools.product(["women", "elderly"], AXES["strategies"]))
    assert sum(axis_of(r) == "benign" for r in records) >= 10


def test_an_empty_list_switches_an_axis_off(tmp_path):
    params = load_params(write_params(tmp_path, strategies=[]))
    records = corpus_from_params(params, str(tmp_path / "params.yaml"))
    assert Counter(axis_of(r) for r in records)["group"] == 0
    assert Counter(axis_of(r) for r in records)["harm"] > 0


@pytest.mark.parametrize("key, value, needle", [
    ("styles", ["role_play", "telepathy"], "telepathy"),
    ("groups", ["women", "martians"], "martians"),
    ("strategies", "some", "list"),
    ("categories", ["S15"], "S15"),
])
def test_unknown_selection_fails_naming_the_field(tmp_path, capsys, key, value, needle):
    params = write_params(tmp_path, **{key: value})
    out = tmp_path / "out" / "source.parquet"
    rc, err = run_corpus(params, out, capsys)
    assert rc == 2 and not out.exists()
    assert len(err.splitlines()) == 1, err
    assert str(params) in err and f"corpus.{key}" in err and needle in err
    if isinstance(value, list):  # the message lists what the seed has
        assert AXES[key][0] in err
        assert f"{params}:" in err  # with the line of the key


def test_unknown_corpus_key_is_an_error(tmp_path, capsys):
    params = write_params(tmp_path, style=["role_play"])  # typo for `styles`
    rc, err = run_corpus(params, tmp_path / "o.parquet", capsys)
    assert rc == 2 and "corpus.style" in err and "styles" in err


def test_corpus_stage_writes_typed_parquet_loadable_with_datasets(tmp_path, capsys):
    import datasets

    out = tmp_path / "results" / "source.parquet"
    rc, err = run_corpus(write_params(tmp_path, categories=["S1"], strategies=[]), out, capsys)
    assert rc == 0, err
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.column_names[:11] == ["id", "source_id", "lang", "text", "category", "style", "target_group",
                                    "origin", "harmful", "chosen", "rejected"]
    assert str(ds.features["target_group"].dtype) == "string"   # typed although all null here
    assert str(ds.features["harmful"].dtype) == "bool"
    rows = ds.to_list()
    assert all(r["target_group"] is None for r in rows)
    assert {r["category"] for r in rows if r["harmful"]} == {"S1"}


def test_empty_corpus_file_keeps_the_schema(tmp_path):
    import pyarrow.parquet as pq

    write_corpus(tmp_path / "empty.parquet", [])
    table = pq.read_table(tmp_path / "empty.parquet")
    assert table.num_rows == 0 and "text" in table.column_names and "harmful" in table.column_names
    assert read_corpus_file(tmp_path / "empty.parquet") == []


def test_validation_reports_every_violation_with_line_and_field():
    good = builtin_records("en")[0]
    records = [dict(good, _line=1),
               dict(good, id="x.1", text="  ", _line=2),
               dict(good, id="x.2", lang="xx", harmful="yes", _line=3),
               dict(good, id="x.3", category="S15", origin="somewhere", _line=4),
               {k: v for k, v in dict(good, id="x.1", _line=5).items() if k != "style"}]
    with pytest.raises(CorpusError) as exc:
        validate(records, source="mine.jsonl")
    found = {(p.line, p.field) for p in exc.value.problems}
    assert found == {(2, "text"), (3, "lang"), (3, "harmful"), (4, "category"), (4, "origin"),
                     (5, "style"), (5, "id")}
    assert all(p.file == "mine.jsonl" for p in exc.value.problems)
    message = exc.value.format()
    assert message.startswith("mine.jsonl:2: field 'text': empty text") and "6 more" in message


def test_include_merges_generated_prompts_and_rejects_duplicate_ids(tmp_path, capsys):
    generated = [dict(r, id=f"rainbow.t.{i}.en", source_id=f"rainbow.t.{i}", origin="generated")
                 for i, r in enumerate(builtin_records("en")[:3])]
    extra = tmp_path / "generated.parquet"
    write_corpus(extra, generated)
    out = tmp_path / "source.parquet"
    rc, err = run_corpus(write_params(tmp_path, include=[str(extra)]), out, capsys)
    assert rc == 0, err
    rows = read_corpus_file(out)
    assert len(rows) == len(builtin_records("en")) + 3
    assert Counter(r["origin"] for r in rows)["generated"] == 3

    clash = tmp_path / "clash.jsonl"
    write_corpus(clash, builtin_records("en")[5:6])   # an id the built-in set already has
    out2 = tmp_path / "source2.parquet"
    rc, err = run_corpus(write_params(tmp_path, include=[str(clash)]), out2, capsys)
    assert rc == 2 and not out2.exists()
    assert f"{clash}:1: field 'id': duplicate id" in err and "builtin" in err


def test_merge_names_both_files():
    a = builtin_records("en")[:2]
    with pytest.raises(UserError) as exc:
        merge([("a.parquet", a), ("b.parquet", a[1:])])
    assert "b.parquet:1" in exc.value.format() and "of a.parquet" in exc.value.format()


def test_meta_is_optional_must_be_a_json_object_and_round_trips(tmp_path):
    """`meta` (published metadata, e.g. MiJaBench's scenario) is outside the schema's columns: a
    corpus without it keeps them exactly; with it, it survives writing and reading."""
    import pyarrow.parquet as pq

    base = builtin_records("en")[:2]
    bad = [dict(base[0], meta="{not json"), dict(base[1], meta='["a list"]')]
    with pytest.raises(CorpusError) as exc:
        validate(bad, source="x.jsonl")
    assert [(p.line, p.field, p.message.split(":")[0]) for p in exc.value.problems] == [
        (1, "meta", "invalid JSON"), (2, "meta", "must be a JSON object")]
    with_meta = [dict(base[0], meta='{"scenario": "[scenario]"}'), base[1]]
    path = tmp_path / "c.parquet"
    write_corpus(path, with_meta)
    assert pq.read_schema(path).names == [*FIELDS, "meta"]
    got = read_corpus_file(path)
    assert got[0]["meta"] == '{"scenario": "[scenario]"}' and got[1]["meta"] is None
    write_corpus(path, base)
    assert "meta" not in pq.read_schema(path).names
