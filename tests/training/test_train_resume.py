"""A DPO job killed (SIGKILL) after its first checkpoint resumes on the next run and ends with
exactly the weights of an uninterrupted run (CPU, same seed), through the `polyrefusal train`
command. Tiny untrained model, 6 steps: well under a minute on one CPU thread."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ..helpers.models import tiny_model_dir
from ..helpers.project import ROOT, env

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

DPO = dict(beta=0.1, loss_type=["sigmoid", "sft"], loss_weights=[1.0, 1.0], learning_rate=2.0e-3,
           num_train_epochs=2, per_device_train_batch_size=8, max_length=96, seed=0,
           max_per_language=24, save_steps=2, torch_threads=1)

# Runs the CLI in a child process; with SLOW set, every optimizer step first sleeps, so the
# parent can kill the job mid-training (the sleep changes no number).
CHILD = """
import os, sys, time
if os.environ.get("SLOW"):
    import transformers
    step = transformers.Trainer.training_step
    def slow(self, *a, **k):
        time.sleep(float(os.environ["SLOW"]))
        return step(self, *a, **k)
    transformers.Trainer.training_step = slow
from polyrefusal.cli import main
sys.exit(main(sys.argv[1:]))
"""


def make_tiny(root: Path) -> tuple[Path, Path, Path]:
    """An untrained tiny Llama + tokenizer, English training pairs, and a params file."""
    from polyrefusal import seed
    from polyrefusal.stages.pairs import to_trl

    base = tiny_model_dir(root / "base", vocab_size=300, max_positions=256)
    pairs = root / "pairs"
    pairs.mkdir()
    with open(pairs / "en.train.jsonl", "w", encoding="utf-8") as fh:
        for r in seed.source_records("en"):
            if r["harmful"]:
                fh.write(json.dumps(to_trl(r)) + "\n")
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params.update(languages=["en"], train_configs=["tiny"], config_defs={"tiny": ["en"]}, dpo=DPO)
    params_file = root / "params.yaml"
    params_file.write_text(yaml.safe_dump(params), encoding="utf-8")
    return base, pairs, params_file


def weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file
    return load_file(model_dir / "model.safetensors")


def train_cmd(root: Path, base: Path, pairs: Path, params: Path, out: Path, ckpt: Path) -> list[str]:
    return [sys.executable, "-c", CHILD, "train", "--config", "tiny", "--params", str(params),
            "--base", str(base), "--pairs-dir", str(pairs), "--checkpoints", str(ckpt), str(out)]


@pytest.mark.slow
def test_killed_training_resumes_to_identical_weights(tmp_path):
    from polyrefusal.training.dpo import complete_checkpoints, resolve_config, train_config

    base, pairs, params_file = make_tiny(tmp_path)
    params = yaml.safe_load(params_file.read_text())

    # 1. Uninterrupted reference run (in this process).
    ref_out = tmp_path / "models" / "ref"
    ref = train_config("tiny", base, [pairs / "en.train.jsonl"], ref_out, DPO, tmp_path / "ckpt-ref",
                       spec=resolve_config(params, "tiny"))
    assert ref["steps"] == 6 and ref["resumed_from_step"] is None
    assert not (tmp_path / "ckpt-ref").exists() or not any((tmp_path / "ckpt-ref").iterdir())

    # 2. The same training as a `polyrefusal train` job, SIGKILLed once a checkpoint is complete.
    out, ckpt = tmp_path / "models" / "tiny", tmp_path / "ckpt"
    cmd = train_cmd(tmp_path, base, pairs, params_file, out, ckpt)
    log = open(tmp_path / "killed.log", "wb")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env={**env(), "SLOW": "0.6"},
                            stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            runs = list(ckpt.glob("tiny-*")) if ckpt.exists() else []
            if runs and complete_checkpoints(runs[0]):
                break
            time.sleep(0.05)
        assert proc.poll() is None, ("job ended before it could be killed:\n"
                                     + (tmp_path / "killed.log").read_text(errors="replace")[-2000:])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    # Killed mid-training: the output does not exist (nor anything that looks like it).
    assert not out.exists() and not (out.parent / ".tiny.tmp").exists()
    killed_at = [int(p.name.split("-")[1]) for p in complete_checkpoints(next(ckpt.glob("tiny-*")))]
    assert killed_at and max(killed_at) < 6

    # A job killed while saving leaves an incomplete checkpoint: it must be ignored.
    (next(ckpt.glob("tiny-*")) / "checkpoint-5").mkdir()

    # 3. The next run resumes from the last complete checkpoint and finishes.
    done = subprocess.run(cmd, cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"'resumed_from_step': {max(killed_at)}" in done.stderr  # in the log, not the model
    assert "resumed_from_step" not in metrics and metrics["steps"] == 6

    # 4. Same final weights, tensor for tensor, bit for bit; same curve and summary metrics.
    a, b = weights(ref_out), weights(out)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert (ref_out / "train_log.csv").read_text() == (out / "train_log.csv").read_text()
    for key in ("train_loss", "final_loss", "final_reward_margin", "final_reward_accuracy", "examples"):
        assert metrics[key] == ref[key], key
    assert (out / "metrics.json").read_bytes() == (ref_out / "metrics.json").read_bytes()
    # The finished run removes its checkpoints; the model directory carries a model card.
    assert not any(ckpt.glob("tiny-*"))
    card = json.loads((out / "model_card.json").read_text())
    assert card["configuration"] == "tiny" and card["format"] == "full"
    assert set(card["data_files"]) == {str(pairs / "en.train.jsonl")}
    assert "polyrefusal DPO checkpoint" in (out / "README.md").read_text()


def test_incomplete_checkpoints_are_skipped(tmp_path):
    from polyrefusal.training.dpo import last_checkpoint

    for step, complete in ((2, True), (4, True), (6, False)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        if complete:
            (d / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-4" / "trainer_state.json").write_text("{trunc")  # killed mid-write
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2"]
    assert last_checkpoint(tmp_path / "missing") is None


def test_the_base_digest_is_the_same_whichever_tool_made_the_base(tmp_path):
    """The base model's digest (it keys the checkpoints and the stored reference log-probs, and
    the model card records it) reads the directory's content: the .snakemake_timestamp that
    Snakemake leaves in a directory output (and `dvc repro` does not) and the manifest do not
    count, so a store filled under one tool serves the other."""
    from polyrefusal.io import atomic_dir
    from polyrefusal.training.dpo import dir_digest

    by_dvc, by_snakemake = tmp_path / "dvc" / "base", tmp_path / "snakemake" / "base"
    for out in (by_dvc, by_snakemake):
        with atomic_dir(out) as tmp:
            (tmp / "config.json").write_text("{}")
            (tmp / "model.safetensors").write_bytes(b"weights")
    (by_snakemake / ".snakemake_timestamp").touch()
    assert dir_digest(by_dvc) == dir_digest(by_snakemake)
    (by_dvc / "model.safetensors").write_bytes(b"other weights")
    assert dir_digest(by_dvc) != dir_digest(by_snakemake)
