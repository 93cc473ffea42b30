rule corpus:
    input:
        include=config["corpus"].get("include") or [],
        code=code("corpus"),
    output:
        "results/corpus/source.parquet",
    params:
        **tracked("corpus"),  # rerun triggers only: PARAMS in polyrefusal/stage_inputs.py
    log:
        "logs/corpus.log",
    benchmark:
        "logs/benchmarks/corpus.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal corpus {output} 2> {log}"
