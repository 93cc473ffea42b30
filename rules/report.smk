# The report: every metric with 95% bootstrap CIs as tables (results/scores/), plots
# (results/report/plots/, in `snakemake --report` with the captions under report/), and
# results/report/report.{md,html} (the HTML self-contained).
PLOT_CATEGORIES = {
    "asr_heatmap": "1. Safety",
    "over_refusal": "1. Safety",
    "asr_by_category_style": "1. Safety",
    "group_disparity": "2. Disparity",
    "language_disparity": "2. Disparity",
    "transfer_matrix": "3. Transfer",
    "language_consistency": "4. Language and capability",
    "capability": "4. Language and capability",
    "judge_agreement": "5. Judges and training",
    "training_curves": "5. Judges and training",
}
METRICS = "results/scores/metrics.json"
# How DVC shows some of the report's outputs (read by `polyrefusal dvc-yaml`): `metrics` (dvc
# metrics show/diff) and `plots` (dvc plots show, with each plot's options); the others are
# plain `outs`.
DVC_METRICS = [METRICS]
DVC_PLOTS = {
    "results/scores/mean_asr.csv": {"template": "bar_horizontal", "x": "mean_asr", "y": "config",
                                    "title": "Mean ASR over languages per model (95% CI in the file)"},
    **{f"results/report/plots/{name}.png": None for name in PLOT_CATEGORIES},
}


rule report:
    input:
        evaluations=expand("results/eval/{model}", model=MODELS),
        models=expand("results/models/{config}", config=CONFIGS),
        capability=expand("results/capability/{model}.json", model=MODELS),
        pairs=expand("results/pairs/{lang}.stats.json", lang=LANGS),
        usage=expand("results/translations/{lang}.usage.json", lang=LANGS),
        code=code("report"),
    output:
        report="results/report/report.md",
        html=report("results/report/report.html", caption="../report/report_html.rst", category="0. Report"),
        asr="results/scores/asr.csv",
        transfer="results/scores/transfer_matrix.csv",
        delta="results/scores/transfer_delta.csv",
        metrics=METRICS,
        tables=multiext(
            "results/scores/",
            "asr_ci.csv",
            "mean_asr.csv",
            "group_disparity.csv",
            "language_disparity.csv",
            "disparity_summary.csv",
            "over_refusal.csv",
            "language_consistency.csv",
            "transfer_single.csv",
            "transfer_order.json",
            "capability.csv",
            "fluency.csv",
            "judge_agreement.csv",
            "zero_shot.csv",
        ),
        plots=[
            report(f"results/report/plots/{name}.png", caption=f"../report/{name}.rst", category=cat)
            for name, cat in PLOT_CATEGORIES.items()
        ],
    params:
        **tracked("report"),  # rerun triggers only: PARAMS in common.smk
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
