rule translate:
    input:
        corpus="results/corpus/source.parquet",
        code=code("translate"),
    output:
        translations="results/translations/{lang}.parquet",
        usage="results/translations/{lang}.usage.json",
        review="results/translations/{lang}.review.jsonl",
    params:
        gpus=gpus("translate"),
        backend=config["translate"]["backend"],
        source=SRC,
        **tracked("translate"),  # rerun triggers only: PARAMS in polyrefusal/stage_inputs.py
        memory=lambda w: f"{config['translate']['memory_dir']}/{w.lang}",
    threads: 1
    resources:
        gpu=gpus("translate"),
        mem_mb=mem_mb("translate"),
    log:
        "logs/translate/{lang}.log",
    benchmark:
        "logs/benchmarks/translate/{lang}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "python -m polyrefusal.gpu_pool --gpus {params.gpus} -- "
        "polyrefusal translate --backend {params.backend} --params params.yaml "
        "--source {params.source} --target {wildcards.lang} --fields text,chosen,rejected "
        "--memory {params.memory} --usage {output.usage} --review {output.review} "
        "{input.corpus} {output.translations} 2> {log}"
