"""The project as tests see it: where the checkout is, a clone-like copy of it in a temporary
directory, and the CLI run with the venv's tools on PATH and the Hugging Face hub offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: Test inputs checked into the repository (labelled judge sets, the refusal eval set).
DATA = ROOT / "tests" / "data"

#: What a pipeline run writes into the checkout itself, outside the directories git ignores:
#: DVC's record of the run. dvc.lock is a file to commit (DVC's convention: it pins what the
#: params and code produced, for `dvc pull` / `dvc checkout`), so it is not ignored; but a
#: test project never takes it from the checkout, whether committed or left by `make run`:
#: every test that needs one makes its own, so the suite does not depend on what ran here.
RUN_RECORDS = frozenset({"dvc.lock"})


def project_files() -> list[str]:
    """The project's files as a fresh clone has them: tracked and untracked-not-ignored files
    (so a new source file counts before it is committed), without RUN_RECORDS."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split("\0")
    return [f for f in dict.fromkeys(out) if f and f not in RUN_RECORDS
            and ((ROOT / f).exists() or (ROOT / f).is_symlink())]


def copy_project(dest: Path, preset: str | None = "ci") -> Path:
    """A fresh clone-like copy (``project_files``), in a new git repository."""
    for rel in project_files():
        src, dst = ROOT / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_file():
            shutil.copy2(src, dst)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    if preset:
        run_cli(["polyrefusal", "preset", preset], cwd=dest)
    return dest


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e.setdefault("TOKENIZERS_PARALLELISM", "false")
    e["HF_HUB_OFFLINE"] = "1"
    e["TRANSFORMERS_OFFLINE"] = "1"
    return e


def run_cli(cmd: list[str], cwd: Path, check: bool = True, timeout: int = 1800) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc
