# Record every output in dvc.lock once Snakemake is done, so `dvc status` reports the
# pipeline up to date and `dvc repro` reruns nothing (both tools hash the same files).
# `polyrefusal sync --commit` is `dvc commit --force` with params.yaml parsed once rather than
# once per stage (about 3x faster for the widest DAGs).
rule dvc_commit:
    input:
        rules.report.output,
        rules.rainbow.output,
    output:
        touch("logs/dvc_commit.done"),
    log:
        "logs/dvc_commit.log",
    benchmark:
        "logs/benchmarks/dvc_commit.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal sync --commit 2> {log}"
