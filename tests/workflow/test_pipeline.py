"""The default DAG end to end (ci preset), its no-op and incremental behaviour, and DVC
agreeing with Snakemake. Slow: trains real (tiny) models; run by .ci/run."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from ..helpers.project import copy_project, run_cli

pytestmark = pytest.mark.slow


def jobs_planned(proj, *extra) -> list[str]:
    """Rule names of the jobs `snakemake -n` would run (empty list = nothing to do)."""
    out = run_cli(["snakemake", "-n", "--cores", "2", *extra], cwd=proj).stdout
    if "Nothing to be done" in out:
        return []
    jobs, in_table = [], False
    for line in out.splitlines():
        if line.startswith("job ") and "count" in line:
            in_table = True
            continue
        if in_table:
            parts = line.split()
            if not parts or parts[0] == "total":
                break
            if parts[0].startswith("---"):
                continue
            jobs += [parts[0]] * int(parts[1])
    return jobs


def test_report_has_every_model_and_language(pipeline_run):
    from polyrefusal.params import load_params

    params = load_params(pipeline_run / "params.yaml")
    rows = list(csv.DictReader(open(pipeline_run / "results/scores/asr.csv")))
    got = {(r["config"], r["lang"]) for r in rows}
    want = {(m, lang) for m in ["base", *params["train_configs"]] for lang in params["languages"]}
    assert got == want
    for r in rows:
        assert 0.0 <= float(r["asr"]) <= 1.0 and int(r["n"]) > 0
    matrix = list(csv.DictReader(open(pipeline_run / "results/scores/transfer_matrix.csv")))
    assert [r["config"] for r in matrix] == ["base", *params["train_configs"]]
    report = (pipeline_run / "results/report/report.md").read_text()
    for c in params["train_configs"]:
        assert c in report
    # The embedded base model is the compliant stand-in: nearly every attack succeeds.
    base = [float(r["asr"]) for r in rows if r["config"] == "base"]
    assert min(base) > 0.8, base


def test_headline_findings_are_measured(pipeline_run):
    metrics = json.loads((pipeline_run / "results/scores/metrics.json").read_text())
    assert metrics["balanced_lowers_mean_asr"] is True, metrics
    assert "english_only_lowers_english_more" in metrics


def test_second_snakemake_and_dvc_run_nothing(pipeline_run):
    assert jobs_planned(pipeline_run) == []
    status = run_cli(["dvc", "status", "--json"], cwd=pipeline_run).stdout
    assert json.loads(status) == {}, status[:2000]
    repro = run_cli(["dvc", "repro", "--dry"], cwd=pipeline_run).stdout
    assert "Running stage" not in repro, repro[:2000]


def test_changing_one_language_reruns_only_its_dependents(pipeline_run, tmp_path):
    proj = tmp_path / "proj"
    shutil.copytree(pipeline_run, proj, symlinks=True)
    # A user corrects one Slovenian translation: what depends on it must rerun, nothing else.
    # (Snakemake compares checksums, so the content must really change, not only the mtime.)
    from polyrefusal.io import read_records, write_records
    target = proj / "results/translations/sl.parquet"
    records = read_records(target)
    records[0]["text"] = records[0]["text"] + " (popravljeno)"
    write_records(target, records)
    jobs = jobs_planned(proj)
    counts = {j: jobs.count(j) for j in set(jobs)}
    assert "translate" not in counts and "base_model" not in counts and "corpus" not in counts
    assert counts["respond"] == counts["judge"] == counts["pairs"] == 1
    from polyrefusal.params import config_languages, load_params
    params = load_params(proj / "params.yaml")
    with_sl = [c for c in params["train_configs"] if "sl" in config_languages(params, c)]
    assert counts["train"] == len(with_sl) < len(params["train_configs"])
    # every model re-answers (their test prompts include Slovenian); cached answers make it cheap
    assert counts["generate"] == 1 + len(params["train_configs"])


def test_dvc_repro_from_a_fresh_clone_gives_the_same_results(pipeline_run, tmp_path):
    proj = copy_project(tmp_path / "fresh")
    run_cli(["dvc", "repro"], cwd=proj)
    for rel in ("results/scores/asr.csv", "results/scores/transfer_matrix.csv",
                "results/pairs/de.train.jsonl", "results/split/assignment.json"):
        assert (proj / rel).read_bytes() == (pipeline_run / rel).read_bytes(), rel
    repro = run_cli(["dvc", "repro"], cwd=proj).stdout
    assert "Running stage" not in repro


def test_dvc_reads_a_directory_output_through_its_manifest(pipeline_run, tmp_path):
    """DVC's stages depend on a directory output's manifest (polyrefusal.io.MANIFEST, see
    polyrefusal.dvc_yaml), not on the directory: a rerun that writes the same files leaves the
    stages that read it up to date; the directory changed by hand is its own stage's changed
    output (what `dvc repro` reruns first); a rerun that writes other files reaches the readers
    through the manifest. DVC's status JSON (`changed outs` / `changed deps`) as `dvc status
    --json` prints it: iterative/dvc, dvc/commands/status.py and dvc/stage/__init__.py (`status`)."""
    proj = tmp_path / "proj"
    shutil.copytree(pipeline_run, proj, symlinks=True)
    manifest = proj / "results/eval/base/manifest.json"
    before = manifest.read_bytes()
    run_cli(["dvc", "repro", "--force", "--single-item", "evaluate-base"], cwd=proj)
    assert manifest.read_bytes() == before
    assert json.loads(run_cli(["dvc", "status", "--json"], cwd=proj).stdout) == {}
    scores = proj / "results/eval/base/en.json"
    original = scores.read_text()
    scores.write_text(original + "\n")
    status = json.loads(run_cli(["dvc", "status", "--json"], cwd=proj).stdout)
    assert status == {"evaluate-base": [{"changed outs": {"results/eval/base": "modified"}}]}, status
    scores.write_text(original)
    params = proj / "params.yaml"
    text = params.read_text()
    assert "  judge: refusal_lexicon\n  rule: unanimous\n" in text
    params.write_text(text.replace("  judge: refusal_lexicon\n  rule: unanimous\n",
                                   "  judge: refusal_lexicon\n  rule: majority\n", 1))  # recorded in the scores
    run_cli(["dvc", "repro", "--single-item", "validate"], cwd=proj)
    run_cli(["dvc", "repro", "--single-item", "evaluate-base"], cwd=proj)
    assert manifest.read_bytes() != before
    status = json.loads(run_cli(["dvc", "status", "--json", "report"], cwd=proj).stdout)
    assert status == {"report": [{"changed deps": {"results/eval/base/manifest.json": "modified"}}]}, status
