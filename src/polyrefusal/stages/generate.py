"""Stage `generate`: answer every test prompt of every language with one model.

One job per model, so the model is loaded once and serves all its prompts (on a cluster too);
answers go through the response cache, so a rerun after an interruption generates only what
is missing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..io import atomic_dir, read_records, write_records
from ..params import load_params, with_defaults
from ..training.models import resolve

log = logging.getLogger(__name__)
KEEP = ("id", "source_id", "lang", "category", "style", "target_group", "harmful", "origin")


def add_arguments(p):
    p.add_argument("--model", required=True, help="model directory (from base-model or train)")
    p.add_argument("--name", required=True, help="model name in the results (base or a configuration)")
    p.add_argument("--params", default="params.yaml", help="the params file: generation.* and the audit models (default: params.yaml)")
    p.add_argument("--out-dir", required=True, help="writes <lang>.jsonl per test file")
    p.add_argument("--cache-dir", default=None, help="response cache (default: generation.cache_dir)")
    p.add_argument("--pairs-dir", required=True,
                   help="directory with <lang>.test.jsonl for every language in params")


def model_spec(params: dict, model_dir: str):
    from ..generate.base import ModelSpec

    g = with_defaults(params)["generation"]
    model = resolve(model_dir)
    return ModelSpec(path=model.path, revision=model.revision, max_new_tokens=g["max_new_tokens"],
                     temperature=g["temperature"], top_p=g["top_p"], seed=g["seed"],
                     system_prompt=g["system_prompt"], batch_size=g["batch_size"], dtype=g["dtype"],
                     extra={"torch_threads": g["torch_threads"], **g["extra"]})


def run(args):
    from ..generate.runner import generate_cached

    params = load_params(args.params)
    backend = resolve(args.model).backend
    if not backend:  # the backend comes from params: name the file and line
        from ..errors import UserError
        from ..generate.base import GENERATORS
        from ..params import yaml_line
        backend = params["generation"]["backend"]
        if backend not in GENERATORS.names():
            raise UserError(f"unknown generator {backend!r}; available: {', '.join(GENERATORS.names())}",
                            file=args.params, line=yaml_line(args.params, ["generation", "backend"]),
                            field="generation.backend")
    cache_dir = args.cache_dir or params["generation"].get("cache_dir")
    if cache_dir:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)  # a DVC output even when empty
    tests = [Path(args.pairs_dir) / f"{lang}.test.jsonl" for lang in params["languages"]]
    per_file = [(t, read_records(t)) for t in tests]
    prompts = [r["prompt"][0]["content"] for _, recs in per_file for r in recs]
    answers, stats = generate_cached(backend, model_spec(params, args.model),
                                     prompts, cache_dir)
    i = 0
    with atomic_dir(args.out_dir) as out_dir:
        for path, recs in per_file:
            rows = []
            for r in recs:
                rows.append({**{k: r.get(k) for k in KEEP}, "prompt": prompts[i], "response": answers[i],
                             "model": args.name})
                i += 1
            write_records(out_dir / f"{path.name.split('.')[0]}.jsonl", rows)
    # Cache hits and speed go to the log, not to an output: outputs depend only on inputs.
    log.info("generate %s: %d answers (%s)", args.name, len(answers), stats)
