# Record every output in dvc.lock once Snakemake is done, so `dvc status` reports the
# pipeline up to date and `dvc repro` reruns nothing (both tools hash the same files).
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
        "dvc commit --force --quiet > {log} 2>&1"
