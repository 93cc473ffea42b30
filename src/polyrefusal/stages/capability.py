"""Stage `capability`: multiple-choice accuracy of one model in every language (capability
cost of safety training), through lm-evaluation-harness on local files.

    polyrefusal capability --model results/models/balanced --name balanced results/capability/balanced.json

One job per model, all languages in it (the model is loaded once). Settings come from
``params.capability`` (all optional; their defaults are the params schema's): ``source``
(``builtin`` or a directory with Global MMLU's files), ``format`` (``letters`` | ``cloze``),
``limit`` (questions per language, seeded), ``batch_size``, ``dtype``, ``num_fewshot``, ``seed``, ``torch_threads``. See
``polyrefusal.scoring.capability``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from ..io import write_json
from ..params import flag, load_params, with_defaults
from ..training.models import resolve

log = logging.getLogger(__name__)

#: generation backends without log-likelihoods (API models): no capability score
API_BACKENDS = ("openai",)


def settings(params: dict) -> dict:
    """``params.capability`` with the schema's defaults filled in."""
    return with_defaults(params)["capability"]


def add_arguments(p):
    p.add_argument("--model", required=True, help="model directory (from base-model or train)")
    p.add_argument("--name", default=None, help="model name in the results (default: the directory name)")
    p.add_argument("--params", default="params.yaml", help="the params file: capability.* (default: params.yaml)")
    p.add_argument("--langs", default=None, help="comma-separated languages (default: params languages)")
    p.add_argument("--source", type=flag("capability.source"), default=None,
                   help="override capability.source (builtin or a directory)")
    p.add_argument("--limit", type=flag("capability.limit"), default=None, metavar="N",
                   help="override capability.limit")
    p.add_argument("out", help="output JSON: accuracy per language, per-item results, languages not covered")


def run(args):
    import torch

    params = load_params(args.params)
    cfg = settings(params)
    if args.source:
        cfg["source"] = args.source
    if args.limit:
        cfg["limit"] = args.limit
    langs = args.langs.split(",") if args.langs else list(params["languages"])
    name = args.name or Path(args.model).name
    torch.set_num_threads(int(cfg["torch_threads"]))
    model = resolve(args.model)
    model_path = model.path
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if model.backend in API_BACKENDS:
        # lm-eval's multiple-choice scoring needs the model's log-likelihoods (local weights)
        write_json(out, {"model": name, "model_path": model_path, "source": cfg["source"],
                         "format": cfg["format"], "languages": {}, "not_covered": langs,
                         "skipped": f"{model.backend} backend: multiple-choice scoring needs local weights"})
        log.warning("capability %s: skipped (%s backend)", name, model.backend)
        return
    from ..scoring.capability import evaluate_model

    work = Path(tempfile.mkdtemp(prefix=f".capability-{name}.", dir=out.parent))
    try:
        result = evaluate_model(model_path, langs, work, revision=model.revision, source=cfg["source"],
                                fmt=cfg["format"], limit=cfg["limit"], batch_size=int(cfg["batch_size"]),
                                dtype=cfg["dtype"], seed=int(cfg["seed"]),
                                num_fewshot=int(cfg["num_fewshot"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"model": name, "model_path": model_path, **({"revision": model.revision} if model.revision else {}),
              **result}
    write_json(out, result)
    accs = {lang: round(v["acc"], 3) for lang, v in result["languages"].items()}
    log.info("capability %s: %s; not covered: %s", name, accs, result["not_covered"] or "none")
