rule judge:
    input:
        "results/responses/{lang}.parquet",
    output:
        "results/judged/{lang}.parquet",
    params:
        judge=config["judge"],
    log:
        "logs/judge/{lang}.log",
    benchmark:
        "logs/benchmarks/judge/{lang}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal judge --params params.yaml --fields chosen,rejected "
        "{input} {output} 2> {log}"
