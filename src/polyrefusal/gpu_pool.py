"""GPUs for jobs that run side by side on one machine: each job gets its own devices.

Snakemake counts a ``gpu`` resource (``--resources gpu=4`` never starts more GPU jobs than
that), but it does not say *which* devices a job may use: two jobs started side by side would
both run on device 0. This wrapper assigns them::

    python -m polyrefusal.gpu_pool --gpus 2 -- polyrefusal train ...
    python -m polyrefusal.gpu_pool --gpus 4 --accelerate -- polyrefusal train ...  # 4 processes
    python -m polyrefusal.gpu_pool --status                                       # who holds what

It takes N devices from a pool, runs the command as a child with ``CUDA_VISIBLE_DEVICES`` set to
them, and gives them back when the command ends, whether it succeeds, fails or is killed.

* The pool: inside a Slurm job, the devices of its allocation (``CUDA_VISIBLE_DEVICES``, shared
  by the jobs of a group job); else ``POLYREFUSAL_GPUS`` (comma-separated ids); else the
  ``CUDA_VISIBLE_DEVICES`` this wrapper was started with; else the devices ``nvidia-smi``
  lists; else none.
* One lock file per device in ``POLYREFUSAL_GPU_POOL_DIR`` (default ``.snakemake/gpu_pool``),
  in a sub-directory per host, and per Slurm job inside an allocation. A device is held by an
  exclusive ``flock`` on its file. The kernel drops a flock when the last process holding it
  exits, however it exits (a failure, SIGKILL, an OOM kill), so a dead holder never blocks a
  device: there is no stale lock to clean up. The wrapper releases the devices as soon as the
  command has exited. The command inherits the locks, so if the wrapper itself is killed, the
  devices stay held until the command has exited too (never handed to a second job while the
  first still runs). The holder's pid, host and command are written into the file for
  ``--status``.
* N devices are taken all at once under a pool-wide lock, or none are (no two jobs each
  holding half of what they need); a job that finds too few free devices waits (``--timeout``).
* ``--gpus 0`` runs the command with no GPU visible (``CUDA_VISIBLE_DEVICES=""``).
* SIGINT/SIGTERM/SIGHUP are passed on to the command; the exit status is the command's
  (128+signal if it was killed by one).
* ``--accelerate`` with N > 1 starts a ``polyrefusal ...`` command as N processes through
  ``accelerate launch`` (multi-GPU DPO), on a free rendezvous port so that two multi-GPU jobs
  on one machine do not collide.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ENV_DEVICES = "POLYREFUSAL_GPUS"
ENV_DIR = "POLYREFUSAL_GPU_POOL_DIR"
ENV_TIMEOUT = "POLYREFUSAL_GPU_TIMEOUT"
DEFAULT_DIR = ".snakemake/gpu_pool"


class PoolError(RuntimeError):
    """The request can never be met (more GPUs than the pool has) or timed out."""


# --------------------------------------------------------------------------- the pool's devices
def _split(value: str) -> list[str]:
    return [d.strip() for d in value.split(",") if d.strip()]


def discover_devices(environ: dict | None = None) -> list[str]:
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if environ.get("SLURM_JOB_ID") and visible:
        # inside a Slurm allocation its devices are the pool, whatever the submitting shell exported
        return _split(visible)
    if environ.get(ENV_DEVICES, "").strip():
        return _split(environ[ENV_DEVICES])
    if visible:
        return _split(environ["CUDA_VISIBLE_DEVICES"])
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=30)
            if out.returncode == 0:
                return _split(out.stdout.replace("\n", ","))
        except (OSError, subprocess.TimeoutExpired):
            pass
    return []


def pool_dir(environ: dict | None = None) -> Path:
    """Per host, and per Slurm job inside an allocation (device ids are the job's own)."""
    environ = os.environ if environ is None else environ
    base = Path(environ.get(ENV_DIR) or DEFAULT_DIR)
    name = socket.gethostname().split(".")[0]
    if environ.get("SLURM_JOB_ID"):
        name += f"-slurm{environ['SLURM_JOB_ID']}"
    return base / name


# --------------------------------------------------------------------------------- the leases
@dataclass
class Lease:
    devices: list[str]
    files: list = field(default_factory=list, repr=False)

    @property
    def fds(self) -> list[int]:
        return [f.fileno() for f in self.files]

    @property
    def visible(self) -> str:
        return ",".join(self.devices)

    def release(self) -> None:
        for f in self.files:
            try:
                fcntl.flock(f, fcntl.LOCK_UN)
            except (OSError, ValueError):
                pass
            f.close()
        self.files = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


class GpuPool:
    def __init__(self, devices: list[str], directory: Path | str):
        self.devices = list(devices)
        self.dir = Path(directory)

    def _path(self, dev: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dev)
        return self.dir / f"gpu{safe}.lock"

    def try_acquire(self, n: int, holder: dict | None = None) -> Lease | None:
        """Take n free devices at once, or none (returns None)."""
        if n <= 0:
            return Lease([])
        if n > len(self.devices):
            raise PoolError(f"{n} GPU(s) requested, but the pool has {len(self.devices)}: "
                            f"{self.devices or 'none'} (set {ENV_DEVICES}=0,1,...)")
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".pool.lock", "a+") as pool_lock:
            fcntl.flock(pool_lock, fcntl.LOCK_EX)  # one chooser at a time; held for microseconds
            taken: list = []
            devices: list[str] = []
            for dev in self.devices:
                f = open(self._path(dev), "a+")
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    f.close()
                    continue
                taken.append(f)
                devices.append(dev)
                if len(taken) == n:
                    break
            if len(taken) < n:
                Lease(devices, taken).release()
                return None
            info = dict(holder or {}, devices=devices, host=socket.gethostname(), since=time.time())
            for f in taken:
                f.seek(0)
                f.truncate()
                f.write(json.dumps(info) + "\n")
                f.flush()
            return Lease(devices, taken)

    def acquire(self, n: int, timeout: float | None = None, poll: float = 0.25, holder: dict | None = None,
                waiting: Callable[[], None] | None = None) -> Lease:
        """``n`` devices, waiting for them; ``waiting`` is called once if they are not free at once."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            lease = self.try_acquire(n, holder)
            if lease is not None:
                return lease
            if waiting is not None:
                waiting()
                waiting = None
            if deadline is not None and time.monotonic() >= deadline:
                raise PoolError(f"timed out after {timeout:.0f}s waiting for {n} free GPU(s) of {self.devices}")
            time.sleep(poll)

    def status(self) -> list[dict]:
        """Per device: free or held, and the last holder recorded in its lock file."""
        rows = []
        for dev in self.devices:
            path = self._path(dev)
            row = {"device": dev, "held": False, "holder": None}
            if path.exists():
                with open(path, "a+") as f:
                    try:
                        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        fcntl.flock(f, fcntl.LOCK_UN)
                    except BlockingIOError:
                        row["held"] = True
                    f.seek(0)
                    text = f.read().strip()
                try:
                    row["holder"] = json.loads(text) if text else None
                except json.JSONDecodeError:
                    row["holder"] = text
            rows.append(row)
        return rows


# ---------------------------------------------------------------------------------- launching
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_command(cmd: list[str], n: int) -> list[str]:
    """`polyrefusal STAGE ARGS` as n processes through `accelerate launch` (n > 1 only)."""
    if n <= 1:
        return list(cmd)
    if Path(cmd[0]).name != "polyrefusal":
        raise PoolError("--accelerate expects a `polyrefusal ...` command")
    return ["accelerate", "launch", "--multi_gpu", "--num_machines", "1", "--num_processes", str(n),
            "--main_process_port", str(free_port()), "-m", "polyrefusal.cli", *cmd[1:]]


def run_command(cmd: list[str], n: int, pool: GpuPool, timeout: float | None = None,
                accelerate: bool = False, quiet: bool = False) -> int:
    """Run cmd on n devices of the pool; returns its exit status (128+signal if killed)."""
    if not cmd:
        raise PoolError("no command given (use: -- COMMAND ...)")
    # The handlers go in before anything is held: a signal that comes while this wrapper waits
    # for devices, or before the command has started, ends the wrapper with that signal's
    # status (the devices released) instead of killing it by default with the command orphaned.
    state: dict = {"child": None}

    def forward(signum, _frame):
        child = state["child"]
        if child is None:
            raise _Stopped(signum)
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        return _run_leased(cmd, n, pool, timeout, accelerate, quiet, state)
    except _Stopped as stop:
        return 128 + stop.signum
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class _Stopped(Exception):
    """A signal came before the command started."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _run_leased(cmd: list[str], n: int, pool: GpuPool, timeout: float | None, accelerate: bool,
                quiet: bool, state: dict) -> int:
    def waiting() -> None:
        print(f"gpu_pool: waiting for {n} free GPU(s) of {pool.devices}", file=sys.stderr, flush=True)

    lease = pool.acquire(n, timeout=timeout, holder={"pid": os.getpid(), "cmd": " ".join(cmd)[:300]},
                         waiting=None if quiet else waiting)
    try:
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=lease.visible)
        env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # ids as nvidia-smi numbers them
        if accelerate:
            cmd = accelerate_command(cmd, n)
        if not quiet:
            print(f"gpu_pool: CUDA_VISIBLE_DEVICES={lease.visible!r} for: {' '.join(cmd)[:200]}",
                  file=sys.stderr, flush=True)
        # The command inherits the locks (pass_fds): the devices stay held while it runs, even if
        # this wrapper is killed.
        child = state["child"] = subprocess.Popen(cmd, env=env, pass_fds=lease.fds)
        while True:
            try:
                rc = child.wait()
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
        return 128 - rc if rc < 0 else rc
    finally:
        lease.release()


# ---------------------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gpus", type=int, default=None, help="devices for the command (0: hide all GPUs)")
    p.add_argument("--devices", default=None, help=f"the pool, comma-separated ids (default: ${ENV_DEVICES}, "
                   "$CUDA_VISIBLE_DEVICES, nvidia-smi)")
    p.add_argument("--dir", default=None, help=f"lock directory (default: ${ENV_DIR} or {DEFAULT_DIR})")
    p.add_argument("--timeout", type=float, default=None,
                   help=f"seconds to wait for free devices (default: ${ENV_TIMEOUT}, or forever)")
    p.add_argument("--accelerate", action="store_true",
                   help="with --gpus N > 1, launch the polyrefusal command as N processes (accelerate)")
    p.add_argument("--status", action="store_true", help="print who holds which device, and exit")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")


def run(args) -> int:
    environ = dict(os.environ)
    devices = _split(args.devices) if args.devices else discover_devices(environ)
    directory = Path(args.dir) if args.dir else pool_dir(environ)
    pool = GpuPool(devices, directory)
    if args.status:
        for row in pool.status():
            holder = row["holder"] or {}
            who = f"pid {holder.get('pid')} ({holder.get('cmd', '')[:60]})" if holder else "-"
            print(f"gpu {row['device']}\t{'held' if row['held'] else 'free'}\t{who if row['held'] else '-'}")
        return 0
    cmd = list(args.command)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if args.gpus is None:
        print("gpu_pool: --gpus N is required", file=sys.stderr)
        return 2
    timeout = args.timeout if args.timeout is not None else (
        float(os.environ[ENV_TIMEOUT]) if os.environ.get(ENV_TIMEOUT) else None)
    try:
        return run_command(cmd, args.gpus, pool, timeout=timeout, accelerate=args.accelerate, quiet=args.quiet)
    except PoolError as exc:
        print(f"gpu_pool: error: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m polyrefusal.gpu_pool",
                                     description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
