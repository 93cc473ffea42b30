# The test pairs of every language as one file for DVC: their manifest (each file's md5). DVC's
# generate stages depend on it in place of the twelve files (polyrefusal/dvc_yaml.py: MANIFEST_RULES);
# Snakemake's keep the files too, which their command reads.
rule test_set:
    input:
        tests=expand("results/pairs/{lang}.test.jsonl", lang=LANGS),
        code=code("test_set"),
    output:
        "results/pairs/test_set.json",
    log:
        "logs/test_set.log",
    benchmark:
        "logs/benchmarks/test_set.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal manifest --out {output} {input.tests} 2> {log}"
