rule report:
    input:
        scores=expand("results/eval/{model}/{lang}.json", model=MODELS, lang=LANGS),
        models=expand("results/models/{config}", config=CONFIGS),
    output:
        report="results/report/report.md",
        asr="results/scores/asr.csv",
        transfer="results/scores/transfer_matrix.csv",
        delta="results/scores/transfer_delta.csv",
        metrics="results/scores/metrics.json",
    log:
        "logs/report.log",
    benchmark:
        "logs/benchmarks/report.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal report --eval-dir results/eval --models-dir results/models "
        "--scores-dir results/scores --report-dir results/report 2> {log}"
