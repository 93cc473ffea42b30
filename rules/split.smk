rule split:
    input:
        "results/corpus/source.parquet",
    output:
        "results/split/assignment.json",
    params:
        test_fraction=config["split"]["test_fraction"],
        seed=config["split"]["seed"],
    log:
        "logs/split.log",
    benchmark:
        "logs/benchmarks/split.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal split --test-fraction {params.test_fraction} --seed {params.seed} "
        "{input} {output} 2> {log}"
