#!/usr/bin/env python3
"""How long Snakemake and DVC take to plan the DAG, for the default and the paper grid.

    python scripts/bench_dag.py                  # default, paper, paper-2k, and bare Snakefiles
    python scripts/bench_dag.py --repeat 5 --presets paper
    python scripts/bench_dag.py --presets default,paper,paper-500,paper-1000,paper-2k   # growth curve

For each preset, in a temporary copy of the project (the checkout is never touched):

* jobs:        the DAG's job count (`snakemake -n`, nothing present);
* plan:        `snakemake -n` with no output present (the full plan);
* dry no-op:   `snakemake -n` with every output present (fake, empty outputs; mtimes put in
               order by `snakemake --touch`);
* no-op:       `snakemake --cores 1` with every output present (must run nothing);
* dvc status:  `dvc status` after `dvc commit` of the fake outputs (must be clean);
* sync --check: the same verification by `polyrefusal sync --check` (DVC's stage status, with
               dvc.yaml/dvc.lock collected once);
* sync:        the whole `polyrefusal sync` (verify, date the outputs alike, `snakemake -n`);
* sync --commit: every stage recorded in dvc.lock (status once, dvc.lock
               written once): the end-of-run commit after a run that made everything;
* sync --commit --produced, no change: the same when nothing changed (rule dvc_commit after a
               run that made nothing new: one status pass).

dvc.yaml is what `polyrefusal dvc-yaml` writes for each DAG (one explicit stage per job;
`polyrefusal preset` rewrites it, and the widened grid gets its own). DVC parses YAML with
ruamel.yaml's C loader when `ruamel.yaml.clib` is installed (the project depends on
`ruamel.yaml[oldlibyaml]`); without it every figure of DVC's is about twice as slow.

Each figure is the wall time, with the CPU time (user + sys of the command and its children) in
brackets: on a shared machine the CPU time is the steadier of the two.

`paper` is the published grid (params preset `paper`: 12 languages, 17 training configurations,
the 8B base and 8 audit models from 7B to 72B); `paper-2k` is it widened through the real rules to
about 2,000 jobs with more training configurations (language pairs, triples, quadruples): how
planning scales; `bare` is a Snakefile with the same job count and no project code (no config,
no schema, no Python in the rules): Snakemake's own floor; beside it a bare DVC project of the
same jobs (one stage each, one file dependency, one output): DVC's own floor. Times are the
median of --repeat runs.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET_JOBS = 2000


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e.setdefault("TOKENIZERS_PARALLELISM", "false")
    return e


def sh(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} failed in {cwd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str], cwd: Path, repeat: int, expect: str | None = None) -> "Timing":
    """Median wall time and median CPU time (user + sys of the command and its children): on a
    shared machine the CPU time is the steadier figure."""
    walls, cpus = [], []
    for _ in range(repeat):
        c0, t0 = _cpu(), time.perf_counter()
        proc = sh(cmd, cwd)
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu() - c0)
        if expect and expect not in proc.stdout + proc.stderr:
            raise SystemExit(f"{' '.join(cmd)}: expected {expect!r}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return Timing(statistics.median(walls), statistics.median(cpus))


class Timing(tuple):
    def __new__(cls, wall: float, cpu: float):
        return super().__new__(cls, (wall, cpu))

    def __str__(self) -> str:
        return f"{self[0]:.2f}s ({self[1]:.2f})"


def copy_project(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\n")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def _edit_params(proj: Path, edit) -> None:
    from ruamel.yaml import YAML

    yaml = YAML()
    path = proj / "params.yaml"
    doc = yaml.load(path.read_text())
    edit(doc)
    with open(path, "w") as fh:
        yaml.dump(doc, fh)


def widen_to(proj: Path, target_jobs: int) -> int:
    """The paper preset widened through the real rules to about target_jobs jobs with more
    training configurations (language pairs, triples, then quadruples; each adds a train,
    generate, evaluate and capability job). Returns the number of training configurations."""
    jobs = job_count(proj)
    result = {}

    def add_configs(doc):
        langs = list(doc["languages"])
        configs = list(doc["train_configs"])
        per_config = 4
        n = max(0, -(-(target_jobs - jobs) // per_config))
        subsets = (list(c) for k in (2, 3, 4) for c in itertools.combinations(langs, k))
        for _ in range(n):
            subset = next(subsets)
            name = "mix_" + "_".join(subset)
            doc["config_defs"][name] = subset
            configs.append(name)
        doc["train_configs"] = configs
        result["configs"] = len(configs)

    _edit_params(proj, add_configs)
    return result["configs"]


def job_count(proj: Path) -> int:
    out = sh(["snakemake", "-n", "--quiet", "rules"], proj).stdout
    m = re.search(r"^total\s+(\d+)", out, re.M)
    if not m:
        raise SystemExit(f"no job count in:\n{out[-2000:]}")
    return int(m.group(1))


def outputs(proj: Path) -> list[str]:
    """Every output of the DAG (Snakemake's summary) and every DVC out (persist caches too)."""
    out = sh(["snakemake", "--summary"], proj).stdout.splitlines()[1:]
    paths = {line.split("\t")[0] for line in out if line.strip()}
    from dvc.repo import Repo

    with Repo(str(proj)) as repo:
        paths |= {o.def_path for s in repo.index.stages for o in s.outs}
    return sorted(paths)


def fake_outputs(proj: Path) -> int:
    """Empty files and directories for every output, all with one modification time (what
    `polyrefusal sync` does after a pull): Snakemake finds nothing newer than an output."""
    from polyrefusal.io import write_dir_manifest

    paths = outputs(proj)
    now = time.time()
    for rel in paths:
        p = proj / rel
        # directory() outputs (models, answers) and persist caches have no file extension here
        if not Path(rel).suffix:
            p.mkdir(parents=True, exist_ok=True)
            write_dir_manifest(p)  # as io.atomic_dir leaves one: what DVC's consumers depend on
            p = p / ".snakemake_timestamp"  # as Snakemake leaves a directory output
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
        p.touch()
        os.utime(p, (now, now))
    return len(paths)


def bench_project(name: str, preset: str, widen: int | None, repeat: int, base: Path) -> dict:
    proj = copy_project(base / name)
    sh(["polyrefusal", "preset", preset], proj)
    row = {"name": name}
    if widen:
        row["configs"] = widen_to(proj, widen)
        sh(["polyrefusal", "dvc-yaml"], proj)  # dvc.yaml: one stage per job of the widened DAG
    row["jobs"] = job_count(proj)
    row["plan"] = timed(["snakemake", "-n"], proj, repeat)
    # rule validate for real (DVC's stages depend on its params split by key), before every
    # output gets one date
    sh(["snakemake", "--cores", "1", "logs/params.valid"], proj)
    row["outputs"] = fake_outputs(proj)
    row["dry_noop"] = timed(["snakemake", "-n"], proj, repeat, expect="Nothing to be done")
    row["noop"] = timed(["snakemake", "--cores", "1"], proj, repeat, expect="Nothing to be done")
    # dvc.lock for the fake outputs: `dvc commit --force` with dvc.yaml and dvc.lock read once
    sync = ["polyrefusal", "sync"]
    row["dvc_commit"] = timed([*sync, "--commit"], proj, 1)
    # what rule dvc_commit costs at the end of a run that changed nothing: status of every
    # stage, nothing recorded
    row["commit_noop"] = timed([*sync, "--commit", "--produced"], proj, 1, expect="0 stage(s) recorded")
    row["dvc_stages"] = len(sh(["dvc", "stage", "list", "--name-only"], proj).stdout.split())
    slow = 1 if row["jobs"] > 1000 else repeat
    row["dvc_status"] = timed(["dvc", "status"], proj, slow, expect="up to date")
    row["sync_check"] = timed([*sync, "--check"], proj, slow, expect="match dvc.lock")
    shutil.rmtree(proj / ".snakemake" / "metadata", ignore_errors=True)  # as on a fresh clone
    row["sync"] = timed(sync, proj, 1, expect="nothing to do")
    return row


BARE = """\
N = {n}

rule all:
    input: expand("out/{{i}}.txt", i=range(N - 1))

rule job:
    output: "out/{{i}}.txt"
    shell: "touch {{output}}"
"""


def bench_bare(n: int, repeat: int, base: Path) -> dict:
    d = base / f"bare{n}"
    d.mkdir()
    (d / "Snakefile").write_text(BARE.format(n=n))
    row = {"name": f"bare ({n} jobs)", "jobs": job_count(d)}
    row["plan"] = timed(["snakemake", "-n"], d, repeat)
    (d / "out").mkdir()
    for i in range(n - 1):
        (d / "out" / f"{i}.txt").touch()
    row["dry_noop"] = timed(["snakemake", "-n"], d, repeat, expect="Nothing to be done")
    row["noop"] = timed(["snakemake", "--cores", "1"], d, repeat, expect="Nothing to be done")
    # DVC's own floor on the same jobs: one stage per job, its output and one file dependency
    # (every stage of ours has at least its input digest), no params, nothing of the project
    (d / "in.txt").write_text("in\n")
    stages = {f"job{i}": {"cmd": f"touch out/{i}.txt", "deps": ["in.txt"], "outs": [f"out/{i}.txt"]}
              for i in range(n - 1)}
    (d / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    sh(["dvc", "init", "--no-scm", "-q"], d)
    sh(["dvc", "config", "core.analytics", "false"], d)
    sh(["dvc", "commit", "--force", "-q"], d)
    row["dvc_stages"] = len(stages)
    row["dvc_status"] = timed(["dvc", "status"], d, 1 if n > 1000 else repeat, expect="up to date")
    return row


def startup(repeat: int, base: Path) -> float:
    """`snakemake --version`: the interpreter and Snakemake's imports, no workflow at all."""
    return timed(["snakemake", "--version"], base, repeat)


def fmt(v) -> str:
    return "-" if v is None else str(v)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default="default,paper,paper-2k")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-bare", action="store_true")
    p.add_argument("--keep", default=None, help="work in this directory and keep it")
    args = p.parse_args(argv)
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_dag_"))
    base.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        rows.append({"name": "snakemake --version", "plan": startup(args.repeat, base)})
        for name in args.presets.split(","):
            # paper-2k, or paper-N: the paper grid widened to about N jobs (the growth curve)
            preset, widen = (("paper", {"2k": TARGET_JOBS}.get(name[6:]) or int(name[6:]))
                             if name.startswith("paper-") else (name, None))
            print(f"... {name}", file=sys.stderr, flush=True)
            rows.append(bench_project(name, preset, widen, args.repeat, base))
        if not args.no_bare:
            for n in sorted({r["jobs"] for r in rows if r.get("jobs")}):
                print(f"... bare {n}", file=sys.stderr, flush=True)
                rows.append(bench_bare(n, args.repeat, base))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    cols = [("name", "DAG"), ("jobs", "jobs"), ("plan", "snakemake -n"), ("dry_noop", "-n, all present"),
            ("noop", "no-op run"), ("dvc_stages", "dvc stages"), ("dvc_status", "dvc status"),
            ("sync_check", "sync --check"), ("sync", "sync"), ("dvc_commit", "sync --commit"),
            ("commit_noop", "sync --commit --produced, no change")]
    print(f"# bench_dag: wall time, median of {args.repeat} runs (CPU time, user+sys, in brackets); "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print("| " + " | ".join(c[1] for c in cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(fmt(r.get(k)) for k, _ in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
