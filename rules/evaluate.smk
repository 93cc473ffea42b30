# One job per model: the judge (a guard model at paper scale) is loaded once and scores the
# model's answers in every language.
rule evaluate:
    input:
        "results/answers/{model}",
    output:
        directory("results/eval/{model}"),
    params:
        gpus=gpus("evaluate"),
        evaluate=config["evaluate"],
        judge_options=config["judge"].get("options"),
        languages=LANGS,
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
        "{input} {output} 2> {log}"
