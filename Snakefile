# polyrefusal: the whole study as one declarative DAG.
#   snakemake --cores all                 # the embedded default, end to end
#   snakemake --cores all --use-conda     # per-stage conda environments (envs/)
#   snakemake --profile profiles/slurm    # on a cluster
# params.yaml is the config (validated against the schema); dvc.yaml declares the same stages.

from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "params.yaml"


validate(config, "src/polyrefusal/schemas/params.schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/rainbow.smk"
include: "rules/translate.smk"
include: "rules/respond.smk"
include: "rules/judge.smk"
include: "rules/pairs.smk"
include: "rules/split.smk"
include: "rules/base_model.smk"
include: "rules/audit.smk"
include: "rules/train.smk"
include: "rules/generate.smk"
include: "rules/evaluate.smk"
include: "rules/capability.smk"
include: "rules/report.smk"
include: "rules/dvc.smk"


rule all:
    input:
        # every declared output, intermediate ones included: see every_output() (rules/common.smk)
        every_output(),
        "results/report/report.md",
        "results/report/report.html",
        "results/scores/asr.csv",
        "results/scores/transfer_matrix.csv",
        "results/rainbow/generated.parquet",
        "logs/dvc_commit.done",
    default_target: True
