# Record every output in dvc.lock once Snakemake is done, so `dvc status` reports the
# pipeline up to date and `dvc repro` reruns nothing (both tools hash the same files).
# `polyrefusal sync --commit --produced` records the stages that changed, and only outputs
# that a Snakemake job made and nobody changed since (a file edited outside the pipeline is
# listed and fails this job; see stages/sync.py); dvc.lock is written once.
rule dvc_commit:
    input:
        rules.report.output,
        rules.rainbow.output,
        rules.validate.output,
    output:
        touch("logs/dvc_commit.done"),
    log:
        "logs/dvc_commit.log",
    benchmark:
        "logs/benchmarks/dvc_commit.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal sync --commit --produced 2> {log}"
