"""DPO training options on a tiny untrained model: LoRA (merged and adapter), precomputed
reference log-probs reused across configurations, demographic (group x strategy) selection,
the `train` command's overrides, training curves and model cards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ..helpers.project import ROOT

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

DPO = dict(beta=0.1, loss_type=["sigmoid", "sft"], loss_weights=[1.0, 1.0], learning_rate=2.0e-3,
           num_train_epochs=1, per_device_train_batch_size=8, max_length=128, seed=0,
           max_per_language=16, save_steps=50, torch_threads=1)
LORA = {"use_lora": True, "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """An untrained tiny Llama, en/de training pairs (TRL format, with metadata), params."""
    from polyrefusal import seed
    from polyrefusal.stages.pairs import to_trl
    from polyrefusal.training.embedded import build_model, build_tokenizer, seed_examples

    root = tmp_path_factory.mktemp("tiny")
    texts, _ = seed_examples(["en", "de"])
    tok = build_tokenizer(texts, 400)
    model = build_model(tok, dict(seed=0, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                  num_attention_heads=2, max_position_embeddings=256))
    model.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    (root / "pairs").mkdir()
    for lang in ("en", "de"):
        with open(root / "pairs" / f"{lang}.train.jsonl", "w", encoding="utf-8") as fh:
            for r in seed.source_records(lang):
                if r["harmful"]:
                    fh.write(json.dumps(to_trl(r), ensure_ascii=False) + "\n")
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params.pop("presets", None)
    params.update(languages=["en", "de"], train_configs=["single_en", "english_only", "balanced"],
                  config_defs={"single_en": ["en"], "english_only": ["en"], "balanced": "all"}, dpo=DPO)
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    return root


def weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file
    return load_file(Path(model_dir) / "model.safetensors")


def train(tiny, name, langs, dpo, **kw):
    from polyrefusal.training.dpo import train_config
    files = [tiny / "pairs" / f"{lang}.train.jsonl" for lang in langs]
    out = tiny / "models" / name
    return out, train_config(name, tiny / "base", files, out, dpo, tiny / "ckpt", **kw)


def test_lora_merged_and_adapter(tiny):
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from polyrefusal.training.dpo import is_adapter_dir

    merged_dir, m1 = train(tiny, "lora_merged", ["en"], {**DPO, **LORA})
    adapter_dir, m2 = train(tiny, "lora_adapter", ["en"], {**DPO, **LORA, "merge_lora": False})
    assert m1["steps"] == m2["steps"] > 0

    # merge_lora: true -> a plain full model, loadable with from_pretrained, changed by training.
    assert not is_adapter_dir(merged_dir)
    model = AutoModelForCausalLM.from_pretrained(merged_dir)
    base = weights(tiny / "base")
    merged = weights(merged_dir)
    changed = [k for k in base if "q_proj" in k or "v_proj" in k]
    assert changed and all(not torch.equal(base[k], merged[k]) for k in changed)
    assert all(torch.equal(base[k], merged[k]) for k in base if "proj" not in k)

    # merge_lora: false -> an adapter directory that peft loads (base from adapter_config.json)
    # and that generates; merging it gives exactly the merged run's weights (same seed).
    assert is_adapter_dir(adapter_dir) and not (adapter_dir / "model.safetensors").exists()
    peft_model = AutoPeftModelForCausalLM.from_pretrained(adapter_dir)
    tok = AutoTokenizer.from_pretrained(adapter_dir)
    enc = tok.apply_chat_template([{"role": "user", "content": "hello"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    out = peft_model.generate(**enc, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > enc["input_ids"].shape[1]
    state = peft_model.merge_and_unload().state_dict()
    assert all(torch.equal(state[k], merged[k]) for k in merged)
    del model

    for d, fmt in ((merged_dir, "lora-merged"), (adapter_dir, "lora-adapter")):
        card = json.loads((d / "model_card.json").read_text())
        assert card["format"] == fmt and card["hyperparameters"]["lora"]["r"] == 4
        assert (d / "README.md").read_text().startswith("---\nbase_model:")

    # The adapter names the base it was trained on (peft's adapter_config.json, as the card
    # records it), and is served over that base unmerged: same answers as the merged model.
    from polyrefusal.generate import runner
    from polyrefusal.generate.base import ModelSpec
    from polyrefusal.generate.identity import adapter_info

    card = json.loads((adapter_dir / "model_card.json").read_text())
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == card["base_model"] == str(tiny / "base")
    assert card["adapter"] == {"base_model_name_or_path": str(tiny / "base"), "peft_type": "LORA", "r": 4,
                               "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}
    assert "adapter" not in json.loads((merged_dir / "model_card.json").read_text())
    assert adapter_info(adapter_dir).base == card["base_model"] and adapter_info(adapter_dir).rank == 4
    prompts = ["hello", "How do I bake bread?"]
    answers = [runner.load_generator("transformers", ModelSpec(path=str(d), max_new_tokens=5)).generate(prompts)
               for d in (adapter_dir, merged_dir)]
    assert answers[0] == answers[1]


def test_precomputed_ref_logps_are_reused(tiny):
    store = tiny / "ref_logps"
    pre = {**DPO, "precompute_ref_log_probs": True}
    a_dir, a = train(tiny, "single_en", ["en"], pre, ref_logps_dir=store)
    assert a["ref_logps_cache"]["hits"] == 0 and a["ref_logps_cache"]["computed"] > 0
    n_en = a["ref_logps_cache"]["computed"]
    files = list(store.glob("*.json"))
    assert len(files) == 1
    meta = json.loads(files[0].read_text())["meta"]
    assert meta["data_file"].endswith("en.train.jsonl") and meta["max_length"] == DPO["max_length"]

    # english_only trains on the same file: every reference log-prob is a cache hit, and the
    # result is the same, bit for bit.
    b_dir, b = train(tiny, "english_only", ["en"], pre, ref_logps_dir=store)
    assert b["ref_logps_cache"] == {"hits": n_en, "computed": 0, "stores": a["ref_logps_cache"]["stores"]}
    wa, wb = weights(a_dir), weights(b_dir)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)

    # balanced adds German: English hits, German computed once, one more store file.
    _, c = train(tiny, "balanced", ["en", "de"], pre, ref_logps_dir=store)
    assert c["ref_logps_cache"]["hits"] == n_en and c["ref_logps_cache"]["computed"] > 0
    assert len(list(store.glob("*.json"))) == 2

    # Without precompute the reference runs on every batch: the same training within float noise.
    d_dir, d = train(tiny, "english_only_live", ["en"], DPO)
    assert d["ref_logps_cache"] is None
    wd = weights(d_dir)
    for k in wa:
        torch.testing.assert_close(wa[k], wd[k], rtol=1e-4, atol=1e-5)
    assert d["final_loss"] == pytest.approx(b["final_loss"], rel=1e-4)


def test_demographic_selection_and_zero_shot_cells(tiny):
    from polyrefusal.errors import UserError
    from polyrefusal.training.dpo import resolve_config, zero_shot_cell

    params = {"languages": ["en", "de"], "config_defs": {
        "demo": {"langs": "all", "groups": ["women", "elderly"],
                 "strategies": ["persona_assignment", "chain_of_thought"]},
        "plain": ["de", "fr"]}}
    spec = resolve_config(params, "demo")
    assert spec["langs"] == ["en", "de"] and spec["groups"] == ["elderly", "women"]
    assert resolve_config(params, "plain") == {"langs": ["de"], "groups": None, "strategies": None,
                                               "include_general": False, "max_per_language": None}
    assert zero_shot_cell({"target_group": "women", "style": "chain_of_thought"}, spec) == "seen"
    assert zero_shot_cell({"target_group": "jewish", "style": "chain_of_thought"}, spec) == "unseen_group"
    assert zero_shot_cell({"target_group": "women", "style": "representation_shifting"}, spec) == "unseen_strategy"
    assert zero_shot_cell({"target_group": "jewish", "style": "role_play"}, spec) == "unseen_both"
    assert zero_shot_cell({"target_group": None, "style": "role_play"}, spec) is None

    out, m = train(tiny, "demo", ["en", "de"], DPO, spec=spec)
    # 2 groups x 2 strategies x 2 goals per language.
    assert m["examples_per_language"] == {"en": 8, "de": 8}
    assert m["selection"]["per_group"] == {"elderly": 8, "women": 8}
    assert m["selection"]["per_strategy"] == {"chain_of_thought": 8, "persona_assignment": 8}
    card = json.loads((out / "model_card.json").read_text())
    assert card["selection"]["groups"] == ["elderly", "women"]

    with pytest.raises(UserError, match="groups martians not found"):
        train(tiny, "demo_typo", ["en"], DPO, spec={**spec, "groups": ["martians"]})
    with pytest.raises(UserError, match="unknown key"):
        resolve_config({"languages": ["en"], "config_defs": {"x": {"langs": "all", "group": ["women"]}}}, "x")


def test_train_command_overrides_and_curves(tiny, monkeypatch):
    from polyrefusal.cli import main
    from polyrefusal.training.curves import curve_summary, plot_curves, read_curve

    monkeypatch.chdir(tiny)
    out = tiny / "models" / "cli_demo"
    rc = main(["train", "--config", "single_en", "--params", "params.yaml", "--base", "base",
               "--pairs-dir", "pairs", "--checkpoints", "ckpt", "--ref-logps-dir", "ref_logps",
               "--groups", "women,black", "--strategies", "persona_assignment", str(out)])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["examples_per_language"] == {"en": 4}
    assert m["selection"]["per_group"] == {"black": 2, "women": 2}

    curve = read_curve(out)
    assert curve and {"step", "loss", "reward_margin", "reward_accuracy"} <= set(curve[0])
    assert curve[-1]["step"] == m["steps"]
    png = plot_curves({"cli_demo": out, "demo": tiny / "models" / "demo"}, tiny / "report" / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = curve_summary({"cli_demo": out})
    assert summary[0]["steps"] == m["steps"] and summary[0]["last_loss"] == m["final_loss"]


def test_dict_config_defs_pass_params_validation(tmp_path):
    """Once the params schema accepts mapping entries in config_defs (see docs/training.md)."""
    from polyrefusal.errors import UserError
    from polyrefusal.params import load_params

    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["config_defs"]["demo_holdout"] = {"langs": "all", "groups": ["women"], "strategies": ["persona_assignment"]}
    params["train_configs"] = [c for c in params["train_configs"] if c != "demo_holdout"] + ["demo_holdout"]
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(params))
    try:
        load_params(f)
    except UserError as exc:
        pytest.skip(f"params schema/validation does not accept mapping config_defs yet: {exc}")


def test_train_command_refuses_a_bad_dpo_setting_through_trl_before_any_work(tiny, monkeypatch, capsys):
    """TRL's DPOConfig (huggingface/trl, trl/trainer/dpo_config.py, a dataclass: an unknown
    field is a TypeError of its __init__) judges the dpo: block before any data is read."""
    from polyrefusal.cli import main

    monkeypatch.chdir(tiny)
    params = yaml.safe_load((tiny / "params.yaml").read_text(encoding="utf-8"))
    params["dpo"] = {**DPO, "trl_args": {"max_lenght": 64}}
    (tiny / "bad_params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    out = tiny / "models" / "never"
    rc = main(["train", "--config", "single_en", "--params", "bad_params.yaml", "--base", "base",
               "--pairs-dir", "pairs", "--checkpoints", "ckpt_never", str(out)])
    assert rc == 2 and not out.exists() and not (tiny / "ckpt_never").exists()
    err = capsys.readouterr().err
    assert "bad_params.yaml:" in err and "dpo.trl_args.max_lenght" in err and "did you mean 'max_length'" in err


def test_training_builds_the_dpo_config_that_validation_checks(tmp_path):
    """One construction of DPOConfig's arguments (training.dpo.dpo_arguments): params validation
    builds the same object training does, with the schema's defaults for absent keys."""
    from trl import DPOConfig

    from polyrefusal.params import check_dpo, default, with_defaults
    from polyrefusal.training.dpo import dpo_arguments

    assert check_dpo(DPO) == []
    args = DPOConfig(**dpo_arguments(with_defaults(DPO, "dpo"), str(tmp_path / "out"), cuda=False))
    assert (args.beta, args.save_steps, args.max_length, args.data_seed) == (0.1, 50, 128, 0)
    assert args.save_total_limit == default("dpo.save_total_limit") and args.use_cpu
    assert args.precompute_ref_log_probs is default("dpo.precompute_ref_log_probs")
    assert not (tmp_path / "out").exists()  # building the config makes no directory


def test_a_pinned_base_revision_loads_policy_reference_and_tokenizer(tiny, monkeypatch):
    """A base that is a pointer with a revision (``base_model.revision``) is loaded at that
    revision: TRL builds the policy and the reference model from ``DPOConfig.model_init_kwargs``
    (trl/trainer/dpo_trainer.py, ``create_model_from_path``), the tokenizer is loaded with it, and
    the model card records it. The base here is local, where transformers has no revisions: the
    spies record the keyword and load without it."""
    import shutil

    import transformers
    import trl.trainer.dpo_trainer as dpo_trainer

    from polyrefusal.training.models import POINTER

    pointer = tiny / "pinned_base"
    shutil.rmtree(pointer, ignore_errors=True)
    pointer.mkdir()
    (pointer / POINTER).write_text(json.dumps({"path": str(tiny / "base"), "revision": "v1"}))
    seen = []
    create, tokenizer = dpo_trainer.create_model_from_path, transformers.AutoTokenizer.from_pretrained

    def create_spy(path, **kwargs):
        seen.append(("model", kwargs.pop("revision", None)))
        return create(path, **kwargs)

    def tokenizer_spy(path, **kwargs):
        seen.append(("tokenizer", kwargs.pop("revision", None)))
        return tokenizer(path, **kwargs)

    monkeypatch.setattr(dpo_trainer, "create_model_from_path", create_spy)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", tokenizer_spy)
    from polyrefusal.training.dpo import train_config

    out = tiny / "models" / "pinned"
    train_config("single_en", pointer, [tiny / "pairs" / "en.train.jsonl"], out,
                 {**DPO, "precompute_ref_log_probs": False}, tiny / "ckpt")
    assert ("tokenizer", "v1") in seen and seen.count(("model", "v1")) == 2, seen  # policy and reference
    card = json.loads((out / "model_card.json").read_text())
    assert (card["base_model"], card["base_revision"]) == (str(tiny / "base"), "v1")
