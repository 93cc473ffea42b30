"""The one validation of params (polyrefusal.params): YAML as users write it, every key known,
cross-field rules, local sources, and stage flags checked by the same schema.

Sources of the rules tested here:
* YAML 1.2.2 (https://yaml.org/spec/1.2.2/), 10.2.1.4 (core schema floats: `1e-6` is a float;
  YAML 1.1's float form, which PyYAML implements, needs a dot) and 3.2.1.1 (the keys of a
  mapping are unique);
* JSON Schema 2020-12 (https://json-schema.org/draft/2020-12/json-schema-core): an object
  schema with `additionalProperties: false` refuses every key its `properties` do not name.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from polyrefusal.errors import UserError
from polyrefusal.params import (Loader, SCHEMA, cross_checks, flag, load_params, load_yaml,
                                validate_params)

from .helpers.project import ROOT
from .helpers.faults import cli


def shipped() -> dict:
    return load_params(ROOT / "params.yaml")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def refused(params: dict, tmp_path: Path) -> UserError:
    path = write(tmp_path, yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(UserError) as exc:
        load_params(path)
    return exc.value


@pytest.mark.parametrize("text, value", [("1e-6", 1e-6), ("1E3", 1000.0), ("-2.5e+2", -250.0), (".5", 0.5),
                                         ("1.0e-3", 1e-3), ("3.", 3.0), ("13", 13), ("-7", -7), ("0.3", 0.3),
                                         (".inf", float("inf")), ("1e", "1e"), ("e5", "e5"), ("1_000", 1000)])
def test_numbers_by_yaml_1_2(text, value):
    got = yaml.load(f"x: {text}", Loader=Loader)["x"]
    assert got == value and type(got) is type(value)


def test_pyyaml_alone_reads_1e_6_as_text():
    """Why the loader exists (the test fails if PyYAML ever changes its rules)."""
    assert yaml.safe_load("x: 1e-6")["x"] == "1e-6"


def test_duplicate_key_names_its_path_and_both_lines(tmp_path):
    path = write(tmp_path, "dpo:\n  beta: 0.1\n  lora:\n    r: 4\n    r: 8\n")
    with pytest.raises(UserError) as exc:
        load_yaml(path)
    assert exc.value.format() == f"{path}:5: field 'dpo.lora.r': duplicate key (first given at line 4)"


def test_a_byte_order_mark_is_not_content(tmp_path):
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    path = tmp_path / "params.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert load_params(path) == shipped()


def test_shipped_params_are_valid_with_no_open_section():
    """Every mapping of the schema is closed, except those whose keys the user names."""
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    unclosed = []

    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node and node.get("additionalProperties") is not False:
                unclosed.append(where)
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(schema, "")
    assert unclosed == []
    shipped()


@pytest.mark.parametrize("dotted, typo, hint", [
    ("report", "bootstrp", "bootstrap"), ("generation", "temprature", "temperature"),
    ("dpo", "save_step", "save_steps"), ("evaluate", "rulle", "rule"), ("capability", "batchsize", "batch_size"),
    ("dpo.lora", "alpah", "alpha"), ("base_model.embedded", "hiden_size", "hidden_size"),
    ("compute.gpus", "trian", "train"), ("translate", "optoins", "options"), ("corpus", "layuot", "layout")])
def test_unknown_key_in_every_section_with_did_you_mean(dotted, typo, hint, tmp_path):
    params = shipped()
    node = params
    for part in dotted.split("."):
        node = node[part]
    node[typo] = node.get(hint, 1)
    err = refused(params, tmp_path)
    assert err.field == f"{dotted}.{typo}" and f"did you mean {hint!r}" in err.message and err.line


def test_unknown_top_level_section(tmp_path):
    params = shipped()
    params["reprot"] = params.pop("report")
    err = refused(params, tmp_path)
    assert (err.field, err.message.split(";")[0]) == ("reprot", "unknown key 'reprot'")
    assert "did you mean 'report'" in err.message


def test_errors_name_the_line_of_the_key(tmp_path):
    text = (ROOT / "params.yaml").read_text(encoding="utf-8").replace("  test_fraction: 0.3", "  test_fraction: 0")
    path = write(tmp_path, text)
    with pytest.raises(UserError) as exc:
        load_params(path)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("  test_fraction:"))
    assert (exc.value.line, exc.value.field) == (line, "split.test_fraction")


def test_cross_field_rules(tmp_path):
    p = shipped()
    p["train_configs"] = p["train_configs"] + ["single_xx"]
    assert cross_checks(p, tmp_path)[0][0] == ["train_configs", len(p["train_configs"]) - 1]
    p = shipped()
    p["languages"] = ["en", "de"]
    paths = [path for path, _ in cross_checks(p, tmp_path)]
    # a configuration without data: single_<lang> is generated, so the error names its
    # train_configs entry (there is no config_defs line to name)
    assert ["train_configs", p["train_configs"].index("single_fr")] in paths
    p["source_language"] = "fr"
    assert ["source_language"] in [path for path, _ in cross_checks(p, tmp_path)]


def test_local_sources_must_exist_hub_ids_need_not(tmp_path):
    p = shipped()
    (tmp_path / "models" / "here").mkdir(parents=True)
    p["base_model"]["source"] = "models/here/"
    p["audit_models"] = {"hub": {"path": "Qwen/Qwen2.5-7B-Instruct", "gpus": 1},
                         "gone": {"path": "/nonexistent/weights", "gpus": 1}}
    p["corpus"]["source"] = "owner/dataset"              # a hub dataset id
    p["corpus"]["include"] = ["results/rainbow/generated.parquet"]  # made by the run
    problems = cross_checks(p, tmp_path)
    assert [path for path, _ in problems] == [["audit_models", "gone", "path"]]
    p["corpus"]["source"] = "data/prompts.csv"           # a file suffix: a local file
    assert ["corpus", "source"] in [path for path, _ in cross_checks(p, tmp_path)]


def test_preset_results_are_validated_whole():
    """A preset is checked as the merged params it produces (stages/preset.py calls the same
    validate_params), so an unknown key in an override is refused like one in params.yaml."""
    p = shipped()
    merged = copy.deepcopy(p)
    merged["dpo"]["learning_rate_"] = 1e-6
    with pytest.raises(UserError) as exc:
        validate_params(merged, source=str(ROOT / "params.yaml"))
    assert "did you mean 'learning_rate'" in exc.value.message


def test_flag_uses_the_params_rule():
    parse = flag("split.test_fraction")
    assert parse("0.25") == 0.25 and parse("1e-1") == 0.1
    for bad in ("0", "1", "1.5", "-0.1", "abc"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)
    assert flag("report.bootstrap")("1000") == 1000
    with pytest.raises(argparse.ArgumentTypeError):
        flag("report.bootstrap")("2.5")


def test_split_refuses_a_fraction_outside_0_1_itself(tmp_path):
    res = cli(["polyrefusal", "split", "--test-fraction", "1", "--seed", "0", "in.jsonl", "out.json"], tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "argument --test-fraction: '1': 1 is greater than or equal to the maximum of 1" in res.stderr
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("command", sorted(__import__("polyrefusal.cli", fromlist=["COMMANDS"]).COMMANDS))
def test_stage_help_says_what_each_option_is(command):
    """Every option and argument of every command has a help text."""
    import importlib

    from polyrefusal.cli import COMMANDS

    parser = argparse.ArgumentParser()
    importlib.import_module(f"polyrefusal.stages.{COMMANDS[command][0]}").add_arguments(parser)
    missing = [a.dest for a in parser._actions if not a.help]
    assert missing == [], f"polyrefusal {command}: no help for {missing}"


def test_test_copies_never_take_a_runs_dvc_lock(tmp_path, monkeypatch):
    """`make run` then `make test` in one checkout: the run's dvc.lock (untracked, not ignored)
    does not reach the tests' project copies."""
    from .helpers import project

    repo = tmp_path / "checkout"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    for name in ("params.yaml", "dvc.lock", "new_module.py"):
        (repo / name).write_text("x\n")
    monkeypatch.setattr(project, "ROOT", repo)
    assert sorted(project.project_files()) == ["new_module.py", "params.yaml"]


def test_translate_options_are_the_backends_own(tmp_path):
    """translate.options is open in the schema (each backend has its own), and checked against
    the options the chosen backend declares (DeepL's: polyrefusal.translate.deepl_backend)."""
    p = shipped()
    p["translate"] = {**p["translate"], "backend": "deepl", "options": {"formalty": "less"}}
    err = refused(p, tmp_path)
    assert err.field == "translate.options.formalty" and "did you mean 'formality'" in err.message
    p["translate"]["options"] = {"formality": "less"}
    validate_params(p, source=str(write(tmp_path, yaml.safe_dump(p))))


@pytest.mark.parametrize("options, field, says", [
    # a misspelt option of a judge the run uses: found before any job, not when the judge is built
    ({"refusal_lexicon": {"head_char": 100}}, "judge.options.refusal_lexicon.head_char",
     "unknown option 'head_char' of judge 'refusal_lexicon'; did you mean 'head_chars'?"),
    ({"llama_guard": {"backend": "openai", "path": "m", "templat": "full"}}, "judge.options.llama_guard.templat",
     "did you mean 'template'?"),
    # a misspelt judge name: its options would reach no judge at all
    ({"llama_gaurd": {"backend": "openai", "path": "m"}}, "judge.options.llama_gaurd",
     "unknown judge 'llama_gaurd'; did you mean 'llama_guard'?"),
    # an instance (MiJaBench's panel) of an unknown kind
    ({"qwen3": {"judge": "llm_judj", "path": "m"}}, "judge.options.qwen3.judge", "unknown judge 'llm_judj'"),
    # an instance's options are its kind's
    ({"qwen3": {"judge": "llm_judge", "path": "m", "rubrik": "mijabench"}}, "judge.options.qwen3.rubrik",
     "of judge 'llm_judge'; did you mean 'rubric'?"),
])
def test_judge_options_name_a_judge_and_its_own_options(tmp_path, options, field, says):
    """judge.options is open in the schema (each judge has its own options) and checked against
    the options each judge declares (`Judge.known_options`, which its constructor enforces too)."""
    p = shipped()
    p["judge"]["options"] = options
    err = refused(p, tmp_path)
    assert err.field == field and says in err.message
    assert "generator" not in err.message  # an option only code passes is not offered


def test_rainbow_judge_options_are_its_judges_own(tmp_path):
    p = shipped()
    p["rainbow"] = {**p["rainbow"], "judge": "refusal_lexicon", "judge_options": {"windw_chars": 300}}
    err = refused(p, tmp_path)
    assert err.field == "rainbow.judge_options.windw_chars" and "did you mean 'window_chars'?" in err.message


def test_judge_options_of_a_named_instance_pass(tmp_path):
    p = shipped()
    p["judge"]["options"] = {"qwen3": {"judge": "llm_judge", "backend": "openai", "path": "m", "rubric": "mijabench"},
                             "refusal_lexicon": {"head_chars": 200}}
    validate_params(p, source=str(write(tmp_path, yaml.safe_dump(p))))


def test_corpus_columns_are_checked_by_the_corpus_stages_own_reading(tmp_path):
    """corpus.columns and corpus.defaults (open in the schema) go through the corpus stage's
    `resolve_mapping` at validation: a column mapped to no corpus field, or a MiJaBench hate seed
    mapped to the prompt, is refused before any job starts."""
    (tmp_path / "prompts.jsonl").write_text('{"text": "[a prompt]"}\n')
    p = shipped()
    p["corpus"] = {**p["corpus"], "source": str(tmp_path / "prompts.jsonl"), "columns": {"question": "txt"}}
    err = refused(p, tmp_path)
    assert err.field == "corpus.columns.question" and "not a corpus field" in err.message
    p["corpus"].update(layout="mijabench", columns={"seed_text": "text"})
    err = refused(p, tmp_path)
    assert err.field == "corpus.columns.seed_text" and "hate seed" in err.message
    p["corpus"].update(layout="custom", columns={"question": "text"}, defaults={"id": "x"})
    err = refused(p, tmp_path)
    assert err.field == "corpus.defaults.id"
    p["corpus"]["defaults"] = {"style": "direct"}
    validate_params(p, source=str(write(tmp_path, yaml.safe_dump(p))))


def test_a_models_extra_holds_only_what_its_backend_reads(tmp_path):
    """`extra` is open in the schema (each backend has its own settings) and checked against the
    backend's `known_extra`: a misspelt `base_url` would otherwise send every request, with the
    key, to the default endpoint (OPENAI_BASE_URL or the OpenAI API)."""
    p = shipped()
    p["generation"] = {**p["generation"], "backend": "openai", "extra": {"base_ur": "http://127.0.0.1:8000/v1"}}
    err = refused(p, tmp_path)
    assert err.field == "generation.extra.base_ur" and "did you mean 'base_url'?" in err.message
    p["generation"]["extra"] = {"base_url": "http://127.0.0.1:8000/v1", "concurrency": 4, "timeout": 30}
    p["judge"]["options"] = {"llama_guard": {"backend": "vllm", "path": "m", "extra": {"tensor_paralel_size": 2}}}
    err = refused(p, tmp_path)
    assert err.field == "judge.options.llama_guard.extra.tensor_paralel_size" and "'tensor_parallel_size'" in err.message
    p["judge"]["options"]["llama_guard"]["extra"] = {"tensor_parallel_size": 2}
    validate_params(p, source=str(write(tmp_path, yaml.safe_dump(p))))
