rule evaluate:
    input:
        "results/answers/{model}",
    output:
        scores="results/eval/{model}/{lang}.json",
        judged="results/eval/{model}/{lang}.judged.jsonl",
    params:
        judge=config["evaluate"]["judge"],
    log:
        "logs/evaluate/{model}/{lang}.log",
    benchmark:
        "logs/benchmarks/evaluate/{model}/{lang}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal evaluate --judge {params.judge} --lang {wildcards.lang} --model {wildcards.model} "
        "{input} {output.scores} {output.judged} 2> {log}"
