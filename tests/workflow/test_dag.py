"""Build-system guarantees that need no pipeline run: both DAGs name the same artifacts (and
`polyrefusal preset` leaves a dvc.yaml that `dvc-yaml --check` accepts), the workflow lints
clean, params validate."""

from __future__ import annotations

import copy
import re
import subprocess

import pytest
import yaml

from polyrefusal.errors import UserError
from polyrefusal.params import load_params, validate_params

from ..helpers.project import ROOT, copy_project, env, run_cli


def snakemake_outputs(cwd) -> set[str]:
    out = run_cli(["snakemake", "--summary"], cwd=cwd).stdout
    files = {line.split("\t")[0] for line in out.splitlines()[1:] if line.strip()}
    # logs/ holds logs, benchmarks and the dvc-commit marker: not artifacts.
    return {f for f in files if not f.startswith("logs/")}


def dvc_outputs(cwd) -> set[str]:
    from dvc.repo import Repo

    with Repo(str(cwd)) as repo:
        # persist outs are caches (translation memory, response cache) that Snakemake must not
        # delete before a rerun, so it does not declare them.
        return {o.def_path for s in repo.index.stages for o in s.outs if not o.persist}


@pytest.mark.parametrize("preset", [None, "ci", "paper"])
def test_snakemake_and_dvc_name_the_same_artifacts(tmp_path, preset):
    proj = copy_project(tmp_path / "p", preset=preset)
    smk, dvc = snakemake_outputs(proj), dvc_outputs(proj)
    assert smk, "snakemake listed no outputs"
    assert smk - dvc == set(), f"only in Snakemake: {sorted(smk - dvc)[:10]}"
    assert dvc - smk == set(), f"only in DVC: {sorted(dvc - smk)[:10]}"
    params = load_params(proj / "params.yaml")
    models = {"base", *params["audit_models"], *params["train_configs"]}
    assert {f for f in smk if f.startswith("results/eval/")} == {f"results/eval/{m}" for m in models}
    # commands, dependencies, params too: the preset rewrote dvc.yaml for its DAG
    assert "matches the Snakemake DAG" in run_cli(["polyrefusal", "dvc-yaml", "--check"], cwd=proj).stdout


def test_gpu_counts_come_from_params(tmp_path):
    """The paper preset's GPUs reach the jobs: `resources: gpu` (sbatch --gpus on Slurm) and the
    pool that hands out the devices; an audit model's own `gpus` for its generate job."""
    proj = copy_project(tmp_path / "p", preset="paper")
    out = run_cli(["snakemake", "-n", "-p", "results/models/balanced", "results/answers/llama31_70b",
                   "results/eval/mistral_7b"], cwd=proj).stdout
    commands = {}
    for line in out.splitlines():
        m = re.search(r"python -m polyrefusal.gpu_pool --gpus (\d+)( --accelerate)? -- polyrefusal (\S+)(.*)", line.strip())
        if m:
            commands.setdefault(m[3] + (" llama31_70b" if "llama31_70b" in m[4] else ""), set()).add((int(m[1]), bool(m[2])))
    assert commands["train"] == {(4, True)}          # DPO of the 8B on 4 GPUs through accelerate
    assert commands["generate llama31_70b"] == {(4, False)}
    assert commands["generate"] == {(1, False)}      # mistral_7b
    assert commands["evaluate"] == {(1, False)}
    assert commands["judge"] == {(1, False)} and commands["translate"] == {(0, False)}
    assert re.search(r"gpu=4\b", out) and "mem_mb=128000" in out


def test_every_rule_has_log_and_benchmark_and_lint_is_clean():
    proc = run_cli(["snakemake", "--lint"], cwd=ROOT, check=False)
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    for smk in (ROOT / "rules").glob("*.smk"):
        text = smk.read_text()
        for n_rules in [text.count("\nrule ") + text.startswith("rule ")]:
            assert text.count("log:") >= n_rules and text.count("benchmark:") >= n_rules, smk.name


@pytest.mark.parametrize("mutate, field", [
    (lambda p: p["dpo"].__setitem__("beta", -0.1), "dpo.beta"),
    (lambda p: p["translate"].__setitem__("backend", "babelfish"), "translate.backend"),
    (lambda p: p["train_configs"].append("nonexistent_config"), "train_configs"),
    (lambda p: p.__setitem__("languages", ["en", "xx"]), "languages.1"),
    (lambda p: p["config_defs"].__setitem__("english_only", ["fi"]) or p.__setitem__("languages", ["en", "de"]),
     "config_defs.english_only"),
])
def test_bad_params_name_the_field(tmp_path, mutate, field):
    params = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    mutate(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(UserError) as exc:
        load_params(path)
    assert exc.value.field == field
    assert str(path) in exc.value.format()


def test_bad_params_fail_the_cli_in_one_line(tmp_path):
    proj = copy_project(tmp_path / "p", preset=None)
    text = (proj / "params.yaml").read_text().replace("beta: 0.1", "beta: -1")
    (proj / "params.yaml").write_text(text)
    proc = run_cli(["polyrefusal", "corpus", "results/corpus/source.parquet"], cwd=proj, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "params.yaml" in proc.stderr and "dpo.beta" in proc.stderr
    assert not (proj / "results/corpus/source.parquet").exists()


def test_cli_lists_every_stage():
    out = subprocess.run(["polyrefusal", "--help"], capture_output=True, text=True, check=True,
                         env=env()).stdout
    for cmd in ("corpus", "translate", "respond", "judge", "pairs", "split", "base-model", "train",
                "generate", "evaluate", "report"):
        assert cmd in out
