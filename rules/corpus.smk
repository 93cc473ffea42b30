rule corpus:
    input:
        config["corpus"].get("include") or [],
    output:
        "results/corpus/source.parquet",
    params:
        corpus=config["corpus"],
        source_language=SRC,
    log:
        "logs/corpus.log",
    benchmark:
        "logs/benchmarks/corpus.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal corpus {output} 2> {log}"
