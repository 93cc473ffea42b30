"""Presets (configs/presets/NAME.yaml): small override files, composed on the shipped values.

The paper presets follow their papers: RefusEU (dataset card huggingface.co/datasets/NASK-PIB/RefusEU;
Krasnodębska et al., Findings of ACL 2026) and MiJaBench (github iagoalvesb/mijabench:
src/04_generation.py lists the 12 audited models, src/05_evaluation.py the three judges)."""

from __future__ import annotations

import shutil

import pytest
import yaml

from polyrefusal.errors import UserError
from polyrefusal.params import load_params
from polyrefusal.presets import PRESETS_DIR, apply_preset, available, resolve

from .helpers.params import get as _at
from .helpers.project import ROOT, copy_project, run_cli

DIR = ROOT / PRESETS_DIR


def _key_paths(tree: dict, prefix=()) -> dict:
    """{path: value} down to the leaves; an empty mapping is a leaf (it replaces the value)."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_key_paths(value, prefix + (key,)))
        else:
            out[prefix + (key,)] = value
    return out


def test_default_restores_every_key_any_preset_sets_and_equals_the_shipped_values():
    params = load_params(ROOT / "params.yaml")
    default = _key_paths(resolve(DIR, "default"))
    for name in available(DIR):
        for path in _key_paths(resolve(DIR, name)):
            # a preset may replace a whole mapping that `default` restores as a whole
            assert any(path[:len(d)] == d for d in default), \
                f"{name}.yaml: {'.'.join(map(str, path))} is not restored by default.yaml"
    for path, value in default.items():
        assert _at(params, path) == value, f"default.yaml: {'.'.join(path)} differs from params.yaml"


def _project_params(tmp_path):
    (tmp_path / PRESETS_DIR).parent.mkdir(parents=True)
    shutil.copytree(DIR, tmp_path / PRESETS_DIR)
    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    return path


def test_presets_compose_on_the_shipped_values_and_default_restores_them(tmp_path):
    path = _project_params(tmp_path)
    shipped = path.read_text()
    for names in (["paper"], ["paper_70b"], ["mijabench"], ["ci", "rainbow"]):
        apply_preset(path, *names)
        active = load_params(path)
        assert active["preset"] == "+".join(names)
        for name in names:
            for key_path, value in _key_paths(resolve(DIR, name)).items():
                assert _at(active, key_path) == value, f"{names}: {'.'.join(key_path)}"
    apply_preset(path, "ci", "rainbow")
    assert load_params(path)["audit_models"] == {}
    apply_preset(path, "default")
    assert yaml.safe_load(path.read_text()) == yaml.safe_load(shipped)


def test_extends_applies_the_parent_first_and_holds_only_the_difference(tmp_path):
    paper, big = resolve(DIR, "paper"), resolve(DIR, "paper_70b")
    own = yaml.safe_load((DIR / "paper_70b.yaml").read_text())
    assert own["extends"] == "paper" and "judge" not in own  # not restated
    assert big["judge"] == paper["judge"] and big["dpo"]["learning_rate"] == paper["dpo"]["learning_rate"]
    assert big["dpo"]["use_lora"] is True and big["dpo"]["merge_lora"] is False  # adapters only
    assert big["audit_models"] == {}


def test_an_unknown_preset_a_cycle_or_an_invalid_key_is_refused_and_params_stay_as_they_were(tmp_path):
    path = _project_params(tmp_path)
    before = path.read_bytes()
    with pytest.raises(UserError, match="unknown preset 'papr'; did you mean 'paper'"):
        apply_preset(path, "papr")
    (tmp_path / PRESETS_DIR / "a.yaml").write_text("extends: b\n")
    (tmp_path / PRESETS_DIR / "b.yaml").write_text("extends: a\n")
    with pytest.raises(UserError, match="cycle: a -> b -> a"):
        apply_preset(path, "a")
    (tmp_path / PRESETS_DIR / "bad.yaml").write_text("dpo: {beta: -1}\n")
    with pytest.raises(UserError):
        apply_preset(path, "bad")
    assert path.read_bytes() == before


def test_the_paper_presets_follow_the_papers():
    paper = resolve(DIR, "paper")
    assert paper["judge"]["options"]["llama_guard"]["path"] == "meta-llama/Llama-Guard-3-8B"
    assert paper["judge"]["options"]["polyguard"]["path"] == "ToxicityPrompts/PolyGuard-Qwen"
    assert paper["judge"]["options"]["llm_judge"]["path"] == "gpt-4o-mini"
    assert paper["base_model"]["source"] == "mlabonne/NeuralDaredevil-8B-abliterated"
    assert resolve(DIR, "paper_70b")["base_model"]["source"] == "mlabonne/Llama-3.1-70B-Instruct-lorablated"
    assert (paper["dpo"]["beta"], paper["dpo"]["learning_rate"], paper["dpo"]["num_train_epochs"]) == (0.1, 1e-6, 3)
    mija = resolve(DIR, "mijabench")
    assert mija["languages"] == ["en", "pt"] and mija["corpus"]["layout"] == "mijabench"
    models = {m["path"] for m in mija["audit_models"].values()}
    assert models == {
        "meta-llama/Llama-3.2-1B-Instruct", "meta-llama/Llama-3.2-3B-Instruct", "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/Llama-3.3-70B-Instruct", "google/gemma-3-1b-it", "google/gemma-3-4b-it",
        "google/gemma-3-12b-it", "google/gemma-3-27b-it", "Qwen/Qwen3-1.7B-FP8", "Qwen/Qwen3-4B-FP8",
        "Qwen/Qwen3-8B-FP8", "Qwen/Qwen3-32B-FP8"}
    judges = mija["judge"]["options"]
    assert {judges[j]["path"] for j in mija["judge"]["judges"]} == {
        "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8", "meta-llama/Llama-3.3-70B-Instruct", "openai/gpt-oss-120b"}
    assert mija["judge"]["rule"] == mija["evaluate"]["rule"] == "majority"
    assert mija["train_configs"] == ["demo_holdout"]


@pytest.mark.slow
def test_the_mijabench_preset_plans_its_audit_models_and_judges(tmp_path):
    proj = copy_project(tmp_path / "p", preset="mijabench")
    out = run_cli(["snakemake", "-n", "--quiet", "rules"], cwd=proj).stdout
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    # one generate and one evaluate job per model: base, the 12 audit models, demo_holdout
    assert counts.get("generate") == 14 and counts.get("evaluate") == 14, out
    assert counts.get("translate") == 2 and counts.get("train") == 1, out


@pytest.mark.slow
def test_the_paper_preset_runs_refuseus_data_rules(tmp_path):
    """RefusEU's filters reach the commands: the judges label the prompt too, pairs keep the
    guards' rule and unsafe prompts only, the split tests 100 prompts per category."""
    proj = copy_project(tmp_path / "p", preset="paper")
    out = run_cli(["snakemake", "-n", "-p", "--forceall", "all"], cwd=proj).stdout
    assert "polyrefusal judge --params params.yaml --fields chosen,rejected,prompt " in out
    assert "polyrefusal pairs --keep guards --unsafe-prompts-only --split " in out
    assert "--test-per-category 100 results/corpus/source.parquet" in out
    assert run_cli(["polyrefusal", "dvc-yaml", "--check"], cwd=proj).returncode == 0
