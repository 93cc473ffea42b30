rule split:
    input:
        corpus="results/corpus/source.parquet",
        code=code("split"),
    output:
        "results/split/assignment.json",
    params:
        test_fraction=config["split"]["test_fraction"],
        seed=config["split"]["seed"],
        **tracked("split"),  # rerun triggers only: PARAMS in common.smk
    log:
        "logs/split.log",
    benchmark:
        "logs/benchmarks/split.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal split --test-fraction {params.test_fraction} --seed {params.seed} "
        "{input.corpus} {output} 2> {log}"
