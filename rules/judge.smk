rule judge:
    input:
        "results/responses/{lang}.parquet",
    output:
        "results/judged/{lang}.parquet",
    params:
        gpus=gpus("judge"),
        judge=config["judge"],
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
        "{input} {output} 2> {log}"
