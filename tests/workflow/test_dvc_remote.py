"""A DVC remote shared by machines, and Snakemake agreeing with DVC after a pull.

A run's outputs are recorded in dvc.lock and pushed to a local-directory remote (set, as users
do, in .dvc/config.local); a fresh clone pulls them. DVC does not keep modification times, so
Snakemake would rerun jobs after the pull; `polyrefusal sync` checks the pulled files against
dvc.lock and marks them up to date, and `snakemake -n` then has nothing to do.
"""

from __future__ import annotations

import filecmp
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from ..helpers.project import ROOT, copy_project, run_cli

# Light stages of the default DAG (no model is trained); their outputs are all cached by DVC.
STAGES = ["corpus", "split"]
TARGETS = ["results/corpus/source.parquet", "results/split/assignment.json"]


def sync(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run_cli(["polyrefusal", "sync", *args], cwd=cwd, check=check)


def clone(origin: Path, dest: Path) -> Path:
    """What `git clone` gives: the files git would track (dvc.lock included; results/, logs/,
    .snakemake/, .dvc/cache and .dvc/config.local are ignored), without their mtimes."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=origin, check=True,
                           capture_output=True, text=True).stdout.split()
    for rel in files:
        src, dst = origin / rel, dest / rel
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    """An origin that ran the slice, recorded it in dvc.lock and pushed it to a local remote."""
    base = tmp_path_factory.mktemp("dvc_remote")
    origin = copy_project(base / "origin", preset=None)
    remote = base / "remote"
    run_cli(["snakemake", "--cores", "1", *TARGETS], cwd=origin)
    # `dvc commit --force`, through `sync --commit` (what rule dvc_commit can run: params parsed once)
    sync(origin, "--commit", *STAGES)
    run_cli(["dvc", "remote", "add", "--local", "--default", "shared", str(remote)], cwd=origin)
    run_cli(["dvc", "push", *STAGES], cwd=origin)
    assert any(remote.rglob("*")), "nothing pushed"
    assert not (origin / ".dvc/config").read_text().count(str(remote)), "the remote belongs in config.local"
    return origin, remote


def fresh_clone(origin: Path, remote: Path, dest: Path) -> Path:
    proj = clone(origin, dest)
    assert (proj / "dvc.lock").exists() and not (proj / "results").exists()
    run_cli(["dvc", "remote", "add", "--local", "--default", "shared", str(remote)], cwd=proj)
    return proj


def make_upstream_newer(proj: Path) -> None:
    """DVC writes pulled files in no particular order: make the worst case certain (an input
    newer than the output made from it), as a pull often leaves it."""
    corpus, split = proj / TARGETS[0], proj / TARGETS[1]
    t = corpus.stat().st_mtime
    os.utime(split, (t - 10, t - 10))


@pytest.mark.slow
def test_fresh_clone_pull_then_sync_needs_no_rerun(pushed, tmp_path):
    origin, remote = pushed
    proj = fresh_clone(origin, remote, tmp_path / "clone")
    run_cli(["dvc", "pull", *STAGES], cwd=proj)
    for target in TARGETS:
        assert filecmp.cmp(proj / target, origin / target, shallow=False)
    make_upstream_newer(proj)
    # The pain point: plain Snakemake would rerun split after the pull.
    before = run_cli(["snakemake", "-n", "--cores", "1", *TARGETS], cwd=proj).stdout
    assert "Nothing to be done" not in before and "split" in before

    out = sync(proj).stdout
    assert "nothing to do" in out

    dry = run_cli(["snakemake", "-n", "--cores", "1", *TARGETS], cwd=proj).stdout
    assert "Nothing to be done" in dry, dry[-2000:]
    assert "up to date" in run_cli(["dvc", "status", *STAGES], cwd=proj).stdout
    # Nothing ran: no benchmark record, no log line (`--touch` leaves empty logs), bytes as pulled.
    assert not (proj / "logs/benchmarks").exists()
    assert all(p.stat().st_size == 0 for p in (proj / "logs").rglob("*.log"))
    for target in TARGETS:
        assert filecmp.cmp(proj / target, origin / target, shallow=False)


@pytest.mark.slow
def test_sync_pull_is_the_one_command(pushed, tmp_path):
    origin, remote = pushed
    proj = fresh_clone(origin, remote, tmp_path / "clone")
    sync(proj, "--pull")
    dry = run_cli(["snakemake", "-n", "--cores", "1", *TARGETS], cwd=proj).stdout
    assert "Nothing to be done" in dry, dry[-2000:]


@pytest.mark.slow
def test_sync_refuses_files_that_differ_from_dvc_lock(pushed, tmp_path):
    origin, remote = pushed
    proj = fresh_clone(origin, remote, tmp_path / "clone")
    run_cli(["dvc", "pull", *STAGES], cwd=proj)
    make_upstream_newer(proj)
    split = proj / TARGETS[1]
    split.write_text(split.read_text().replace('"test"', '"train"', 1))
    mtimes = {t: (proj / t).stat().st_mtime_ns for t in TARGETS}
    proc = sync(proj, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "split" in proc.stderr and "results/split/assignment.json" in proc.stderr and "modified" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert {t: (proj / t).stat().st_mtime_ns for t in TARGETS} == mtimes, "touched despite the mismatch"
    # Changed parameters are refused too (the lock records what the outputs were made with).
    split.unlink()
    run_cli(["dvc", "checkout", "--force", *STAGES], cwd=proj)
    params = (proj / "params.yaml").read_text().replace("seed: 13", "seed: 14", 1)
    (proj / "params.yaml").write_text(params)
    proc = sync(proj, check=False)
    assert proc.returncode == 2 and "params.yaml" in proc.stderr, proc.stderr


def test_every_dvc_output_reaches_the_remote():
    """Outputs declared `cache: false` are neither in git (results/ is ignored) nor pushed to a
    remote, so a fresh clone can never get them and would have to rerun their stages."""
    doc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    uncached = []
    for name, stage in doc["stages"].items():
        body = stage.get("do", stage)
        for key in ("outs", "metrics", "plots"):
            for out in body.get(key) or []:
                if isinstance(out, dict):
                    (path, opts), = out.items()
                    if opts and opts.get("cache") is False:
                        uncached.append(f"{name}: {path}")
    assert not uncached, "cache: false outputs cannot be pulled on a fresh clone: " + "; ".join(uncached)


@pytest.mark.slow
@pytest.mark.parametrize("made_by", ["snakemake", "dvc repro"])
def test_sync_of_the_whole_pipeline(tmp_path, made_by):
    """The complete case, with fake outputs (no model is trained): every stage in dvc.lock, mtimes
    scrambled and Snakemake's metadata and the dvc_commit marker gone, as on a fresh clone after
    `dvc pull` of a finished run. `sync` writes the marker and `snakemake -n` (all) has nothing to do.
    Directory outputs made by `dvc repro` have no .snakemake_timestamp: sync must not create one
    (DVC would see a changed directory), as `snakemake --touch` would."""
    import random

    from dvc.repo import Repo

    from polyrefusal.io import write_dir_manifest

    proj = copy_project(tmp_path / "p", preset="ci")
    summary = run_cli(["snakemake", "--summary"], cwd=proj).stdout.splitlines()[1:]
    outputs = {line.split("\t")[0] for line in summary if line.strip()}
    with Repo(str(proj)) as repo:
        outputs |= {o.def_path for s in repo.index.stages for o in s.outs}
    for rel in outputs:
        if rel.startswith("logs/"):
            continue
        path = proj / rel
        if Path(rel).suffix:  # directory() outputs and caches have no extension here
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rel)
        else:  # as a job leaves a directory() output (io.atomic_dir: its manifest), and
            # Snakemake: with its .snakemake_timestamp
            path.mkdir(parents=True, exist_ok=True)
            (path / "weights.bin").write_text(rel)
            write_dir_manifest(path)
            if made_by == "snakemake":
                (path / ".snakemake_timestamp").touch()
    sync(proj, "--commit")
    rng = random.Random(0)
    now = __import__("time").time()
    for path in (proj / "results").rglob("*"):
        t = now - rng.uniform(100, 1000)
        os.utime(path, (t, t))
    for junk in ("logs", ".snakemake"):
        subprocess.run(["rm", "-rf", str(proj / junk)], check=True)
    assert "Nothing to be done" not in run_cli(["snakemake", "-n", "--cores", "1"], cwd=proj).stdout

    out = sync(proj).stdout
    assert "nothing to do" in out
    assert (proj / "logs/dvc_commit.done").exists()
    assert "Nothing to be done" in run_cli(["snakemake", "-n", "--cores", "1"], cwd=proj).stdout
    assert "up to date" in run_cli(["dvc", "status"], cwd=proj).stdout
    if made_by == "dvc repro":
        assert not list((proj / "results").rglob(".snakemake_timestamp"))
