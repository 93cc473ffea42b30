# One job per model: the judge (a guard model at paper scale) is loaded once and scores the
# model's answers in every language.
rule evaluate:
    input:
        answers="results/answers/{model}",
        code=code("evaluate"),
    output:
        directory("results/eval/{model}"),
    params:
        gpus=gpus("evaluate"),
        **tracked("evaluate"),  # rerun triggers only: PARAMS in polyrefusal/stage_inputs.py
    threads: 1
    resources:
        gpu=gpus("evaluate"),
        mem_mb=mem_mb("evaluate"),
    log:
        "logs/evaluate/{model}.log",
    benchmark:
        "logs/benchmarks/evaluate/{model}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "python -m polyrefusal.gpu_pool --gpus {params.gpus} -- "
        "polyrefusal evaluate --params params.yaml --model {wildcards.model} "
        "{input.answers} {output} 2> {log}"
