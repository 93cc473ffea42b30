rule pairs:
    input:
        judged="results/judged/{lang}.parquet",
        split="results/split/assignment.json",
        code=code("pairs"),
    output:
        train="results/pairs/{lang}.train.jsonl",
        test="results/pairs/{lang}.test.jsonl",
        stats="results/pairs/{lang}.stats.json",
    log:
        "logs/pairs/{lang}.log",
    benchmark:
        "logs/benchmarks/pairs/{lang}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal pairs --split {input.split} --stats {output.stats} "
        "{input.judged} {output.train} {output.test} 2> {log}"
