"""scripts/bench_train.py runs from a checkout (PYTHONPATH=src, no install needed) and prints
one JSON line with throughput and peak memory. A shrunken `--random-llama-1b` with LoRA, 2 steps."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ..helpers.project import ROOT, env

pytest.importorskip("trl")


def test_bench_train_prints_one_json_line(tmp_path):
    e = {**env(), "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, str(ROOT / "scripts" / "bench_train.py"), "--random-llama-1b", "--hidden-size", "64",
           "--num-layers", "1", "--num-heads", "2", "--intermediate-size", "128", "--vocab-size", "500",
           "--lora", "--lora-r", "4", "--steps", "3", "--warmup", "1", "--batch-size", "2", "--seq-len", "48",
           "--threads", "1", "--json-out", str(tmp_path / "bench.json")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=e, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    result = json.loads(lines[-1])
    assert result == json.loads((tmp_path / "bench.json").read_text())
    assert result["model"] == "random-llama-1b" and result["mode"] == "lora"
    assert result["steps"] == 3 and result["measured_steps"] == 2
    assert result["tokens_per_step"] == 2 * 2 * 48  # every sequence is exactly seq-len tokens
    assert result["tokens_per_s"] > 0 and result["peak_mem_mib"] > 0
    assert 0 < result["trainable_params"] < result["params"]
    assert result["peak_mem_kind"] in ("max_rss", "cuda_max_memory_allocated")
