"""`snakemake --profile profiles/slurm` on a real Slurm: Debian's Slurm (22.05) and MUNGE,
installed if missing and started as a single-node cluster on localhost (munged, MariaDB +
slurmdbd for `sacct`, slurmctld, slurmd) by scripts/slurm/local_cluster.py. A slice of the
default DAG runs through the profile; the jobs must show up in Slurm's accounting and the outputs
must equal, byte for byte, those of a local `snakemake --cores 1` run of the same targets.
Every daemon the fixture started is stopped again, even when the test fails.

Opt-in: `pytest --run-slurm` or POLYREFUSAL_RUN_SLURM=1 (always on in .ci/run). Needs root (to
install packages and run slurmd) unless Slurm and MUNGE are already installed.
"""

from __future__ import annotations

import atexit
import filecmp
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ..helpers.project import ROOT, copy_project, env, run_cli

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# The slice: the light stages of the default DAG (no model is trained): corpus, split, and one
# language's translate and respond. The profile's groups make them two Slurm jobs: `data`
# (corpus, translate, respond) and then `pairs` (split).
TARGETS = ["results/corpus/source.parquet", "results/split/assignment.json", "results/responses/de.parquet"]


def _load_local_cluster():
    spec = importlib.util.spec_from_file_location("local_cluster", ROOT / "scripts/slurm/local_cluster.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _own_processes(d: Path) -> list[str]:
    """Processes whose command line names the cluster dir: daemons this test started."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(d) in cmd and not cmd.startswith(("bash", "/bin/sh", "sh ")):
            found.append(f"{proc.name}: {cmd[:120]}")
    return found


def _ensure_executor_plugin() -> None:
    """The profile needs snakemake-executor-plugin-slurm (the `slurm` extra); install it into this
    environment if it is missing, as the cluster packages are."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "snakemake-executor-plugin-slurm"],
                       check=True, timeout=600)


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    _ensure_executor_plugin()
    lc = _load_local_cluster()
    if os.geteuid() != 0 and lc.missing_binaries(accounting=True):
        pytest.skip("Slurm/MUNGE not installed and not root: cannot install them")
    # Short path: the MUNGE socket path must stay under the 108-byte limit of a Unix socket.
    d = tmp_path_factory.mktemp("slurm")
    atexit.register(lc.stop, d)  # also on an interpreter exit that skips the finally below
    t0 = time.monotonic()
    try:
        info = lc.start(d, accounting=True)
        info["start_s"] = time.monotonic() - t0
        info["env"] = lc.client_env(d)
        yield info
    finally:
        lc.stop(d)
        left = _own_processes(d)
        assert not lc.running(d) and not left, f"daemons still running after stop: {left}"


def _slurm(info, *cmd: str) -> str:
    return subprocess.run(list(cmd), env=info["env"], capture_output=True, text=True, check=True,
                          timeout=60).stdout


def test_profile_runs_a_slice_of_the_default_dag_on_slurm(slurm_cluster, tmp_path):
    info = slurm_cluster
    # Reference: the same targets run locally, from an identical copy.
    local = copy_project(tmp_path / "local", preset=None)
    proj = tmp_path / "cluster"
    shutil.copytree(local, proj, symlinks=True)
    run_cli(["snakemake", "--cores", "1", *TARGETS], cwd=local)

    # What a user on the login node has: the cluster's configuration (SLURM_CONF; the cluster's
    # `srun` shim first on PATH, see local_cluster.py) and the project's environment.
    run_env = env()
    run_env["SLURM_CONF"] = info["slurm_conf"]
    run_env["PATH"] = f"{Path(info['dir']) / 'bin'}:{run_env['PATH']}"
    t0 = time.monotonic()
    proc = subprocess.run(["snakemake", "--profile", "profiles/slurm", *TARGETS], cwd=proj, env=run_env,
                          capture_output=True, text=True, timeout=900)
    elapsed = time.monotonic() - t0
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    print(f"cluster start {info['start_s']:.1f}s, snakemake --profile profiles/slurm {elapsed:.1f}s")

    # The jobs went through Slurm: submitted by the executor plugin...
    run_id = re.search(r"SLURM run ID: (\S+)", out).group(1)
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", out)
    assert submitted, out[-3000:]
    # ... and recorded by Slurm's accounting (slurmdbd) under the run's job name, completed.
    rows = []
    for _ in range(30):  # accounting records arrive asynchronously
        rows = [r.split("|") for r in _slurm(info, "sacct", "-X", "-n", "-P", "--name", run_id,
                                                "--format=JobIDRaw,JobName,State,Partition").split()]
        if len(rows) >= len(submitted) and all(r[2] == "COMPLETED" for r in rows):
            break
        time.sleep(1)
    assert {r[0] for r in rows} == set(submitted), (rows, submitted)
    assert all(r[2] == "COMPLETED" for r in rows), rows
    assert all(r[3] == "cpu" for r in rows), rows  # the cluster's default partition
    # The controller saw them complete, too.
    ctld = (Path(info["dir"]) / "log" / "slurmctld.log").read_text()
    for jobid in submitted:
        assert re.search(rf"_job_complete: JobId={jobid} done", ctld), f"JobId={jobid} not in slurmctld.log"

    # Same outputs as the local run, byte for byte: every file under results/ except the caches
    # (translation memory, response cache: persistent, with time-stamped entries, not outputs).
    for target in TARGETS:
        assert (proj / target).is_file(), target
    params = yaml.safe_load((local / "params.yaml").read_text())
    caches = (params["translate"]["memory_dir"], params["generation"]["cache_dir"])

    def outputs(root: Path) -> list[str]:
        rels = (str(p.relative_to(root)) for p in (root / "results").rglob("*") if p.is_file())
        return sorted(r for r in rels if not r.startswith(caches))

    files = outputs(local)
    assert files == outputs(proj)
    for rel in files:
        assert filecmp.cmp(proj / rel, local / rel, shallow=False), f"{rel} differs from the local run"

    # Snakemake agrees that the slice is done (nothing left to run, locally or on the cluster).
    dry = run_cli(["snakemake", "-n", "--cores", "1", *TARGETS], cwd=proj).stdout
    assert "Nothing to be done" in dry, dry[-2000:]
