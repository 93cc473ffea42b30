"""DPO training of one configuration with TRL's DPOTrainer.

Resumable: checkpoints go to a directory keyed by everything that determines the run (base
model, data, hyperparameters), outside the stage's declared output, so Snakemake/DVC do not
delete them when a killed job is rerun; the rerun resumes from the last checkpoint and, on CPU
with the same seed, ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import random
import shutil
from pathlib import Path

from ..errors import UserError
from ..io import read_records, stable_hash, write_json, write_text
from .models import resolve_model

log = logging.getLogger(__name__)

#: DPOConfig fields taken from params.dpo as they are.
DPO_FIELDS = ("beta", "learning_rate", "num_train_epochs", "per_device_train_batch_size",
              "gradient_accumulation_steps", "max_length", "seed", "loss_type", "loss_weights")
CURVE_KEYS = ("loss", "rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected")


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dir_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode())
        h.update(file_digest(f).encode())
    return h.hexdigest()


def load_pairs(files: list[Path], max_per_language: int | None, seed: int) -> tuple[list[dict], dict]:
    """Training pairs from each language file, capped per language by a seeded sample."""
    rows, counts = [], {}
    for f in files:
        recs = read_records(f)
        if max_per_language and len(recs) > max_per_language:
            recs = random.Random(f"{seed}:{f.name}").sample(recs, max_per_language)
        counts[f.name.split(".")[0]] = len(recs)
        rows += recs
    return rows, counts


def train_config(name: str, base_dir: Path, pair_files: list[Path], out_dir: Path, dpo: dict,
                 checkpoint_root: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer
    from transformers.trainer_callback import PrinterCallback
    from trl import DPOConfig, DPOTrainer

    torch.set_num_threads(int(dpo.get("torch_threads", 1)))
    rows, counts = load_pairs(pair_files, dpo.get("max_per_language"), int(dpo["seed"]))
    if not rows:
        raise UserError(f"training configuration {name!r} has no training pairs "
                        f"(files: {', '.join(map(str, pair_files))})", field=f"config_defs.{name}")
    base_path = resolve_model(base_dir)
    data_digest = stable_hash([file_digest(f) for f in pair_files])
    base_digest = dir_digest(base_dir)
    run_key = stable_hash({"base": base_digest, "data": data_digest, "dpo": dpo}, 16)
    ckpt_dir = checkpoint_root / f"{name}-{run_key}"
    # Old checkpoints of this configuration with other inputs are stale: remove them.
    for stale in checkpoint_root.glob(f"{name}-*"):
        if stale != ckpt_dir:
            shutil.rmtree(stale, ignore_errors=True)
    dataset = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])

    cuda = torch.cuda.is_available()
    args = DPOConfig(
        output_dir=str(ckpt_dir),
        **{k: dpo[k] for k in DPO_FIELDS if k in dpo},
        data_seed=int(dpo["seed"]),
        save_strategy="steps", save_steps=int(dpo.get("save_steps", 50)), save_total_limit=2,
        logging_steps=1, report_to=[], log_level="warning", use_cpu=not cuda, bf16=bool(dpo.get("bf16")) and cuda,
        dataloader_num_workers=0, disable_tqdm=True,
        precompute_ref_log_probs=bool(dpo.get("precompute_ref_log_probs", False)),
        model_init_kwargs={"dtype": torch.bfloat16 if (dpo.get("bf16") and cuda) else torch.float32},
    )
    peft_config = None
    if dpo.get("use_lora"):
        from peft import LoraConfig
        lora = dpo.get("lora", {})
        peft_config = LoraConfig(r=lora.get("r", 16), lora_alpha=lora.get("alpha", 32),
                                 lora_dropout=lora.get("dropout", 0.0), task_type="CAUSAL_LM",
                                 target_modules=lora.get("target_modules", "all-linear"))
    tokenizer = AutoTokenizer.from_pretrained(base_path)

    trainer = DPOTrainer(model=base_path, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config)
    # With tqdm off, Trainer prints every log line to stdout; the curves go to train_log.csv.
    trainer.remove_callback(PrinterCallback)
    resume = any(ckpt_dir.glob("checkpoint-*"))
    if resume:
        log.info("train %s: resuming from %s", name, ckpt_dir)
    result = trainer.train(resume_from_checkpoint=True if resume else None)

    model = trainer.model
    if peft_config is not None and dpo.get("merge_lora", True):
        model = model.merge_and_unload()
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)

    curve = [{"step": h["step"], **{k: h[k] for k in CURVE_KEYS if k in h}}
             for h in trainer.state.log_history if "loss" in h]
    with open(tmp / "train_log.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["step", *CURVE_KEYS], extrasaction="ignore")
        w.writeheader()
        w.writerows(curve)
    last = curve[-1] if curve else {}
    metrics = {"config": name, "examples": len(rows), "examples_per_language": counts,
               "steps": trainer.state.global_step, "train_loss": result.training_loss,
               "final_loss": last.get("loss"), "final_reward_margin": last.get("rewards/margins"),
               "final_reward_accuracy": last.get("rewards/accuracies"), "resumed": resume}
    write_json(tmp / "metrics.json", metrics)
    card = {"base_model": base_path, "base_digest": base_digest, "data_digest": data_digest,
            "data_files": [str(f) for f in pair_files], "configuration": name,
            "hyperparameters": dpo, "lora": peft_config is not None, "metrics": metrics}
    write_text(tmp / "README.md", model_card(card))
    write_json(tmp / "model_card.json", card)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # the final model supersedes the checkpoints
    return metrics


def model_card(card: dict) -> str:
    m = card["metrics"]
    langs = ", ".join(f"{k} ({v})" for k, v in m["examples_per_language"].items())
    return f"""---
base_model: {card['base_model']}
library_name: transformers
tags: [dpo, trl, polyrefusal, safety]
---
# polyrefusal DPO checkpoint: `{card['configuration']}`

DPO ({'LoRA, merged' if card['lora'] else 'full'}) of `{card['base_model']}` on refusal preference
pairs of the training configuration `{card['configuration']}`.

- Languages (pairs used): {langs}
- Base model digest: `{card['base_digest'][:16]}`; data digest: `{card['data_digest'][:16]}`
- Steps: {m['steps']}; final loss {m['final_loss']}; reward margin {m['final_reward_margin']};
  reward accuracy {m['final_reward_accuracy']}

## Hyperparameters
```json
{json.dumps(card['hyperparameters'], indent=2, sort_keys=True)}
```

Generated by polyrefusal. Evaluation scores live in the pipeline's report.
"""
