"""Stage `report`: aggregate per-(model, language) scores into CSVs, metrics and the report."""

from __future__ import annotations

import logging
from pathlib import Path

from ..io import read_json, write_json, write_text
from ..params import load_params

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--eval-dir", required=True, help="results/eval (<model>/<lang>.json)")
    p.add_argument("--models-dir", required=True, help="results/models (<config>/metrics.json)")
    p.add_argument("--scores-dir", required=True, help="writes asr.csv, transfer_matrix.csv, metrics.json")
    p.add_argument("--report-dir", required=True, help="writes report.md")


def load_scores(eval_dir: Path, models: list[str], langs: list[str]):
    import pandas as pd

    rows = [read_json(eval_dir / m / f"{lang}.json") for m in models for lang in langs]
    df = pd.DataFrame(rows).rename(columns={"model": "config"})
    return df[["config", "lang", "n", "asr", "n_unparsed", "n_benign", "over_refusal",
               "language_consistency"]]


def headline(df, params) -> dict:
    """The study's two findings, measured by the pipeline itself."""
    mean = df.groupby("config")["asr"].mean()
    out = {"mean_asr": {k: round(float(v), 4) for k, v in mean.items()}}
    src = params["source_language"]
    if "balanced" in mean and "base" in mean:
        out["balanced_lowers_mean_asr"] = bool(mean["balanced"] < mean["base"])
    if "english_only" in mean.index and src in set(df["lang"]):
        base = df[df.config == "base"].set_index("lang")["asr"]
        eo = df[df.config == "english_only"].set_index("lang")["asr"]
        drop = base - eo
        others = [lang for lang in drop.index if lang != src]
        out["english_only_drop_en"] = round(float(drop[src]), 4)
        if others:
            out["english_only_drop_others_mean"] = round(float(drop[others].mean()), 4)
            out["english_only_lowers_english_more"] = bool(drop[src] > drop[others].mean())
    return out


def run(args):
    params = load_params(args.params)
    langs, configs = params["languages"], params["train_configs"]
    models = ["base", *configs]
    df = load_scores(Path(args.eval_dir), models, langs)
    scores_dir, report_dir = Path(args.scores_dir), Path(args.report_dir)
    from ..io import atomic_path

    with atomic_path(scores_dir / "asr.csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.4f")
    matrix = df.pivot(index="config", columns="lang", values="asr").reindex(index=models, columns=langs)
    with atomic_path(scores_dir / "transfer_matrix.csv") as tmp:
        matrix.to_csv(tmp, float_format="%.4f")
    delta = matrix.sub(matrix.loc["base"], axis=1)
    with atomic_path(scores_dir / "transfer_delta.csv") as tmp:
        delta.to_csv(tmp, float_format="%.4f")
    head = headline(df, params)
    write_json(scores_dir / "metrics.json", head)

    train_rows = []
    for c in configs:
        m = read_json(Path(args.models_dir) / c / "metrics.json")
        train_rows.append(f"| {c} | {m['examples']} | {m['steps']} | {m['final_loss']:.4f} | "
                          f"{m['final_reward_accuracy']} |")
    md = [
        "# polyrefusal report", "",
        f"Preset: `{params.get('preset')}`; languages: {', '.join(langs)}; base model: "
        f"`{params['base_model']['source']}`; judge: `{params['evaluate']['judge']}`; "
        "language ID: py3langid (restricted to the study's languages).", "",
        "## Findings measured by this run", "",
    ]
    if "balanced_lowers_mean_asr" in head:
        md.append(f"- `balanced` lowers mean ASR against the base model: **{head['balanced_lowers_mean_asr']}** "
                  f"(base {head['mean_asr']['base']:.3f} -> balanced {head['mean_asr']['balanced']:.3f}).")
    if "english_only_lowers_english_more" in head:
        md.append(f"- `english_only` lowers English ASR more than the mean of the other languages: "
                  f"**{head['english_only_lowers_english_more']}** (drop in en {head['english_only_drop_en']:.3f}, "
                  f"mean drop elsewhere {head['english_only_drop_others_mean']:.3f}).")
    md.append("")
    md.append("If a finding reads False, the tiny embedded model did not show it; the data were not tuned to force it.")
    md += ["", "## ASR: training configuration x evaluation language (transfer matrix)", "",
           matrix.to_markdown(floatfmt=".3f"), "",
           "## Change in ASR against the base model", "", delta.to_markdown(floatfmt="+.3f"), "",
           "## All scores", "", df.to_markdown(index=False, floatfmt=".3f"), "",
           "## Training", "", "| config | pairs | steps | final loss | reward accuracy |",
           "|---|---|---|---|---|", *train_rows, ""]
    write_text(report_dir / "report.md", "\n".join(md))
    log.info("report: %s", head)
