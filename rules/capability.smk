# Capability cost: multiple-choice accuracy of one model in every language (one job per model,
# the model loaded once), through lm-evaluation-harness on local files (params `capability`).
rule capability:
    input:
        "results/models/{model}",
    output:
        "results/capability/{model}.json",
    params:
        gpus=gpus("capability"),
        capability=config.get("capability") or {},
        languages=LANGS,
    threads: 1
    resources:
        gpu=gpus("capability"),
        mem_mb=mem_mb("capability"),
    log:
        "logs/capability/{model}.log",
    benchmark:
        "logs/benchmarks/capability/{model}.tsv"
    conda:
        "../envs/train.yaml"
    shell:
        "python -m polyrefusal.gpu_pool --gpus {params.gpus} -- "
        "polyrefusal capability --model {input} --name {wildcards.model} {output} 2> {log}"
