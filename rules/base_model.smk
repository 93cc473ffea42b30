rule base_model:
    input:
        code=code("base_model"),
    output:
        directory("results/models/base"),
    params:
        gpus=gpus("base_model"),
        **tracked("base_model"),  # rerun triggers only: PARAMS in polyrefusal/stage_inputs.py
    threads: 1
    resources:
        gpu=gpus("base_model"),
        mem_mb=mem_mb("base_model"),
    log:
        "logs/base_model.log",
    benchmark:
        "logs/benchmarks/base_model.tsv"
    conda:
        "../envs/train.yaml"
    shell:
        "python -m polyrefusal.gpu_pool --gpus {params.gpus} -- "
        "polyrefusal base-model {output} 2> {log}"
