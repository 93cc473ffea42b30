"""DPO training of one configuration with TRL's DPOTrainer.

What a configuration trains on (:func:`resolve_config`): a ``config_defs`` entry is ``all``, a
list of languages, or a mapping ``{langs: all | [..], groups: [..], strategies: [..],
include_general: bool, max_per_language: n}``. ``groups``/``strategies`` select the
demographic pairs (``target_group`` set) whose target group and attack strategy are listed;
the held-out groups and strategies are the zero-shot evaluation (:func:`zero_shot_cell`).

Resumable: checkpoints (every ``dpo.save_steps``) go to a directory keyed by everything that
determines the run (base model, data, selection, hyperparameters), outside the stage's declared
output, so Snakemake/DVC do not delete them when a killed job is rerun. The rerun resumes from
the last *complete* checkpoint (Trainer writes ``trainer_state.json`` last) and, on CPU with the
same seed, ends with byte-identical weights to an uninterrupted run: the data order comes from
``data_seed``, dropout is off (``disable_dropout``), and Trainer restores the optimizer,
scheduler and RNG states from the checkpoint. The final model is written to a hidden temporary
directory and renamed onto the output, so the output never looks complete while training runs.

Settings are read through ``params.with_defaults`` (the schema holds every default); the
DPOConfig arguments are built in one place, ``dpo_arguments``, which params validation also
builds (``params.check_dpo``), so TRL refuses a bad setting before any job runs.

Options (``params.dpo``): LoRA (``use_lora``, ``lora: {r, alpha, dropout, target_modules}``,
``merge_lora``: a merged full model, or an adapter directory loadable with
``peft.AutoPeftModelForCausalLM``); ``precompute_ref_log_probs`` (reference log-probs computed
once per language file and reused across configurations, see ``ref_logps.py``); ``bf16`` (on
GPU); ``gradient_checkpointing``; ``trl_args`` (any other DPOConfig field, passed as is).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import random
import shutil
from collections import Counter
from pathlib import Path

from ..errors import UserError
from ..io import content_files, read_records, stable_hash, write_dir_manifest, write_json, write_text
from ..params import CONFIG_DEF, config_definition, config_languages, schema_problem, with_defaults
from .models import resolve

log = logging.getLogger(__name__)

#: DPOConfig fields taken from params.dpo as they are (when present; absent: TRL's default).
DPO_FIELDS = ("beta", "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
              "gradient_accumulation_steps", "max_length", "seed", "loss_type", "loss_weights",
              "lr_scheduler_type", "warmup_steps", "weight_decay", "max_grad_norm",
              "optim", "label_smoothing", "truncation_mode", "precompute_ref_batch_size", "ld_alpha")
#: params.dpo keys that change how a run is executed or saved, not what it trains: changing them
#: keeps its checkpoints resumable.
EXECUTION_KEYS = ("torch_threads", "save_steps", "save_total_limit", "logging_steps", "merge_lora")
#: train_log.csv columns: Trainer/TRL log key -> CSV column (names without "/" for DVC plots).
CURVE_COLUMNS = {"step": "step", "epoch": "epoch", "loss": "loss", "rewards/margins": "reward_margin",
                 "rewards/accuracies": "reward_accuracy", "rewards/chosen": "reward_chosen",
                 "rewards/rejected": "reward_rejected", "logps/chosen": "logps_chosen",
                 "logps/rejected": "logps_rejected", "learning_rate": "learning_rate",
                 "grad_norm": "grad_norm"}
TRAIN_STATE = "trainer_state.json"  # Trainer writes it last into a checkpoint


# --------------------------------------------------------------------------- configurations

def resolve_config(params: dict, name: str) -> dict:
    """The normalised definition of a training configuration.

    ``{"langs": [...], "groups": [...] | None, "strategies": [...] | None,
    "include_general": bool, "max_per_language": int | None (None: params.dpo's)}``.
    Languages are the definition intersected with ``params.languages``, in that order.
    """
    spec = config_definition(params, name)
    if spec is None:
        raise UserError(f"unknown training configuration {name!r}; define it under config_defs",
                        field="config_defs")
    if not isinstance(spec, dict):
        spec = {"langs": spec}
    # params validation has checked the entry; a caller's own mapping gets the same check
    if (problem := schema_problem(spec, CONFIG_DEF)) is not None:
        path, message = problem
        raise UserError(message, field=".".join(map(str, ["config_defs", name, *path])))
    spec = with_defaults(spec, CONFIG_DEF)
    langs = config_languages({**params, "config_defs": {name: spec}}, name)

    def _list(key):  # a non-empty list (the schema's check above), or None: no selection
        value = spec.get(key)
        return None if value is None else sorted(set(value))

    return {"langs": langs, "groups": _list("groups"), "strategies": _list("strategies"),
            "include_general": bool(spec["include_general"]), "max_per_language": spec["max_per_language"]}


def is_demographic(spec: dict) -> bool:
    return spec.get("groups") is not None or spec.get("strategies") is not None


def select_record(record: dict, spec: dict) -> bool:
    """Does a configuration train on this pair? Without groups/strategies: every pair. With
    them: demographic pairs (``target_group`` set) of a listed group and strategy (``style``),
    plus the non-demographic pairs when ``include_general``."""
    if not is_demographic(spec):
        return True
    group = record.get("target_group")
    if group is None:
        return bool(spec.get("include_general"))
    return ((spec["groups"] is None or group in spec["groups"])
            and (spec["strategies"] is None or record.get("style") in spec["strategies"]))


def zero_shot_cell(record: dict, spec: dict) -> str | None:
    """Where a (test) prompt stands for a demographic configuration: ``seen`` (group and
    strategy trained on), ``unseen_group``, ``unseen_strategy``, ``unseen_both``; None for a
    prompt without a target group or a configuration without groups/strategies."""
    group = record.get("target_group")
    if group is None or not is_demographic(spec):
        return None
    g_seen = spec["groups"] is None or group in spec["groups"]
    s_seen = spec["strategies"] is None or record.get("style") in spec["strategies"]
    return {(True, True): "seen", (False, True): "unseen_group", (True, False): "unseen_strategy",
            (False, False): "unseen_both"}[(g_seen, s_seen)]


# --------------------------------------------------------------------------- data

def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dir_digest(path: Path) -> str:
    """The digest of a model directory's content (``io.content_files``: its manifest, which
    only restates the files, and hidden files left out). Snakemake leaves a .snakemake_timestamp
    in every directory output and DVC does not, and the digest keys the checkpoints and the
    stored reference log-probs: with it, a base made by one tool missed the other's stores."""
    h = hashlib.sha256()
    for f in sorted(content_files(path).values()):
        h.update(f.relative_to(path).as_posix().encode())
        h.update(file_digest(f).encode())
    return h.hexdigest()


def load_pairs(files: list[Path], max_per_language: int | None, seed: int,
               spec: dict | None = None) -> tuple[list[dict], dict]:
    """Training pairs from each language file: selected by ``spec`` (groups/strategies), then
    capped per language by a seeded sample (the same sample for every configuration that uses
    the file with the same selection). Each row gets ``_file`` (its index in ``files``)."""
    spec = spec or {}
    rows, counts = [], {}
    seen_groups, seen_strategies = set(), set()
    for i, f in enumerate(files):
        recs = read_records(f)
        seen_groups |= {r.get("target_group") for r in recs if r.get("target_group") is not None}
        seen_strategies |= {r.get("style") for r in recs if r.get("target_group") is not None}
        recs = [r for r in recs if select_record(r, spec)]
        if max_per_language and len(recs) > max_per_language:
            recs = random.Random(f"{seed}:{f.name}").sample(recs, max_per_language)
        counts[f.name.split(".")[0]] = len(recs)
        rows += [{**r, "_file": i} for r in recs]
    for key, seen in (("groups", seen_groups), ("strategies", seen_strategies)):
        missing = sorted(set(spec.get(key) or ()) - seen)
        if missing and seen:
            raise UserError(f"{key} {', '.join(missing)} not found in the training pairs "
                            f"(have: {', '.join(sorted(seen))})", field=f"config_defs.*.{key}")
    return rows, counts


def data_summary(rows: list[dict]) -> dict:
    """Counts of the pairs used, by target group and by strategy (demographic pairs only)."""
    demo = [r for r in rows if r.get("target_group") is not None]
    return {"pairs": len(rows), "demographic_pairs": len(demo),
            "per_group": dict(sorted(Counter(r["target_group"] for r in demo).items())),
            "per_strategy": dict(sorted(Counter(r.get("style") for r in demo).items()))}


# --------------------------------------------------------------------------- checkpoints

def complete_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Checkpoints whose trainer state was written (Trainer writes it last), oldest first."""
    out = []
    for p in ckpt_dir.glob("checkpoint-*"):
        try:
            step = int(p.name.split("-", 1)[1])
            json.loads((p / TRAIN_STATE).read_text(encoding="utf-8"))
        except (ValueError, OSError):
            continue
        out.append((step, p))
    return [p for _, p in sorted(out)]


def last_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest complete checkpoint; newer incomplete ones (a job killed while saving) are
    removed so Trainer never sees them."""
    complete = complete_checkpoints(ckpt_dir) if ckpt_dir.exists() else []
    last = complete[-1] if complete else None
    for p in ckpt_dir.glob("checkpoint-*") if ckpt_dir.exists() else ():
        if p not in complete:
            log.warning("removing incomplete checkpoint %s", p)
            shutil.rmtree(p, ignore_errors=True)
    return last


def run_key(base_digest: str, data_digests: list[str], dpo: dict, spec: dict) -> str:
    training = {k: v for k, v in dpo.items() if k not in EXECUTION_KEYS}
    return stable_hash({"base": base_digest, "data": data_digests, "dpo": training,
                        "selection": {k: spec.get(k) for k in ("groups", "strategies", "include_general",
                                                               "max_per_language")}}, 16)


# --------------------------------------------------------------------------- training

def _lora_config(settings: dict):
    """peft's LoraConfig of ``dpo.lora`` (``settings``: the dpo block with defaults filled)."""
    from peft import LoraConfig
    lora = settings["lora"]
    target = lora["target_modules"]
    return LoraConfig(r=int(lora["r"]), lora_alpha=float(lora["alpha"]),
                      lora_dropout=float(lora["dropout"]), task_type="CAUSAL_LM",
                      target_modules=target if isinstance(target, str) else list(target))


def train_dtype(settings: dict, cuda: bool):
    """The weights' dtype: bfloat16 with ``dpo.bf16`` on a GPU, float32 otherwise."""
    import torch

    return torch.bfloat16 if settings["bf16"] and cuda else torch.float32


def dpo_arguments(settings: dict, output_dir: str, *, cuda: bool) -> dict:
    """The keyword arguments of TRL's ``DPOConfig`` for a ``dpo:`` block (``settings``: with
    defaults filled): the DPOConfig fields it names, the project's fixed choices (step
    checkpoints, seeded data order, no reporting, CPU without CUDA) and ``trl_args`` as they
    are. Training builds its DPOConfig from this, and so does params validation."""
    from trl import DPOConfig

    seed = int(settings["seed"])
    arguments = dict(
        output_dir=output_dir,
        **{k: settings[k] for k in DPO_FIELDS if k in settings},
        data_seed=seed,
        save_strategy="steps", save_steps=int(settings["save_steps"]),
        save_total_limit=int(settings["save_total_limit"]),
        logging_steps=int(settings["logging_steps"]), report_to=[], log_level="warning",
        use_cpu=not cuda, bf16=bool(settings["bf16"]) and cuda, dataloader_num_workers=0, disable_tqdm=True,
        **checkpointing_arg(DPOConfig, bool(settings["gradient_checkpointing"])),
        precompute_ref_log_probs=bool(settings["precompute_ref_log_probs"]),
        model_init_kwargs={"dtype": train_dtype(settings, cuda), **(settings.get("model_init_kwargs") or {})},
    )
    trl_args = settings.get("trl_args") or {}
    for key in trl_args:
        if key in arguments:
            raise ValueError(f"`trl_args.{key}` is set by the dpo: block itself"
                             + (f" (dpo.{key})" if key in settings else " (a fixed choice of the project)"))
    return {**arguments, **trl_args}


def train_config(name: str, base_dir: Path, pair_files: list[Path], out_dir: Path, dpo: dict,
                 checkpoint_root: Path, *, spec: dict | None = None,
                 ref_logps_dir: Path | None = None, callbacks: list | None = None) -> dict:
    """Train configuration ``name`` on ``pair_files`` from ``base_dir`` into ``out_dir``.

    ``dpo`` is the ``dpo:`` block as given (recorded in the model card and keyed in the run key;
    its absent keys take the schema's defaults). ``spec`` is :func:`resolve_config`'s selection
    (groups/strategies); ``ref_logps_dir`` the content-addressed store of reference log-probs
    (used with ``precompute_ref_log_probs``). Returns the metrics written to ``out_dir/metrics.json``.
    """
    import torch
    import transformers
    from datasets import Dataset
    from transformers import AutoTokenizer
    from transformers.trainer_callback import PrinterCallback
    from trl import DPOConfig

    from .ref_logps import GROUP_COLUMN, RefLogpStore, cached_dpo_trainer_class, store_key

    spec = dict(spec or {})
    settings = with_defaults(dpo, "dpo")
    torch.set_num_threads(int(settings["torch_threads"]))
    seed = int(settings["seed"])
    cap = spec.get("max_per_language") or settings["max_per_language"]
    rows, counts = load_pairs(pair_files, cap, seed, spec)
    if not rows:
        raise UserError(f"training configuration {name!r} has no training pairs "
                        f"(files: {', '.join(map(str, pair_files))})", field=f"config_defs.{name}")
    base = resolve(base_dir)
    base_path = base.path
    # a pinned revision of a hub base (base_model.revision) loads the policy, the reference
    # model (TRL builds it with the same model_init_kwargs), the tokenizer and the merge base
    revision = {"revision": base.revision} if base.revision else {}
    digests = [file_digest(f) for f in pair_files]
    data_digest = stable_hash(digests)
    base_digest = dir_digest(base_dir)
    ckpt_dir = checkpoint_root / f"{name}-{run_key(base_digest, digests, dpo, spec)}"
    # Old checkpoints of this configuration with other inputs are stale: remove them.
    for stale in checkpoint_root.glob(f"{name}-*"):
        if stale != ckpt_dir:
            shutil.rmtree(stale, ignore_errors=True)

    cuda = torch.cuda.is_available()
    dtype = train_dtype(settings, cuda)
    args = DPOConfig(**dpo_arguments(settings, str(ckpt_dir), cuda=cuda))
    args.model_init_kwargs = {**(args.model_init_kwargs or {}), **revision}
    precompute = bool(settings["precompute_ref_log_probs"])
    use_lora = bool(settings["use_lora"])

    # The reference-logp store: one key per language file (see ref_logps.py).
    store, store_meta = None, {}
    records = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows]
    if precompute and ref_logps_dir is not None:
        store = RefLogpStore(ref_logps_dir)
        # the settings as given (an absent max_length keys as None, as it always has); the
        # truncation mode as DPOConfig resolved it (TRL's default when absent)
        ref_settings = {"max_length": dpo.get("max_length"), "truncation_mode": args.truncation_mode,
                        "ld_alpha": dpo.get("ld_alpha"), "dtype": str(dtype)}
        keys = [store_key(base_digest, d, ref_settings) for d in digests]
        store_meta = {k: {"base_digest": base_digest, "data_file": str(f), "data_digest": d, **ref_settings}
                      for k, f, d in zip(keys, pair_files, digests)}
        for rec, row in zip(records, rows):
            rec[GROUP_COLUMN] = keys[row["_file"]]
    dataset = Dataset.from_list(records)

    peft_config = _lora_config(settings) if use_lora else None
    tokenizer = AutoTokenizer.from_pretrained(base_path, **revision)

    # LoRA's random A matrices are drawn while the trainer is built, before Trainer seeds.
    transformers.set_seed(seed)
    trainer_cls = cached_dpo_trainer_class()
    trainer = trainer_cls(model=base_path, args=args, train_dataset=dataset, processing_class=tokenizer,
                          peft_config=peft_config, callbacks=callbacks, ref_store=store,
                          ref_store_meta=store_meta)
    # With tqdm off, Trainer prints every log line to stdout; the curves go to train_log.csv.
    trainer.remove_callback(PrinterCallback)
    resume_from = last_checkpoint(ckpt_dir)
    if resume_from is not None:
        log.info("train %s: resuming from %s", name, resume_from)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)

    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    main = trainer.is_world_process_zero()
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    # Trainer.save_model gathers sharded weights (FSDP/ZeRO-3) and writes on the main process:
    # the full model, or the adapter alone under LoRA.
    trainer.save_model(str(tmp))
    if not main:
        return {}
    merged = use_lora and bool(settings["merge_lora"])
    if merged:
        merge_adapter(tmp, base_path, dtype, base.revision)
    adapter = record_adapter_base(tmp, base_path, base.revision) if use_lora and not merged else None
    (tmp / "training_args.bin").unlink(missing_ok=True)  # a pickle; the card holds the params
    # How the tokenizer was loaded (HF_HUB_OFFLINE=1 sets local_files_only) is no property of the
    # model; saved, it would make the model files (and the response-cache identity) differ
    # between an offline and an online run.
    tokenizer.init_kwargs.pop("local_files_only", None)
    tokenizer.save_pretrained(tmp)

    curve = training_curve(trainer.state.log_history)
    write_curve(tmp / "train_log.csv", curve)
    last = curve[-1] if curve else {}
    losses = [c["loss"] for c in curve if c.get("loss") is not None]
    metrics = {"config": name, "examples": len(rows), "examples_per_language": counts,
               # TRL drops pairs whose prompt alone fills max_length
               "examples_trained": len(trainer.train_dataset),
               **({"selection": data_summary(rows)} if is_demographic(spec) else {}),
               "steps": trainer.state.global_step,
               # from the log, so a resumed run reports what an uninterrupted one does
               "train_loss": sum(losses) / len(losses) if losses else None,
               "final_loss": last.get("loss"), "final_reward_margin": last.get("reward_margin"),
               "final_reward_accuracy": last.get("reward_accuracy")}
    write_json(tmp / "metrics.json", metrics)
    # Run provenance goes to the log and the caller, not into the model directory: a run resumed
    # after a kill, or one that found its reference log-probs stored, must leave the same
    # files (the same DVC hash) as an uninterrupted first run.
    provenance = {"resumed_from_step": int(resume_from.name.split("-")[1]) if resume_from else None,
                  "ref_logps_cache": getattr(trainer, "ref_cache_stats", None)}
    log.info("train %s: provenance %s", name, provenance)
    card = {"base_model": base_path, **({"base_revision": base.revision} if base.revision else {}),
            "base_digest": base_digest, "data_digest": data_digest,
            "data_files": {str(f): d for f, d in zip(pair_files, digests)}, "configuration": name,
            "selection": {k: spec.get(k) for k in ("langs", "groups", "strategies", "include_general")},
            "hyperparameters": dpo, "format": ("lora-merged" if merged else "lora-adapter") if use_lora else "full",
            **({"adapter": adapter} if adapter else {}),
            "dtype": str(dtype).replace("torch.", ""), "metrics": metrics}
    write_text(tmp / "README.md", model_card(card))
    write_json(tmp / "model_card.json", card)
    write_dir_manifest(tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # the final model supersedes the checkpoints
    return {**metrics, **provenance}


def checkpointing_arg(config_cls, on: bool) -> dict:
    """Activation (gradient) checkpointing under the name this transformers version uses
    (``activation_checkpointing`` since 5.2x; ``gradient_checkpointing`` before, TRL's default
    True). Off by default here: the tiny model trains faster without; turn it on for big models."""
    import dataclasses
    names = {f.name for f in dataclasses.fields(config_cls)}
    return {"activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing": on}


def merge_adapter(adapter_dir: Path, base_path: str, dtype, revision: str | None = None) -> None:
    """Replace the LoRA adapter in ``adapter_dir`` by the merged full model (reloaded on CPU,
    so it works the same after FSDP / ZeRO-3 training)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype, **({"revision": revision} if revision else {}))
    model = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    for f in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        (adapter_dir / f).unlink(missing_ok=True)
    model.save_pretrained(adapter_dir)


def record_adapter_base(adapter_dir: Path, base_path: str, revision: str | None = None) -> dict:
    """Make the adapter name the base it was trained on, as the path or hub id given to
    training (a relative path stays relative to the project root) and, when one was pinned, its
    revision (PEFT's ``revision``), so vLLM, lm-eval and peft serve it over that base and the
    response cache keys it by that base's identity; returns what the model card records of the
    adapter."""
    config_file = adapter_dir / "adapter_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    # peft fills base_model_name_or_path from the model's name_or_path, which is what TRL
    # loaded; set it explicitly so no loader detail (a resolved snapshot path) can leak in.
    wanted = {"base_model_name_or_path": base_path, **({"revision": revision} if revision else {})}
    if any(config.get(k) != v for k, v in wanted.items()):
        config.update(wanted)
        write_json(config_file, config)
    return {"base_model_name_or_path": base_path, "peft_type": config.get("peft_type"),
            "r": config.get("r"), "lora_alpha": config.get("lora_alpha"),
            "target_modules": sorted(config["target_modules"]) if isinstance(config.get("target_modules"), list)
            else config.get("target_modules")}


def is_adapter_dir(path: str | Path) -> bool:
    """True for a LoRA adapter directory (``merge_lora: false``): load it with
    ``peft.AutoPeftModelForCausalLM.from_pretrained(path)``."""
    return (Path(path) / "adapter_config.json").exists()


def training_curve(log_history: list[dict]) -> list[dict]:
    rows = []
    for h in log_history:
        if "loss" not in h:
            continue
        row = {col: h.get(key) for key, col in CURVE_COLUMNS.items()}
        rows.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    return rows


def write_curve(path: Path, curve: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(CURVE_COLUMNS.values()), extrasaction="ignore")
        w.writeheader()
        w.writerows(curve)


def model_card(card: dict) -> str:
    m = card["metrics"]
    langs = ", ".join(f"{k} ({v})" for k, v in m["examples_per_language"].items())
    sel = card["selection"]
    demo = ""
    if sel.get("groups") is not None or sel.get("strategies") is not None:
        demo = (f"- Demographic selection: groups {sel.get('groups') or 'all'}; strategies "
                f"{sel.get('strategies') or 'all'}; non-demographic pairs "
                f"{'included' if sel.get('include_general') else 'excluded'}\n")
    fmt = {"full": "full fine-tuning", "lora-merged": "LoRA, merged into the base weights",
           "lora-adapter": "LoRA adapter over the base named in `adapter_config.json`; load with "
                           "`peft.AutoPeftModelForCausalLM.from_pretrained`, served unmerged by the "
                           "vllm backend (`LoRARequest`) and lm-eval (`peft=`)"}[card["format"]]
    files = "\n".join(f"  - `{f}`: sha256 `{d[:16]}`" for f, d in card["data_files"].items())
    return f"""---
base_model: {card['base_model']}
library_name: {'peft' if card['format'] == 'lora-adapter' else 'transformers'}
tags: [dpo, trl, polyrefusal, safety]
---
# polyrefusal DPO checkpoint: `{card['configuration']}`

DPO ({fmt}) of `{card['base_model']}` on refusal preference pairs of the training
configuration `{card['configuration']}`; weights in {card['dtype']}.

- Languages (pairs used): {langs}
{demo}- Base model digest: `{card['base_digest'][:16]}`; data digest: `{card['data_digest'][:16]}`
- Data files:
{files}
- Steps: {m['steps']}; final loss {m['final_loss']}; reward margin {m['final_reward_margin']};
  reward accuracy {m['final_reward_accuracy']}; mean training loss {m['train_loss']}
- Training curves: `train_log.csv` (loss, reward margin, reward accuracy per step)

## Hyperparameters
```json
{json.dumps(card['hyperparameters'], indent=2, sort_keys=True)}
```

## Metrics
```json
{json.dumps(m, indent=2, sort_keys=True)}
```

Generated by polyrefusal. Evaluation scores live in the pipeline's report.
"""
