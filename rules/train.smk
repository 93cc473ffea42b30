rule train:
    input:
        base="results/models/base",
        pairs=lambda w: expand("results/pairs/{lang}.train.jsonl", lang=config_langs(w.config)),
    output:
        directory("results/models/{config}"),
    params:
        dpo=config["dpo"],
        spec=lambda w: config["config_defs"][w.config],
        languages=lambda w: config_langs(w.config),
    threads: 1
    resources:
        mem_mb=8000,
        gpu=0,
    log:
        "logs/train/{config}.log",
    benchmark:
        "logs/benchmarks/train/{config}.tsv"
    conda:
        "../envs/train.yaml"
    shell:
        "polyrefusal train --config {wildcards.config} --base {input.base} "
        "--pairs-dir results/pairs --checkpoints results/.checkpoints "
        "--ref-logps-dir results/.ref_logps {output} 2> {log}"
