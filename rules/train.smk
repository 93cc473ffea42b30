rule train:
    input:
        base="results/models/base",
        pairs=lambda w: expand("results/pairs/{lang}.train.jsonl", lang=config_langs(w.config)),
    output:
        directory("results/models/{config}"),
    params:
        gpus=gpus("train"),
        dpo=config["dpo"],
        spec=lambda w: config["config_defs"][w.config],
        languages=lambda w: config_langs(w.config),
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
