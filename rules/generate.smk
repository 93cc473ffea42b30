rule generate:
    input:
        model="results/models/{model}",
        tests=expand("results/pairs/{lang}.test.jsonl", lang=LANGS),
    output:
        directory("results/answers/{model}"),
    params:
        generation=config["generation"],
        cache=lambda w: f"{config['generation']['cache_dir']}/{w.model}",
    threads: 1
    resources:
        mem_mb=8000,
        gpu=0,
    log:
        "logs/generate/{model}.log",
    benchmark:
        "logs/benchmarks/generate/{model}.tsv"
    conda:
        "../envs/train.yaml"
    shell:
        "polyrefusal generate --model {input.model} --name {wildcards.model} "
        "--cache-dir {params.cache} --out-dir {output} --pairs-dir results/pairs 2> {log}"
