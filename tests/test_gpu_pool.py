"""GPU assignment for jobs side by side on one machine (polyrefusal.gpu_pool), without GPUs:
the pool is simulated with device ids given explicitly; jobs record the CUDA_VISIBLE_DEVICES
they were given and when they ran, and no two jobs that overlapped in time may share a device."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from polyrefusal.gpu_pool import GpuPool, PoolError, accelerate_command, discover_devices, pool_dir

from .helpers.project import env

# A job: say it is running (<name>.ready), record the devices it was given and its run
# interval, sleep, exit with a given status.
JOB = textwrap.dedent("""
    import json, os, sys, time
    out, seconds, status = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    start = time.time()
    open(out[:-len(".json")] + ".ready", "w").close()
    time.sleep(seconds)
    with open(out, "w") as fh:
        json.dump({"devices": os.environ["CUDA_VISIBLE_DEVICES"], "start": start, "end": time.time()}, fh)
    sys.exit(status)
""")


def wrapper(pool_dir: Path, gpus: int, *cmd: str, devices: str = "0,1", extra: tuple = ()) -> list[str]:
    return [sys.executable, "-m", "polyrefusal.gpu_pool", "--devices", devices, "--dir", str(pool_dir),
            "--gpus", str(gpus), *extra, "--", *cmd]


def job(tmp: Path, name: str, seconds: float = 0.6, status: int = 0) -> list[str]:
    script = tmp / "job.py"
    if not script.exists():
        script.write_text(JOB)
    return [sys.executable, str(script), str(tmp / f"{name}.json"), str(seconds), str(status)]


def records(tmp: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(tmp.glob("*.json"))]


def assert_no_shared_device(recs: list[dict]) -> None:
    for i, a in enumerate(recs):
        for b in recs[i + 1:]:
            overlap = a["start"] < b["end"] and b["start"] < a["end"]
            shared = set(a["devices"].split(",")) & set(b["devices"].split(",")) - {""}
            assert not (overlap and shared), f"jobs ran at the same time on {shared}: {a} {b}"


def wait_held(pool: GpuPool, n: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while sum(r["held"] for r in pool.status()) < n:
        assert time.monotonic() < deadline, pool.status()
        time.sleep(0.05)


def test_concurrent_jobs_get_distinct_devices(tmp_path):
    locks, out = tmp_path / "locks", tmp_path / "out"
    out.mkdir()
    procs = [subprocess.Popen(wrapper(locks, 1, *job(out, f"j{i}")), env=env()) for i in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    recs = records(out)
    assert len(recs) == 4
    assert {r["devices"] for r in recs} == {"0", "1"}
    assert_no_shared_device(recs)
    # Two devices, four jobs of 0.6 s: they ran two at a time, not one after the other.
    span = max(r["end"] for r in recs) - min(r["start"] for r in recs)
    assert span < 4 * 0.6, span


def test_multi_gpu_job_waits_for_all_its_devices(tmp_path):
    locks, out = tmp_path / "locks", tmp_path / "out"
    out.mkdir()
    one = subprocess.Popen(wrapper(locks, 1, *job(out, "a_one", seconds=1.0)), env=env())
    wait_held(GpuPool(["0", "1"], locks), 1)
    two = subprocess.Popen(wrapper(locks, 2, *job(out, "b_two", seconds=0.2)), env=env())
    assert one.wait(timeout=60) == 0 and two.wait(timeout=60) == 0
    a, b = records(out)
    assert sorted(b["devices"].split(",")) == ["0", "1"]
    assert b["start"] >= a["end"] - 0.05, "the 2-GPU job started while a device was still held"
    assert_no_shared_device([a, b])


def test_failing_job_releases_its_devices_and_keeps_its_status(tmp_path):
    locks, out = tmp_path / "locks", tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(wrapper(locks, 2, *job(out, "fail", seconds=0.1, status=3)), env=env())
    assert proc.returncode == 3
    pool = GpuPool(["0", "1"], locks)
    assert not any(r["held"] for r in pool.status())
    with pool.acquire(2, timeout=0.5) as lease:  # free at once
        assert lease.devices == ["0", "1"]


def test_killed_holder_leaves_no_stale_lock(tmp_path):
    locks, out = tmp_path / "locks", tmp_path / "out"
    out.mkdir()
    pool = GpuPool(["0", "1"], locks)
    proc = subprocess.Popen(wrapper(locks, 2, *job(out, "killed", seconds=60)), env=env(), start_new_session=True)
    wait_held(pool, 2)
    holders = {r["holder"]["pid"] for r in pool.status()}
    assert holders == {proc.pid}
    assert pool.try_acquire(1) is None
    os.killpg(proc.pid, signal.SIGKILL)  # the wrapper and its command, as an OOM killer or scancel would
    proc.wait(timeout=10)
    with pool.acquire(2, timeout=5) as lease:  # the dead holder's lock is gone with it
        assert lease.devices == ["0", "1"]


def test_devices_stay_held_while_the_command_outlives_a_killed_wrapper(tmp_path):
    locks, out = tmp_path / "locks", tmp_path / "out"
    out.mkdir()
    pool = GpuPool(["0", "1"], locks)
    proc = subprocess.Popen(wrapper(locks, 1, *job(out, "orphan", seconds=60)), env=env(), start_new_session=True)
    wait_held(pool, 1)
    os.kill(proc.pid, signal.SIGKILL)  # only the wrapper
    proc.wait(timeout=10)
    time.sleep(0.2)
    assert sum(r["held"] for r in pool.status()) == 1, "device handed back while its command still runs"
    os.killpg(proc.pid, signal.SIGKILL)  # now the command too
    deadline = time.monotonic() + 10
    while any(r["held"] for r in pool.status()):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def wait_ready(out: Path, name: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until the job says it runs (its readiness file): a signal sent then reaches the job,
    however loaded the machine is."""
    deadline = time.monotonic() + timeout
    while not (out / f"{name}.ready").exists():
        assert proc.poll() is None, f"the wrapper ended first ({proc.returncode})"
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.02)


def test_sigterm_is_forwarded_and_devices_released(tmp_path):
    locks, out = tmp_path / "locks", tmp_path / "out"
    out.mkdir()
    pool = GpuPool(["0", "1"], locks)
    proc = subprocess.Popen(wrapper(locks, 2, *job(out, "term", seconds=60)), env=env())
    wait_ready(out, "term", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 128 + signal.SIGTERM
    assert not any(r["held"] for r in pool.status())


def test_sigterm_before_the_command_starts_releases_the_devices(tmp_path):
    """A signal in the window after the devices are taken and before the command runs (what
    made the test above depend on timing) ends the wrapper with the signal's status, the devices
    free: the wrapper is stopped while it waits for a device that another job holds."""
    locks, out = tmp_path / "locks", tmp_path / "out"
    out.mkdir()
    pool = GpuPool(["0", "1"], locks)
    with pool.acquire(2, timeout=5):  # held here: the wrapper waits for them
        proc = subprocess.Popen(wrapper(locks, 1, *job(out, "never", seconds=60)), env=env(),
                                stderr=subprocess.PIPE, text=True)
        # its readiness signal: the line it writes when it starts to wait
        assert "waiting for 1 free GPU" in proc.stderr.readline()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert not (out / "never.ready").exists()
    assert not any(r["held"] for r in pool.status())


def test_zero_gpus_hides_all_and_too_many_fails_fast(tmp_path):
    locks, out = tmp_path / "locks", tmp_path / "out"
    out.mkdir()
    assert subprocess.run(wrapper(locks, 0, *job(out, "cpu", seconds=0)), env=env()).returncode == 0
    assert records(out)[0]["devices"] == ""
    proc = subprocess.run(wrapper(locks, 3, *job(out, "big", seconds=0)), env=env(), capture_output=True, text=True)
    assert proc.returncode == 2 and "the pool has 2" in proc.stderr
    with pytest.raises(PoolError, match="timed out"):
        with GpuPool(["0"], locks).acquire(1):
            GpuPool(["0"], locks).acquire(1, timeout=0.3)


def test_pool_discovery_and_location(monkeypatch):
    assert discover_devices({"POLYREFUSAL_GPUS": "2, 3", "CUDA_VISIBLE_DEVICES": "0"}) == ["2", "3"]
    assert discover_devices({"CUDA_VISIBLE_DEVICES": "4,5"}) == ["4", "5"]
    # inside a Slurm job, its allocation wins over a pool exported from the submitting shell
    assert discover_devices({"POLYREFUSAL_GPUS": "0,1,2,3", "CUDA_VISIBLE_DEVICES": "0", "SLURM_JOB_ID": "7"}) == ["0"]
    monkeypatch.setenv("PATH", "/nonexistent")  # no nvidia-smi
    assert discover_devices({}) == []
    assert pool_dir({"POLYREFUSAL_GPU_POOL_DIR": "/x"}).parent == Path("/x")
    assert pool_dir({"POLYREFUSAL_GPU_POOL_DIR": "/x", "SLURM_JOB_ID": "42"}).name.endswith("-slurm42")


def test_accelerate_launch_for_multi_gpu_training():
    cmd = ["polyrefusal", "train", "--config", "balanced", "out"]
    assert accelerate_command(cmd, 1) == cmd
    launched = accelerate_command(cmd, 4)
    assert launched[:2] == ["accelerate", "launch"]
    assert launched[launched.index("--num_processes") + 1] == "4"
    assert launched[-6:] == ["-m", "polyrefusal.cli", "train", "--config", "balanced", "out"]
    assert "--main_process_port" in launched
    with pytest.raises(PoolError):
        accelerate_command(["python", "x.py"], 2)


def test_snakemake_gpu_jobs_side_by_side(tmp_path):
    """Snakemake limits the count (--resources gpu=2); the wrapper picks the devices."""
    out = tmp_path / "out"
    out.mkdir()
    job(out, "x")  # writes job.py
    (out / "x.json").unlink(missing_ok=True)
    (tmp_path / "Snakefile").write_text(textwrap.dedent(f"""
        rule all:
            input: expand("{out}/j{{i}}.json", i=range(6))
        rule gpu_job:
            output: "{out}/j{{i}}.json"
            params: gpus=1
            resources: gpu=1
            shell: "{sys.executable} -m polyrefusal.gpu_pool -q --gpus {{params.gpus}} -- "
                   "{sys.executable} {out}/job.py {{output}} 0.5 0"
    """))
    e = env()
    e.update(POLYREFUSAL_GPUS="0,1", POLYREFUSAL_GPU_POOL_DIR=str(tmp_path / "locks"))
    proc = subprocess.run(["snakemake", "--cores", "4", "--resources", "gpu=2", "--workflow-profile", "none"],
                          cwd=tmp_path, env=e, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = records(out)
    assert len(recs) == 6 and {r["devices"] for r in recs} == {"0", "1"}
    assert_no_shared_device(recs)
