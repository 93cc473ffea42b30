rule respond:
    input:
        translations="results/translations/{lang}.parquet",
        code=code("respond"),
    output:
        "results/responses/{lang}.parquet",
    params:
        gpus=gpus("respond"),
        backend=config["respond"]["backend"],
        **tracked("respond"),  # rerun triggers only: PARAMS in polyrefusal/stage_inputs.py
    threads: 1
    resources:
        gpu=gpus("respond"),
        mem_mb=mem_mb("respond"),
    log:
        "logs/respond/{lang}.log",
    benchmark:
        "logs/benchmarks/respond/{lang}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "python -m polyrefusal.gpu_pool --gpus {params.gpus} -- "
        "polyrefusal respond --backend {params.backend} {input.translations} {output} 2> {log}"
