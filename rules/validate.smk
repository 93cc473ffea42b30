# params.yaml is validated when the Snakefile is parsed (nothing runs on a bad file). This rule
# only writes the marker that DVC's first stage, `validate`, declares: every DVC stage depends
# on it, so `dvc repro` stops on a bad params file before it deletes any stage's outputs, and
# the end-of-run `dvc commit` finds the marker in place.
rule validate:
    input:
        params="params.yaml",
        code=code("validate"),
    output:
        "logs/params.valid",
    log:
        "logs/validate.log",
    benchmark:
        "logs/benchmarks/validate.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal validate --params {input.params} {output} 2> {log}"
