"""Command `sync`: after `dvc pull`, make Snakemake see the pulled outputs as up to date, without
running anything.

DVC restores outputs by content but does not keep modification times: after `dvc pull` on a fresh
clone, every file is as new as the moment it was checked out, in whatever order DVC wrote them,
so plain Snakemake (which decides by modification time when it has no metadata, as on a fresh
clone) would rerun much of the DAG. `polyrefusal sync`:

1. checks, with DVC's own status, that every stage recorded in `dvc.lock` is unchanged: each
   output exists and hashes to what `dvc.lock` records, and its code, parameters and inputs are
   those it was run with. Any difference stops it (exit 2) with the list, and nothing is touched;
2. gives every one of those outputs the same modification time, now (for a directory output,
   its .snakemake_timestamp, or the directory itself if it has none). Snakemake reruns a job
   only when an input is newer than an output; with equal times none is, and nothing is run,
   created or rewritten. If `dvc.lock` holds the whole pipeline, it also writes the marker of
   the `dvc_commit` rule (its meaning, "dvc.lock records every output", has just been checked).
   (`snakemake --touch` would do the same job by job, but sleeps 0.1 s per job: minutes for
   the paper grid; and it creates a .snakemake_timestamp in directories made by `dvc repro`,
   which DVC then sees as a change);
3. records the verified hashes for the new modification times in DVC's state database, so the
   next `dvc status` does not re-read the files (model weights included);
4. checks that `snakemake -n` has nothing left to do for those outputs.

    polyrefusal sync --pull             # = dvc pull (what dvc.lock records) + the above
    dvc pull && polyrefusal sync        # the same in two steps; then `snakemake -n`: nothing to do
    polyrefusal sync --commit           # `dvc commit --force` of the stages that changed, in one write
    polyrefusal sync --commit --produced   # the same, only for outputs a Snakemake job made (rule dvc_commit)

`--commit --produced` is the end of every Snakemake run: it records in dvc.lock only what the
pipeline made. A stage that differs from dvc.lock is committed only if each of its outputs has
Snakemake's record of the job that made it (.snakemake/metadata), is unchanged since that job
ended (Snakemake records an output's modification time at the job's end; a directory's is its
.snakemake_timestamp, and no file inside may be newer), and that job ended after every changed
dependency was last modified. Anything else (a result edited by hand, a file copied into
results/, outputs older than the code or data they depend on) is listed, and nothing is
recorded: DVC's `commit --force` would launder it into dvc.lock.

A stage's code and params keys are, for DVC, its rule's input digest (logs/inputs/RULE.json)
and, for keys that vary by job, params.yaml split by key (logs/params/KEY.json), all written by
stage validate (see polyrefusal.stage_inputs). Snakemake reruns a job on changed code through
its code inputs and on a changed value through its params trigger, and writes those files in no
order relative to the job, so their dates say nothing about the job: they are not compared with
its end. What is compared instead is each code file the digest says changed (against the
digest's bytes that dvc.lock records, from DVC's cache): a file edited after the job that read
it ended is reported as before. Before recording, `--commit` brings the digests and the split up
to date with the code and params.yaml (only files whose bytes change are written): a stage is
never recorded against code or a value it did not run with, and a run that left them stale
(validate not among its targets) is refused by `--produced` as validate's changed output.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
from pathlib import Path

from ..errors import UserError
from ..io import atomic_path
from ..params import SLICE_DIR, load_params, slice_key, slice_path, slices, write_slices
from ..stage_inputs import (INPUTS_DIR, changed_code, code_files, digest, digest_path, digest_rule, digest_text,
                            write_digests)

log = logging.getLogger(__name__)

#: The output of rule `dvc_commit` (rules/dvc.smk): "dvc.lock records every output".
DVC_COMMIT_MARKER = "logs/dvc_commit.done"
MAX_LISTED = 15


def add_arguments(p):
    p.add_argument("--pull", action="store_true",
                   help="first `dvc pull` the outputs of the stages dvc.lock records (from the default remote)")
    p.add_argument("--commit", action="store_true",
                   help="only record the workspace in dvc.lock (`dvc commit --force` of every stage, with "
                        "dvc.yaml and dvc.lock read once instead of once per stage): what rule dvc_commit runs")
    p.add_argument("--produced", action="store_true",
                   help="with --commit: record only outputs that a Snakemake job made and nobody changed "
                        "since; list any other change and record nothing (exit 2)")
    p.add_argument("stages", nargs="*", help="with --commit: only these stages (default: all)")
    p.add_argument("--check", action="store_true",
                   help="only verify the outputs against dvc.lock; touch nothing")
    p.add_argument("--snakefile", default=None, help="Snakefile (default: Snakemake's own lookup)")
    p.add_argument("-d", "--directory", default=".", help="project root (default: .)")


def _describe(status: dict) -> list[str]:
    lines = []
    for stage, changes in status.items():
        for change in changes:
            if isinstance(change, dict):
                for kind, items in change.items():
                    detail = ", ".join(f"{k}: {v}" for k, v in items.items()) if isinstance(items, dict) else str(items)
                    lines.append(f"{stage}: {kind}: {detail}")
            else:
                lines.append(f"{stage}: {change}")
    return lines


def locked_stages(root: Path) -> list[str]:
    import yaml

    lock_path = root / "dvc.lock"
    if not lock_path.exists():
        raise UserError("no dvc.lock: nothing has been recorded yet (run the pipeline, or pull a "
                        "commit that has dvc.lock)", file=str(lock_path))
    locked = list((yaml.safe_load(lock_path.read_text()) or {}).get("stages") or {})
    if not locked:
        raise UserError("dvc.lock records no stage", file=str(lock_path))
    return locked


def pull(root: Path) -> None:
    """`dvc pull` of the locked stages only: stages never run have nothing to pull."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    locked = locked_stages(root)
    with Repo(str(root)) as repo:
        try:
            result = repo.pull(targets=locked)
        except DvcException as exc:
            raise UserError(f"dvc pull failed: {exc} (is a default remote set? `dvc remote list`)") from exc
    log.info("sync: dvc pull: %s", result)


@contextlib.contextmanager
def _repo_lock(repo):
    """DVC's repository lock, held for the whole sync. Under it no other DVC command edits
    `.dvc/tmp/rwlock`, DVC's record of the stages being read or written (dvc/rwlock.py rewrites
    that JSON in place, twice per stage), so one that does not parse is what a process killed
    mid-write left: it is removed, where DVC would refuse every later command on it."""
    try:
        from dvc.repo import lock_repo
    except ImportError:  # pragma: no cover - another DVC layout
        yield
        return
    with lock_repo(repo):
        _remove_torn_rwlock(Path(repo.tmp_dir) / "rwlock")
        yield


def _remove_torn_rwlock(path: Path) -> None:
    import json

    try:
        json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (ValueError, UnicodeDecodeError):
        log.warning("sync: removed %s, which a killed DVC process left unreadable", path)
        path.unlink(missing_ok=True)


def _stage_status(repo, stages: list) -> dict:
    """`dvc status` (local, all stages) for stages already collected."""
    try:
        from dvc.repo.status import _joint_status
    except ImportError:  # pragma: no cover - another DVC layout: the public call
        return repo.status()
    return _joint_status([(stage, None) for stage in stages])


def verify(root: Path) -> dict:
    """DVC's view of the locked stages. Returns {locked, complete, targets, file_outs};
    raises UserError if any locked stage differs from dvc.lock."""
    from dvc.repo import Repo

    lock_path = root / "dvc.lock"
    locked = locked_stages(root)
    with Repo(str(root)) as repo, _repo_lock(repo):
        ensure_gate(root, repo)
        # What `dvc status` computes, for every stage, under one repo lock: the index (dvc.yaml
        # and dvc.lock parsed) is built once, not once for the status and again for the outputs,
        # and not once per target as `status(targets=...)` would (quadratic: minutes for the
        # paper grid).
        stages = {s.addressing: s for s in repo.index.stages}
        unknown = [name for name in locked if name not in stages]
        if unknown:
            raise UserError(f"dvc.lock names stages that dvc.yaml does not define: {', '.join(unknown[:MAX_LISTED])}",
                            file=str(lock_path))
        stale = stale_digests(root, [stages[name] for name in locked])
        edited = [(rule, files) for rule, files, _ in stale if files]
        if edited:
            raise UserError("code changed since the locked stages ran: "
                            + "; ".join(f"{rule} ({', '.join(files[:3])})" for rule, files in edited[:MAX_LISTED])
                            + " (rerun the stages that read it: `snakemake` or `dvc repro`)", file=edited[0][1][0])
        # keys that vary by job (params split by key) and keys in the rules' digests alike
        keys = sorted(set(stale_params_keys(root, [stages[name] for name in locked]))
                      | {k for _, _, ks in stale for k in ks})
        if keys:
            raise UserError(f"params.yaml changed since the locked stages ran: {', '.join(keys[:MAX_LISTED])} "
                            "(rerun the stages that read them: `snakemake` or `dvc repro`)", file=str(root / "params.yaml"))
        full = _stage_status(repo, list(stages.values()))
        wanted = set(locked)
        status = {name: changes for name, changes in full.items() if name in wanted}
        if status:
            problems = _describe(status)
            hint = ""
            if any("deleted" in p or "not in cache" in p for p in problems):
                hint = (" (missing outputs: run `dvc pull` first; outputs declared `cache: false` in "
                        "dvc.yaml are never pushed to a remote)")
            raise UserError(f"{len(status)} stage(s) differ from dvc.lock{hint}: "
                            + "; ".join(problems[:MAX_LISTED])
                            + (f"; ... {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""),
                            file=str(lock_path))
        outs = [o for name in locked for o in stages[name].outs]
        # persist outs (translation memory, response cache) are caches that Snakemake does not
        # declare as outputs.
        targets = [o.def_path for o in outs if not o.persist]
        file_outs = [(o.fs_path, o.hash_info) for o in outs if not o.persist and not o.is_dir_checksum
                     and o.hash_info]
        complete = set(locked) == set(stages)
    return {"locked": locked, "complete": complete, "targets": targets, "file_outs": file_outs}


def _snakemake(root: Path, args: list[str], snakefile: str | None, quiet: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1"]
    if quiet:
        cmd += ["--quiet", "progress", "rules"]
    if snakefile:
        cmd += ["--snakefile", snakefile]
    return subprocess.run(cmd + args, cwd=root, capture_output=True, text=True)


def align_mtimes(root: Path, targets: list[str], when: float | None = None) -> int:
    """Give every target one and the same modification time (now). Snakemake reruns a job when
    an input is *newer* than its oldest output; with equal times nothing is. A directory output's
    time is that of its .snakemake_timestamp if it has one, else the directory's own: set that,
    and create nothing (a new file would change the directory for DVC). Returns the count."""
    import os
    import time

    ns = int((time.time() if when is None else when) * 1e9)
    n = 0
    for rel in targets:
        path = root / rel
        if path.is_dir() and not path.is_symlink():
            stamp = path / ".snakemake_timestamp"
            path = stamp if stamp.exists() else path
        try:
            os.utime(path, ns=(ns, ns), follow_symlinks=False)
            n += 1
        except FileNotFoundError:
            continue
    return n


def _save_dvc_state(root: Path, file_outs: list) -> int:
    """Record the verified hashes under the files' new mtimes (DVC keys its hash cache on
    inode, mtime and size), so that `dvc status` need not hash them again. Directory outputs
    need nothing: only their .snakemake_timestamp was touched, and it is re-hashed at no cost."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        try:
            repo.state.save_many([(path, hash_info, None) for path, hash_info in file_outs], repo.fs)
        except Exception as exc:  # noqa: BLE001 - an optimisation only; dvc status stays correct
            log.warning("could not update DVC's state database (%s); the next `dvc status` re-hashes", exc)
            return 0
    return len(file_outs)


def ensure_gate(root: Path, repo) -> None:
    """Run DVC's first stage (rules/validate.smk: params.yaml checked, a marker written; see
    polyrefusal.dvc_yaml.GATE_RULE) if its marker is missing. Snakemake checks params.yaml when
    it parses the Snakefile and makes the marker only for target `all` (a run of some targets,
    or a fresh clone before `dvc pull`, lacks it), but every DVC root stage depends on it."""
    from ..dvc_yaml import GATE_RULE

    gate = [s for s in repo.index.stages if s.name == GATE_RULE and s.dvcfile.path == str(root / "dvc.yaml")]
    if not gate or all(Path(o.fs_path).exists() for o in gate[0].outs):
        return
    proc = subprocess.run(gate[0].cmd, shell=True, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise UserError(f"stage {GATE_RULE} failed: {last}")


def stale_params_keys(root: Path, stages: list) -> list[str]:
    """The params keys, read by `stages`, whose file under logs/params differs from params.yaml
    as it is now (see the module docstring): DVC compares a stage with the file, which only
    stage validate rewrites, so a value edited since then is found here."""
    from ..dvc_yaml import PARAMS_FILE

    read = {slice_key(d.def_path) for s in stages for d in s.deps} - {None}
    if not read:
        return []
    now = slices(load_params(root / PARAMS_FILE))
    stale = []
    for key in sorted(read):
        path = root / slice_path(key)
        if now.get(key) is None or not path.is_file() or path.read_text(encoding="utf-8") != now[key]:
            stale.append(key)
    return stale


def stale_digests(root: Path, stages: list) -> list[tuple[str, list[str], list[str]]]:
    """The rules, read by `stages` through their input digest, whose digest file differs from
    their code and params.yaml as they are now, each as (rule, code files changed, params keys
    changed): DVC compares a stage with the file, which only stage validate rewrites, so an
    edit since then is found here. (A digest whose old bytes are unreadable counts as changed
    code, all of it.)"""
    import json

    from ..dvc_yaml import PARAMS_FILE

    rules = sorted({digest_rule(d.def_path) for s in stages for d in s.deps} - {None})
    if not rules:
        return []
    params = load_params(root / PARAMS_FILE)
    stale = []
    for rule in rules:
        path = root / digest_path(rule)
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        now = digest(rule, params, root)
        if old == digest_text(now):
            continue
        files = changed_code(old, now)
        try:
            old_params = json.loads(old or "{}").get("params", {})
        except (ValueError, AttributeError):
            old_params = {}
        keys = sorted(k for k in set(old_params) | set(now["params"]) if old_params.get(k) != now["params"].get(k))
        stale.append((rule, list(now["code"]) if files is None else files, keys))
    return stale


def refresh_stage_inputs(root: Path) -> None:
    """The rules' input digests and params.yaml split by key, as the code and params.yaml are
    now (see the module docstring): files whose bytes change are rewritten, the others keep
    their dates."""
    from ..dvc_yaml import PARAMS_FILE

    params = None
    if (root / SLICE_DIR).is_dir():
        params = load_params(root / PARAMS_FILE)
        write_slices(params, root / SLICE_DIR)
    if (root / INPUTS_DIR).is_dir():
        write_digests(params or load_params(root / PARAMS_FILE), root / INPUTS_DIR, root)


def _locked_text(repo, dep) -> str | None:
    """The bytes dvc.lock records for file dependency `dep` (from DVC's cache), None if unknown."""
    try:
        path = repo.cache.local.oid_to_path(dep.hash_info.value)
        return Path(path).read_text(encoding="utf-8")
    except (AttributeError, TypeError, OSError, ValueError):
        return None


def gate_outs(repo) -> set[str]:
    """The outputs of DVC's first stage (polyrefusal.dvc_yaml.GATE_RULE)."""
    from ..dvc_yaml import GATE_RULE

    return {o.def_path for s in repo.index.stages if s.name == GATE_RULE for o in s.outs}


def _metadata(root: Path, path: str) -> dict | None:
    """Snakemake's record of the job that made `path` (its file persistence backend, the
    default: .snakemake/metadata/<urlsafe base64 of the path>, split in parts of at most
    NAME_MAX - 1 characters, all but the last prefixed by `@`; snakemake/persistence/file.py),
    None if there is none or the job is marked incomplete."""
    import base64
    import json
    import os

    def record_path(subject: Path) -> Path:
        max_len = os.pathconf(subject, "PC_NAME_MAX") if subject.exists() else 255
        b64 = base64.urlsafe_b64encode(path.encode()).decode()
        parts = [b64[i: i + max_len - 1] for i in range(0, len(b64), max_len - 1)]
        return subject.joinpath(*["@" + s for s in parts[:-1]], parts[-1])

    snakemake_dir = root / ".snakemake"
    if record_path(snakemake_dir / "incomplete").exists():
        return None
    try:
        record = json.loads(record_path(snakemake_dir / "metadata").read_text())
    except (OSError, ValueError):
        return None
    return None if record.get("incomplete") else record


def _newest_mtime(path: Path) -> float | None:
    """A file's modification time; a directory's newest file's (its .snakemake_timestamp
    included, byte code not); None if absent."""
    import os

    if not path.exists():
        return None
    if not path.is_dir():
        return path.stat().st_mtime
    newest = path.stat().st_mtime if not (path / ".snakemake_timestamp").exists() else 0.0
    for dirpath, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != "__pycache__"]  # byte code: as .dvcignore
        for name in files:
            newest = max(newest, os.stat(os.path.join(dirpath, name)).st_mtime)
    return newest


#: Slack between a file's modification time and the end time Snakemake records from it
#: (the same float, round-tripped through JSON).
MTIME_SLACK = 1e-3


def digests_now(root: Path):
    """`rule -> its input digest as the code and params.yaml are now`, each computed once."""
    import functools

    from ..dvc_yaml import PARAMS_FILE

    params = functools.cache(lambda: load_params(root / PARAMS_FILE))
    return functools.cache(lambda rule: digest(rule, params(), root))


def not_produced(root: Path, stage, ordering_only: set[str] = frozenset(), digest_now=None) -> list[str]:
    """Why the workspace state of `stage` (which differs from dvc.lock) is not a Snakemake
    job's output: one line per problem, empty if it is (see the module docstring). Deps in
    `ordering_only` are not compared with the job's end; `digest_now` is `digests_now(root)`,
    shared by the calls of one commit."""
    digest_now = digest_now or digests_now(root)
    problems, ends, kept = [], [], []
    for out in stage.outs:
        record = _metadata(root, out.def_path)
        if out.persist and record is None:
            kept.append(out)  # a cache Snakemake does not declare: judged by the job that wrote it
            continue
        if record is None or record.get("endtime") is None:
            problems.append(f"{out.def_path}: no Snakemake job made it (no record in .snakemake/metadata)")
            continue
        end = float(record["endtime"])
        ends.append(end)
        mtime = _newest_mtime(root / out.def_path)
        if out.status() and mtime is not None and mtime > end + MTIME_SLACK:
            problems.append(f"{out.def_path}: changed after its job ({record.get('rule')}) ended")
    if problems or not ends:
        return problems or [f"{stage.name}: no output made by a Snakemake job"]
    first_end, last_end = min(ends), max(ends)
    for out in kept:
        if out.status():
            mtime = _newest_mtime(root / out.def_path)
            if mtime is not None and mtime > last_end + MTIME_SLACK:
                problems.append(f"{out.def_path}: changed after the job that keeps it ended")
    for dep in stage.deps:
        if dep.def_path in ordering_only or slice_key(dep.def_path) is not None:
            continue
        rule = digest_rule(dep.def_path)
        if rule is not None:
            problems += _code_after(root, stage, dep, rule, first_end, digest_now)
            continue
        if dep.status():
            mtime = _newest_mtime(Path(dep.fs_path))
            if mtime is not None and mtime > first_end + MTIME_SLACK:
                problems.append(f"{dep.def_path}: changed after the job that used it ended "
                                f"(its outputs are older than it)")
    return problems


def _code_after(root: Path, stage, dep, rule: str, end: float, digest_now) -> list[str]:
    """For a changed input digest of `stage`: its code files edited after `end` (the files whose
    md5 changed since the bytes dvc.lock records; all of the rule's when those are unknown)."""
    if not dep.status():
        return []
    files = changed_code(_locked_text(stage.repo, dep), digest_now(rule))
    problems = []
    for rel in code_files(rule, root) if files is None else files:
        mtime = _newest_mtime(root / rel)
        if mtime is not None and mtime > end + MTIME_SLACK:
            problems.append(f"{rel}: changed after the job that used it ended (its outputs are older than it)")
    return problems


def commit(root: Path, stages: list[str] | None = None, produced: bool = False) -> int:
    """Record in dvc.lock the stages (default: all) that differ from it, as `dvc commit --force`
    does, with dvc.yaml/dvc.lock collected once, unchanged stages not
    re-saved and dvc.lock written once. With `produced`, first check each changed stage with
    `not_produced` and record nothing if any fails. Returns the number of stages recorded."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    with Repo(str(root)) as repo, _repo_lock(repo):
        try:
            ensure_gate(root, repo)
            refresh_stage_inputs(root)
            by_name = {s.name: s for s in repo.index.stages if s.dvcfile.path == str(root / "dvc.yaml")}
            unknown = [name for name in stages or [] if name not in by_name]
            if unknown:
                raise UserError(f"no such stage in dvc.yaml: {', '.join(unknown[:MAX_LISTED])}",
                                file=str(root / "dvc.yaml"))
            selected = [by_name[name] for name in stages] if stages else list(by_name.values())
            changed = _changed(repo, selected)
            if not stages:  # stages never run (no output in the workspace) have nothing to record
                changed = [s for s in changed
                           if any(Path(o.fs_path).exists() for o in [o for o in s.outs if not o.persist] or s.outs)]
            if produced:
                # the params check's marker: constant bytes, an ordering dependency for DVC only
                gate = gate_outs(repo)
                now = digests_now(root)
                problems = [line for s in changed for line in not_produced(root, s, gate, now)]
                if problems:
                    raise UserError(
                        f"not recorded in dvc.lock: {len(problems)} change(s) no pipeline job made "
                        "(rerun the stage, e.g. `snakemake -R RULE`, or record it on purpose with "
                        "`polyrefusal sync --commit STAGE`): " + "; ".join(problems[:MAX_LISTED])
                        + (f"; ... {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""),
                        file=str(root / "dvc.lock"))
            for stage in changed:
                stage.save()
                # into the cache only: re-linking would rewrite the outputs (new mtimes, which
                # Snakemake would read as newer inputs)
                stage.commit(relink=False)
            if changed:
                _write_lock(repo, root / "dvc.lock", changed)
        except DvcException as exc:
            raise UserError(f"dvc commit failed: {exc}") from exc
    return len(changed)


def _write_lock(repo, lock_path: Path, stages: list) -> None:
    """Record `stages` in dvc.lock as DVC's own lock file writer does, but atomically: DVC
    rewrites dvc.lock in place (dvc/utils/serialize/_common.py `_dump_data` opens it "w+"), so a
    run killed while it writes left a torn dvc.lock that neither tool can read. Here DVC's writer
    updates a copy next to it, and the copy replaces dvc.lock whole."""
    import shutil

    from dvc.dvcfile import Lockfile

    with atomic_path(lock_path) as tmp:
        if lock_path.exists():
            shutil.copyfile(lock_path, tmp)
        else:  # DVC's writer starts a new lock file (its schema line) only where none exists
            tmp.unlink()
        Lockfile(repo, str(tmp)).dump_stages(stages)


def _changed(repo, selected: list) -> list:
    """The stages among `selected` that `dvc status` reports (one status pass over all)."""
    status = _stage_status(repo, selected)
    return [s for s in selected if s.addressing in status]


def run(args):
    root = Path(args.directory).resolve()
    if args.commit:
        n = commit(root, args.stages, produced=args.produced)
        print(f"sync: {n} stage(s) recorded in dvc.lock")
        return 0
    if args.produced:
        raise UserError("--produced is for --commit only")
    if args.stages:
        raise UserError("stage names are for --commit only")
    if args.pull:
        pull(root)
    info = verify(root)
    log.info("sync: %d stage(s) in dvc.lock match the workspace (%s)", len(info["locked"]),
             "the whole pipeline" if info["complete"] else "part of the pipeline")
    if args.check:
        print(f"sync: {len(info['locked'])} stage(s), {len(info['targets'])} output(s) match dvc.lock")
        return 0
    targets = list(info["targets"])
    if info["complete"]:
        marker = root / DVC_COMMIT_MARKER
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        aligned = align_mtimes(root, targets + [DVC_COMMIT_MARKER])
        targets = []  # check the default target: the whole DAG
    else:
        aligned = align_mtimes(root, targets)
    saved = _save_dvc_state(root, info["file_outs"])
    dry = _snakemake(root, ["-n", *targets], args.snakefile, quiet=False)
    text = dry.stdout + dry.stderr
    if dry.returncode != 0 or "Nothing to be done" not in text:
        jobs = sorted({line.split("rule ", 1)[1].rstrip(":") for line in text.splitlines()
                       if line.strip().startswith("rule ") and "rule all" not in line})
        raise UserError("after dating the outputs alike, snakemake still has jobs to run "
                        f"({', '.join(jobs) or 'see `snakemake -n`'}): outputs that dvc.lock does not record?")
    print(f"sync: {len(info['targets'])} output(s) of {len(info['locked'])} stage(s) verified against dvc.lock, "
          f"{aligned} dated alike for Snakemake ({saved} hash(es) kept for DVC); `snakemake -n` has nothing to do")
    return 0
