"""Stage `rainbow`: generate adversarial prompts with Rainbow Teaming (quality-diversity search).

    polyrefusal rainbow --params params.yaml [--iterations N] [--seed S] ARCHIVE_DIR OUT

The archive grid is (hazard category x attack style) or (target group x jailbreak strategy),
over the cells the ``corpus`` block selects; parents start from the corpus's own prompts of that
axis (``corpus.source``, without ``corpus.include``, so the generated file can be included in
the corpus without a cycle). The mutator and target models are generation backends
(``rainbow.mutator`` / ``rainbow.target``: ``backend``, ``path`` and any ``ModelSpec`` field;
unset decoding fields come from ``generation``), the judge is any registered judge.

ARCHIVE_DIR/archive.json is rewritten atomically after every iteration (resume after a kill:
run the same command again). OUT is a corpus file (Parquet) with one record per filled cell,
``origin: generated``, ready for ``corpus.include``; ARCHIVE_DIR/summary.json has the coverage.

With ``rainbow.enabled: false`` (the default) the command writes an empty corpus file and
loads no model, so the DAG can always name OUT; ``--force`` runs the search anyway.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import logging
from pathlib import Path

from .. import seed as seed_data
from ..corpus import (check_corpus_params, load_corpus, resolve_selection, write_corpus)
from ..errors import UserError
from ..io import write_json
from ..params import flag, load_params, with_defaults, yaml_line
from ..rainbow import DEFAULT_TEMPLATE, GRIDS, RainbowSearch, Settings, category_names, key_names, summary

log = logging.getLogger(__name__)

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", default="params.yaml", help="params file (its rainbow: block; default: params.yaml)")
    p.add_argument("--iterations", type=flag("rainbow.iterations"), default=None, metavar="N",
                   help="total iterations in the archive (default: rainbow.iterations)")
    p.add_argument("--seed", type=flag("rainbow.seed"), default=None, metavar="N",
                   help="search seed (default: rainbow.seed)")
    p.add_argument("--force", action="store_true", help="run even when rainbow.enabled is false")
    p.add_argument("--restart", action="store_true",
                   help="start a new archive when the saved one was made with other settings "
                        "(default: fail and say so)")
    p.add_argument("archive_dir", metavar="ARCHIVE_DIR", help="archive directory (resumable state)")
    p.add_argument("out", metavar="OUT", help="generated prompts, a corpus file (.parquet or .jsonl)")


def rainbow_params(params: dict, params_file: str | None = "params.yaml") -> dict:
    """The ``rainbow:`` block with the schema's defaults filled in (a given mutator/target
    merged over its default key by key). Its keys were checked by params validation."""
    return with_defaults(params)["rainbow"]


def model_spec(section: dict, params: dict, where: str, params_file: str | None = None):
    """(backend, ModelSpec) for a ``rainbow.mutator``/``rainbow.target`` section."""
    from ..generate.base import ModelSpec
    from ..training.models import resolve

    known = {f.name for f in dataclasses.fields(ModelSpec)} | {"backend"}
    for key in section:
        if key not in known:
            raise UserError(f"unknown key {key!r} (known: {', '.join(sorted(known))})", file=params_file,
                            field=f"{where}.{key}")
    if not section.get("path"):
        raise UserError("missing model path", file=params_file, field=f"{where}.path")
    g = with_defaults(params)["generation"]
    spec = {**{k: g[k] for k in ("max_new_tokens", "temperature", "top_p", "seed", "system_prompt",
                                 "batch_size", "dtype")},
            "extra": {"torch_threads": g["torch_threads"]}}
    for key, value in section.items():
        if key == "backend":
            continue
        if key == "extra":
            spec["extra"] = {**spec["extra"], **(value or {})}
        else:
            spec[key] = value
    model = resolve(section["path"])
    spec["path"] = model.path
    if model.revision and not section.get("revision"):  # a pointer's pinned revision
        spec["revision"] = model.revision
    backend = section.get("backend") or model.backend or g["backend"]  # as generate: the pointer's, then params'
    return backend, ModelSpec(**spec)


def load_generator(backend: str, spec, field: str = "rainbow"):
    """The project's generator for ``backend`` (through ``generate.runner.load_generator``
    where it exists, else straight from the GENERATORS registry)."""
    if importlib.util.find_spec("polyrefusal.generate.runner") is not None:
        from ..generate import runner
        if hasattr(runner, "load_generator"):
            return runner.load_generator(backend, spec)
    from ..generate.base import GENERATORS
    return GENERATORS.get(backend, field=field)(spec)


def build_settings(cfg: dict, params: dict, params_file: str | None = "params.yaml") -> Settings:
    grid = cfg["grid"]
    if grid not in GRIDS:
        raise UserError(f"unknown grid {grid!r} (known: {', '.join(GRIDS)})", file=params_file,
                        line=yaml_line(params_file, ["rainbow", "grid"]), field="rainbow.grid")
    check_corpus_params(params["corpus"], params_file)
    selection = resolve_selection(params["corpus"], params_file)
    if grid == "category_style":
        rows, cols = selection["categories"], selection["styles"]
        row_names = category_names(rows)
    else:
        rows, cols = selection["groups"], selection["strategies"]
        names = seed_data.load_seed("en")["groups"]
        row_names = {g: names.get(g, g) for g in rows}
    settings = Settings(
        grid=grid, rows=list(rows), cols=list(cols), lang=cfg["lang"] or params["source_language"],
        similarity=cfg["similarity"], similarity_threshold=float(cfg["similarity_threshold"]),
        empty_cell_weight=float(cfg["empty_cell_weight"]), seed_parent_prob=float(cfg["seed_parent_prob"]),
        candidates_per_iteration=int(cfg["candidates_per_iteration"]),
        max_prompt_chars=int(cfg["max_prompt_chars"]),
        mutation_template=cfg["mutation_template"] or DEFAULT_TEMPLATE,
        group_category=cfg["group_category"], row_names=row_names, col_names=key_names(list(cols)))
    try:
        settings.check()
    except UserError as exc:
        raise UserError(exc.message, file=params_file, field=exc.field,
                        line=yaml_line(params_file, (exc.field or "").split("."))) from None
    return settings


def seed_pool(params: dict, settings: Settings, params_file: str | None = "params.yaml") -> list[dict]:
    """Harmful prompts of the corpus source in the search language, on the grid's axis (all
    harmful prompts in that language when none is on it)."""
    cfg = params["corpus"]
    # The built-in set exists in every seed language: start from the search language's own.
    lang = settings.lang if cfg["source"] == "builtin" else params["source_language"]
    records = load_corpus(cfg["source"], lang, cfg.get("columns") or None,
                          layout=cfg.get("layout"), defaults=cfg.get("defaults"),
                          selection=resolve_selection(cfg, params_file), languages=[settings.lang],
                          split=cfg.get("split"), subset=cfg.get("subset"), revision=cfg.get("revision"),
                          params_file=params_file)
    pool = [r for r in records if r["harmful"] and r["lang"] == settings.lang]
    on_axis = [r for r in pool if bool(r.get("target_group")) == (settings.grid == "group_strategy")]
    if not (on_axis or pool):
        raise UserError(f"the corpus has no harmful prompts in {settings.lang!r} to start the search from",
                        file=params_file, field="corpus.source")
    return on_axis or pool


def seed_answers(lang: str) -> dict | None:
    """The seed set's refusal and compliance answer shapes in ``lang`` (chosen/rejected)."""
    if lang not in seed_data.available_languages():
        return None
    s = seed_data.load_seed(lang)
    return {"refusals": s["refusals"], "compliance": s["compliance"]}


def run(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    cfg = rainbow_params(params, args.params)
    out, archive_dir = Path(args.out), Path(args.archive_dir)
    if not cfg["enabled"] and not args.force:
        archive_dir.mkdir(parents=True, exist_ok=True)
        write_corpus(out, [])
        log.info("rainbow: disabled (rainbow.enabled: false): wrote an empty corpus to %s", out)
        return 0
    iterations = cfg["iterations"] if args.iterations is None else args.iterations
    seed = cfg["seed"] if args.seed is None else args.seed
    if not isinstance(iterations, int) or iterations < 0:
        raise UserError("must be a non-negative integer", file=args.params, field="rainbow.iterations")
    settings = build_settings(cfg, params, args.params)
    seeds = seed_pool(params, settings, args.params)

    from ..judges.base import JUDGES

    judge_cls = JUDGES.get(cfg["judge"], source=args.params, field="rainbow.judge")
    judge = judge_cls(**(cfg["judge_options"] or {}))
    m_backend, m_spec = model_spec(cfg["mutator"], params, "rainbow.mutator", args.params)
    t_backend, t_spec = model_spec(cfg["target"], params, "rainbow.target", args.params)
    mutator = load_generator(m_backend, m_spec, "rainbow.mutator.backend")
    same = (m_backend, m_spec.to_dict()) == (t_backend, t_spec.to_dict())
    target = mutator if same else load_generator(t_backend, t_spec, "rainbow.target.backend")
    identity = {"mutator": mutator.cache_identity(), "target": target.cache_identity(),
                "judge": {"name": cfg["judge"], "options": cfg["judge_options"] or {}}}

    try:
        search = RainbowSearch(settings, seeds, mutator, target, judge, archive_dir, seed=seed,
                               identity=identity)
        if args.restart and search.path.exists():
            try:
                search.load()
            except UserError as exc:
                log.warning("rainbow: %s; --restart: starting a new archive", exc.message)
                search.path.unlink()
        state = search.run(iterations)
    finally:
        for model in {id(mutator): mutator, id(target): target}.values():
            close = getattr(model, "close", None)
            if callable(close):
                close()
    records = search.records(state, answers=seed_answers(settings.lang))
    info = summary(state, settings)
    write_json(archive_dir / "summary.json", info)
    write_corpus(out, records)  # last: OUT existing means the stage finished
    log.info("rainbow: %d iterations, %d/%d cells filled (%d successful attacks), %d near-duplicates "
             "discarded -> %s", info["iterations"], info["filled"], info["cells"], info["successful"],
             info["duplicates"], out)
    return 0
