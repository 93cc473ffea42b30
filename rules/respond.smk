rule respond:
    input:
        "results/translations/{lang}.parquet",
    output:
        "results/responses/{lang}.parquet",
    params:
        backend=config["respond"]["backend"],
    log:
        "logs/respond/{lang}.log",
    benchmark:
        "logs/benchmarks/respond/{lang}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal respond --backend {params.backend} {input} {output} 2> {log}"
