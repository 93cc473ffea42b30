rule pairs:
    input:
        judged="results/judged/{lang}.parquet",
        split="results/split/assignment.json",
        code=code("pairs"),
    output:
        train="results/pairs/{lang}.train.jsonl",
        test="results/pairs/{lang}.test.jsonl",
        stats="results/pairs/{lang}.stats.json",
    params:
        keep=config["pairs"]["keep"],
        unsafe_prompts=optional_flag("--unsafe-prompts-only", config["pairs"]["unsafe_prompts_only"]),
    log:
        "logs/pairs/{lang}.log",
    benchmark:
        "logs/benchmarks/pairs/{lang}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal pairs --keep {params.keep} {params.unsafe_prompts}--split {input.split} --stats {output.stats} "
        "{input.judged} {output.train} {output.test} 2> {log}"
