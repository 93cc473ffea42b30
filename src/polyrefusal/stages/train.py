"""Stage `train`: DPO-train one training configuration.

The configuration is read from ``params.config_defs[NAME]``: ``all``, a list of languages, or a
mapping ``{langs, groups, strategies, include_general, max_per_language}`` (a demographic
generalisation configuration: train on the listed target groups and strategies, evaluate
zero-shot on the others). ``--groups``/``--strategies`` override the mapping's lists for a
one-off run; without them the command is what it always was.

Under ``accelerate launch -m polyrefusal.cli train ...`` (DDP, FSDP, DeepSpeed: see
docs/training.md) every process runs this command; Trainer shards the batches and the main
process alone writes the output.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..params import load_params

log = logging.getLogger(__name__)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_arguments(p):
    p.add_argument("--config", required=True, help="training configuration name (params.train_configs)")
    p.add_argument("--params", default="params.yaml", help="the params file: dpo.* and config_defs.<config> (default: params.yaml)")
    p.add_argument("--base", required=True, help="base model directory (from `base-model`)")
    p.add_argument("--pairs-dir", required=True, help="directory with <lang>.train.jsonl files")
    p.add_argument("--checkpoints", default="results/.checkpoints",
                   help="where resumable checkpoints live (not a declared output)")
    p.add_argument("--ref-logps-dir", default="results/.ref_logps",
                   help="content-addressed store of precomputed reference log-probs, shared by "
                        "configurations (used with dpo.precompute_ref_log_probs)")
    p.add_argument("--groups", type=_csv, default=None,
                   help="comma-separated target groups to train on (overrides config_defs)")
    p.add_argument("--strategies", type=_csv, default=None,
                   help="comma-separated attack strategies to train on (overrides config_defs)")
    p.add_argument("out", help="output model directory")


def run(args):
    from ..training.dpo import resolve_config, train_config

    params = load_params(args.params, training=True)  # TRL checks dpo: before any work
    spec = resolve_config(params, args.config)
    if args.groups is not None:
        spec["groups"] = sorted(set(args.groups))
    if args.strategies is not None:
        spec["strategies"] = sorted(set(args.strategies))
    files = [Path(args.pairs_dir) / f"{lang}.train.jsonl" for lang in spec["langs"]]
    metrics = train_config(args.config, Path(args.base), files, Path(args.out), params["dpo"],
                           Path(args.checkpoints), spec=spec, ref_logps_dir=Path(args.ref_logps_dir))
    if metrics:  # empty on the non-main processes of a distributed run
        log.info("train %s: %s", args.config, metrics)
