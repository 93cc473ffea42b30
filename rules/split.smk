rule split:
    input:
        corpus="results/corpus/source.parquet",
        code=code("split"),
    output:
        "results/split/assignment.json",
    params:
        test_fraction=config["split"]["test_fraction"],
        seed=config["split"]["seed"],
        # RefusEU tests 100 prompts per hazard category (the paper preset); absent: all
        per_category=optional_flag("--test-per-category", config["split"].get("test_per_category")),
        **tracked("split"),  # rerun triggers only: PARAMS in polyrefusal/stage_inputs.py
    log:
        "logs/split.log",
    benchmark:
        "logs/benchmarks/split.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal split --test-fraction {params.test_fraction} --seed {params.seed} "
        "{params.per_category}{input.corpus} {output} 2> {log}"
