rule train:
    input:
        base="results/models/base",
        pairs=lambda w: expand("results/pairs/{lang}.train.jsonl", lang=config_langs(w.config)),
        code=code("train"),
    output:
        directory("results/models/{config}"),
    params:
        gpus=gpus("train"),
        **tracked("train"),  # rerun triggers only: PARAMS in polyrefusal/stage_inputs.py
    threads: 1
    resources:
        gpu=gpus("train"),
        mem_mb=mem_mb("train"),
    log:
        "logs/train/{config}.log",
    benchmark:
        "logs/benchmarks/train/{config}.tsv"
    conda:
        "../envs/train.yaml"
    shell:
        "python -m polyrefusal.gpu_pool --gpus {params.gpus} --accelerate -- "
        "polyrefusal train --config {wildcards.config} --base {input.base} "
        "--pairs-dir results/pairs --checkpoints results/.checkpoints "
        "--ref-logps-dir results/.ref_logps {output} 2> {log}"
