"""A model directory that is a pointer (``base_model.source`` / ``audit_models.<name>``, written
by `polyrefusal base-model`) names a path or hub id, a revision and a backend; the revision
reaches every loader, so a pinned audit or base model is the same model on every machine.

Formats from their official sources: a hub revision is a branch, tag or commit, passed as
``revision=`` to ``from_pretrained`` (huggingface/transformers, ``PreTrainedModel.from_pretrained``);
TRL's DPOTrainer builds the policy and the reference model from a path with
``DPOConfig.model_init_kwargs`` (huggingface/trl, trl/trainer/dpo_trainer.py, installed 1.16);
lm-eval's ``hf`` model takes ``revision`` among its model arguments
(EleutherAI/lm-evaluation-harness, lm_eval/models/huggingface.py ``HFLM.__init__``); PEFT's
adapter config names its base's ``revision`` (huggingface/peft, ``PeftConfigMixin.revision``).
"""

from __future__ import annotations

import json
from argparse import Namespace

from polyrefusal.io import read_json
from polyrefusal.params import load_params
from polyrefusal.stages.base_model import write_audit_pointer
from polyrefusal.training.models import POINTER, ModelRef, resolve

from ..helpers.project import ROOT


def test_a_pointer_names_path_revision_and_backend(tmp_path):
    params = {"audit_models": {"llama31_8b": {"path": "meta-llama/Llama-3.1-8B-Instruct",
                                              "revision": "0e9e39f249a16976918f6564b8830bc894c89659",
                                              "backend": "vllm", "gpus": 1}}}
    out = tmp_path / "models" / "llama31_8b"
    write_audit_pointer(params, "llama31_8b", out)
    assert resolve(out) == ModelRef("meta-llama/Llama-3.1-8B-Instruct",
                                    "0e9e39f249a16976918f6564b8830bc894c89659", "vllm")
    plain = tmp_path / "models" / "balanced"
    plain.mkdir()
    assert resolve(plain) == ModelRef(str(plain))


def test_generation_gets_the_pointers_revision(tmp_path):
    from polyrefusal.stages.generate import model_spec

    (tmp_path / POINTER).write_text(json.dumps({"path": "org/model", "revision": "v2"}))
    params = load_params(ROOT / "params.yaml")
    spec = model_spec(params, str(tmp_path))
    assert (spec.path, spec.revision) == ("org/model", "v2")
    plain = tmp_path / "plain"
    plain.mkdir()
    assert model_spec(params, str(plain)).revision is None


def test_capability_passes_the_revision_of_a_hub_model_only():
    from polyrefusal.scoring.capability import model_args

    args, local, _ = model_args("org/model", "float32", "v2")
    assert args == {"pretrained": "org/model", "dtype": "float32", "revision": "v2"} and not local
    args, _, _ = model_args("org/model", "float32")
    assert "revision" not in args


def test_capability_records_the_revision(tmp_path, monkeypatch):
    import polyrefusal.scoring.capability as scoring
    from polyrefusal.stages import capability

    seen = {}

    def fake_evaluate(model_path, langs, work, **kwargs):
        seen.update(kwargs, model_path=model_path)
        return {"languages": {}, "not_covered": list(langs)}

    monkeypatch.setattr(scoring, "evaluate_model", fake_evaluate)
    model = tmp_path / "m"
    model.mkdir()
    (model / POINTER).write_text(json.dumps({"path": "org/model", "revision": "v2"}))
    out = tmp_path / "cap.json"
    capability.run(Namespace(params=str(ROOT / "params.yaml"), source=None, limit=None, langs="en", name="m",
                             model=str(model), out=str(out)))
    assert (seen["model_path"], seen["revision"]) == ("org/model", "v2")
    assert read_json(out)["revision"] == "v2"


def test_an_adapter_names_its_bases_revision(tmp_path):
    from polyrefusal.training.dpo import record_adapter_base

    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/snap/x", "r": 8,
                                                             "peft_type": "LORA", "target_modules": ["q_proj"]}))
    record_adapter_base(tmp_path, "org/model", "v2")
    config = read_json(tmp_path / "adapter_config.json")
    assert (config["base_model_name_or_path"], config["revision"]) == ("org/model", "v2")


def test_rainbow_models_get_the_pointers_revision_and_backend(tmp_path):
    from polyrefusal.stages.rainbow import model_spec

    (tmp_path / POINTER).write_text(json.dumps({"path": "org/model", "revision": "v2", "backend": "vllm"}))
    params = load_params(ROOT / "params.yaml")
    backend, spec = model_spec({"path": str(tmp_path)}, params, "rainbow.target")
    assert (backend, spec.path, spec.revision) == ("vllm", "org/model", "v2")
    backend, spec = model_spec({"path": str(tmp_path), "revision": "v3", "backend": "transformers"}, params,
                               "rainbow.target")
    assert (backend, spec.revision) == ("transformers", "v3")  # what the section says wins
