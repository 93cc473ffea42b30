"""Stage `base-model`: build the embedded tiny base model, or point at a real one."""

from __future__ import annotations

import logging
from pathlib import Path

from ..io import atomic_dir, write_json
from ..params import load_params, with_defaults
from ..training.models import POINTER

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--params", default="params.yaml",
                   help="params file (base_model:, or audit_models: with --audit; default: params.yaml)")
    p.add_argument("--audit", default=None, metavar="NAME",
                   help="audit mode: write the pointer of params.audit_models[NAME] instead")
    p.add_argument("out", help="output model directory (the built model, or a pointer to a real one)")


def run(args):
    params = with_defaults(load_params(args.params))
    if args.audit:
        return write_audit_pointer(params, args.audit, Path(args.out), args.params)
    cfg = params["base_model"]
    # Built beside the output and renamed: a killed build never looks complete.
    with atomic_dir(args.out) as tmp:
        if cfg["source"] == "embedded":
            import torch

            from ..training.embedded import build_embedded_base

            torch.set_num_threads(int(params["dpo"]["torch_threads"]))
            meta = build_embedded_base(tmp, params["languages"], cfg["embedded"])
            write_json(tmp / "build.json", meta)
            log.info("base-model: embedded model, %d parameters, final SFT loss %.3f",
                     meta["parameters"], meta["sft_loss"][-1])
        else:
            write_json(tmp / POINTER, {"path": cfg["source"], "revision": cfg.get("revision")})
            log.info("base-model: using %s", cfg["source"])


def write_audit_pointer(params: dict, name: str, out: Path, params_file: str | None = None) -> None:
    """An audit model's directory: a pointer to its path (local or hub id) and backend."""
    from ..errors import UserError

    models = params.get("audit_models") or {}
    if name not in models:  # the params were validated: only the name can be wrong
        raise UserError(f"no audit model {name!r}; audit_models has: {', '.join(models) or 'none'}",
                        file=params_file, field="audit_models")
    spec = models[name]
    with atomic_dir(out) as tmp:
        write_json(tmp / POINTER, {"path": spec["path"], "revision": spec.get("revision"),
                                   "backend": spec.get("backend")})
    log.info("base-model: audit model %s -> %s", name, spec["path"])
