#!/usr/bin/env python
"""Benchmark DPO training: training tokens per second and peak memory.

    PYTHONPATH=src python scripts/bench_train.py                       # tiny model, CPU
    PYTHONPATH=src python scripts/bench_train.py --random-llama-1b --bf16 --steps 20 --batch-size 8 --seq-len 512
    PYTHONPATH=src python scripts/bench_train.py --random-llama-1b --bf16 --lora ...

The model is randomly initialised (throughput does not depend on the weights): the tiny model of
params.yaml's ``base_model.embedded`` shape, or with ``--random-llama-1b`` a Llama-architecture
model of about 1.1B parameters (hidden 2048, 16 layers, 32 heads, MLP 8192; vocabulary of a small
BPE tokenizer built here from the seed set, so no download). Training is TRL's DPOTrainer, as in
the pipeline (policy + frozen reference, or a LoRA adapter whose disabled state is the
reference). The data are synthetic preference pairs whose prompt+answer sequences are all
exactly ``--seq-len`` tokens, so every step processes 2 x batch x seq-len tokens (chosen and
rejected).

Reported (one JSON line at the end): ``tokens_per_s`` = non-padding tokens of policy forward and
backward passes per second over the measured steps (the first ``--warmup`` steps excluded), the
mean step time, and peak memory: on GPU ``torch.cuda.max_memory_allocated``, on CPU the
process's peak resident set (``ru_maxrss``).

Needs torch, transformers, trl, datasets (and peft for --lora), plus this repository's
``src`` on PYTHONPATH for the seed set and tokenizer builder (only PyYAML beyond those); not
the project's other dependencies.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    import polyrefusal  # noqa: F401
except ImportError:  # run from a checkout without PYTHONPATH=src
    sys.path.insert(0, str(ROOT / "src"))

#: ~1.1B parameters (with a vocabulary of a few thousand tokens).
LLAMA_1B = dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=32,
                intermediate_size=8192)
TINY_DEFAULT = dict(hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--random-llama-1b", action="store_true", help="~1.1B Llama (random init) instead of the tiny model")
    p.add_argument("--lora", action="store_true", help="train a LoRA adapter (r 16, all linear layers)")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--bf16", action="store_true", help="bf16 weights and autocast (GPU only; ignored on CPU)")
    p.add_argument("--steps", type=int, default=10, help="optimizer steps (including warm-up)")
    p.add_argument("--warmup", type=int, default=2, help="first steps left out of the timing")
    p.add_argument("--batch-size", type=int, default=8, help="preference pairs per step")
    p.add_argument("--seq-len", type=int, default=128, help="tokens per prompt+answer sequence")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--precompute-ref", action="store_true", help="precompute reference log-probs before training")
    p.add_argument("--optim", default="adamw_torch")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--vocab-size", type=int, default=None, help="BPE vocabulary (tiny: 2000, 1b: 8000)")
    p.add_argument("--hidden-size", type=int)
    p.add_argument("--num-layers", type=int)
    p.add_argument("--num-heads", type=int)
    p.add_argument("--intermediate-size", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json-out", help="also write the result JSON to this file")
    return p.parse_args(argv)


def model_shape(args) -> dict:
    if args.random_llama_1b:
        shape = dict(LLAMA_1B)
    else:
        shape = dict(TINY_DEFAULT)
        try:  # the pipeline's own tiny model shape
            import yaml
            emb = yaml.safe_load((ROOT / "params.yaml").read_text())["base_model"]["embedded"]
            shape.update({k: int(emb[k]) for k in TINY_DEFAULT if k in emb})
        except Exception:
            pass
        shape["num_key_value_heads"] = shape["num_attention_heads"]
    for arg, key in (("hidden_size", "hidden_size"), ("num_layers", "num_hidden_layers"),
                     ("num_heads", "num_attention_heads"), ("intermediate_size", "intermediate_size")):
        if getattr(args, arg):
            shape[key] = getattr(args, arg)
    if args.num_heads:
        shape["num_key_value_heads"] = args.num_heads
    return shape


def build(args, device: str):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from polyrefusal.training.embedded import build_tokenizer, seed_examples

    langs = ["en", "de", "fr", "es", "it", "pt", "pl", "cs", "sk", "sl", "lt", "lv"]
    texts, _ = seed_examples(langs)
    vocab = args.vocab_size or (8000 if args.random_llama_1b else 2000)
    tok = build_tokenizer(texts, vocab)
    shape = model_shape(args)
    torch.manual_seed(args.seed)
    config = LlamaConfig(vocab_size=len(tok), max_position_embeddings=max(256, args.seq_len),
                         tie_word_embeddings=not args.random_llama_1b, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **shape)
    dtype = torch.bfloat16 if (args.bf16 and device == "cuda") else torch.float32
    with torch.device("cuda" if device == "cuda" else "cpu"):
        model = LlamaForCausalLM(config).to(dtype)
    return tok, model, texts, dtype


def synthetic_pairs(tok, texts: list[str], n: int, seq_len: int) -> list[dict]:
    """``n`` conversational pairs; prompt ~ seq_len/2 tokens, answers long enough that every
    prompt+answer is truncated to exactly ``seq_len`` tokens."""
    words = " ".join(sorted(set(texts))).split()
    per_word = max(0.5, len(tok(" ".join(words[:2000]), add_special_tokens=False)["input_ids"]) / min(len(words), 2000))
    n_prompt = max(1, int(seq_len * 0.45 / per_word))
    n_answer = max(2, int(seq_len * 0.8 / per_word))

    def take(i, k):
        start = (i * 7919) % len(words)
        out = (words[start:] + words)[:k]
        while len(out) < k:
            out += words[: k - len(out)]
        return " ".join(out)

    return [{"prompt": [{"role": "user", "content": take(3 * i, n_prompt)}],
             "chosen": [{"role": "assistant", "content": take(3 * i + 1, n_answer)}],
             "rejected": [{"role": "assistant", "content": take(3 * i + 2, n_answer)}]} for i in range(n)]


def main(argv=None) -> dict:
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    import transformers
    import trl
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer

    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    tok, model, texts, dtype = build(args, device)
    n_params = sum(p.numel() for p in model.parameters())
    rows = synthetic_pairs(tok, texts, args.steps * args.batch_size, args.seq_len)
    dataset = Dataset.from_list(rows)
    ref_model = None if args.lora else copy.deepcopy(model).eval()

    peft_config = None
    if args.lora:
        from peft import LoraConfig
        peft_config = LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=0.0,
                                 target_modules="all-linear", task_type="CAUSAL_LM")

    step_times: list[float] = []
    token_counts: list[int] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            if device == "cuda":
                torch.cuda.synchronize()
            self.t0 = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            if device == "cuda":
                torch.cuda.synchronize()
            step_times.append(time.perf_counter() - self.t0)

    with tempfile.TemporaryDirectory(prefix="bench_train_") as out:
        cfg = DPOConfig(
            output_dir=out, max_steps=args.steps, num_train_epochs=1, per_device_train_batch_size=args.batch_size,
            learning_rate=1e-5, beta=0.1, max_length=args.seq_len, seed=args.seed, data_seed=args.seed,
            logging_steps=1, save_strategy="no", report_to=[], disable_tqdm=True, log_level="warning",
            bf16=bool(args.bf16 and device == "cuda"), use_cpu=device == "cpu", dataloader_num_workers=0,
            precompute_ref_log_probs=args.precompute_ref, optim=args.optim,
            **_checkpointing(DPOConfig, args.gradient_checkpointing))
        trainer = DPOTrainer(model=model, ref_model=ref_model, args=cfg, train_dataset=dataset,
                             processing_class=tok, peft_config=peft_config, callbacks=[Timer()])
        from transformers.trainer_callback import PrinterCallback
        trainer.remove_callback(PrinterCallback)  # no per-step log lines: one JSON line at the end
        collate = trainer.data_collator

        def counting_collator(examples):
            batch = collate(examples)
            token_counts.append(int(batch["attention_mask"].sum()))
            return batch

        trainer.data_collator = counting_collator
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0

    w = min(args.warmup, max(0, len(step_times) - 1))
    measured = step_times[w:]
    tokens = token_counts[w:w + len(measured)] if len(token_counts) >= len(step_times) else []
    if len(tokens) != len(measured):  # fall back to the exact shape (every sequence is seq_len)
        tokens = [2 * args.batch_size * args.seq_len] * len(measured)
    if device == "cuda":
        peak_mib, peak_kind = torch.cuda.max_memory_allocated() / 2**20, "cuda_max_memory_allocated"
        device_name = torch.cuda.get_device_name(0)
    else:
        peak_mib, peak_kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "max_rss"
        device_name = f"cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"
    result = {
        "model": "random-llama-1b" if args.random_llama_1b else "tiny", "params": n_params,
        "trainable_params": trainable, "vocab": len(tok), "device": device_name,
        "dtype": str(dtype).replace("torch.", ""),
        "mode": "lora" if args.lora else "full", "batch_size": args.batch_size, "seq_len": args.seq_len,
        "steps": len(step_times), "measured_steps": len(measured),
        "tokens_per_step": round(sum(tokens) / max(len(tokens), 1)),
        "tokens_per_s": round(sum(tokens) / sum(measured), 1) if measured else None,
        "step_time_s": round(sum(measured) / len(measured), 4) if measured else None,
        "train_wall_s": round(wall, 2), "peak_mem_mib": round(peak_mib, 1), "peak_mem_kind": peak_kind,
        "gradient_checkpointing": args.gradient_checkpointing, "precompute_ref": args.precompute_ref,
        "torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
    }
    line = json.dumps(result, sort_keys=True)
    if args.json_out:
        Path(args.json_out).write_text(line + "\n")
    print(line, flush=True)
    return result


def _checkpointing(config_cls, on: bool) -> dict:
    import dataclasses
    names = {f.name for f in dataclasses.fields(config_cls)}
    return {"activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing": on}


if __name__ == "__main__":
    main()
