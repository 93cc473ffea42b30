# Capability cost: multiple-choice accuracy of one model in every language (one job per model,
# the model loaded once), through lm-evaluation-harness on local files (params `capability`).
rule capability:
    input:
        "results/models/{model}",
    output:
        "results/capability/{model}.json",
    params:
        capability=config.get("capability") or {},
        languages=LANGS,
    threads: 1
    resources:
        mem_mb=8000,
        gpu=0,
    log:
        "logs/capability/{model}.log",
    benchmark:
        "logs/benchmarks/capability/{model}.tsv"
    conda:
        "../envs/train.yaml"
    shell:
        "polyrefusal capability --model {input} --name {wildcards.model} {output} 2> {log}"
