"""Helpers for the fault tests (kill anywhere, bad inputs, secrets, concurrency): process groups
and their SIGKILL, snapshots of file trees, readers that refuse a truncated output, and the
parsing of what Snakemake and DVC report having done."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .project import env

# --- running the CLI ---------------------------------------------------------------------------

ERROR_LINE = re.compile(r"^polyrefusal [\w-]+: error: ")


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        """The CLI's one-line error(s) (logging lines before it are not errors of the CLI)."""
        return [ln for ln in self.stderr.splitlines() if ERROR_LINE.match(ln)]


def cli(argv: list[str], cwd: Path, extra_env: dict | None = None, timeout: int = 300,
        drop_env: tuple[str, ...] = ()) -> CliResult:
    """Run the installed console script (or any argv) in a subprocess, as a user would."""
    e = env()
    for k in drop_env:
        e.pop(k, None)
    e.update(extra_env or {})
    proc = subprocess.run(argv, cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


# --- snapshots of file trees ---------------------------------------------------------------------

def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple[bytes, int]]:
    """relative path -> (bytes, mtime_ns) of every file under ``root`` (skipping ``skip`` prefixes)."""
    out = {}
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not p.is_symlink() and not rel.startswith(skip):
            out[rel] = (p.read_bytes(), p.stat().st_mtime_ns)
    return out


def changed(before: dict, after: dict) -> list[str]:
    """Files added, removed or modified (bytes or mtime) between two snapshots."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


# --- process groups ----------------------------------------------------------------------------

def start_group(argv: list[str], cwd: Path, log: Path, extra_env: dict | None = None) -> subprocess.Popen:
    """Start ``argv`` as the leader of a new process group (session); output to ``log``."""
    e = env()
    e.update(extra_env or {})
    fh = open(log, "wb")
    try:
        return subprocess.Popen(argv, cwd=cwd, env=e, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        fh.close()


def group_commands(pgid: int) -> list[str]:
    """Command lines of the live (non-zombie) processes of process group ``pgid``."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[0] == "Z" or int(fields[2]) != pgid:
                continue
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError, IndexError):
            continue
        if cmd:
            out.append(cmd)
    return out


def polyrefusal_jobs(pgid: int) -> list[str]:
    """``polyrefusal <command> ...`` job command lines running in the group (shortened), and dvc."""
    jobs = []
    for cmd in group_commands(pgid):
        m = re.search(r"(?:^|/)(polyrefusal \S+.*|dvc commit.*)$", cmd)
        if m and " -c " not in cmd[:20]:
            jobs.append(m.group(1)[:140])
    return sorted(set(jobs))


def kill_group(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGKILL the whole process group of ``proc`` and wait until none of it is left."""
    pgid = proc.pid  # start_new_session: the leader's pid is the group id
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while group_commands(pgid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process group {pgid} survived SIGKILL: {group_commands(pgid)}")
        time.sleep(0.05)


def wait_until(cond, timeout: float, proc: subprocess.Popen | None = None, poll: float = 0.05) -> bool:
    """Poll ``cond()`` until true (True), the timeout passes or ``proc`` ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        if proc is not None and proc.poll() is not None:
            return bool(cond())
        time.sleep(poll)
    return False


# --- outputs that must never be truncated ------------------------------------------------------

def check_readable(path: Path) -> None:
    """Parse ``path`` completely by its type; raise if it is truncated or corrupt."""
    name = path.name
    if name == ".snakemake_timestamp":
        return
    suffix = path.suffix
    if suffix == ".parquet":
        import pyarrow.parquet as pq
        pq.read_table(path)
    elif suffix in (".jsonl", ".ndjson"):
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            raise ValueError(f"{path}: last line is not terminated")
        for line in data.splitlines():
            if line.strip():
                json.loads(line)
    elif suffix == ".json":
        json.loads(path.read_text(encoding="utf-8"))
    elif suffix == ".safetensors":
        from safetensors import safe_open
        with safe_open(str(path), framework="pt") as fh:
            for key in fh.keys():
                fh.get_tensor(key)
    elif suffix == ".csv":
        import csv
        rows = list(csv.reader(path.open(encoding="utf-8", newline="")))
        if not rows or any(len(r) != len(rows[0]) for r in rows):
            raise ValueError(f"{path}: ragged or empty CSV")
    elif suffix == ".md":
        text = path.read_text(encoding="utf-8")
        if not text.endswith("\n"):
            raise ValueError(f"{path}: not newline-terminated")
    elif suffix == ".html":
        if "</html>" not in path.read_text(encoding="utf-8")[-200:]:
            raise ValueError(f"{path}: no closing </html>")
    elif suffix == ".png":
        data = path.read_bytes()
        if not data.startswith(b"\x89PNG") or not data.endswith(b"IEND\xaeB`\x82"):
            raise ValueError(f"{path}: truncated PNG")
    elif suffix in (".yaml", ".lock") or name == "dvc.lock":
        import yaml
        yaml.safe_load(path.read_text(encoding="utf-8"))
    else:
        path.read_bytes()


def unreadable(paths: list[Path]) -> list[str]:
    """Every file under ``paths`` (files or directories) that does not parse: ``path: error``."""
    bad = []
    for top in paths:
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()) if top.is_dir() else []
        for f in files:
            try:
                check_readable(f)
            except Exception as exc:  # noqa: BLE001 - any failure to parse is the finding
                bad.append(f"{f}: {type(exc).__name__}: {str(exc)[:200]}")
    return bad


# --- what Snakemake and DVC did ------------------------------------------------------------------

def job_stats(snakemake_output: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake run: rule -> count (without 'all' and 'total')."""
    counts: dict[str, int] = {}
    in_table = False
    for line in snakemake_output.splitlines():
        if line.startswith("job ") and "count" in line:
            in_table = True
            counts = {}
            continue
        if in_table:
            parts = line.split()
            if not parts:
                in_table = False
                continue
            if parts[0].startswith("---"):
                continue
            if parts[0] == "total":
                in_table = False
                continue
            if len(parts) == 2 and parts[1].isdigit() and parts[0] != "all":
                counts[parts[0]] = counts.get(parts[0], 0) + int(parts[1])
    return counts


def planned_outputs(dry_run_output: str) -> list[str]:
    """Every ``output:`` path of the jobs a ``snakemake -n`` run lists."""
    outs: list[str] = []
    for line in dry_run_output.splitlines():
        s = line.strip()
        if s.startswith("output: "):
            outs += [p.strip() for p in s[len("output: "):].split(",") if p.strip()]
    return outs


def dvc_work(dvc_output: str) -> dict[str, list[str]]:
    """Stages `dvc repro` ran, restored from its run cache, and found unchanged."""
    ran = re.findall(r"Running stage '([^']+)'", dvc_output)
    cached = re.findall(r"Stage '([^']+)' is cached - skipping run", dvc_output)
    unchanged = re.findall(r"Stage '([^']+)' didn't change, skipping", dvc_output)
    return {"ran": ran, "restored": cached, "unchanged": unchanged}


@dataclass
class CacheHits:
    generate: list[str] = field(default_factory=list)   # "model: N of M cached"
    translate: list[str] = field(default_factory=list)  # "lang: N hits, M misses"
    train: list[str] = field(default_factory=list)      # "config: resumed from checkpoint-N"


def cache_hits(proj: Path, since: float, output: str = "") -> CacheHits:
    """What the logs written since ``since`` (Snakemake jobs) and ``output`` (a `dvc repro`,
    whose commands log to its output) say about cache and checkpoint use."""
    texts: list[tuple[str, str]] = []
    for log in sorted((proj / "logs").rglob("*.log")):
        try:
            if log.stat().st_mtime >= since:
                texts.append((log.stem, log.read_text(encoding="utf-8", errors="replace")))
        except OSError:
            continue
    texts += [(m.group(1), m.group(0)) for m in re.finditer(
        r"generate (\S+): \d+ answers \(\{'hits': \d+, 'misses': \d+", output)]
    texts += [(m.group(1), m.group(0)) for m in re.finditer(r"translate en->(\w+) \[\w+\]: \d+ hits.*", output)]
    texts += [(m.group(1), m.group(0)) for m in re.finditer(r"train (\S+): resuming from \S+", output)]
    hits = CacheHits()
    for name, text in texts:
        m = re.search(r"generate \S+: \d+ answers \(\{'hits': (\d+), 'misses': (\d+)", text)
        if m:
            n, miss = int(m.group(1)), int(m.group(2))
            hits.generate.append(f"{name}: {n} of {n + miss} cached")
        m = re.search(r"\]: (\d+) hits, (\d+) misses", text)
        if m:
            hits.translate.append(f"{name}: {m.group(1)} memory hits, {m.group(2)} misses")
        m = re.search(r"resuming from \S*?(checkpoint-\d+)", text)
        if m:
            hits.train.append(f"{name}: resumed from {m.group(1)}")
    return hits


# --- comparing a project with the reference run -------------------------------------------------

#: Not outputs, or outputs that legitimately differ between an interrupted and an uninterrupted
#: run: caches and resumable state (content-addressed; their shard names hold pid and time), and
#: usage files (how many memory hits a run had).
VOLATILE = (
    "results/response_cache/", "results/translation_memory/", "results/.checkpoints/",
    "results/.ref_logps/", "results/rainbow/archive/",
)


#: A hidden file or directory under results/: the temporary of an atomic write (io.atomic_path's
#: ``.<name>.<random>.tmp``, a model's ``.<name>.tmp``, capability's ``.capability-<model>.*``)
#: that a writer killed mid-write leaves behind. Never an output, never read; reported apart
#: (``stray_temporaries``) rather than as a difference.
TEMPORARY = re.compile(r"(?:^|/)\.(?!snakemake_timestamp$)[^/]+")


def is_volatile(rel: str) -> bool:
    return (rel.startswith(VOLATILE) or rel.endswith(".usage.json") or bool(TEMPORARY.search(rel))
            or rel.rsplit("/", 1)[-1] == ".snakemake_timestamp")


def stray_temporaries(proj: Path) -> list[str]:
    """Temporary files of interrupted atomic writes left under results/ (outside the caches)."""
    out = []
    for p in (proj / "results").rglob("*"):
        rel = p.relative_to(proj).as_posix()
        if TEMPORARY.search(rel) and not (rel + "/").startswith(VOLATILE):
            out.append(rel)
    return sorted(out)


#: The report's table of translation usage shows what the runs so far paid (memory hits,
#: characters sent): run history, which a rerun after a kill changes. Compared without it here;
#: test_kill_anywhere.py::test_report_does_not_depend_on_translation_memory_history pins it.
USAGE_TABLE_MD = re.compile(rb"\*Translation usage per language[^\n]*\n\n(?:\|[^\n]*\n)+")
USAGE_TABLE_HTML = re.compile(rb"<caption>Translation usage per language.*?</table>", re.S)

def normalised(rel: str, data: bytes) -> bytes:
    """``data`` of output ``rel`` for comparison: the report without its translation-usage table."""
    if rel == "results/report/report.md":
        return USAGE_TABLE_MD.sub(b"", data)
    if rel == "results/report/report.html":
        return USAGE_TABLE_HTML.sub(b"", data)
    return data


def results_diff(reference: Path, proj: Path) -> list[str]:
    """Files under results/ that are missing, extra or different (after ``normalised``)."""
    def files(root: Path) -> dict[str, Path]:
        base = root / "results"
        return {p.relative_to(root).as_posix(): p for p in base.rglob("*")
                if p.is_file() and not is_volatile(p.relative_to(root).as_posix())}

    ref, got = files(reference), files(proj)
    problems = [f"missing: {k}" for k in sorted(set(ref) - set(got))]
    problems += [f"extra: {k}" for k in sorted(set(got) - set(ref))]
    for k in sorted(set(ref) & set(got)):
        a, b = ref[k].read_bytes(), got[k].read_bytes()
        if a != b and normalised(k, a) != normalised(k, b):
            problems.append(f"differs: {k}")
    return problems
