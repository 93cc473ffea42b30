# params.yaml is validated when the Snakefile is parsed (nothing runs on a bad file). This rule
# writes the marker that DVC's first stage, `validate`, declares, so `dvc repro` stops on a bad
# params file before it deletes any stage's outputs. It also writes what DVC's other stages
# depend on in place of their code and params keys (polyrefusal.stage_inputs): each rule's
# input digest (logs/inputs/RULE.json: its code files' md5 and its params values) and
# params.yaml split by key (logs/params/KEY.json, for keys that vary by job). It reads every
# rule's code, so an edit of any reruns it (in a second), and the digests are up to date
# whenever the jobs that read that code rerun. Snakemake's rules keep their own code inputs and
# params rerun triggers.
from polyrefusal.params import SLICE_DIR
from polyrefusal.stage_inputs import INPUTS_DIR


rule validate:
    input:
        params="params.yaml",
        code=code("validate"),
    output:
        marker="logs/params.valid",
        slices=directory(SLICE_DIR),
        inputs=directory(INPUTS_DIR),
    log:
        "logs/validate.log",
    benchmark:
        "logs/benchmarks/validate.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal validate --params {input.params} --slices {output.slices} --inputs {output.inputs} "
        "{output.marker} 2> {log}"
