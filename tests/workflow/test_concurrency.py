"""Concurrency: two `snakemake` invocations on one directory, and caches written by parallel jobs.

* While one `snakemake` runs, a second one on the same directory refuses with Snakemake's lock
  message, changes nothing, and the first finishes with complete outputs.
* The caches that parallel jobs (`--cores 2`) write at the same time stay consistent: the
  response cache and the translation memory (one append-only shard per process, a compaction
  racing the writers), and the reference log-prob store that training configurations share
  (read, merge, write).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from ..helpers.project import BIN, copy_project, env
from ..helpers.faults import cli, group_commands, kill_group, start_group, unreadable, wait_until

LOCK_MESSAGE = "Directory cannot be locked"


@pytest.mark.slow
def test_second_snakemake_is_refused_while_the_first_runs(tmp_path):
    proj = copy_project(tmp_path / "proj")
    # The first run's job waits until the second run is over (a wrapper first on its PATH holds
    # `polyrefusal` until `release` exists), so the two surely overlap however loaded the machine.
    slow, release = tmp_path / "slowbin", tmp_path / "release"
    slow.mkdir()
    wrapper = slow / "polyrefusal"
    wrapper.write_text(f"#!/bin/sh\nfor i in $(seq 1 1200); do [ -e '{release}' ] && break; sleep 0.1; done\n"
                       f"exec '{BIN / 'polyrefusal'}' \"$@\"\n")
    wrapper.chmod(0o755)
    targets = ["results/corpus/source.parquet"]
    first = start_group(["snakemake", "--cores", "1", *targets], proj, tmp_path / "first.log",
                        extra_env={"PATH": f"{slow}:{env()['PATH']}"})
    try:
        held = wait_until(lambda: any(f"{slow}/polyrefusal corpus" in c or "polyrefusal corpus" in c
                                      for c in group_commands(first.pid)), 120, first)
        assert held, (tmp_path / "first.log").read_text()[-3000:]
        second = cli(["snakemake", "--cores", "1", *targets], proj, timeout=300)
        assert first.poll() is None, "the first run ended before the second was refused"
        release.touch()
        assert first.wait(timeout=600) == 0, (tmp_path / "first.log").read_text()[-3000:]
    finally:
        release.touch()
        if first.poll() is None:
            kill_group(first)
    out = second.stdout + second.stderr
    assert second.returncode != 0 and LOCK_MESSAGE in out, out[-3000:]
    assert "--unlock" in out
    assert unreadable([proj / t for t in targets]) == [] and all((proj / t).exists() for t in targets)
    assert not any((proj / ".snakemake/locks").glob("*.lock"))  # the first released its lock
    dry = cli(["snakemake", "-n", "--cores", "1", *targets], proj)  # and its work is recorded as done
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-2000:]


def _spawn(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]


RESPONSE_WRITER = """
import sys
from polyrefusal.generate.cache import ResponseCache
root, worker, n, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
identity = {"backend": "test", "model": "shared"}
with ResponseCache(root, identity) as cache:
    for start in range(0, n, batch):
        # every worker answers every prompt: keys overlap on purpose, answers agree
        items = [(cache.key([{"role": "user", "content": f"q{i}"}]), f"answer {i} " + "x" * (i % 97))
                 for i in range(start, min(n, start + batch))]
        cache.put_many(items[worker % 2::2] + items[(worker + 1) % 2::2])
        if worker == 0 and start % (4 * batch) == 0:
            ResponseCache(root, identity).compact(min_shards=2)
"""


def test_parallel_writers_keep_the_response_cache_consistent(tmp_path):
    from polyrefusal.generate.cache import ResponseCache

    root, n = tmp_path / "cache", 400
    _finish([_spawn(RESPONSE_WRITER, str(root), str(w), str(n), "16") for w in range(4)])
    cache = ResponseCache(root, {"backend": "test", "model": "shared"})
    keys = {cache.key([{"role": "user", "content": f"q{i}"}]): i for i in range(n)}
    got = cache.get_many(keys)
    assert len(got) == n
    assert all(got[k] == f"answer {i} " + "x" * (i % 97) for k, i in keys.items())
    # every line of every shard is a whole entry; no key has two different answers
    answers: dict[str, set] = {}
    for shard in cache.shards():
        data = shard.read_bytes()
        assert data.endswith(b"\n") or not data, shard
        for line in data.splitlines():
            e = json.loads(line)
            answers.setdefault(e["k"], set()).add(e["a"])
    assert set(answers) == set(keys) and all(len(v) == 1 for v in answers.values())
    assert not list(cache.dir.glob(".*.new"))  # no shard left half-created
    assert cache.compact(min_shards=2) >= 0 and len(ResponseCache(root, cache.identity)) == n


MEMORY_WRITER = """
import sys
from polyrefusal.translate.store import TranslationMemory, memory_key
root, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with TranslationMemory(root, "en", "de") as memory:
    for start in range(0, n, 10):
        texts = [f"text {i}" for i in range(start, min(n, start + 10))]
        memory.add([(memory_key(t, "en", "de", {"backend": "test"}), t, "[DE] " + t) for t in texts], "test")
"""


def test_parallel_writers_keep_the_translation_memory_consistent(tmp_path):
    from polyrefusal.translate.store import TranslationMemory, memory_key

    root, n = tmp_path / "memory", 300
    _finish([_spawn(MEMORY_WRITER, str(root), str(w), str(n)) for w in range(4)])
    memory = TranslationMemory(root, "en", "de")
    assert memory.skipped_lines == 0 and len(memory) == n
    for i in range(n):
        t = f"text {i}"
        assert memory.get(memory_key(t, "en", "de", {"backend": "test"}), t) == "[DE] " + t
    shards = sorted((root / "en-de").glob("*.jsonl"))
    assert len(shards) == 4  # one per writer, none shared
    for shard in shards:
        lines = shard.read_bytes().splitlines()
        assert len(lines) == n and all(json.loads(line)["t"].startswith("[DE] ") for line in lines)


STORE_WRITER = """
import sys
from polyrefusal.training.ref_logps import RefLogpStore
root, worker, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = RefLogpStore(root)
for r in range(rounds):
    # each parallel "configuration" adds its own examples to the store key they share
    store.save("shared", {f"w{worker}-e{r}-{j}": [-1.0 * j, -2.0 * j] for j in range(20)}, {"worker": worker})
"""


def test_parallel_configurations_keep_the_reference_logp_store_complete(tmp_path):
    from polyrefusal.training.ref_logps import RefLogpStore

    root, workers, rounds = tmp_path / "ref_logps", 4, 40
    _finish([_spawn(STORE_WRITER, str(root), str(w), str(rounds)) for w in range(workers)])
    data = json.loads((root / "shared.json").read_text())  # always a whole file (atomic writes)
    entries = RefLogpStore(root).load("shared")
    missing = workers * rounds * 20 - len(entries)
    assert missing == 0, f"{missing} entries lost to concurrent read-merge-write"
    assert data["logps"] == entries


@pytest.mark.slow
def test_caches_written_by_the_parallel_run_are_consistent(pipeline_run):
    """After the `--cores 2` run of the session: every cache shard, memory shard and store file
    is whole, and no cached key has two answers."""
    res = pipeline_run / "results"
    assert unreadable([res / "response_cache", res / "translation_memory"]) == []
    for part in (res / "response_cache").glob("*/*"):
        seen: dict[str, str] = {}
        for shard in part.glob("[!.]*.jsonl"):
            for line in shard.read_bytes().splitlines():
                e = json.loads(line)
                assert seen.setdefault(e["k"], e["a"]) == e["a"], (part, e["k"])
    for f in (res / ".ref_logps").glob("*.json") if (res / ".ref_logps").exists() else []:
        assert isinstance(json.loads(f.read_text())["logps"], dict), f
    assert not list(res.rglob(".*.tmp")) and not list(res.rglob("*.new")), "a temporary file was left behind"
