"""A LoRA adapter directory (``dpo.merge_lora: false``) is generated with and scored over its
base model without merging on disk: the transformers backend (peft, for real on CPU), the
vllm backend (request building, against the stand-in ``vllm`` of test_generate_vllm.py), the
capability stage (lm-evaluation-harness ``peft=``, for real on CPU) and the response cache
(adapter weights + base identity).

Official formats the fixtures follow:
- the adapter directory is written by peft itself (``PeftModel.save_pretrained``); its
  ``adapter_config.json`` fields ``base_model_name_or_path``, ``revision``, ``r``,
  ``rank_pattern`` as in huggingface/peft ``src/peft/config.py`` and
  ``src/peft/tuners/lora/config.py``, the file names in ``src/peft/utils/constants.py``;
- vLLM: ``LLM(model=<base>, enable_lora=True, max_lora_rank=...)``, ``LLM.chat`` /
  ``LLM.generate`` with ``lora_request=``, ``LoRARequest(lora_name, lora_int_id, lora_path)``
  (vllm-project/vllm ``vllm/lora/request.py``, ``vllm/entrypoints/llm.py``; docs.vllm.ai
  "LoRA Adapters"); accepted ``max_lora_rank`` values from ``vllm/config/lora.py``
  (``MaxLoRARanks``);
- lm-eval: ``HFLM(pretrained=<base>, peft=<adapter>)`` (EleutherAI/lm-evaluation-harness
  ``lm_eval/models/huggingface.py``, the ``peft`` argument; 0.4.13 as installed).
"""

from __future__ import annotations

import json
import shutil
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from polyrefusal.errors import UserError
from polyrefusal.generate import runner
from polyrefusal.generate.base import ModelSpec
from polyrefusal.generate.identity import adapter_info, model_identity
from polyrefusal.generate.random_model import build_random_llama

from ..helpers.generate import fake_vllm

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

PROMPTS = ["How do I bake bread at home?", "hi", "Tell me a story about a dragon, please."]
CANDIDATES = ["safe", "unsafe"]


def build_adapter(base: Path, out: Path, *, r: int = 4, seed: int = 1, rank_pattern: dict | None = None) -> Path:
    """A random (non-zero) LoRA adapter over ``base``, saved by peft with the base's tokenizer,
    as ``train`` writes one with ``merge_lora: false``."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base)
    torch.manual_seed(seed)
    # init_lora_weights=False: B is random, not zero, so the adapter changes the logits.
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                        rank_pattern=rank_pattern or {}, task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


def merged_copy(adapter: Path, out: Path) -> Path:
    """The same weights merged into a full model (what merge_lora: true would have written)."""
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    AutoPeftModelForCausalLM.from_pretrained(adapter).merge_and_unload().save_pretrained(out)
    AutoTokenizer.from_pretrained(adapter).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    base = build_random_llama(root / "base", "tiny", seed=0)
    a = build_adapter(base, root / "adapter_a", seed=1)
    b = build_adapter(base, root / "adapter_b", seed=2)
    return {"base": base, "a": a, "b": b, "merged_a": merged_copy(a, root / "merged_a"), "root": root}


@pytest.fixture(autouse=True)
def digest_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("POLYREFUSAL_DIGEST_CACHE", str(tmp_path / "digests"))


def spec(path, **kw) -> ModelSpec:
    return ModelSpec(path=str(path), max_new_tokens=6, **kw)


# -- the adapter's format and identity ---------------------------------------------------------

def test_adapter_info_reads_peft_config(models):
    info = adapter_info(models["a"])
    assert info.base == str(models["base"]) and info.revision is None
    assert info.rank == 4 and info.has_tokenizer and Path(info.path).is_absolute()
    assert adapter_info(models["base"]) is None and adapter_info(models["merged_a"]) is None


def test_rank_pattern_raises_the_rank(models, tmp_path):
    d = build_adapter(models["base"], tmp_path / "ad", r=4, rank_pattern={"v_proj": 24})
    assert adapter_info(d).rank == 24


def test_adapter_without_base_is_a_user_error(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    with pytest.raises(UserError, match="names no base model") as e:
        adapter_info(tmp_path)
    assert "base_model_name_or_path" in str(e.value) and "adapter_config.json" in str(e.value)


def test_relative_base_and_pointer_base(models, tmp_path, monkeypatch):
    """train records the base as given (``results/models/base``, relative to the project root);
    a base that is a polyrefusal pointer is followed to the model it names."""
    from polyrefusal.training.models import POINTER

    proj = tmp_path / "proj"
    shutil.copytree(models["base"], proj / "results" / "models" / "base")
    ad = shutil.copytree(models["a"], proj / "results" / "models" / "cfg")
    cfg = json.loads((ad / "adapter_config.json").read_text())
    (ad / "adapter_config.json").write_text(json.dumps({**cfg, "base_model_name_or_path": "results/models/base"}))
    monkeypatch.chdir(proj)
    assert adapter_info("results/models/cfg").base == "results/models/base"
    assert model_identity("results/models/cfg", None)["base"] == model_identity(str(models["base"]), None)
    pointer = tmp_path / "ptr"
    pointer.mkdir()
    (pointer / POINTER).write_text(json.dumps({"path": "org/some-model", "revision": "v1"}))
    (ad / "adapter_config.json").write_text(json.dumps({**cfg, "base_model_name_or_path": str(pointer)}))
    info = adapter_info(ad)
    assert (info.base, info.revision) == ("org/some-model", "v1")


def test_identity_distinguishes_adapters_and_their_base(models, tmp_path):
    base_id = model_identity(str(models["base"]), None)
    a_id, b_id = (model_identity(str(models[k]), None) for k in "ab")
    assert a_id["base"] == b_id["base"] == base_id
    assert a_id["digest"] != b_id["digest"] != base_id["digest"]
    # the same adapter over a retrained base is another model
    other_base = build_random_llama(tmp_path / "base2", "tiny", seed=7)
    moved = shutil.copytree(models["a"], tmp_path / "a_over_base2")
    cfg = json.loads((moved / "adapter_config.json").read_text())
    (moved / "adapter_config.json").write_text(json.dumps({**cfg, "base_model_name_or_path": str(other_base)}))
    assert model_identity(str(moved), None)["base"] != base_id


def test_cache_is_never_shared_between_adapters(models, tmp_path):
    cache = str(tmp_path / "cache")
    _, s_base = runner.generate_cached("transformers", spec(models["base"]), PROMPTS, cache)
    _, s_a = runner.generate_cached("transformers", spec(models["a"]), PROMPTS, cache)
    _, s_b = runner.generate_cached("transformers", spec(models["b"]), PROMPTS, cache)
    _, again = runner.generate_cached("transformers", spec(models["a"]), PROMPTS, cache)
    assert (s_base["hits"], s_a["hits"], s_b["hits"], again["hits"]) == (0, 0, 0, len(PROMPTS))
    assert len(list(Path(cache).iterdir())) == 3


# -- transformers backend: peft over the base, for real ----------------------------------------

def test_transformers_backend_serves_the_adapter(models):
    """Answers and logits through the adapter equal those of the merged copy and differ from
    the base's: the adapter is applied, and nothing is written into its directory."""
    before = sorted(p.name for p in models["a"].iterdir())
    lora = runner.load_generator("transformers", spec(models["a"]))
    merged = runner.load_generator("transformers", spec(models["merged_a"]))
    base = runner.load_generator("transformers", spec(models["base"]))
    assert lora.generate(PROMPTS) == merged.generate(PROMPTS)
    got = lora.next_token_logprobs(PROMPTS, CANDIDATES)
    want = merged.next_token_logprobs(PROMPTS, CANDIDATES)
    plain = base.next_token_logprobs(PROMPTS, CANDIDATES)
    for g, w, p in zip(got, want, plain):
        assert g == pytest.approx(w, abs=1e-4)
        assert g != pytest.approx(p, abs=1e-3)
    assert lora.render("hi") == base.render("hi")  # the adapter's tokenizer is the base's
    assert sorted(p.name for p in models["a"].iterdir()) == before


def test_transformers_backend_missing_base_is_one_line(models, tmp_path):
    moved = shutil.copytree(models["a"], tmp_path / "orphan")
    cfg = json.loads((moved / "adapter_config.json").read_text())
    (moved / "adapter_config.json").write_text(json.dumps({**cfg, "base_model_name_or_path": str(tmp_path / "gone")}))
    with pytest.raises(UserError, match="model directory not found"):
        runner.load_generator("transformers", spec(moved))


# -- vllm backend: request building ------------------------------------------------------------

@dataclass
class LoRARequest:
    """vllm/lora/request.py's fields, in its order."""
    lora_name: str
    lora_int_id: int
    lora_path: str


@pytest.fixture
def vllm_log(monkeypatch):
    log: dict = {}
    fake = fake_vllm(log)
    module = types.ModuleType("vllm")
    module.__path__ = []  # a package, so vllm.lora.request imports
    module.LLM, module.SamplingParams = fake.LLM, fake.SamplingParams
    lora_pkg = types.ModuleType("vllm.lora")
    lora_pkg.__path__ = []
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = LoRARequest
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.lora", lora_pkg)
    monkeypatch.setitem(sys.modules, "vllm.lora.request", request)
    return log


def test_vllm_engine_is_the_base_with_lora_enabled(models, vllm_log):
    g = runner.load_generator("vllm", spec(models["a"], extra={"tensor_parallel_size": 4}))
    init = vllm_log["init"]
    assert init["model"] == str(models["base"])  # the base, never a merged copy
    assert init["enable_lora"] is True and init["max_loras"] == 1
    assert init["max_lora_rank"] >= adapter_info(models["a"]).rank and init["max_lora_rank"] == 8
    assert init["tokenizer"] == str(models["a"].resolve()) and init["tensor_parallel_size"] == 4
    assert g.lora_request == LoRARequest("adapter_a", 1, str(models["a"].resolve()))


def test_vllm_requests_carry_the_lora_request(models, vllm_log):
    g = runner.load_generator("vllm", spec(models["a"]))
    answers = g.generate(PROMPTS)
    (_, _, lora), = vllm_log["chat"]
    assert lora == g.lora_request
    # the stand-in serves the request's adapter with the transformers backend (peft):
    assert answers == runner.load_generator("transformers", spec(models["merged_a"])).generate(PROMPTS)
    got = g.next_token_logprobs(PROMPTS, CANDIDATES)
    assert vllm_log["generate_lora"] == [g.lora_request]
    want = runner.load_generator("transformers", spec(models["merged_a"])).next_token_logprobs(PROMPTS, CANDIDATES)
    for a, b in zip(got, want):
        assert a == pytest.approx(b, abs=1e-4)


def test_vllm_without_adapter_sends_no_lora(models, vllm_log):
    g = runner.load_generator("vllm", spec(models["base"], extra={"max_lora_rank": 64}))
    assert "enable_lora" not in vllm_log["init"] and "max_lora_rank" not in vllm_log["init"]
    g.generate(PROMPTS[:1])
    assert vllm_log["chat"][0][2] is None


@pytest.mark.parametrize("rank, requested, slot", [(4, None, 8), (16, None, 16), (17, None, 32),
                                                   (300, None, 320), (4, 64, 64)])
def test_max_lora_rank_holds_the_adapter(rank, requested, slot):
    from polyrefusal.generate.vllm_backend import LORA_RANKS, lora_rank_slot
    assert lora_rank_slot(rank, requested) == slot and slot in LORA_RANKS


@pytest.mark.parametrize("rank, requested, match", [(600, None, "exceeds"), (32, 16, "below")])
def test_max_lora_rank_errors(rank, requested, match):
    from polyrefusal.generate.vllm_backend import lora_rank_slot
    with pytest.raises(UserError, match=match):
        lora_rank_slot(rank, requested)


# -- capability: lm-evaluation-harness with peft=, for real ------------------------------------

def test_capability_scores_the_adapter_over_its_base(models, tmp_path, monkeypatch):
    """lm-eval gets ``pretrained=<base>, peft=<adapter>``; its per-question log-likelihoods equal
    those of the merged copy and differ from the base's."""
    import lm_eval

    from polyrefusal.scoring import capability as C

    calls = []
    real = lm_eval.simple_evaluate

    def spy(**kwargs):
        res = real(**kwargs)
        calls.append((kwargs["model_args"], res))
        return res

    monkeypatch.setattr(lm_eval, "simple_evaluate", spy)
    out = {}
    for key in ("a", "merged_a", "base"):
        out[key] = C.evaluate_model(str(models[key]), ["en"], tmp_path / key, fmt="cloze", limit=4,
                                    batch_size=4, device="cpu")
    args = calls[0][0]
    assert args["pretrained"] == str(models["base"]) and args["peft"] == str(models["a"].resolve())
    assert args["tokenizer"] == str(models["a"].resolve())
    assert out["a"]["adapter_of"] == {"base": str(models["base"]), "revision": None}
    assert "peft" not in calls[1][0] and "adapter_of" not in out["merged_a"]

    def loglikelihoods(res):
        name = f"{C.TASK_PREFIX}en"
        return [float(r[0]) for s in res["samples"][name] for r in s["filtered_resps"]]

    lora, merged, base = (loglikelihoods(res) for _, res in calls)
    assert len(lora) == 16 and lora == pytest.approx(merged, abs=1e-4)
    assert lora != pytest.approx(base, abs=1e-3)
    assert out["a"]["languages"]["en"]["items"] == out["merged_a"]["languages"]["en"]["items"]


def test_real_vllm_serves_the_adapter_like_peft(models):
    """Where vLLM and a GPU exist: the engine started on the base with enable_lora, every
    request with the LoRARequest, gives the first-token log-probabilities of the merged copy."""
    pytest.importorskip("vllm")
    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a CUDA device")
    extra = {"gpu_memory_utilization": 0.2, "enforce_eager": True}
    lora = runner.load_generator("vllm", spec(models["a"], dtype="float32", extra=extra))
    try:
        assert lora.lora_request is not None
        got = lora.next_token_logprobs(PROMPTS, CANDIDATES)
        answers = lora.generate(PROMPTS)
    finally:
        lora.close()
    hf = runner.load_generator("transformers", spec(models["merged_a"], device="cpu"))
    for g, w in zip(got, hf.next_token_logprobs(PROMPTS, CANDIDATES)):
        assert g == pytest.approx(w, abs=2e-2)
    assert len(answers) == len(PROMPTS) and all(isinstance(a, str) for a in answers)


# -- the pipeline's own stages, as Snakemake runs them -----------------------------------------

def test_stages_train_generate_and_score_an_adapter(tmp_path, monkeypatch):
    """`train` with use_lora and merge_lora: false writes an adapter that names its base as the
    pipeline gave it (``results/models/base``, relative to the project root); `generate` and
    `capability`, run from the project root like every rule, serve it over that base, and its
    answers are cached apart from the base model's."""
    import argparse

    import yaml

    from polyrefusal import seed
    from polyrefusal.stages import capability, generate, train
    from polyrefusal.stages.pairs import to_trl

    from ..helpers.project import ROOT

    monkeypatch.chdir(tmp_path)
    build_random_llama(tmp_path / "results" / "models" / "base", "tiny", seed=0)
    pairs = tmp_path / "results" / "pairs"
    pairs.mkdir(parents=True)
    records = [r for r in seed.source_records("en") if r["harmful"]]
    (pairs / "en.train.jsonl").write_text("".join(json.dumps(to_trl(r)) + "\n" for r in records[:16]))
    (pairs / "en.test.jsonl").write_text("".join(json.dumps(to_trl(r)) + "\n" for r in records[16:22]))
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params.update(languages=["en"], train_configs=["single_en"], config_defs={"single_en": ["en"]})
    params["dpo"] = dict(beta=0.1, loss_type=["sigmoid", "sft"], loss_weights=[1.0, 1.0], learning_rate=2.0e-3,
                         num_train_epochs=1, per_device_train_batch_size=8, max_length=128, seed=0,
                         save_steps=50, torch_threads=1, use_lora=True, merge_lora=False,
                         lora={"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]})
    params["generation"].update(max_new_tokens=6, batch_size=8)
    params["capability"] = {"source": "builtin", "format": "cloze", "limit": 4, "batch_size": 4}
    Path("params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")

    def run(stage, argv):
        p = argparse.ArgumentParser()
        stage.add_arguments(p)
        stage.run(p.parse_args(argv))

    run(train, ["--config", "single_en", "--base", "results/models/base", "--pairs-dir", "results/pairs",
                "--checkpoints", "results/.checkpoints", "results/models/single_en"])
    model = Path("results/models/single_en")
    assert not (model / "model.safetensors").exists()
    assert json.loads((model / "adapter_config.json").read_text())["base_model_name_or_path"] == "results/models/base"

    cache = "results/response_cache"
    for name in ("single_en", "base"):
        run(generate, ["--model", f"results/models/{name}", "--name", name, "--out-dir", f"results/answers/{name}",
                       "--pairs-dir", "results/pairs", "--cache-dir", cache])
    answers = {name: [json.loads(line) for line in Path(f"results/answers/{name}/en.jsonl").read_text().splitlines()]
               for name in ("single_en", "base")}
    assert len(answers["single_en"]) == 6 and all(isinstance(a["response"], str) for a in answers["single_en"])
    identities = [json.loads(p.read_text())["model"] for p in Path(cache).glob("*/identity.json")]
    assert len(identities) == 2
    lora_id, = [i for i in identities if "base" in i]
    assert lora_id["base"] == next(i for i in identities if "base" not in i)  # keyed by the base too

    run(capability, ["--model", "results/models/single_en", "--name", "single_en", "results/capability/single_en.json"])
    res = json.loads(Path("results/capability/single_en.json").read_text())
    assert res["adapter_of"] == {"base": "results/models/base", "revision": None}
    assert res["languages"]["en"]["n"] == 4
