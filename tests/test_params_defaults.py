"""Each params default stated once, in the schema (``default:``), and read through
``polyrefusal.params.with_defaults``; training settings checked by TRL's own ``DPOConfig``.

Sources of the rules tested here:
* JSON Schema 2020-12 validation vocabulary, "default" (section 9.2,
  https://json-schema.org/draft/2020-12/json-schema-validation#name-default): an annotation the
  validator does not apply; filling it in is the reader's job (``with_defaults``).
* TRL 1.16's ``DPOConfig`` (huggingface/trl, trl/trainer/dpo_config.py): a dataclass over
  transformers' ``TrainingArguments``; its ``__post_init__`` refuses ``loss_weights`` whose
  length differs from ``loss_type``'s, and TrainingArguments' refuses an unknown
  ``lr_scheduler_type`` (``SchedulerType``) or ``optim`` (``OptimizerNames``); an unknown
  field is a ``TypeError`` of the dataclass ``__init__``.
"""

from __future__ import annotations

import ast
import copy
import time
from pathlib import Path

import pytest
import yaml

from polyrefusal.errors import UserError
from polyrefusal.params import _schema, default, key_schema, load_params, with_defaults

from .helpers.params import get
from .helpers.project import ROOT

STAGES = ROOT / "src" / "polyrefusal" / "stages"
#: The library modules whose settings are params keys (besides the stages).
LIBRARY = [ROOT / "src" / "polyrefusal" / "training" / "dpo.py",
           ROOT / "src" / "polyrefusal" / "scoring" / "capability.py"]


def defaults_in_schema(node: dict | None = None, path: tuple = ()) -> dict[tuple, object]:
    """Every (key path -> default) the schema states, through ``properties`` and ``$ref``s."""
    from polyrefusal.params import _resolve

    node = _resolve(_schema() if node is None else node)
    out: dict[tuple, object] = {}
    for name, sub in (node.get("properties") or {}).items():
        resolved = _resolve(sub)
        if "default" in resolved:
            out[path + (name,)] = resolved["default"]
        out.update(defaults_in_schema(sub, path + (name,)))
    return out


def leaves(value, path: tuple = ()):
    """(key path, value) of every leaf of a nested mapping (a list is a leaf)."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from leaves(v, path + (k,))
    else:
        yield path, value


def drop(params: dict, path: tuple) -> dict:
    out = copy.deepcopy(params)
    node = out
    for k in path[:-1]:
        node = node[k]
    del node[path[-1]]
    return out


def test_every_section_a_command_reads_has_its_defaults_in_the_schema():
    d = defaults_in_schema()
    # one per key the commands used to restate (stage DEFAULTS dicts, `.get(key, default)`)
    for key, value in {("capability", "format"): "letters", ("capability", "batch_size"): 8,
                       ("rainbow", "iterations"): 40, ("rainbow", "group_category"): "S10",
                       ("generation", "batch_size"): 16, ("generation", "dtype"): "auto",
                       ("dpo", "save_steps"): 50, ("dpo", "save_total_limit"): 2,
                       ("dpo", "merge_lora"): True, ("dpo", "lora", "r"): 16,
                       ("evaluate", "rule"): "unanimous", ("judge", "judges"): ["refusal_lexicon"],
                       ("report", "truncate_answers"): 80, ("report", "bootstrap"): 1000}.items():
        assert d[key] == value, key
    assert default("report.truncate_answers") == 80
    with pytest.raises(KeyError, match="no default"):
        default("split.seed")  # required: no default


def test_every_default_is_a_valid_value_of_its_key():
    from polyrefusal.params import _validator, schema_problem

    found = defaults_in_schema()
    assert len(found) > 50
    assert {k: v for k, v in found.items() if schema_problem(v, ".".join(k)) is not None} == {}
    assert list(_validator().iter_errors(with_defaults(load_params(ROOT / "params.yaml")))) == []


def test_with_defaults_fills_absent_keys_and_sections_and_never_overrides():
    params = load_params(ROOT / "params.yaml")
    given = copy.deepcopy(params)
    filled = with_defaults(params)
    assert params == given  # the input is not changed
    for path, value in leaves(params):
        assert get(filled, path) == value, path  # a given value always wins
    # an absent optional section comes back whole
    bare = {k: v for k, v in params.items() if k not in ("capability", "report")}
    filled = with_defaults(bare)
    assert filled["capability"]["format"] == "letters" and filled["report"]["seed"] == 0
    # a given model section is merged over its default key by key
    rb = with_defaults({**params, "rainbow": {"mutator": {"path": "x"}}})["rainbow"]
    assert rb["mutator"] == {"backend": "transformers", "path": "x", "temperature": 0.8, "max_new_tokens": 48}
    # a block alone, and a config_defs entry
    assert with_defaults({"use_lora": True}, "dpo")["lora"]["target_modules"] == "all-linear"
    assert with_defaults({"langs": ["en"]}, "#/definitions/config_def") == {
        "langs": ["en"], "include_general": False, "max_per_language": None}


def test_params_yaml_values_equal_to_a_default_are_that_default():
    """params.yaml keeps its values (the user's file). Where one equals the schema default,
    deleting the line changes nothing the commands read; where one differs, it is a deliberate
    choice of the shipped file, listed here so a changed default is noticed."""
    params = load_params(ROOT / "params.yaml")
    schema_defaults = defaults_in_schema()
    filled = with_defaults(params)
    restated, differ = [], {}
    for path, value in leaves(params):
        if path not in schema_defaults:
            continue
        if value == schema_defaults[path]:
            restated.append(path)
            assert with_defaults(drop(params, path)) == filled, path
        else:
            differ[".".join(path)] = value
    assert len(restated) > 20  # the check ran over the file
    assert differ == {"capability.format": "cloze", "dpo.max_per_language": 64, "dpo.save_steps": 25,
                      "dpo.precompute_ref_log_probs": True, "generation.batch_size": 64}


def _restated_defaults(path: Path, names: set[str]) -> list[str]:
    """``x.get("key", literal)`` calls in a module where ``key`` is a params key with a schema
    default, and module-level ``DEFAULTS`` mappings: a second copy of a default."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hits = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                and len(node.args) == 2 and isinstance(node.args[0], ast.Constant)
                and node.args[0].value in names
                and isinstance(node.args[1], (ast.Constant, ast.List, ast.Dict, ast.Tuple))
                and not (isinstance(node.args[1], ast.Constant) and node.args[1].value is None)):
            hits.append(f"{path.name}:{node.lineno} .get({node.args[0].value!r}, ...)")
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.col_offset == 0:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "DEFAULTS" for t in targets):
                hits.append(f"{path.name}:{node.lineno} DEFAULTS")
    return hits


def test_no_stage_or_library_module_restates_a_params_default():
    names = {path[-1] for path in defaults_in_schema()}
    files = sorted(STAGES.glob("*.py")) + LIBRARY
    hits = [h for f in files for h in _restated_defaults(f, names)]
    assert hits == []


def test_the_restatement_finder_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('DEFAULTS = {"format": "letters"}\ndef f(c):\n    return c.get("batch_size", 16)\n')
    assert _restated_defaults(bad, {"format", "batch_size"}) == ["bad.py:1 DEFAULTS", "bad.py:3 .get('batch_size', ...)"]


# --------------------------------------------------------------------------- TRL's DPOConfig

def write_params(tmp_path: Path, **dpo) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["dpo"].update(dpo)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize("dpo, field, key_text, says", [
    ({"lr_scheduler_type": "bogus"}, "dpo.lr_scheduler_type", "lr_scheduler_type:", "not a valid SchedulerType"),
    ({"optim": "adamw_bogus"}, "dpo.optim", "optim:", "not a valid OptimizerNames"),
    ({"loss_weights": [1.0]}, "dpo.loss_weights", "loss_weights:", "same length as `loss_type`"),
    ({"trl_args": {"warmup_ratioo": 0.1}}, "dpo.trl_args.warmup_ratioo", "warmup_ratioo:",
     "no DPOConfig field"),
    ({"trl_args": {"beta": 0.2}}, "dpo.trl_args.beta", "  beta: 0.2", "set by the dpo: block itself"),
])
def test_dpo_block_is_checked_by_trl_with_file_line_and_key(tmp_path, dpo, field, key_text, says):
    pytest.importorskip("trl")
    path = write_params(tmp_path, **dpo)
    load_params(path)  # the schema alone lets it pass: only TRL knows
    with pytest.raises(UserError) as exc:
        load_params(path, training=True)
    err = exc.value
    assert (err.file, err.field, err.line) == (str(path), field, line_of(path, key_text))
    assert says in err.message and "TRL" in err.message


def test_a_setting_transformers_5_dropped_is_unknown_to_the_schema(tmp_path):
    """TrainingArguments in transformers 5 has no warmup_ratio (found by TRL's check): the schema
    does not list it, so it is refused as an unknown key with its line."""
    path = write_params(tmp_path, warmup_ratio=0.1)
    with pytest.raises(UserError, match="unknown key 'warmup_ratio'") as exc:
        load_params(path)
    assert exc.value.line == line_of(path, "warmup_ratio:")


def test_shipped_params_and_every_preset_pass_trl_quickly_and_leave_nothing(tmp_path, monkeypatch):
    pytest.importorskip("trl")
    import json
    import tempfile

    from polyrefusal.params import validate_params
    from polyrefusal.presets import DEFAULT, available, merge, presets_dir, resolve

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the check's output_dir goes
    import os

    shipped = ROOT / "params.yaml"
    environ = dict(os.environ)
    load_params(shipped, training=True)  # imports TRL (seconds, once per process)
    assert dict(os.environ) == environ  # the jobs Snakemake starts after the check see no change
    start = time.perf_counter()
    load_params(shipped, training=True)
    assert time.perf_counter() - start < 2.0  # building the DPOConfig itself takes milliseconds
    directory = presets_dir(shipped)
    for name in available(directory):
        params = load_params(shipped)
        for preset in dict.fromkeys([DEFAULT, name]):
            merge(params, resolve(directory, preset))
        validate_params(json.loads(json.dumps(params)), source=str(shipped), training=True)
    assert list(tmp_path.iterdir()) == []  # no output directory, no file left behind


@pytest.mark.slow
def test_snakemake_and_dvc_refuse_a_bad_training_setting_before_any_job(tmp_path):
    """Snakemake runs its ``onstart`` handler after planning and before the first job, not on
    a dry run (snakemake/workflow.py, ``if not self.dryrun ...: self._onstart``); DVC's first
    stage is ``polyrefusal validate``. Either way nothing is written and the exit status is 2."""
    pytest.importorskip("trl")
    from .helpers.project import copy_project, run_cli

    root = copy_project(tmp_path / "p", preset="ci")
    text = (root / "params.yaml").read_text(encoding="utf-8")
    (root / "params.yaml").write_text(text.replace("\ndpo:\n", "\ndpo:\n  trl_args: {max_lenght: 64}\n", 1),
                                      encoding="utf-8")
    line = line_of(root / "params.yaml", "max_lenght")
    start = time.perf_counter()
    dry = run_cli(["snakemake", "-n", "--quiet"], cwd=root, check=False)
    planned = time.perf_counter() - start
    assert dry.returncode == 0  # planning does not import TRL
    for cmd in (["snakemake", "--cores", "1"], ["dvc", "repro"]):
        proc = run_cli(cmd, cwd=root, check=False)
        # snakemake exits with the CLI's status; dvc with its own when its first stage fails
        assert proc.returncode == 2 if cmd[0] == "snakemake" else proc.returncode != 0, cmd
        assert f"params.yaml:{line}: field 'dpo.trl_args.max_lenght'" in proc.stderr + proc.stdout, cmd
        assert not (root / "results").exists(), cmd
    print(f"snakemake -n with a bad dpo block: {planned:.2f} s")
