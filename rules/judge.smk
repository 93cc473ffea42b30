rule judge:
    input:
        responses="results/responses/{lang}.parquet",
        code=code("judge"),
    output:
        "results/judged/{lang}.parquet",
    params:
        gpus=gpus("judge"),
        **tracked("judge"),  # rerun triggers only: PARAMS in common.smk
    threads: 1
    resources:
        gpu=gpus("judge"),
        mem_mb=mem_mb("judge"),
    log:
        "logs/judge/{lang}.log",
    benchmark:
        "logs/benchmarks/judge/{lang}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "python -m polyrefusal.gpu_pool --gpus {params.gpus} -- "
        "polyrefusal judge --params params.yaml --fields chosen,rejected "
        "{input.responses} {output} 2> {log}"
