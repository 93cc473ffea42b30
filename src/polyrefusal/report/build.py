"""Build the report: load the pipeline's outputs, compute every metric with its confidence
interval, write the score tables (results/scores/), the plots (results/report/plots/) and the
same document as Markdown and as self-contained HTML (results/report/report.{md,html}).

Generated answers to harmful prompts appear only truncated (``truncate`` characters) unless
``show_full_answers`` is set; the report lives under results/, which git ignores.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io import atomic_path, read_json, read_records, write_json, write_text
from ..scoring import metrics as M
from ..scoring import transfer as T
from ..scoring.stats import (N_RESAMPLES, SEED, excludes, fmt_ci, hierarchy, hierarchy_text,
                             paired_difference_ci, rate_table, seed_for)
from . import plots as P
from .document import Bullets, Document, Image, Note, Para, Table

from .outputs import FIGURE_CAPTIONS

log = logging.getLogger(__name__)



@dataclass
class Options:
    params: dict
    eval_dir: Path
    models_dir: Path
    scores_dir: Path
    report_dir: Path
    capability_dir: Path | None = None
    pairs_dir: Path | None = None
    translations_dir: Path | None = None
    n_resamples: int = N_RESAMPLES
    seed: int = SEED
    show_full_answers: bool = False
    truncate: int = 80
    fluency_judge: str | None = None
    fluency_options: dict = field(default_factory=dict)
    #: a reviewed human audit's report (``polyrefusal judge --audit-import``; params
    #: ``report.judge_audit``, an input of the report rule), or None
    audit_report: Path | None = None

    @property
    def plots_dir(self) -> Path:
        return self.report_dir / "plots"


def model_names(params: dict) -> list[str]:
    """base, then audit models (params ``audit_models``), then training configurations."""
    audit = list((params.get("audit_models") or {}).keys())
    seen, out = set(), []
    for m in ["base", *audit, *params["train_configs"]]:
        if m not in seen:
            seen.add(m)
            out.append(m)
    return out


# --- loading -----------------------------------------------------------------------------------

def load_scores(eval_dir: Path, models: list[str], langs: list[str]):
    """The per-(model, language) score files of the evaluate stage, as asr.csv's columns."""
    import pandas as pd

    rows = [read_json(eval_dir / m / f"{lang}.json") for m in models for lang in langs]
    df = pd.DataFrame(rows).rename(columns={"model": "config"})
    for c in ("n_unparsed", "n_benign", "over_refusal", "language_consistency", "langid"):
        if c not in df:
            df[c] = None
    return df


def load_records(eval_dir: Path, models: list[str], langs: list[str]) -> list[dict]:
    records = []
    for m in models:
        for lang in langs:
            path = eval_dir / m / f"{lang}.judged.jsonl"
            for r in read_records(path):
                r.setdefault("model", m)
                r.setdefault("lang", lang)
                records.append(r)
    return records


def _optional_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# --- helpers -------------------------------------------------------------------------------------

def ci_str(point, lo, hi, digits: int = 2, signed: bool = False) -> str:
    return fmt_ci(_f(point), _f(lo), _f(hi), digits, signed)


def _f(x):
    if x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def ci_wide(table, index: str, columns: str, value: str, index_order, column_order, digits: int = 2):
    """Wide table of "point [lo, hi]" strings."""
    t = table.copy()
    t["_cell"] = [ci_str(p, lo, hi, digits) for p, lo, hi in
                  zip(t[value], t[f"{value}_lo"], t[f"{value}_hi"])]
    return M.pivot(t, index, columns, "_cell", index_order, column_order).fillna("–")


def truncate(text: str | None, n: int, full: bool) -> str:
    text = (text or "").replace("\n", " ").strip()
    if full or len(text) <= n:
        return text
    return text[: max(0, n - 1)].rstrip() + "…"


def _csv(df, path: Path, index: bool = False) -> None:
    with atomic_path(path, suffix=".csv.tmp") as tmp:
        df.to_csv(tmp, index=index, float_format="%.4f")


def _r(x, digits: int = 4):
    return M.as_rounded(x, digits)


# --- the build -----------------------------------------------------------------------------------

def build(opts: Options) -> dict:
    import pandas as pd

    params = opts.params
    langs = list(params["languages"])
    configs = list(params["train_configs"])
    models = model_names(params)
    audit = [m for m in models if m != "base" and m not in configs]
    seed, B = opts.seed, opts.n_resamples
    opts.scores_dir.mkdir(parents=True, exist_ok=True)
    opts.plots_dir.mkdir(parents=True, exist_ok=True)

    scores = load_scores(opts.eval_dir, models, langs)
    records = load_records(opts.eval_dir, models, langs)
    df = M.outcomes(records)
    langid = sorted({str(x) for x in scores["langid"].dropna()}) or ["py3langid"]

    # --- ASR: the existing outputs (from the evaluate stage's score files) ---
    asr_cols = ["config", "lang", "n", "asr", "n_unparsed", "n_benign", "over_refusal", "language_consistency"]
    asr = scores[asr_cols].copy()
    jacc = judge_accuracy(opts, langs)
    asr["judge_accuracy"] = asr["lang"].map(lambda lang: (jacc.get(lang) or {}).get("accuracy"))
    asr["judge_accuracy_n"] = asr["lang"].map(lambda lang: (jacc.get(lang) or {}).get("n"))
    asr["judge_accuracy_source"] = asr["lang"].map(lambda lang: (jacc.get(lang) or {}).get("source"))
    _csv(asr, opts.scores_dir / "asr.csv")
    # the transfer matrix: base and the training configurations (audit models are not trained)
    matrix = T.transfer_matrix(asr, ["base", *configs], langs)
    delta = T.transfer_delta(matrix)
    _csv(matrix, opts.scores_dir / "transfer_matrix.csv", index=True)
    _csv(delta, opts.scores_dir / "transfer_delta.csv", index=True)

    # --- ASR with CIs, per model x {all, lang, group, category, style} ---
    asr_ci = M.asr_ci_table(df, n_resamples=B, seed=seed)
    _csv(asr_ci, opts.scores_dir / "asr_ci.csv")
    mean = M.mean_asr(df, langs, n_resamples=B, seed=seed)
    json_mean = asr.groupby("config")["asr"].mean()
    mean["mean_asr"] = mean["config"].map(json_mean).fillna(mean["mean_asr"])
    mean = mean.set_index("config").reindex([m for m in models if m in set(mean["config"])]).reset_index()
    _csv(mean, opts.scores_dir / "mean_asr.csv")
    _check_agreement(asr, asr_ci)

    # --- over-refusal beside ASR; language consistency ---
    over = M.over_refusal_table(df, n_resamples=B, seed=seed)
    over = _order(over, "config", models)
    _csv(over, opts.scores_dir / "over_refusal.csv")
    cons = _order(M.consistency_table(df, n_resamples=B, seed=seed), "config", models)
    _csv(cons, opts.scores_dir / "language_consistency.csv")

    # --- disparity across target groups and languages ---
    gdis, gsum = M.group_disparity_tables(df, models, langs, n_resamples=B, seed=seed)
    ldis, lsum = M.language_disparity_tables(df, models, langs, n_resamples=B, seed=seed)
    _csv(gdis, opts.scores_dir / "group_disparity.csv")
    _csv(ldis, opts.scores_dir / "language_disparity.csv")
    dsum = pd.concat([x for x in (gsum, lsum) if len(x)], ignore_index=True) if (len(gsum) or len(lsum)) \
        else gsum
    _csv(dsum, opts.scores_dir / "disparity_summary.csv")

    # --- transfer ---
    single = T.single_language_matrix(delta, langs)
    ordering = T.seriate(single) if len(single) else None
    tsummary = T.transfer_summary(single) if len(single) else None
    _csv(single, opts.scores_dir / "transfer_single.csv", index=True)
    if ordering is not None and len(single) >= 3:
        row_order = [f"{T.SINGLE_PREFIX}{x}" for x in ordering.rows]
        display_delta = delta.reindex([r for r in delta.index if r not in row_order] + row_order)
        display_delta = display_delta[ordering.columns]
    else:
        display_delta = delta
    write_json(opts.scores_dir / "transfer_order.json", {
        "rows": ordering.rows if ordering else [], "columns": ordering.columns if ordering else [],
        "method": ordering.method if ordering else "no single-language configurations",
        "clusters": ordering.clusters if ordering else {},
        "linkage": [[_r(v, 6) for v in row] for row in (ordering.linkage if ordering else [])]})

    # --- capability ---
    cap, cap_status, cap_meta = capability_table(opts, models, langs)
    _csv(cap, opts.scores_dir / "capability.csv")

    # --- fluency (optional) ---
    from ..scoring.fluency import score_benign

    scored, flu_status = score_benign(records, opts.fluency_judge, opts.fluency_options)
    if scored:
        fdf = pd.DataFrame(scored)
        flu = rate_table(fdf.assign(value=fdf["score"]), ["config", "lang"], "value", n_resamples=B,
                         seed=seed, name="score", key_prefix="fluency").drop(columns=["k"])
    else:
        flu = pd.DataFrame(columns=["config", "lang", "n", "score", "score_lo", "score_hi"])
    _csv(flu, opts.scores_dir / "fluency.csv")

    # --- judge agreement (optional module by the judges' owner) ---
    kappa, kappa_note = judge_agreement(records, opts.plots_dir / "judge_agreement.png", langs)
    if kappa is not None:
        _csv(kappa, opts.scores_dir / "judge_agreement.csv")
    else:
        _csv(pd.DataFrame({"note": [kappa_note]}), opts.scores_dir / "judge_agreement.csv")

    # --- plots ---
    pd_ = opts.plots_dir
    P.heatmap(T.transfer_matrix(asr, models, langs), pd_ / "asr_heatmap.png",
              "ASR: model x evaluation language", cmap="Reds",
              cbar_label="ASR", xlabel="evaluation language")
    base_groups = gdis[(gdis["config"] == "base") & (gdis["scope"] == M.ALL)] if len(gdis) else gdis
    order = hierarchy(base_groups, key="target_group") if len(base_groups) else None  # best defended first
    gall = gdis[gdis["scope"] == M.ALL] if len(gdis) else gdis
    if len(gall):
        P.disparity_grid(gall, "target_group", models, pd_ / "group_disparity.png",
                         "Defense rate per target group (95% bootstrap CI)", order=order)
    else:
        P.placeholder(pd_ / "group_disparity.png", "Defense rate per target group",
                      "No evaluated prompt names a target group.")
    if len(ldis):
        P.disparity_grid(ldis, "lang", models, pd_ / "language_disparity.png",
                         "Defense rate per evaluation language (95% bootstrap CI)", order=langs)
    else:
        P.placeholder(pd_ / "language_disparity.png", "Defense rate per language", "no data")
    category_style_plot(asr_ci, models, pd_ / "asr_by_category_style.png")
    P.transfer_plot(display_delta, pd_ / "transfer_matrix.png", ordering=ordering, single=single)
    over_all = over[over["lang"] == M.ALL]
    P.over_refusal_scatter(over_all, pd_ / "over_refusal.png")
    cons_wide = M.pivot(cons, "config", "lang", "consistency", models, langs)
    P.heatmap(cons_wide, pd_ / "language_consistency.png",
              f"Language consistency ({', '.join(langid)}): share of answers in the prompt's language",
              cmap="Greens", cbar_label="share", xlabel="prompt language")
    if len(cap):
        cap_wide = M.pivot(cap, "config", "lang", "acc", models, langs).reindex(columns=langs)
        P.heatmap(cap_wide, pd_ / "capability.png", "Multiple-choice accuracy (capability)",
                  cmap="Blues", cbar_label="accuracy", xlabel="language")
    else:
        P.placeholder(pd_ / "capability.png", "Capability", cap_status)
    curves_note = training_curves({c: opts.models_dir / c for c in configs}, pd_ / "training_curves.png")

    # --- zero-shot generalisation of demographic configurations ---
    zero_shot = zero_shot_table(records, params, configs, B, seed)
    _csv(zero_shot, opts.scores_dir / "zero_shot.csv")

    # --- headline metrics (DVC) ---
    head = headline(asr, params, mean, over, cons, gsum, lsum, cap, models)
    head["bootstrap"] = {"resamples": B, "seed": seed, "level": 0.95}
    write_json(opts.scores_dir / "metrics.json", head)

    # --- the document ---
    ctx = dict(params=params, langs=langs, configs=configs, audit=audit, models=models, asr=asr,
               asr_ci=asr_ci, mean=mean, over=over, cons=cons, gdis=gdis, gsum=gsum, ldis=ldis,
               lsum=lsum, matrix=matrix, delta=delta, display_delta=display_delta, single=single,
               ordering=ordering, tsummary=tsummary, cap=cap, cap_status=cap_status, cap_meta=cap_meta,
               flu=flu, flu_status=flu_status, kappa=kappa, kappa_note=kappa_note,
               curves_note=curves_note, head=head, langid=langid, records=records, df=df, jacc=jacc,
               group_order=order, zero_shot=zero_shot,
               published=published_beside_ours(opts, gdis, models, langs))
    doc = document(opts, ctx)
    from .document import render_html, render_markdown

    write_text(opts.report_dir / "report.md", render_markdown(doc))
    write_text(opts.report_dir / "report.html", render_html(doc))
    log.info("report: %d models x %d languages, %d judged answers", len(models), len(langs), len(records))
    return head


def asr_judge(params: dict) -> str | None:
    """The judge every ASR rests on, as the audit names it: a judge name, or ``ensemble`` when
    ``evaluate.judge`` lists several."""
    judge = (params.get("evaluate") or {}).get("judge")
    if isinstance(judge, list):
        return judge[0] if len(judge) == 1 else "ensemble"
    return judge


def judge_accuracy(opts: Options, langs: list[str]) -> dict[str, dict]:
    """Measured accuracy per language of the judge the ASR rests on: ``{lang: {accuracy, n,
    source}}``. Reviewed human-audit labels win where they cover a language; otherwise the
    table shipped with the judge (refusal_lexicon: its frozen evaluation set,
    ``polyrefusal/data/lexicon/accuracy.json``). A language with neither is left out."""
    from ..judges.audit import audited_accuracy
    from ..judges.refusal_lexicon import measured_accuracy

    judge = asr_judge(opts.params)
    out: dict[str, dict] = {}
    if judge == "refusal_lexicon":
        table = measured_accuracy()
        for lang, v in (table.get("per_language") or {}).items():
            out[lang] = {**v, "source": "frozen set"}
    audit = read_json(opts.audit_report) if judge and opts.audit_report else None
    if audit:
        for lang, v in audited_accuracy(audit, judge).items():
            # a published study's verdicts (`polyrefusal judge --reference`) name their panel
            out[lang] = {**v, "source": audit.get("reference") or "human audit"}
    return {lang: out[lang] for lang in langs if lang in out}


def model_ids(params: dict) -> dict[str, str]:
    """Our untrained models (``base`` and the audit models) by the last part of their hub id or
    path (``meta-llama/Llama-3.1-8B-Instruct`` -> ``Llama-3.1-8B-Instruct``): the name a study
    gives a model it evaluated (MiJaBench's ``jb_response_<model>``)."""
    paths = {"base": (params.get("base_model") or {}).get("source")}
    paths.update({name: (spec or {}).get("path") for name, spec in (params.get("audit_models") or {}).items()})
    return {str(path).rstrip("/").rsplit("/", 1)[-1]: name for name, path in paths.items()
            if isinstance(path, str) and path.strip()}


def published_beside_ours(opts: Options, gdis, models: list[str], langs: list[str]):
    """The defense rate of a published study (its verdicts on its own answers, from the report
    that params ``report.judge_audit`` names, written by ``polyrefusal judge --reference``)
    beside this run's, per model the two share, language and target group; None without one."""
    import pandas as pd

    audit = read_json(opts.audit_report) if opts.audit_report else None
    rates = (audit or {}).get("reference_defense_rate")
    if not rates or not len(gdis):
        return None
    ours_by_id = model_ids(opts.params)
    ours = gdis.set_index(["config", "scope", "target_group"])
    rows = []
    for r in rates:
        model = ours_by_id.get(r["model"])
        if model not in models or r["lang"] not in langs or r["target_group"] == "all":
            continue
        key = (model, r["lang"], r["target_group"])
        mine = ours.loc[key] if key in ours.index else None
        rows.append({"model": model, "language": r["lang"], "target group": r["target_group"],
                     "this run [95% CI]": "–" if mine is None else ci_str(mine["defense_rate"], mine["defense_rate_lo"],
                                                                          mine["defense_rate_hi"]),
                     "this run n": "–" if mine is None else int(mine["n"]),
                     "published": f"{r['defense_rate']:.2f}", "published n": int(r["n"])})
    if not rows:
        return None
    return pd.DataFrame(rows)


def _order(t, col: str, order: list[str]):
    rank = {m: i for i, m in enumerate(order)}
    return t.assign(_o=t[col].map(rank)).sort_values(["_o"], kind="stable").drop(columns=["_o"]).reset_index(drop=True)


def _check_agreement(asr, asr_ci) -> None:
    """The records reproduce the evaluate stage's ASR (a mismatch means stale files)."""
    per = asr_ci[asr_ci["by"] == "lang"].set_index(["config", "level"])["asr"]
    for r in asr.itertuples():
        a = r.asr
        b = per.get((r.config, r.lang))
        if a is not None and b is not None and not (isinstance(a, float) and math.isnan(a)) \
                and abs(float(a) - float(b)) > 1e-9:
            raise UserError(f"ASR of {r.config}/{r.lang} in the score file ({a}) differs from its "
                            f"judged answers ({b}): rerun `evaluate` for it")


def category_style_plot(asr_ci, models, path: Path) -> Path:
    plt = P._plt()
    import numpy as np

    title = "ASR by harm category and attack style"
    parts = []
    for dim in ("category", "style"):
        t = asr_ci[asr_ci["by"] == dim]
        if len(t):
            parts.append((dim, M.pivot(t, "config", "level", "asr", models,
                                       sorted(t["level"].unique(), key=_natural))))
    if not parts:
        return P.placeholder(path, title, "no data")
    widths = [max(2.0, 0.45 * w.shape[1]) for _, w in parts]
    fig, axes = plt.subplots(1, len(parts), figsize=(min(13, sum(widths) + 2.5), min(12, 1.5 + 0.34 * len(models))),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    cm = plt.get_cmap("Reds").with_extremes(bad="#dddddd")
    im = None
    for k, (ax, (dim, w)) in enumerate(zip(axes[0], parts)):
        w = w.reindex(parts[0][1].index)
        data = w.to_numpy(dtype=float)
        im = ax.imshow(np.ma.masked_invalid(data), cmap=cm, vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(w.shape[1]), list(w.columns), rotation=60, ha="right")
        ax.set_yticks(range(w.shape[0]), list(w.index) if k == 0 else [""] * w.shape[0])
        ax.set_title(f"by {dim}", loc="left")
    fig.colorbar(im, ax=list(axes[0]), fraction=0.03, pad=0.02).set_label("ASR")
    fig.suptitle(title, x=0.01, ha="left")
    return P._save(fig, path)


# --- capability ----------------------------------------------------------------------------------

def capability_table(opts: Options, models: list[str], langs: list[str]):
    """Accuracy per model and language from results/capability/<model>.json, with bootstrap CIs
    over questions and the change against the base model paired per question."""
    import numpy as np
    import pandas as pd

    cols = ["config", "lang", "n", "acc", "acc_lo", "acc_hi", "delta", "delta_lo", "delta_hi"]
    if opts.capability_dir is None:
        return pd.DataFrame(columns=cols), "not run (no --capability-dir)", {}
    data = {m: _optional_json(opts.capability_dir / f"{m}.json") for m in models}
    missing = [m for m, d in data.items() if d is None]
    if all(d is None for d in data.values()):
        return pd.DataFrame(columns=cols), f"not run (no results in {opts.capability_dir})", {}
    base = data.get("base") or {"languages": {}}
    rows = []
    for m in models:
        d = data.get(m)
        if not d:
            continue
        for lang in langs:
            res = d["languages"].get(lang)
            if not res:
                continue
            items = res["items"]
            vals = np.array(list(items.values()), dtype=float)
            r = rate_table(pd.DataFrame({"v": vals}), [], "v", n_resamples=opts.n_resamples,
                           seed=opts.seed, name="acc", key_prefix=f"capability:{m}:{lang}").iloc[0]
            row = {"config": m, "lang": lang, "n": int(r["n"]), "acc": float(res["acc"]),
                   "acc_lo": float(r["acc_lo"]), "acc_hi": float(r["acc_hi"]),
                   "delta": math.nan, "delta_lo": math.nan, "delta_hi": math.nan}
            b = base["languages"].get(lang)
            if m != "base" and b:
                common = sorted(set(items) & set(b["items"]))
                if common:
                    p, lo, hi = paired_difference_ci([items[k] for k in common], [b["items"][k] for k in common],
                                                     opts.n_resamples, seed_for(opts.seed, "capability_delta", m, lang))
                    row.update(delta=p, delta_lo=lo, delta_hi=hi)
            rows.append(row)
    meta = {
        "source": next((d.get("source") for d in data.values() if d), None),
        "format": next((d.get("format") for d in data.values() if d), None),
        "lm_eval_version": next((d.get("lm_eval_version") for d in data.values() if d and d.get("lm_eval_version")), None),
        "not_covered": sorted({lang for d in data.values() if d for lang in d.get("not_covered", [])}),
        "missing_models": missing,
        "skipped": {m: d["skipped"] for m, d in data.items() if d and d.get("skipped")},
    }
    if not rows:
        why = "; ".join(f"{m}: {w}" for m, w in meta["skipped"].items()) or "no language covered"
        return pd.DataFrame(columns=cols), f"no capability scores ({why})", meta
    return pd.DataFrame(rows, columns=cols), "ok", meta


# --- optional modules by other owners -----------------------------------------------------------

def _optional(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def judge_agreement(records: list[dict], png: Path, langs: list[str]):
    """Cohen's kappa per language between judges (``polyrefusal.judges.agreement``: a table
    and its heatmap), or a note saying why the section is skipped."""
    import pandas as pd

    judges = sorted({j for r in records for j in (r.get("verdicts") or {})})
    title = "Judge agreement"
    kappa_table = _optional("polyrefusal.judges.agreement", "kappa_table")
    plot = _optional("polyrefusal.judges.agreement", "plot_kappa_heatmap")
    if len(judges) < 2:
        note = (f"Only one judge labelled the answers ({', '.join(judges) or 'none recorded'}); "
                "agreement needs two or more judges (`evaluate.judge` in params.yaml).")
        P.placeholder(png, title, note)
        return None, note
    if kappa_table is None or plot is None:
        note = ("Judge agreement skipped: `polyrefusal.judges.agreement` (kappa_table, "
                "plot_kappa_heatmap) is not available in this installation.")
        P.placeholder(png, title, note)
        return None, note
    table = kappa_table(records)
    plot(table, str(png), languages=[lang for lang in langs if any(r.get("lang") == lang for r in table)] or None)
    df = table if isinstance(table, pd.DataFrame) else pd.DataFrame(list(table))
    return df, f"Judges: {', '.join(judges)}; Cohen's kappa per language and pair of judges (polyrefusal.judges.agreement)."


def training_curves(model_dirs: dict[str, Path], png: Path) -> str:
    plot_curves = _optional("polyrefusal.training.curves", "plot_curves")
    if plot_curves is not None:
        try:
            plot_curves({k: Path(v) for k, v in model_dirs.items()}, str(png))
            if Path(png).exists():
                return "Curves drawn by polyrefusal.training.curves."
        except Exception as exc:
            log.warning("plot_curves failed (%s); drawing train_log.csv directly", exc)
    P.training_curves(model_dirs, png)
    return "Curves drawn from each configuration's train_log.csv."


# --- headline ------------------------------------------------------------------------------------

def headline(asr, params, mean, over, cons, gsum, lsum, cap, models) -> dict:
    """metrics.json: the study's findings (kept keys: mean_asr, balanced_lowers_mean_asr,
    english_only_*), and per model the headline figures with CIs (``models``)."""
    mean_asr = asr.groupby("config")["asr"].mean()
    out: dict[str, Any] = {"mean_asr": {k: round(float(v), 4) for k, v in mean_asr.items()}}
    src = params["source_language"]
    if "balanced" in mean_asr and "base" in mean_asr:
        out["balanced_lowers_mean_asr"] = bool(mean_asr["balanced"] < mean_asr["base"])
    if "english_only" in mean_asr.index and src in set(asr["lang"]):
        base = asr[asr.config == "base"].set_index("lang")["asr"]
        eo = asr[asr.config == "english_only"].set_index("lang")["asr"]
        drop = base - eo
        others = [lang for lang in drop.index if lang != src]
        out["english_only_drop_en"] = round(float(drop[src]), 4)
        if others:
            out["english_only_drop_others_mean"] = round(float(drop[others].mean()), 4)
            out["english_only_lowers_english_more"] = bool(drop[src] > drop[others].mean())
    per: dict[str, dict] = {}
    mi = mean.set_index("config")
    oa = over[over["lang"] == M.ALL].set_index("config")
    cmean = cons.groupby("config")["consistency"].mean()
    gs = gsum[gsum["scope"] == M.ALL].set_index("config") if len(gsum) else None
    ls = lsum.set_index("config") if len(lsum) else None
    capm = cap.groupby("config")["acc"].mean() if len(cap) else None
    capd = cap.dropna(subset=["delta"]).groupby("config")["delta"].mean() if len(cap) else None
    for m in models:
        h = {}
        if m in mi.index:
            h.update(mean_asr=_r(mi.loc[m, "mean_asr"]), mean_asr_lo=_r(mi.loc[m, "mean_asr_lo"]),
                     mean_asr_hi=_r(mi.loc[m, "mean_asr_hi"]))
        if m in oa.index:
            h["over_refusal"] = _r(oa.loc[m, "over_refusal"])
        if m in cmean.index:
            h["language_consistency"] = _r(cmean[m])
        if gs is not None and m in gs.index:
            h.update(group_gap=_r(gs.loc[m, "gap"]), group_gap_lo=_r(gs.loc[m, "gap_lo"]),
                     group_gap_hi=_r(gs.loc[m, "gap_hi"]))
        if ls is not None and m in ls.index:
            h["language_gap"] = _r(ls.loc[m, "gap"])
        if capm is not None and m in capm.index:
            h["capability_acc"] = _r(capm[m])
        if capd is not None and m in capd.index:
            h["capability_delta"] = _r(capd[m])
        per[m] = {k: v for k, v in h.items() if v is not None}
    out["models"] = per
    return out


# --- the document ---------------------------------------------------------------------------------

def _img(opts: Options, name: str) -> Image:
    path = opts.plots_dir / f"{name}.png"
    return Image(path, FIGURE_CAPTIONS[name], f"plots/{name}.png")


JUDGE_ACCURACY_ROW = "judge accuracy"


def judge_accuracy_note(params: dict, jacc: dict, langs: list[str]) -> str:
    """One sentence on where the judge-accuracy row comes from and its weakest language."""
    judge = asr_judge(params)
    if not jacc:
        return (f"The accuracy of judge `{judge}` is not measured for these languages: read every ASR "
                "with that in mind (a reviewed human audit fills it in: `polyrefusal judge --audit-import ... "
                "--audit-report FILE.json`, then params `report.judge_audit: FILE.json`).")
    worst = min(jacc, key=lambda lang: jacc[lang]["accuracy"])
    missing = [lang for lang in langs if lang not in jacc]
    sources = sorted({v["source"] for v in jacc.values()})
    # a published study's panel, named by its report (`polyrefusal judge --reference`)
    published = "".join(f"; {src}: that study's verdicts on its real answers, from `polyrefusal judge --reference`, "
                        "preferred where present" for src in sources if src not in ("frozen set", "human audit"))
    return (f"Judge `{judge}`: accuracy per language from "
            + ", ".join(sources)
            + " (frozen set: labelled answers written after the judge was frozen, shipped with it; "
              "human audit: reviewed labels from `polyrefusal judge --audit-import`, preferred where present"
            + published + "); "
            + f"lowest in `{worst}` ({jacc[worst]['accuracy']:.2f}). An ASR can be off by about the judge's error rate."
            + (f" Not measured: {', '.join(missing)}." if missing else ""))


def findings(ctx) -> list[str]:
    head, mean, over, gsum, lsum = ctx["head"], ctx["mean"], ctx["over"], ctx["gsum"], ctx["lsum"]
    out = []
    mi = mean.set_index("config")
    if "base" in mi.index:
        b = mi.loc["base"]
        out.append(f"The base model's mean ASR over {len(ctx['langs'])} languages is "
                   f"**{ci_str(b['mean_asr'], b['mean_asr_lo'], b['mean_asr_hi'], 3)}**.")
        trained = mi.drop(index=["base"], errors="ignore")
        trained = trained[trained.index.isin(ctx["configs"])]
        if len(trained):
            best = trained["mean_asr"].astype(float).idxmin()
            t = trained.loc[best]
            sig = "" if t["mean_asr_hi"] < b["mean_asr_lo"] else " (the CIs overlap with the base model's)"
            out.append(f"Lowest mean ASR after training: `{best}` "
                       f"**{ci_str(t['mean_asr'], t['mean_asr_lo'], t['mean_asr_hi'], 3)}**{sig}.")
    if "balanced_lowers_mean_asr" in head:
        out.append(f"`balanced` lowers mean ASR against the base model: **{head['balanced_lowers_mean_asr']}** "
                   f"(base {head['mean_asr']['base']:.3f} -> balanced {head['mean_asr']['balanced']:.3f}).")
    if "english_only_lowers_english_more" in head:
        out.append(f"`english_only` lowers English ASR more than the mean of the other languages: "
                   f"**{head['english_only_lowers_english_more']}** (drop in en {head['english_only_drop_en']:.3f}, "
                   f"mean drop elsewhere {head['english_only_drop_others_mean']:.3f}).")
    if len(gsum):
        g = gsum[(gsum["config"] == "base") & (gsum["scope"] == M.ALL)]
        if len(g):
            g = g.iloc[0]
            real = "the CI excludes 0" if excludes(g["gap_lo"], g["gap_hi"]) else "the CI includes 0"
            if g["gap"] == 0:
                out.append(f"Demographic disparity (base model): every target group has the same ASR "
                           f"({g['max']:.2f}); gap **{ci_str(g['gap'], g['gap_lo'], g['gap_hi'])}**.")
            else:
                out.append(f"Demographic disparity (base model): the worst-defended group is `{g['max_group']}` "
                           f"(ASR {g['max']:.2f}), the best `{g['min_group']}` (ASR {g['min']:.2f}); gap "
                           f"**{ci_str(g['gap'], g['gap_lo'], g['gap_hi'])}** ({real}).")
    if len(lsum):
        lrow = lsum[lsum["config"] == "base"]
        if len(lrow):
            lrow = lrow.iloc[0]
            if lrow["gap"] == 0:
                out.append(f"Across languages (base model): the same ASR in every language ({lrow['max']:.2f}).")
            else:
                out.append(f"Across languages (base model): highest ASR in `{lrow['max_group']}` ({lrow['max']:.2f}), "
                           f"lowest in `{lrow['min_group']}` ({lrow['min']:.2f}); gap "
                           f"**{ci_str(lrow['gap'], lrow['gap_lo'], lrow['gap_hi'])}**.")
    flagged = over_refusal_flags(over)
    if flagged:
        out.append("Over-refusal higher than the base model's (CIs do not overlap): "
                   + ", ".join(f"`{m}` ({v:.2f})" for m, v in flagged)
                   + " — part of their low ASR is refusing everything.")
    elif len(over):
        out.append("No configuration refuses benign prompts more than the base model beyond the CIs.")
    cap = ctx["cap"]
    if len(cap) and cap["delta"].notna().any():
        d = cap.dropna(subset=["delta"]).groupby("config")["delta"].mean()
        worst = d.idxmin()
        out.append(f"Capability cost: largest mean change in multiple-choice accuracy `{worst}` "
                   f"{d[worst]:+.3f} (over {cap[cap['config'] == worst]['lang'].nunique()} languages).")
    return out


def over_refusal_flags(over) -> list[tuple[str, float]]:
    oa = over[over["lang"] == M.ALL].set_index("config")
    if "base" not in oa.index:
        return []
    b_hi = float(oa.loc["base", "over_refusal_hi"])
    out = []
    for m, r in oa.iterrows():
        if m != "base" and not math.isnan(float(r["over_refusal_lo"])) and float(r["over_refusal_lo"]) > b_hi:
            out.append((m, float(r["over_refusal"])))
    return out


def document(opts: Options, ctx) -> Document:
    import pandas as pd

    params, langs, models = ctx["params"], ctx["langs"], ctx["models"]
    B = opts.n_resamples
    scoring = params.get("evaluate", {})
    judge = scoring.get("judge")
    if isinstance(judge, list):  # an ensemble: its rule, and who settles disagreements
        judge = f"{' + '.join(judge)}, {scoring.get('rule', 'unanimous')}" + (
            f", adjudicated by {scoring['adjudicator']}" if scoring.get("adjudicator") else "")
    doc = Document("polyrefusal report")
    doc.intro.append(Para(
        f"Preset: `{params.get('preset')}`; languages: {', '.join(langs)}; base model: "
        f"`{params['base_model']['source']}`; models: {', '.join(f'`{m}`' for m in models)}; "
        f"judge: `{judge}`; language ID: **{', '.join(ctx['langid'])}** (restricted to the study's languages)."))
    if ctx["audit"]:
        doc.intro.append(Para(f"Audit models (evaluated without training): {', '.join(f'`{m}`' for m in ctx['audit'])}."))
    deviations = (params.get("report") or {}).get("deviations") or []
    if deviations:  # declared by the preset that follows a paper (configs/presets/*.yaml)
        doc.intro.append(Para("Where this run departs from the published protocol of its preset:"))
        doc.intro.append(Bullets(list(deviations)))
    doc.intro.append(Para(
        f"All intervals are 95% percentile-bootstrap CIs ({B:,} resamples, seed {opts.seed}); "
        "ASR = share of harmful prompts whose answer the judge finds not refused (unparsed answers "
        "left out); defense rate = 1 - ASR; over-refusal = share of benign prompts refused."))

    s = doc.section("Headline findings")
    s.add(Bullets(findings(ctx)))
    s.add(Note("If a finding reads False, the model did not show it; the data were not tuned to force it. "
               "With the tiny embedded model every figure is a smoke test of the pipeline, not a result "
               "about real models."))

    # ASR
    s = doc.section("Attack success rate")
    s.add(_img(opts, "asr_heatmap"))
    mean = ctx["mean"].copy()
    mean_t = pd.DataFrame({
        "mean ASR [95% CI]": [ci_str(a, lo, hi, 3) for a, lo, hi in zip(mean["mean_asr"], mean["mean_asr_lo"], mean["mean_asr_hi"])],
        "defense rate [95% CI]": [ci_str(1 - a, 1 - hi, 1 - lo, 3) for a, lo, hi in zip(mean["mean_asr"], mean["mean_asr_lo"], mean["mean_asr_hi"])],
    }, index=pd.Index(mean["config"], name="model"))
    s.add(Table(mean_t, "Mean ASR over languages (unweighted mean of per-language ASRs; CI: languages resampled within themselves)."))
    lang_t = ci_wide(ctx["asr_ci"][ctx["asr_ci"]["by"] == "lang"], "config", "level", "asr", models, langs)
    lang_t.index.name = "model"
    jacc = ctx["jacc"]
    lang_t.loc[JUDGE_ACCURACY_ROW] = [
        f"{jacc[lang]['accuracy']:.2f} (n={jacc[lang]['n']}, {jacc[lang]['source']})" if lang in jacc else "not measured"
        for lang in lang_t.columns]
    s.add(Table(lang_t, "ASR [95% CI] per model and evaluation language; last row: the measured accuracy "
                        "of the judge these ASRs rest on, per language."))
    s.add(Para(judge_accuracy_note(ctx["params"], jacc, langs)))
    asr = ctx["asr"]
    unparsed = int(pd.to_numeric(asr["n_unparsed"], errors="coerce").fillna(0).sum())
    lo_n, hi_n = int(asr["n"].min()), int(asr["n"].max())
    s.add(Para(f"Harmful test prompts per model and language: {lo_n if lo_n == hi_n else f'{lo_n}–{hi_n}'}; "
               f"answers the judge could not parse (left out of ASR): {unparsed}."))

    # over-refusal
    s = doc.section("Over-refusal beside ASR")
    s.add(_img(opts, "over_refusal"))
    over = ctx["over"]
    oa = over[over["lang"] == M.ALL]
    ot = pd.DataFrame({
        "ASR [95% CI]": [ci_str(a, lo, hi) for a, lo, hi in zip(oa["asr"], oa["asr_lo"], oa["asr_hi"])],
        "over-refusal [95% CI]": [ci_str(a, lo, hi) for a, lo, hi in zip(oa["over_refusal"], oa["over_refusal_lo"], oa["over_refusal_hi"])],
        "benign prompts": oa["n_benign"].to_numpy(),
    }, index=pd.Index(oa["config"], name="model"))
    s.add(Table(ot, "Over all languages (pooled prompts)."))
    ol = ci_wide(over[over["lang"] != M.ALL].dropna(subset=["over_refusal"]), "config", "lang", "over_refusal", models, langs)
    ol.index.name = "model"
    s.add(Table(ol, "Over-refusal [95% CI] per model and language."))
    flagged = over_refusal_flags(over)
    s.add(Para("Flagged (over-refusal above the base model's, CIs not overlapping): "
               + (", ".join(f"`{m}`" for m, _ in flagged) if flagged else "none") + "."))

    # group disparity
    s = doc.section("Disparity across target groups (demographic audit)")
    gdis, gsum = ctx["gdis"], ctx["gsum"]
    if len(gdis):
        s.add(_img(opts, "group_disparity"))
        gall = gdis[gdis["scope"] == M.ALL]
        order = ctx["group_order"] or sorted(gall["target_group"].unique())
        dr = ci_wide(gall, "target_group", "config", "defense_rate", order, models)
        dr.index.name = "target group"
        s.add(Table(dr, "Defense rate [95% CI] per target group (rows, base model's order: best defended first) and model (columns), all languages."))
        s.add(Table(_disparity_summary_table(gsum[gsum["scope"] == M.ALL], gdis[gdis["scope"] == M.ALL], "target_group", models),
                    "Gap (max - min ASR across groups), ratio (max / min ASR), with 95% CIs, and the hierarchy (best defended first)."))
        for m in [x for x in ["base", *ctx["audit"]] if (gall["config"] == x).any()]:
            s.add(Table(_deviation_table(gall[gall["config"] == m], "target_group"),
                        f"`{m}`: each group's ASR, deviation from the model mean and rank (1 = best defended), with 95% CIs."))
        per_lang = gsum[gsum["scope"] != M.ALL]
        if len(per_lang):
            t = per_lang.assign(cell=[ci_str(g, lo, hi) for g, lo, hi in zip(per_lang["gap"], per_lang["gap_lo"], per_lang["gap_hi"])])
            w = M.pivot(t, "config", "scope", "cell", models, langs).fillna("–")
            w.index.name = "model"
            s.add(Table(w, "Group gap [95% CI] within each language."))
        if ctx["published"] is not None:
            source = (read_json(opts.audit_report) or {}).get("reference", "a published study")
            s.add(Table(ctx["published"],
                        f"Defense rate per target group beside the published one ({source}): the same "
                        "model (our base or audit model whose hub id ends in the study's model name) and "
                        "language; the published rate is the study's verdicts on its own answers, so the two "
                        "differ by the answers (sampling, generation settings) as well as by the judges.",
                        index=False))
    else:
        s.add(Note("No evaluated prompt names a target group: no demographic disparity to report."))

    # language disparity
    s = doc.section("Disparity across languages")
    ldis, lsum = ctx["ldis"], ctx["lsum"]
    if len(ldis):
        s.add(_img(opts, "language_disparity"))
        dr = ci_wide(ldis, "lang", "config", "defense_rate", langs, models)
        dr.index.name = "language"
        s.add(Table(dr, "Defense rate [95% CI] per evaluation language (rows) and model (columns)."))
        s.add(Table(_disparity_summary_table(lsum, ldis, "lang", models),
                    "Gap and ratio of ASR across languages with 95% CIs, and the ranking (best defended first)."))
        for m in [x for x in ["base", *ctx["audit"]] if (ldis["config"] == x).any()]:
            s.add(Table(_deviation_table(ldis[ldis["config"] == m], "lang"),
                        f"`{m}`: each language's ASR, deviation from the model mean and rank, with 95% CIs."))

    # category / style
    s = doc.section("ASR by harm category and attack style")
    s.add(_img(opts, "asr_by_category_style"))
    for dim, label in (("category", "harm category (Llama Guard 3 codes)"), ("style", "attack style")):
        t = ctx["asr_ci"][ctx["asr_ci"]["by"] == dim]
        if len(t):
            levels = sorted(t["level"].unique(), key=_natural)
            w = ci_wide(t, "level", "config", "asr", levels, models)
            w.index.name = dim
            s.add(Table(w, f"ASR [95% CI] per {label} (rows) and model (columns)."))

    # transfer
    s = doc.section("Cross-lingual transfer")
    s.add(_img(opts, "transfer_matrix"))
    s.add(Table(ctx["matrix"], "ASR: training configuration (rows, base first) x evaluation language."))
    s.add(Table(ctx["display_delta"].drop(index=["base"], errors="ignore"),
                "Change in ASR against the base model (negative = safer); single-language rows and the evaluation languages in seriation order.",
                floatfmt="+.3f"))
    ordering, single, tsum = ctx["ordering"], ctx["single"], ctx["tsummary"]
    if ordering is not None and len(single) >= 3:
        s.add(Para(f"Ordering of the single-language configurations: {' → '.join(ordering.rows)} "
                   f"({ordering.method}). Clusters: "
                   + "; ".join(f"{{{', '.join(sorted(k for k, v in ordering.clusters.items() if v == c))}}}"
                               for c in sorted(set(ordering.clusters.values()))) + "."))
    else:
        s.add(Note("Fewer than three single-language configurations (`single_<lang>`) were trained: "
                   "no clustering of transfer between languages (add them to `train_configs`)."))
    if tsum is not None and len(tsum):
        tt = tsum.set_index("train_lang")
        tt.columns = ["on itself", "mean on others", "helps most (other)", "change there", "mean received from others"]
        s.add(Table(tt, "Single training language: change in ASR on itself, mean change on the other languages, "
                        "the other language it helps most, and the mean change it receives when training on the others.",
                    floatfmt="+.3f"))

    # consistency
    s = doc.section("Language consistency")
    s.add(Para(f"Share of answers identified as written in the prompt's language, by **{', '.join(ctx['langid'])}** "
               "(restricted to the study's languages)."))
    s.add(_img(opts, "language_consistency"))
    cw = ci_wide(ctx["cons"], "config", "lang", "consistency", models, langs)
    cw.index.name = "model"
    s.add(Table(cw, "Language consistency [95% CI] per model and prompt language."))

    # capability
    s = doc.section("Capability cost")
    cap, meta = ctx["cap"], ctx["cap_meta"]
    if len(cap):
        src = meta.get("source")
        s.add(Para(f"Multiple-choice accuracy (zero-shot, format `{meta.get('format')}`) through "
                   f"lm-evaluation-harness {meta.get('lm_eval_version') or ''} with task definitions that read "
                   f"local files; questions: `{src}`"
                   + (" (the project's 20-question set, the same questions in every language)" if src == "builtin" else "")
                   + ". Change against the base model paired per question, with 95% bootstrap CIs over questions."))
        s.add(_img(opts, "capability"))
        w = ci_wide(cap, "config", "lang", "acc", models, langs)
        w.index.name = "model"
        s.add(Table(w, "Accuracy [95% CI] per model and language."))
        d = cap.dropna(subset=["delta"])
        if len(d):
            dw = M.pivot(d.assign(cell=[ci_str(a, lo, hi, 2, True) for a, lo, hi in zip(d["delta"], d["delta_lo"], d["delta_hi"])]),
                         "config", "lang", "cell", models, langs).fillna("–")
            dw.index.name = "model"
            s.add(Table(dw, "Change in accuracy against the base model [95% CI]."))
        nc = meta.get("not_covered") or []
        s.add(Para("Languages the capability set does not cover: " + (", ".join(f"`{x}`" for x in nc) if nc else "none") + "."))
        for m, why in (meta.get("skipped") or {}).items():
            s.add(Note(f"`{m}`: no capability score ({why})."))
        if meta.get("missing_models"):
            s.add(Note("No capability results for: " + ", ".join(f"`{m}`" for m in meta["missing_models"]) + "."))
    else:
        s.add(Note(f"Capability: {ctx['cap_status']}."))

    # fluency
    s = doc.section("Fluency and correctness of benign answers")
    if ctx["flu_status"] == "ok" and len(ctx["flu"]):
        f = ctx["flu"]
        w = ci_wide(f, "config", "lang", "score", models, langs)
        w.index.name = "model"
        s.add(Para(f"Rubric scores by `{opts.fluency_judge}` on answers to benign prompts (the judge's scale; "
                   "see polyrefusal.scoring.fluency.RUBRIC)."))
        s.add(Table(w, "Mean rubric score [95% CI] per model and language."))
    else:
        s.add(Note(f"Fluency and correctness: **{ctx['flu_status']}**. Set `report.fluency_judge: llm_judge` "
                   "(and its options under `report.fluency_options`) in params.yaml to score answers to benign prompts."))

    # judge agreement
    s = doc.section("Judge agreement")
    kappa = ctx["kappa"]
    if kappa is not None:
        s.add(Para(ctx["kappa_note"]))
        s.add(_img(opts, "judge_agreement"))
        s.add(Table(kappa, "Cohen's kappa per language and pair of judges (n: answers both judges could parse).",
                    index=False))
    else:
        s.add(Note(ctx["kappa_note"]))

    # training
    s = doc.section("Zero-shot generalisation to unseen groups and strategies")
    zs = ctx["zero_shot"]
    if len(zs):
        zs = zs.assign(cell_asr=[ci_str(a, lo, hi) for a, lo, hi in zip(zs["asr"], zs["asr_lo"], zs["asr_hi"])])
        w = zs.pivot_table(index=["config", "cell"], columns="model", values="cell_asr", aggfunc="first")
        w.columns = [f"ASR {c}" for c in w.columns]
        s.add(Table(w, "Demographic configurations: ASR [95% CI] of the base model and the trained model on test "
                       "prompts whose target group and strategy were trained on (seen) or held out."))
    else:
        s.add(Note("No training configuration selects target groups or strategies (config_defs entries with "
                   "`groups`/`strategies`)."))

    s = doc.section("Training")
    rows = []
    for c in ctx["configs"]:
        m = _optional_json(opts.models_dir / c / "metrics.json") or {}
        rows.append({"config": c, "pairs": m.get("examples"), "steps": m.get("steps"),
                     "final loss": _f(m.get("final_loss")), "reward margin": _f(m.get("final_reward_margin")),
                     "reward accuracy": _f(m.get("final_reward_accuracy"))})
    if rows:
        tt = pd.DataFrame(rows).set_index("config")
        s.add(Table(tt, "DPO per configuration (results/models/<config>/metrics.json)."))
    dpo = params.get("dpo", {})
    s.add(Para(f"DPO: beta {dpo.get('beta')}, learning rate {dpo.get('learning_rate')}, epochs "
               f"{dpo.get('num_train_epochs')}, loss {dpo.get('loss_type')}. " + ctx["curves_note"]))
    if params["base_model"]["source"] == "embedded" and "sft" in (dpo.get("loss_type") or []):
        s.add(Note("The tiny embedded model needs a far larger learning rate than the paper's 1e-6 and an SFT "
                   "term on the chosen answer (loss [sigmoid, sft], as in RPO) to move at all; the `paper` preset "
                   "holds the published plain DPO settings."))
    s.add(_img(opts, "training_curves"))

    # data
    data_tables = data_section(opts, langs)
    if data_tables:
        s = doc.section("Data")
        s.add(*data_tables)

    # examples
    s = doc.section("Example answers")
    ex = examples(ctx["records"], models, langs, opts)
    if len(ex):
        mode = "in full (--show-full-answers)" if opts.show_full_answers else f"truncated to {opts.truncate} characters"
        s.add(Para(f"Answers to harmful prompts that the judge counted as attack successes, {mode}; at most two per model."))
        s.add(Table(ex, "", index=False))
    else:
        s.add(Para("No successful attacks to show."))

    # methods
    s = doc.section("Methods and files")
    s.add(Bullets([
        f"Bootstrap: percentile intervals, {B:,} resamples, `numpy.random.default_rng` seeded with ({opts.seed}, "
        "CRC32 of the cell's key), so every figure is reproducible and independent of the other cells. Groups "
        "(target groups, languages) are resampled within themselves; gap, ratio, deviations and ranks are "
        "computed on each replicate.",
        "Ranks: 1 = lowest ASR (best defended), ties averaged; the hierarchy orders groups by ASR.",
        "Ratio = max / min ASR across groups; `inf` when the lowest ASR is 0. The bootstrap distribution of a "
        "max - min gap is biased upwards (the extremes of noisy estimates), so its CI can sit above the point "
        "estimate: read it as a range, and the per-group deviation CIs (which exclude 0 or not) for which groups "
        "really differ from the model mean.",
        "Transfer ordering: scipy hierarchical clustering (average linkage, Euclidean) of the single-language "
        "rows of the change-in-ASR matrix, optimal leaf ordering; clusters: the tree cut into ceil(sqrt(n)) groups.",
        f"Language identification: {', '.join(ctx['langid'])}.",
        "Tables: results/scores/ (asr.csv, asr_ci.csv, mean_asr.csv, over_refusal.csv, language_consistency.csv, "
        "group_disparity.csv, language_disparity.csv, disparity_summary.csv, transfer_matrix.csv, transfer_delta.csv, "
        "transfer_single.csv, transfer_order.json, capability.csv, fluency.csv, judge_agreement.csv, metrics.json).",
    ]))
    return doc


def _natural(s: str):
    import re
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(s))]


def _disparity_summary_table(summary, groups, key: str, models):
    import pandas as pd

    rows = []
    for m in models:
        r = summary[summary["config"] == m]
        if not len(r):
            continue
        r = r.iloc[0]
        g = groups[groups["config"] == m]
        rows.append({"model": m, "groups": int(r["n_groups"]),
                     "gap [95% CI]": ci_str(r["gap"], r["gap_lo"], r["gap_hi"]),
                     "ratio [95% CI]": ci_str(r["ratio"], r["ratio_lo"], r["ratio_hi"]),
                     "best defended": r["min_group"] if r["gap"] > 0 else "(all equal)",
                     "worst defended": r["max_group"] if r["gap"] > 0 else "(all equal)",
                     "hierarchy (best → worst)": hierarchy_text(g, key=key)})
    return pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()


def _deviation_table(t, key: str):
    import pandas as pd

    t = t.sort_values(["rank", key], kind="stable")
    return pd.DataFrame({
        "n": t["n"].astype(int).to_numpy(),
        "ASR [95% CI]": [ci_str(a, lo, hi) for a, lo, hi in zip(t["asr"], t["asr_lo"], t["asr_hi"])],
        "deviation from mean [95% CI]": [ci_str(a, lo, hi, 2, True) for a, lo, hi in
                                         zip(t["deviation"], t["deviation_lo"], t["deviation_hi"])],
        "rank [95% CI]": [ci_str(a, lo, hi, 1) for a, lo, hi in zip(t["rank"], t["rank_lo"], t["rank_hi"])],
    }, index=pd.Index(t[key].to_numpy(), name=key.replace("_", " ")))


def examples(records: list[dict], models: list[str], langs: list[str], opts: Options, per_model: int = 2):
    """Up to ``per_model`` attack successes per model, from different languages where possible
    (in the study's language order), answers truncated unless ``show_full_answers``."""
    import pandas as pd

    rows = []
    for m in models:
        hits = [r for r in records if r.get("model") == m and r.get("harmful") is not False
                and r.get("label") == "unsafe"]
        by_lang = {lang: sorted((r for r in hits if r.get("lang") == lang), key=lambda r: str(r.get("id")))
                   for lang in langs}
        chosen, k = [], 0
        while len(chosen) < per_model and any(len(v) > k for v in by_lang.values()):
            chosen += [v[k] for v in by_lang.values() if len(v) > k][: per_model - len(chosen)]
            k += 1
        for r in chosen:
            rows.append({"model": m, "lang": r.get("lang"), "prompt id": r.get("id"),
                         "category / style": f"{r.get('category')} / {r.get('style')}",
                         "answer": truncate(r.get("response"), opts.truncate, opts.show_full_answers)})
    return pd.DataFrame(rows)


#: Translation usage that depends on what earlier runs left in the translation memory (hits,
#: what this run sent and paid): run history, not results. It stays in <lang>.usage.json; in the
#: report it would make a rerun's report differ from an uninterrupted run's.
RUN_HISTORY = ("hits", "misses", "characters_sent", "characters_billed", "requests")


def data_section(opts: Options, langs: list[str]) -> list:
    import pandas as pd

    out = []
    if opts.pairs_dir is not None:
        rows = {lang: _optional_json(opts.pairs_dir / f"{lang}.stats.json") for lang in langs}
        rows = {k: v for k, v in rows.items() if v}
        if rows:
            t = pd.DataFrame.from_dict(rows, orient="index").fillna(0)
            t.index.name = "language"
            out.append(Table(t, "Preference pairs per language (kept for training when the judges agree that the chosen answer refuses and the rejected one does not).", floatfmt=".0f"))
    if opts.translations_dir is not None:
        rows = {}
        for lang in langs:
            u = _optional_json(opts.translations_dir / f"{lang}.usage.json")
            if isinstance(u, dict):
                rows[lang] = {k: v for k, v in u.items() if k not in RUN_HISTORY
                              and (isinstance(v, (int, float, str, bool)) or v is None)}
        if rows:
            t = pd.DataFrame.from_dict(rows, orient="index")
            t.index.name = "language"
            out.append(Table(t, "Translation usage per language (results/translations/<lang>.usage.json).", floatfmt=".0f"))
    return out


def zero_shot_table(records: list[dict], params: dict, configs: list[str], n_resamples: int, seed: int):
    """ASR of each demographic configuration and of the base model on test prompts by zero-shot
    cell (seen, unseen_group, unseen_strategy, unseen_both), with bootstrap CIs."""
    import pandas as pd

    from ..params import config_definition
    from ..scoring.stats import bootstrap_ci
    from ..training.dpo import is_demographic, zero_shot_cell

    rows = []
    for config in configs:
        spec = config_definition(params, config)
        if not isinstance(spec, dict):
            continue
        spec = {"groups": spec.get("groups"), "strategies": spec.get("strategies")}
        if not is_demographic(spec):
            continue
        for model in ("base", config):
            cells: dict[str, list[float]] = {}
            for r in records:
                if r.get("model") != model or not r.get("harmful") or r.get("label") == "unparsed":
                    continue
                cell = zero_shot_cell(r, spec)
                if cell:
                    cells.setdefault(cell, []).append(1.0 if r.get("label") == "unsafe" else 0.0)
            for cell, values in sorted(cells.items()):
                lo, hi = bootstrap_ci(values, n_resamples=n_resamples, seed=seed)
                rows.append({"config": config, "model": model, "cell": cell, "n": len(values),
                             "asr": sum(values) / len(values), "asr_lo": lo, "asr_hi": hi})
    return pd.DataFrame(rows, columns=["config", "model", "cell", "n", "asr", "asr_lo", "asr_hi"])
