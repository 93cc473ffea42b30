import json

# Shared definitions: the lists every rule expands over, all read from params.yaml.

LANGS = config["languages"]
SRC = config["source_language"]
CONFIGS = config["train_configs"]
# Models audited without training (audit mode): generated, evaluated and reported like base.
AUDIT_MODELS = config.get("audit_models") or {}
AUDIT = list(AUDIT_MODELS)
MODELS = ["base"] + AUDIT + CONFIGS
COMPUTE = config["compute"]


def gpus(stage):
    """GPUs one job of `stage` needs (params compute.gpus). The stages that load the model
    under test (generate, capability) give an audit model the GPUs of its own entry."""
    default = COMPUTE["gpus"][stage]
    if stage not in ("generate", "capability"):
        return default
    return lambda wildcards: AUDIT_MODELS[wildcards.model]["gpus"] if wildcards.model in AUDIT_MODELS else default


def mem_mb(stage):
    """Host memory of one job of `stage` (params compute.mem_mb), more on each retry."""
    return lambda wildcards, attempt: COMPUTE["mem_mb"][stage] * attempt

# The command of every stage that may use GPUs runs under `python -m polyrefusal.gpu_pool --gpus
# {params.gpus} --`: Snakemake counts the `gpu` resource but does not say which devices a job
# gets; the pool hands each job its own (CUDA_VISIBLE_DEVICES) and takes them back when the job
# ends, however it ends. `train` adds `--accelerate`: one process per GPU (data-parallel DPO).
# The count comes from params, not {resources.gpu}: Snakemake silently lowers a resource to what
# `--resources` allows, and a job must never run on fewer GPUs than it declares (the pool
# refuses a count larger than the machine has, with an error).


wildcard_constraints:
    lang="|".join(LANGS),
    config="|".join(CONFIGS),
    model="|".join(MODELS),
    audit="|".join(AUDIT) or "(?!x)x",


def config_langs(name):
    """Languages a training configuration trains on: the library's rule (params.config_languages),
    so Snakemake, DVC and the train stage agree."""
    from polyrefusal.params import config_languages

    return config_languages(config, name)


def optional_flag(flag, value):
    """`FLAG VALUE ` (or `FLAG ` for true) when a params value is set, else nothing: the
    command then carries exactly the flags a run uses."""
    if value is None or value is False:
        return ""
    return f"{flag} " if value is True else f"{flag} {value} "


def rainbow_models(wildcards):
    """Pipeline-built model directories the rainbow search uses (none while it is disabled)."""
    rainbow = config.get("rainbow") or {}
    if not rainbow.get("enabled"):
        return []
    paths = {(rainbow.get(role) or {}).get("path", "results/models/base") for role in ("mutator", "target")}
    return sorted(p for p in paths if p.startswith("results/"))


def every_output():
    """Every output the DAG declares (each rule's output patterns over the lists they expand
    over), all requested by the target `all`, because Snakemake does not redo a missing
    intermediate file while the files made from it are up to date. Without them a job killed
    during a forced rerun (`--forcerun`, `-R`) leaves its outputs missing after a plain run."""
    import re

    values = {"lang": LANGS, "config": CONFIGS, "model": MODELS, "audit": AUDIT}
    paths = []
    for r in workflow.rules:
        if r.name in ("all", "dvc_commit"):
            continue
        for pattern in r.output:
            plain = re.sub(r"{(\w+),[^}]*}", r"{\1}", str(pattern))  # without the constraints
            paths += expand(plain, **{n: values[n] for n in set(re.findall(r"{(\w+)}", plain))})
    return paths


# ---------------------------------------------------------------------------------------------
# What each stage reads besides its data inputs (CODE, PARAMS, PERSIST) is declared once, in
# polyrefusal.stage_inputs. The rules read those tables here, and `polyrefusal dvc-yaml` writes
# dvc.yaml from the jobs of this DAG (src/polyrefusal/dvc_yaml.py), so Snakemake and DVC rerun
# a stage for the same reasons.
from polyrefusal.stage_inputs import CODE, PARAMS, PERSIST, code_files, lookup


def code(rule):
    """The files of the code `rule` reads (CODE, directories expanded): an input of its jobs."""
    return code_files(rule)


def _lookup(key):
    return lookup(config, key)


def _param_name(key):
    plain = key.replace(".", "_").replace("{", "").replace("}", "")
    return f"p_{plain}"


def tracked(rule):
    """Rule params for PARAMS[rule] (named p_<key>): rerun triggers only, see PARAMS."""
    out = {}
    for key in PARAMS[rule]:
        if "{" in key:
            out[_param_name(key)] = lambda w, key=key: _lookup(key.format(**w))
        elif _lookup(key) is not None:
            out[_param_name(key)] = _lookup(key)
    return out
