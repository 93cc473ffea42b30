"""MiJaBench imported as its own code writes it: the release (build/, see
`test_the_released_dataset_imports_with_its_strategy_names`) and the first scripts (src/).

Source of the first scripts' format: github iagoalvesb/mijabench. src/01_data_prep.py builds the seed table
(`original_index, text, group, language, dataset_source, is_harmful`; language `english` from
ToxiGen, `portuguese` from ToxSyn-PT; `original_index` = the row's index in its seed corpus), and
src/03_prompts.py adds `scenario_category, scenario, jb_strategy, jb_prompt` (strategy ids
`persona_assign, new_language, chaining, false_equivalence`). ToxiGen's group ids: microsoft/TOXIGEN
notebooks/load_datasets.ipynb (the 13 groups of toxigen-data `train`). The Portuguese group names
are those of MiJaBench's src/03_prompts.py few-shot examples and the paper's Table 2.

The fixture rows are written here, in those columns; the seed text and prompts are placeholders
that name no content.
"""

from __future__ import annotations

import json

import pytest

from polyrefusal import cli
from polyrefusal.corpus import (MIJABENCH_GROUPS, MIJABENCH_STRATEGIES, CorpusError, import_corpus, read_corpus_file,
                               seed_axes)
from polyrefusal.errors import UserError

from ..helpers.corpus import LANGUAGES, run_corpus, write_jsonl, write_params, write_parquet

#: Column order of the published dataset (01_data_prep.py's selection, then 03_prompts.py's batch keys).
COLUMNS = ("original_index", "text", "group", "language", "dataset_source", "is_harmful",
           "scenario_category", "scenario", "jb_strategy", "jb_prompt")


def row(index: int, group: str, strategy: str, *, language: str = "english", source: str = "toxigen",
        scenario_category: str = "Social situations") -> dict:
    """One MiJaBench row; `text` is a placeholder for the hate seed, `jb_prompt` for the attack."""
    values = (index, f"[hate seed {index}: never a prompt]", group, language, source, 1, scenario_category,
              f"[scenario {index}]", strategy, f"[jailbreak prompt {index} against {group}, {strategy}]")
    return dict(zip(COLUMNS, values))


EN = [row(0, "black", "persona_assign"), row(1, "lgbtq", "new_language"),
      row(2, "mental_dis", "chaining"), row(3, "physical_dis", "false_equivalence"),
      row(4, "middle_east", "persona_assign"), row(5, "native_american", "chaining")]
PT = [row(0, "mulheres", "persona_assign", language="portuguese", source="toxsyn",
          scenario_category="Eventos culturais"),
      row(1, "idosos", "false_equivalence", language="portuguese", source="toxsyn"),
      row(2, "pessoas com deficiência", "new_language", language="portuguese", source="toxsyn"),
      row(3, "imigrantes", "chaining", language="portuguese", source="toxsyn")]


def test_official_columns_import_with_mapped_ids(tmp_path):
    src = write_parquet(tmp_path / "mijabench.parquet", EN + PT)
    got = import_corpus(str(src), lang="en", layout="mijabench", languages=LANGUAGES)
    assert [r["text"] for r in got] == [r["jb_prompt"] for r in EN + PT]
    assert not any("hate seed" in json.dumps(r) for r in got)       # the seed is dropped, not kept as meta
    assert [r["target_group"] for r in got] == ["black", "lgbtqia", "mental_disability", "physical_disability",
                                                "middle_eastern", "native", "women", "elderly", "disability",
                                                "immigrants"]
    assert [r["style"] for r in got[:4]] == ["persona_assignment", "representation_shifting", "chain_of_thought",
                                             "logical_rationalization"]
    assert [r["lang"] for r in got] == ["en"] * 6 + ["pt"] * 4
    assert {r["category"] for r in got} == {"S10"} and all(r["harmful"] is True for r in got)
    # ids: the seed corpus and its row; English row 0 and Portuguese row 0 are different seeds.
    assert got[0]["id"] == "mijabench.toxigen.0.en" and got[6]["id"] == "mijabench.toxsyn.0.pt"
    assert len({r["source_id"] for r in got}) == len(got)
    assert json.loads(got[6]["meta"]) == {"original_index": 0, "dataset_source": "toxsyn",
                                          "scenario_category": "Eventos culturais", "scenario": "[scenario 0]"}


#: The release's columns: build/build_seed.py's unified schema, then build/build_mijabench.py's
#: generated columns (github iagoalvesb/mijabench, the tree whose README links the Hugging Face
#: dataset AKCIT/mijabench).
RELEASE_COLUMNS = ("seed_index", "seed_text", "language", "group",
                   "scenario_category", "scenario", "jb_strategy", "jb_prompt")


def release_row(n: int, group: str, strategy: str, *, language: str = "english", dataset_id: str = "toxigen") -> dict:
    """One row as the release writes it; `seed_text` and `jb_prompt` are placeholders."""
    values = (f"{dataset_id}_{n}", f"[hate seed {n}: never a prompt]", language, group, "Social situations",
              f"[scenario {n}]", strategy, f"[jailbreak prompt {n} against {group}, {strategy}]")
    return dict(zip(RELEASE_COLUMNS, values))


def test_the_released_dataset_imports_with_its_strategy_names(tmp_path):
    """MiJaBench as released (github iagoalvesb/mijabench: create_mijabench.py runs
    build/build_seed.py, whose `_standardize_dataset` writes `seed_index` = `<dataset_id>_<n>`,
    `seed_text`, `language`, `group`, then build/build_mijabench.py, which adds `scenario_category`,
    `scenario`, `jb_strategy` (the strategy's `name` in configs/jailbreak_strategies.yaml: Persona
    Assignment, Representation Shifting, Chain-of-Thought, Logical Rationalization, in both
    languages) and `jb_prompt`; configs/config.yaml names the seed corpora `toxigen` and `toxsyn`)."""
    rows = [release_row(0, "black", "Persona Assignment"), release_row(1, "lgbtq", "Representation Shifting"),
            release_row(0, "mulheres", "Chain-of-Thought", language="portuguese", dataset_id="toxsyn"),
            release_row(1, "idosos", "Logical Rationalization", language="portuguese", dataset_id="toxsyn")]
    src = write_parquet(tmp_path / "mijabench.parquet", rows)
    got = import_corpus(str(src), lang="en", layout="mijabench", languages=LANGUAGES)
    assert [r["text"] for r in got] == [r["jb_prompt"] for r in rows]
    assert not any("hate seed" in json.dumps(r) for r in got)
    assert [r["style"] for r in got] == ["persona_assignment", "representation_shifting", "chain_of_thought",
                                         "logical_rationalization"]
    assert [r["target_group"] for r in got] == ["black", "lgbtqia", "women", "elderly"]
    assert [r["lang"] for r in got] == ["en", "en", "pt", "pt"]
    # The seed's own key, not the file's row number: the same ids in any order or subset.
    assert [r["source_id"] for r in got] == ["mijabench.toxigen.0", "mijabench.toxigen.1",
                                             "mijabench.toxsyn.0", "mijabench.toxsyn.1"]
    again = import_corpus(str(write_parquet(tmp_path / "mijabench.parquet", rows[::-1])), lang="en",
                          layout="mijabench", languages=LANGUAGES)
    assert sorted(r["id"] for r in again) == sorted(r["id"] for r in got)
    assert json.loads(got[2]["meta"]) == {"seed_index": "toxsyn_0", "scenario_category": "Social situations",
                                          "scenario": "[scenario 0]"}
    with pytest.raises(UserError, match="`seed_text` is the hate seed"):
        import_corpus(str(src), lang="en", layout="mijabench", columns={"seed_text": "text"})


def test_mapping_tables_land_on_the_seed_axes():
    axes = seed_axes()
    assert set(MIJABENCH_STRATEGIES.values()) == set(axes["strategies"])
    assert set(MIJABENCH_GROUPS.values()) <= set(axes["groups"])
    # ToxiGen's 13 groups and the paper's 9 Portuguese ones cover all 16 target groups.
    assert set(MIJABENCH_GROUPS.values()) == set(axes["groups"])


@pytest.mark.parametrize("field, value, column", [("group", "trans", "group (-> target_group)"),
                                                  ("jb_strategy", "role_play", "jb_strategy (-> style)")])
def test_an_id_that_maps_to_nothing_is_an_error_naming_it(tmp_path, capsys, field, value, column):
    rows = [row(0, "black", "chaining"), dict(row(1, "women", "chaining"), **{field: value})]
    src = write_jsonl(tmp_path / "mija.jsonl", rows)
    rc, err, out = run_corpus(tmp_path, capsys, source=str(src), layout="mijabench")
    assert rc == 2 and not out.exists()
    assert len(err.splitlines()) == 1
    assert f"{src}:2: field '{column}': unknown MiJaBench" in err and repr(value) in err


def test_the_hate_seed_never_becomes_the_prompt(tmp_path):
    # Without jb_prompt the import fails; it does not fall back on the same-named `text` column.
    rows = [{k: v for k, v in r.items() if k != "jb_prompt"} for r in EN[:2]]
    src = write_jsonl(tmp_path / "seeds_only.jsonl", rows)
    with pytest.raises(CorpusError, match="column 'jb_prompt' \\(mapped to text\\) is not in the data"):
        import_corpus(str(src), lang="en", layout="mijabench")
    with pytest.raises(UserError, match="hate seed"):
        import_corpus(str(src), lang="en", layout="mijabench", columns={"text": "text"})


def test_user_columns_refine_the_layout(tmp_path):
    # A user's column for a field the layout maps replaces the layout's entry: no clash.
    rows = [dict(r, attack=r["jb_prompt"].upper()) for r in EN[:2]]
    src = write_jsonl(tmp_path / "mija.jsonl", rows)
    got = import_corpus(str(src), lang="en", layout="mijabench", columns={"attack": "text"})
    assert [r["text"] for r in got] == [r["attack"] for r in rows]
    assert [r["style"] for r in got] == ["persona_assignment", "representation_shifting"]
    with pytest.raises(UserError, match="several columns"):
        import_corpus(str(src), lang="en", layout="mijabench", columns={"attack": "text", "scenario": "text"})


def test_a_repeated_key_keeps_every_row(tmp_path):
    # 03_prompts.py appends a new run to the dataset already on the hub: the same seed row twice.
    src = write_jsonl(tmp_path / "mija.jsonl", [EN[0], dict(EN[0], jb_strategy="chaining")])
    got = import_corpus(str(src), lang="en", layout="mijabench")
    assert [r["id"] for r in got] == ["mija.toxigen.0.en", "mija.toxigen.0.2.en"]


def test_metadata_round_trips_through_the_corpus_parquet(tmp_path, capsys):
    src = write_parquet(tmp_path / "mijabench.parquet", EN[:2] + PT[:1])
    rc, err, out = run_corpus(tmp_path, capsys, source=str(src), layout="mijabench")
    assert rc == 0, err
    got = read_corpus_file(out)
    assert [json.loads(r["meta"])["original_index"] for r in got] == [0, 1, 0]
    assert [r["target_group"] for r in got] == ["black", "lgbtqia", "women"]
    import pyarrow.parquet as pq
    assert pq.read_schema(out).names[-1] == "meta"


def test_builtin_corpus_has_no_meta_column(tmp_path):
    """The default corpus keeps exactly the schema's columns (its bytes do not change)."""
    import pyarrow.parquet as pq

    from polyrefusal.corpus import FIELDS

    out = tmp_path / "source.parquet"
    assert cli.main(["corpus", "--params", str(write_params(tmp_path, source="builtin")), str(out)]) == 0
    assert tuple(pq.read_schema(out).names) == FIELDS
