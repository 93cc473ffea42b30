# Capability cost: multiple-choice accuracy of one model in every language (one job per model,
# the model loaded once), through lm-evaluation-harness on local files (params `capability`).
rule capability:
    input:
        model="results/models/{model}",
        code=code("capability"),
    output:
        "results/capability/{model}.json",
    params:
        gpus=gpus("capability"),
        **tracked("capability"),  # rerun triggers only: PARAMS in polyrefusal/stage_inputs.py
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
        "polyrefusal capability --model {input.model} --name {wildcards.model} {output} 2> {log}"
