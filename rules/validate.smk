# params.yaml is validated when the Snakefile is parsed (nothing runs on a bad file). This rule
# only writes the marker that DVC's first stage, `validate`, declares: every DVC stage depends
# on it, so `dvc repro` stops on a bad params file before it deletes any stage's outputs, and
# the end-of-run `dvc commit` finds the marker in place. It also writes params.yaml split by key
# (logs/params/KEY.json): DVC's stages depend on those files for their params keys (PARAMS in
# common.smk); Snakemake's rules keep their params rerun triggers on the same keys.
from polyrefusal.params import SLICE_DIR


rule validate:
    input:
        params="params.yaml",
        code=code("validate"),
    output:
        marker="logs/params.valid",
        slices=directory(SLICE_DIR),
    log:
        "logs/validate.log",
    benchmark:
        "logs/benchmarks/validate.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal validate --params {input.params} --slices {output.slices} {output.marker} 2> {log}"
