"""Stage `train`: DPO-train one training configuration."""

from __future__ import annotations

import logging
from pathlib import Path

from ..params import config_languages, load_params

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--config", required=True, help="training configuration name (params.train_configs)")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--base", required=True, help="base model directory (from `base-model`)")
    p.add_argument("--pairs-dir", required=True, help="directory with <lang>.train.jsonl files")
    p.add_argument("--checkpoints", default="results/.checkpoints",
                   help="where resumable checkpoints live (not a declared output)")
    p.add_argument("out", help="output model directory")


def run(args):
    from ..training.dpo import train_config

    params = load_params(args.params)
    langs = config_languages(params, args.config)
    files = [Path(args.pairs_dir) / f"{lang}.train.jsonl" for lang in langs]
    metrics = train_config(args.config, Path(args.base), files, Path(args.out), params["dpo"],
                           Path(args.checkpoints))
    log.info("train %s: %s", args.config, metrics)
