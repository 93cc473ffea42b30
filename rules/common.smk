import json

# Shared definitions: the lists every rule expands over, all read from params.yaml.

LANGS = config["languages"]
SRC = config["source_language"]
CONFIGS = config["train_configs"]
MODELS = ["base"] + CONFIGS


wildcard_constraints:
    lang="|".join(LANGS),
    config="|".join(CONFIGS),
    model="|".join(MODELS),


def config_langs(name):
    """Languages a training configuration trains on ("all" or a list, within LANGS)."""
    spec = config["config_defs"][name]
    return list(LANGS) if spec == "all" else [l for l in LANGS if l in spec]
