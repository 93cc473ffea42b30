rule generate:
    input:
        model="results/models/{model}",
        tests=expand("results/pairs/{lang}.test.jsonl", lang=LANGS),
        test_set="results/pairs/test_set.json",  # what DVC's stage depends on instead (rules/test_set.smk)
        code=code("generate"),
    output:
        directory("results/answers/{model}"),
    params:
        gpus=gpus("generate"),
        **tracked("generate"),  # rerun triggers only: PARAMS in polyrefusal/stage_inputs.py
        cache=lambda w: f"{config['generation']['cache_dir']}/{w.model}",
    threads: 1
    resources:
        gpu=gpus("generate"),
        mem_mb=mem_mb("generate"),
    log:
        "logs/generate/{model}.log",
    benchmark:
        "logs/benchmarks/generate/{model}.tsv"
    conda:
        "../envs/train.yaml"
    shell:
        "python -m polyrefusal.gpu_pool --gpus {params.gpus} -- "
        "polyrefusal generate --model {input.model} --name {wildcards.model} "
        "--cache-dir {params.cache} --out-dir {output} --pairs-dir results/pairs 2> {log}"
