# The report: every metric with 95% bootstrap CIs as tables (results/scores/), plots
# (results/report/plots/, in `snakemake --report` with the captions under report/), and
# results/report/report.{md,html} (the HTML self-contained).
from polyrefusal.report.outputs import FIGURES, METRICS as METRICS_FILE, TABLES

METRICS = f"results/scores/{METRICS_FILE}"
# How DVC shows some of the report's outputs (read by `polyrefusal dvc-yaml`): `metrics` (dvc
# metrics show/diff) and `plots` (dvc plots show, with each plot's options); the others are
# plain `outs`.
DVC_METRICS = [METRICS]
DVC_PLOTS = {
    "results/scores/mean_asr.csv": {"template": "bar_horizontal", "x": "mean_asr", "y": "config",
                                    "title": "Mean ASR over languages per model (95% CI in the file)"},
    **{f"results/report/plots/{f.name}.png": None for f in FIGURES},
}


rule report:
    input:
        evaluations=expand("results/eval/{model}", model=MODELS),
        models=expand("results/models/{config}", config=CONFIGS),
        capability=expand("results/capability/{model}.json", model=MODELS),
        pairs=expand("results/pairs/{lang}.stats.json", lang=LANGS),
        usage=expand("results/translations/{lang}.usage.json", lang=LANGS),
        # a reviewed human audit (params report.judge_audit), when the study has one
        audit=[config["report"]["judge_audit"]] if (config.get("report") or {}).get("judge_audit") else [],
        code=code("report"),
    output:
        report="results/report/report.md",
        html=report("results/report/report.html", caption="../report/report_html.rst", category="0. Report"),
        asr="results/scores/asr.csv",
        transfer="results/scores/transfer_matrix.csv",
        delta="results/scores/transfer_delta.csv",
        metrics=METRICS,
        # the score files not named above (polyrefusal.report.outputs.TABLES)
        tables=[f"results/scores/{t}" for t in TABLES if t not in ("asr.csv", "transfer_matrix.csv",
                                                                   "transfer_delta.csv", METRICS_FILE)],
        plots=[
            report(f"results/report/plots/{f.name}.png", caption=f"../report/{f.name}.rst", category=f.category)
            for f in FIGURES
        ],
    params:
        **tracked("report"),  # rerun triggers only: PARAMS in polyrefusal/stage_inputs.py
    log:
        "logs/report.log",
    benchmark:
        "logs/benchmarks/report.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal report --eval-dir results/eval --models-dir results/models "
        "--scores-dir results/scores --report-dir results/report --capability-dir results/capability "
        "--pairs-dir results/pairs --translations-dir results/translations 2> {log}"
