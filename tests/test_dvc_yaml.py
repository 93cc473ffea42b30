"""dvc.yaml is written from the Snakemake DAG (`polyrefusal dvc-yaml`), and `--check` fails when
the checked-in file is stale or DVC would run something else than Snakemake.

Formats these tests rely on, from their official sources:
* dvc.yaml stages (`cmd`, `deps`, `params`, `outs` with `persist`/`cache`, `metrics`, `plots`)
  and stage names: DVC's documentation, https://dvc.org/doc/user-guide/project-structure/dvcyaml-files
  (`@` is how DVC addresses `foreach` entries, so explicit stage names avoid it: iterative/dvc,
  dvc/parsing/__init__.py, `resolve_one`);
* `snakemake -n -p` prints each job's shell command on its own line: Snakemake's CLI
  documentation, https://snakemake.readthedocs.io/en/stable/executing/cli.html (`--printshellcmds`).
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from polyrefusal.dvc_yaml import Stage, differences

from .helpers.project import ROOT, copy_project, run_cli


def dvc_stages(proj) -> dict:
    from dvc.repo import Repo

    with Repo(str(proj)) as repo:
        return {s.name: s for s in repo.index.stages}


def test_the_checked_in_dvc_yaml_is_the_dags():
    """What CI checks: the committed dvc.yaml is exactly what the rules and params.yaml give."""
    proc = run_cli(["polyrefusal", "dvc-yaml", "--check"], cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "matches the Snakemake DAG" in proc.stdout


@pytest.mark.parametrize("preset", [None, "paper"])
def test_dvc_runs_snakemakes_commands_byte_for_byte(tmp_path, preset):
    """Every DVC command is a command `snakemake -n -p` prints (less `2> LOG`), one stage per job,
    and every stage's deps hold the code files of its rule."""
    proj = copy_project(tmp_path / "p", preset=preset)
    proc = run_cli(["snakemake", "-n", "-p", "--forceall"], cwd=proj)
    commands = [m[1] for m in re.finditer(r"^\s*Shell command: (.*)$", proc.stdout + proc.stderr, re.M)]
    assert any("polyrefusal sync --commit" in c for c in commands)  # rule dvc_commit: no DVC stage
    smk = {re.sub(r" 2> \S+$", "", c) for c in commands if "polyrefusal sync" not in c and c != "None"}  # rule all: no command
    stages = dvc_stages(proj)
    dvc = {s.cmd for s in stages.values()}
    assert len(stages) == len(dvc), "two DVC stages run the same command"
    assert dvc == smk, (f"only in DVC: {sorted(dvc - smk)[:3]}; only in Snakemake: {sorted(smk - dvc)[:3]}")
    deps = {d.def_path for d in stages["generate-base"].deps}
    # the code a rule reads reaches DVC through the rule's input digest, which stage validate
    # writes; validate depends on every package as one directory (hashed whole, once)
    assert "logs/inputs/generate.json" in deps and not [d for d in deps if d.startswith("src/")]
    assert {"src/polyrefusal/generate", "src/polyrefusal/stages/generate.py"} <= {
        d.def_path for d in stages["validate"].deps}
    assert {"logs/inputs/pairs.json", "results/split/assignment.json"} <= {
        d.def_path for d in stages["pairs-en"].deps}
    # the pairs a configuration trains on, not the whole directory (which DVC would re-hash per stage)
    train = {d.def_path for d in stages["train-single_de"].deps}
    assert "results/pairs/de.train.jsonl" in train and "results/pairs/en.train.jsonl" not in train
    assert not [d for s in stages.values() for d in s.deps if d.def_path in ("results/pairs", "results/eval")]


def test_persist_metrics_and_plots_are_declared():
    doc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert {"results/translation_memory/de": {"persist": True}} in doc["translate-de"]["outs"]
    assert {"results/response_cache/base": {"persist": True}} in doc["generate-base"]["outs"]
    assert {"results/rainbow/archive": {"persist": True}} in doc["rainbow"]["outs"]
    assert doc["report"]["metrics"] == ["results/scores/metrics.json"]
    plots = doc["report"]["plots"]
    assert {"results/scores/mean_asr.csv": {"template": "bar_horizontal", "x": "mean_asr", "y": "config",
                                            "title": "Mean ASR over languages per model (95% CI in the file)"}} in plots
    assert "results/report/plots/training_curves.png" in plots
    # rainbow's models come from params (rainbow.mutator/target), here: disabled, so none
    assert not [d for d in doc["rainbow"].get("deps", []) if d.startswith("results/")]
    # params keys are in the rule's input digest, or, varying by job, dependencies on
    # params.yaml split by key (both written by stage validate)
    assert "params" not in doc["train-balanced"]
    assert doc["train-balanced"]["deps"][-2:] == ["logs/inputs/train.json", "logs/params/config_defs.balanced.json"]
    assert {"logs/params": {"persist": True}} in doc["validate"]["outs"]
    assert {"logs/inputs": {"persist": True}} in doc["validate"]["outs"]


@pytest.mark.parametrize("edit, expect", [
    # a rule's command changed, dvc.yaml not regenerated
    (lambda p: p.joinpath("rules/split.smk").write_text(
        p.joinpath("rules/split.smk").read_text().replace("--seed {params.seed}", "--seed  {params.seed}")),
     "stale"),
    # a rule's code dependencies changed (CODE in polyrefusal/stage_inputs.py): validate hashes io.py
    # already, so the new entry shows in dvc.yaml as a code dependency of validate's
    (lambda p: p.joinpath("src/polyrefusal/stage_inputs.py").write_text(
        p.joinpath("src/polyrefusal/stage_inputs.py").read_text().replace(
            '"split": ["stages/split.py", "protocol.py"]', '"split": ["stages/split.py", "protocol.py", "stages/export.py"]')),
     "stale"),
    # a hand edit of dvc.yaml
    (lambda p: p.joinpath("dvc.yaml").write_text(
        p.joinpath("dvc.yaml").read_text().replace("    - src/polyrefusal/stages/split.py\n", "", 1)), "stale"),
    (lambda p: p.joinpath("dvc.yaml").write_text(
        p.joinpath("dvc.yaml").read_text().replace("    - logs/inputs/split.json\n", "    - logs/inputs/pairs.json\n", 1)),
     "stale"),
])
def test_check_fails_on_a_stale_dvc_yaml(tmp_path, edit, expect):
    proj = copy_project(tmp_path / "p", preset=None)
    edit(proj)
    # the copy's package, not the checkout's (CODE is in it)
    cli = ["env", f"PYTHONPATH={proj / 'src'}", "polyrefusal", "dvc-yaml"]
    proc = run_cli([*cli, "--check"], cwd=proj, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "dvc.yaml" in proc.stderr and expect in proc.stderr
    run_cli(cli, cwd=proj)
    assert run_cli([*cli, "--check"], cwd=proj).returncode == 0


def test_differences_name_commands_deps_params_and_outs():
    want = [Stage(name="split", cmd="polyrefusal split a b", deps=["a", "src/x.py"], params=["split"], outs=["b"]),
            Stage(name="corpus", cmd="polyrefusal corpus a", outs=["a"])]
    seen = {"split": {"cmd": "polyrefusal split a  b", "deps": ["a"], "params": [], "outs": ["b", "c"],
                      "persist": []},
            "extra": {"cmd": "x", "deps": [], "params": [], "outs": [], "persist": []}}
    problems = "\n".join(differences(want, seen))
    for text in ("corpus: a Snakemake job without a DVC stage", "extra: a DVC stage without a Snakemake job",
                 "split: cmd differ", "split: deps differ", "split: params differ", "split: outs differ"):
        assert text in problems
    assert differences(want[:1], {"split": {"cmd": "polyrefusal split a b", "deps": ["a", "src/x.py"],
                                            "params": ["split"], "outs": ["b"], "persist": []}}) == []


@pytest.mark.slow
def test_both_tools_rerun_a_stage_whose_code_changed(tmp_path):
    """The code a rule declares (CODE in polyrefusal/stage_inputs.py) reruns it in Snakemake and in
    DVC alike, and nothing upstream: in DVC, first stage validate (which depends on all the code)
    rewrites the rule's input digest, then the stage alone is out of date."""
    proj = copy_project(tmp_path / "p", preset=None)
    run_cli(["snakemake", "--cores", "1", "logs/params.valid", "results/split/assignment.json"], cwd=proj)
    run_cli(["polyrefusal", "sync", "--commit", "validate", "corpus", "split"], cwd=proj)
    assert "Nothing to be done" in run_cli(["snakemake", "-n", "results/split/assignment.json"], cwd=proj).stdout
    code = proj / "src/polyrefusal/stages/split.py"
    code.write_text(code.read_text() + "\n# edited\n")
    plan = run_cli(["snakemake", "-n", "results/split/assignment.json", "--quiet", "rules"], cwd=proj).stdout
    assert re.search(r"^split\s+1$", plan, re.M) and not re.search(r"^corpus\s", plan, re.M), plan
    status = yaml.safe_load(run_cli(["dvc", "status", "--json", "validate", "corpus", "split"], cwd=proj).stdout)
    assert list(status) == ["validate"], status
    corpus_digest = proj / "logs/inputs/corpus.json"
    before = corpus_digest.stat().st_mtime_ns
    run_cli(["dvc", "repro", "--single-item", "validate"], cwd=proj)
    assert corpus_digest.stat().st_mtime_ns == before  # an unchanged rule's digest keeps its bytes and date
    status = yaml.safe_load(run_cli(["dvc", "status", "--json", "corpus", "split"], cwd=proj).stdout)
    assert status == {"split": [{"changed deps": {"logs/inputs/split.json": "modified"}}]}, status


@pytest.mark.slow
def test_both_tools_rerun_exactly_the_stages_of_a_changed_params_key(tmp_path):
    """A changed params value reruns the stages that read its key (PARAMS in
    polyrefusal/stage_inputs.py), in Snakemake (its params rerun trigger) and in DVC (the digest
    of the rules that read it, rewritten by stage validate, changed), and nothing else: the digest
    of a rule that does not read it keeps its bytes and date."""
    proj = copy_project(tmp_path / "p", preset=None)
    run_cli(["snakemake", "--cores", "1", "logs/params.valid", "results/split/assignment.json"], cwd=proj)
    run_cli(["polyrefusal", "sync", "--commit", "validate", "corpus", "split"], cwd=proj)
    corpus_key = proj / "logs/inputs/corpus.json"
    before = corpus_key.stat().st_mtime_ns
    params = proj / "params.yaml"
    params.write_text(params.read_text().replace("  seed: 13\n", "  seed: 14\n", 1))
    plan = run_cli(["snakemake", "-n", "results/split/assignment.json", "--quiet", "rules"], cwd=proj).stdout
    assert re.search(r"^split\s+1$", plan, re.M) and not re.search(r"^corpus\s", plan, re.M), plan
    # DVC: first the split of params.yaml is redone, then the split stage alone is out of date
    status = yaml.safe_load(run_cli(["dvc", "status", "--json", "validate", "corpus", "split"], cwd=proj).stdout)
    assert list(status) == ["validate"], status
    run_cli(["dvc", "repro", "--single-item", "validate"], cwd=proj)
    assert json.loads((proj / "logs/params/split.json").read_text())["seed"] == 14
    assert json.loads((proj / "logs/inputs/split.json").read_text())["params"]["split"]["seed"] == 14
    assert corpus_key.stat().st_mtime_ns == before
    status = yaml.safe_load(run_cli(["dvc", "status", "--json", "corpus", "split"], cwd=proj).stdout)
    assert status == {"split": [{"changed deps": {"logs/inputs/split.json": "modified"}}]}, status


def test_a_reviewed_audit_named_in_params_is_an_input_of_the_report(tmp_path):
    """params report.judge_audit (a reviewed human audit's report) is an input of the report job,
    so a new review reruns the report in Snakemake and in DVC; unnamed, the report has no such
    input (and reads none)."""
    proj = copy_project(tmp_path / "p", preset=None)
    assert not [d for d in yaml.safe_load((proj / "dvc.yaml").read_text())["stages"]["report"]["deps"]
                if d.startswith("audit/")]
    (proj / "audit").mkdir()
    (proj / "audit/judge_accuracy.json").write_text("{}\n")
    params = proj / "params.yaml"
    doc = yaml.safe_load(params.read_text())
    doc.setdefault("report", {})["judge_audit"] = "audit/judge_accuracy.json"
    params.write_text(yaml.safe_dump(doc, sort_keys=False))
    run_cli(["polyrefusal", "dvc-yaml"], cwd=proj)
    assert "audit/judge_accuracy.json" in yaml.safe_load((proj / "dvc.yaml").read_text())["stages"]["report"]["deps"]
    plan = run_cli(["snakemake", "-n", "results/report/report.md", "--quiet", "rules"], cwd=proj).stdout
    assert re.search(r"^report\s+1$", plan, re.M), plan
