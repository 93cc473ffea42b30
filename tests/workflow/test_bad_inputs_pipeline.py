"""Bad params through Snakemake and through DVC: refused at planning, nothing lost (issue 16).

One project is built once for the module (the `ci` preset; the corpus, split and params-marker
jobs through Snakemake, then recorded in dvc.lock by the end-of-run commit, `polyrefusal sync
--commit`). Each case writes a bad params.yaml and runs

* `snakemake --cores 1 <targets>`: exit status 2, exactly one line `params.yaml:LINE: field
  'KEY': ...` naming the line the key is on, no traceback, no job started;
* `dvc repro <target>`: DVC's first stage (`validate`) fails with the same one line and DVC
  stops there, before it deletes any other stage's outputs;

and checks that every file of the project (results/, logs/, dvc.lock) is byte-identical with
the same modification time afterwards. Then the good params come back and DVC reports the
pipeline up to date: nothing had to be rerun.

The numbers are read by YAML 1.2's rules (https://yaml.org/spec/1.2.2/ section 10.2.1.4, the
core schema's float form `[-+]? ( \\. [0-9]+ | [0-9]+ ( \\. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`):
`1e-6` is a float there, and in DVC's own reader (ruamel.yaml, YAML 1.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ..helpers.project import copy_project, run_cli
from ..helpers.faults import ERROR_LINE, changed, cli, snapshot

pytestmark = pytest.mark.slow  # runs pipeline jobs (about a minute)

TARGETS = ["results/corpus/source.parquet", "results/split/assignment.json", "logs/params.valid"]
DVC_STAGES = ["validate", "corpus", "split"]
#: What the tools keep for themselves (locks, DVC's state database): not results.
SKIP = (".snakemake/", ".dvc/tmp/", ".git/", "params.yaml")
ONE_LINE = re.compile(r"^params\.yaml:(\d+): field '([^']+)': (.+)$")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """(project, its good params text): results made by Snakemake and recorded in dvc.lock."""
    proj = copy_project(tmp_path_factory.mktemp("bad_params") / "proj", preset="ci")
    params = proj / "params.yaml"
    # one known layout for the edits below (block style, as safe_dump writes it)
    good = yaml.safe_dump(yaml.safe_load(params.read_text(encoding="utf-8")), sort_keys=False, width=1000)
    params.write_text(good, encoding="utf-8")
    run_cli(["snakemake", "--cores", "2", *TARGETS], cwd=proj)
    run_cli(["polyrefusal", "sync", "--commit", *DVC_STAGES], cwd=proj)
    assert "up to date" in run_cli(["dvc", "status", *DVC_STAGES], cwd=proj).stdout
    return proj, good


@dataclass
class Case:
    id: str
    pattern: str        # regex (multiline) replaced once in the good params text
    replacement: str
    line_of: str        # regex of the line the error must name
    names: tuple[str, ...]  # the error line contains each

    def apply(self, good: str) -> tuple[str, int]:
        text, n = re.subn(self.pattern, self.replacement, good, count=1, flags=re.M)
        assert n == 1, f"{self.id}: pattern {self.pattern!r} not in the ci params"
        hit = re.search(self.line_of, text, flags=re.M)
        assert hit, f"{self.id}: {self.line_of!r} not in the edited params"
        return text, text.count("\n", 0, hit.start()) + 1


def section(name: str, key: str) -> str:
    """A key of a top-level section (the first one under it)."""
    return rf"(^{name}:\n(?:(?:  |- |#).*\n)*?)  {key}:"


CASES = [
    # --- misspelt keys: silently ignored before, now named with a "did you mean" ---
    Case("unknown-key-report-bootstrp", section("report", "bootstrap"), r"\1  bootstrp:", r"^  bootstrp:",
         ("field 'report.bootstrp'", "did you mean 'bootstrap'")),
    Case("unknown-key-generation-temprature", section("generation", "temperature"), r"\1  temprature:",
         r"^  temprature:", ("field 'generation.temprature'", "did you mean 'temperature'")),
    Case("unknown-key-dpo-save_step", section("dpo", "save_steps"), r"\1  save_step:", r"^  save_step:",
         ("field 'dpo.save_step'", "did you mean 'save_steps'")),
    Case("unknown-key-evaluate-rulle", section("evaluate", "rule"), r"\1  rulle:", r"^  rulle:",
         ("field 'evaluate.rulle'", "did you mean 'rule'")),
    Case("unknown-top-level-reprot", r"^report:", "reprot:", r"^reprot:",
         ("field 'reprot'", "did you mean 'report'")),
    Case("unknown-key-split-seeds", section("split", "seed"), r"\1  seeds:", r"^  seeds:",
         ("field 'split.seeds'", "did you mean 'seed'")),
    # --- types, ranges, enums ---
    Case("test-fraction-out-of-range", section("split", "test_fraction"), r"\1  test_fraction: 1.5\n  _old:",
         r"^  test_fraction: 1.5", ("field 'split.test_fraction'", "1.5")),
    Case("learning-rate-not-a-number", section("dpo", "learning_rate"), r"\1  learning_rate: fast\n  _old:",
         r"^  learning_rate: fast", ("field 'dpo.learning_rate'", "'fast' is not of type 'number'")),
    Case("negative-beta", section("dpo", "beta"), r"\1  beta: -0.1\n  _old:", r"^  beta: -0.1",
         ("field 'dpo.beta'", "-0.1")),
    Case("unknown-translate-backend", section("translate", "backend"), r"\1  backend: google\n  _old:",
         r"^  backend: google", ("field 'translate.backend'", "'google'")),
    Case("unknown-language-code", r"^languages:\n- en\n- de\n", "languages:\n- en\n- xx\n", r"^- xx$",
         ("field 'languages.1'", "'xx'")),
    # --- cross-field rules (a KeyError traceback under Snakemake before) ---
    Case("undefined-training-configuration", r"^(train_configs:\n(?:- .*\n)*)", r"\1- single_dee\n",
         r"^- single_dee$", ("unknown training configuration 'single_dee'", "did you mean 'single_de'")),
    Case("source-language-not-studied", r"^source_language: en", "source_language: fr",
         r"^source_language:", ("field 'source_language'", "must be one of `languages`")),
    # single_<lang> is generated: the error names the train_configs entry
    Case("configuration-without-data", r"^(train_configs:\n)", r"\1- single_lv\n", r"^- single_lv$",
         ("field 'train_configs'", "'single_lv' has no data")),
    Case("adjudicated-without-adjudicator", section("judge", "rule"), r"\1  rule: adjudicated\n  _old:",
         r"^  adjudicator:", ("field 'judge.adjudicator'", "needs an adjudicator")),
    Case("unknown-judge", r"^(  judges:\n  )- refusal_lexicon", r"\1- refusal_lexicom",
         r"^  - refusal_lexicom", ("field 'judge.judges'", "unknown judge 'refusal_lexicom'")),
    # --- model and data sources that are local paths must exist (a hub id is fine) ---
    Case("base-model-path-missing", section("base_model", "source"), r"\1  source: ./models/missing-8b\n  _old:",
         r"^  source: ./models/missing-8b", ("field 'base_model.source'", "model directory not found")),
    Case("corpus-file-missing", section("corpus", "source"), r"\1  source: data/prompts.jsonl\n  _old:",
         r"^  source: data/prompts.jsonl", ("field 'corpus.source'", "file not found: data/prompts.jsonl")),
    Case("audit-model-path-missing", r"^audit_models: \{\}", "audit_models:\n  local_7b:\n    path: /models/not-here\n"
         "    gpus: 0", r"^    path: /models/not-here", ("field 'audit_models.local_7b.path'", "model directory not found")),
    # --- YAML itself: a key given twice (PyYAML kept the last one silently) ---
    Case("duplicate-key", section("dpo", "beta"), r"\1  beta: 0.2\n  beta:", r"^  beta: 0.1",
         ("field 'dpo.beta'", "duplicate key (first given at line")),
]


def _without_old(text: str) -> str:
    """A replaced value: drop the old key's line that followed (`_old:` marks it)."""
    return re.sub(r"^  _old:.*\n", "", text, flags=re.M)


def _edited(case: Case, good: str) -> tuple[str, int]:
    text, _ = case.apply(good)
    text = _without_old(text)
    hit = re.search(case.line_of, text, flags=re.M)
    if case.id == "duplicate-key":  # the second occurrence is the one named
        hit = list(re.finditer(r"^  beta:", text, flags=re.M))[1]
    return text, text.count("\n", 0, hit.start()) + 1


def _params_error(output: str) -> list[str]:
    """The one-line params errors in a tool's output (the polyrefusal prefix stripped)."""
    lines = []
    for ln in output.splitlines():
        ln = ERROR_LINE.sub("", ln)
        if ln.startswith("params.yaml:"):
            lines.append(ln)
    return lines


def _check(case: Case, line: int, output: str) -> None:
    assert "Traceback" not in output, output[-3000:]
    errors = _params_error(output)
    assert len(errors) == 1, output[-3000:]
    m = ONE_LINE.match(errors[0])
    assert m, errors[0]
    assert int(m.group(1)) == line, f"names line {m.group(1)}, the key is on line {line}: {errors[0]}"
    for name in case.names:
        assert name in errors[0], f"{name!r} not in: {errors[0]}"


@pytest.mark.parametrize("tool", ["snakemake", "dvc"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_params_are_refused_before_any_job_and_lose_nothing(built, case, tool):
    proj, good = built
    text, line = _edited(case, good)
    params = proj / "params.yaml"
    params.write_text(text, encoding="utf-8")
    try:
        before = snapshot(proj, skip=SKIP)
        if tool == "snakemake":
            res = cli(["snakemake", "--cores", "1", *TARGETS[:2]], proj)
        else:
            res = cli(["dvc", "repro", "split"], proj)
        after = snapshot(proj, skip=SKIP)
    finally:
        params.write_text(good, encoding="utf-8")
    output = res.stdout + res.stderr
    if tool == "dvc" and case.id == "duplicate-key":
        # DVC reads params.yaml itself first (ruamel.yaml refuses a duplicate key): it stops
        # with its own message, which names the line, before any stage runs
        assert res.returncode != 0 and "duplicate key" in output and f"line {line}" in output, output[-3000:]
    else:
        assert res.returncode == (2 if tool == "snakemake" else 255), output[-3000:]
        _check(case, line, output)
    if tool == "snakemake":
        assert "Building DAG" not in output and not re.search(r"^(local)?rule \w+:", output, re.M), \
            "a job was planned"
    else:
        assert "Running stage 'corpus'" not in output and "Running stage 'split'" not in output
    assert changed(before, after) == [], "the failed run changed files"


def test_dry_run_of_an_undefined_configuration_has_no_traceback(built):
    """`snakemake -n` (planning only): a KeyError traceback from the rules before; one line now."""
    proj, good = built
    case = next(c for c in CASES if c.id == "undefined-training-configuration")
    text, line = _edited(case, good)
    (proj / "params.yaml").write_text(text, encoding="utf-8")
    try:
        res = cli(["snakemake", "-n"], proj)
    finally:
        (proj / "params.yaml").write_text(good, encoding="utf-8")
    assert res.returncode == 2
    _check(case, line, res.stdout + res.stderr)


def test_good_params_back_nothing_to_redo(built):
    """After every refused run, the good params: DVC finds the recorded outputs up to date."""
    proj, good = built
    (proj / "params.yaml").write_text(good, encoding="utf-8")
    out = run_cli(["dvc", "status", *DVC_STAGES], cwd=proj).stdout
    assert "up to date" in out, out
    dry = run_cli(["snakemake", "-n", *TARGETS[:2]], cwd=proj).stdout
    assert "Nothing to be done" in dry, dry[-2000:]


def test_numbers_as_users_write_them(built, tmp_path):
    """`learning_rate: 1e-6` is a number, in the project's loader as in DVC's YAML 1.2 reader."""
    from polyrefusal.params import load_params

    proj, good = built
    text = re.sub(section("dpo", "learning_rate"), r"\1  learning_rate: 1e-6\n  _old:", good, count=1, flags=re.M)
    path = tmp_path / "params.yaml"
    path.write_text(_without_old(text), encoding="utf-8")
    assert load_params(path)["dpo"]["learning_rate"] == 1e-6
    # the Snakefile reads the same value: a dry run plans (validation passes)
    (proj / "params.yaml").write_text(_without_old(text), encoding="utf-8")
    try:
        res = cli(["snakemake", "-n", *TARGETS[:2]], proj)
        assert res.returncode == 0, res.stderr[-2000:]
        res = cli(["polyrefusal", "validate"], proj)
        assert res.returncode == 0, res.stderr[-2000:]
    finally:
        (proj / "params.yaml").write_text(good, encoding="utf-8")


def test_failed_job_says_how_to_restore_its_previous_output(built):
    """A job that fails on a bad input (here: a corpus whose record lacks `harmful`, written
    over the recorded one) has had its outputs deleted by Snakemake before it ran; its one-line
    error says how to get them back, and `dvc checkout` does, byte for byte. (Runs last: it
    leaves the project restored through DVC, with new modification times.)"""
    import pyarrow as pa
    import pyarrow.parquet as pq

    proj, good = built
    (proj / "params.yaml").write_text(good, encoding="utf-8")
    corpus, split = proj / TARGETS[0], proj / TARGETS[1]
    corpus_bytes, split_bytes = corpus.read_bytes(), split.read_bytes()
    pq.write_table(pa.Table.from_pylist([{"source_id": "p1", "category": "S1", "style": "role_play"}]), corpus)
    res = cli(["snakemake", "--cores", "1", TARGETS[1]], proj)
    assert res.returncode != 0
    log = (proj / "logs/split.log").read_text(encoding="utf-8")
    errors = [ln for ln in log.splitlines() if ERROR_LINE.match(ln)]
    assert len(errors) == 1, log
    assert "results/corpus/source.parquet:1: field 'harmful'" in errors[0], errors[0]
    assert f"`dvc checkout {TARGETS[1]}` restores it" in errors[0], errors[0]
    assert not split.exists(), "Snakemake keeps a failed job's outputs: the hint would be wrong"
    run_cli(["dvc", "checkout", TARGETS[1]], cwd=proj)
    assert split.read_bytes() == split_bytes
    run_cli(["dvc", "checkout", "--force", TARGETS[0]], cwd=proj)
    assert corpus.read_bytes() == corpus_bytes
