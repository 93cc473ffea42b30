# Audit mode: models from `audit_models` in params.yaml (name -> {path, backend, revision}) are
# evaluated without training. Their model directory is a pointer (like a real base model), so
# `generate`, `evaluate` and `capability` treat them exactly like results/models/base.
rule audit_model:
    input:
        code=code("audit_model"),
    output:
        directory("results/models/{audit}"),
    params:
        **tracked("audit_model"),  # rerun triggers only: PARAMS in polyrefusal/stage_inputs.py
    log:
        "logs/audit_model/{audit}.log",
    benchmark:
        "logs/benchmarks/audit_model/{audit}.tsv"
    conda:
        "../envs/core.yaml"
    shell:
        "polyrefusal base-model --audit {wildcards.audit} {output} 2> {log}"
