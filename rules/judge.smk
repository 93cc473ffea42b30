rule judge:
    input:
        responses="results/responses/{lang}.parquet",
        code=code("judge"),
    output:
        "results/judged/{lang}.parquet",
    params:
        gpus=gpus("judge"),
        # the prompt itself too where only prompts the judges find unsafe are kept (RefusEU)
        fields="chosen,rejected,prompt" if config["pairs"]["unsafe_prompts_only"] else "chosen,rejected",
        **tracked("judge"),  # rerun triggers only: PARAMS in polyrefusal/stage_inputs.py
    threads: 1
    resources:
        gpu=gpus("judge"),
        mem_mb=mem_mb("judge"),
    log:
        "logs/judge/{lang}.log",
    benchmark:
        "logs/benchmarks/judge/{lang}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "python -m polyrefusal.gpu_pool --gpus {params.gpus} -- "
        "polyrefusal judge --params params.yaml --fields {params.fields} "
        "{input.responses} {output} 2> {log}"
