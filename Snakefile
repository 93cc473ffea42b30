# polyrefusal: the whole study as one declarative DAG.
#   snakemake --cores all                 # the embedded default, end to end
#   snakemake --cores all --use-conda     # per-stage conda environments (envs/)
#   snakemake --profile profiles/slurm    # on a cluster
# params.yaml is the config, read and validated by the project's own loader (the one every
# `polyrefusal` command uses); dvc.yaml declares the same stages.

from snakemake.utils import min_version

from polyrefusal.params import snakemake_config, snakemake_onstart

min_version("8.0")

# params.yaml validated at parse time (see snakemake_config): a bad file stops planning with its
# one-line error and exit status 2, before any job starts, so no output is deleted. The project's
# loader replaces Snakemake's `configfile:` (YAML 1.1 numbers, duplicate keys kept silently).
config.update(snakemake_config(config))


# The dpo: block through TRL's DPOConfig once the DAG is planned, before the first job (not on a
# dry run: planning does not pay TRL's import).
onstart:
    snakemake_onstart(config)


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/validate.smk"
include: "rules/corpus.smk"
include: "rules/rainbow.smk"
include: "rules/translate.smk"
include: "rules/respond.smk"
include: "rules/judge.smk"
include: "rules/pairs.smk"
include: "rules/split.smk"
include: "rules/test_set.smk"
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
        rules.validate.output,
    default_target: True
