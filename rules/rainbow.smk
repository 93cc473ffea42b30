# Rainbow Teaming prompt generation (optional: `polyrefusal preset rainbow` turns it on). Always
# in the DAG so that Snakemake and DVC name the same artifacts: with rainbow.enabled false the
# command writes an empty corpus file and loads no model. The archive directory is resumable
# state (like the caches): not declared as an output, so Snakemake never deletes it.
rule rainbow:
    input:
        models=rainbow_models,
        code=code("rainbow"),
    output:
        "results/rainbow/generated.parquet",
    params:
        gpus=gpus("rainbow"),
        **tracked("rainbow"),  # rerun triggers only: PARAMS in polyrefusal/stage_inputs.py
        archive="results/rainbow/archive",
    threads: 1
    resources:
        gpu=gpus("rainbow"),
        mem_mb=mem_mb("rainbow"),
    log:
        "logs/rainbow.log",
    benchmark:
        "logs/benchmarks/rainbow.tsv"
    conda:
        "../envs/train.yaml"
    shell:
        "python -m polyrefusal.gpu_pool --gpus {params.gpus} -- "
        "polyrefusal rainbow --params params.yaml {params.archive} {output} 2> {log}"
