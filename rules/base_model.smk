rule base_model:
    output:
        directory("results/models/base"),
    params:
        base_model=config["base_model"],
        languages=LANGS,
    threads: 1
    resources:
        mem_mb=4000,
    log:
        "logs/base_model.log",
    benchmark:
        "logs/benchmarks/base_model.tsv"
    conda:
        "../envs/train.yaml"
    shell:
        "polyrefusal base-model {output} 2> {log}"
