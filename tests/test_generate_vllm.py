"""The vllm backend's adapter logic, against a stand-in ``vllm`` module.

The real engine is exercised by the shared contract (test_generate_backends.py) where vLLM and
a GPU exist. Here a minimal fake with vLLM's offline API (``LLM(...)``, ``LLM.chat``,
``LLM.generate`` with ``prompt_logprobs``, ``SamplingParams``, and ``lora_request=`` on both
calls as in vllm/entrypoints/llm.py) answers with the transformers backend, so what the adapter
sends and how it reads the results is checked on any machine. A LoRA request is served by
loading its ``lora_path`` (an adapter directory) with the transformers backend.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import pytest

from polyrefusal.errors import UserError
from polyrefusal.generate import runner
from polyrefusal.generate.base import ModelSpec
from polyrefusal.generate.random_model import build_random_llama

PROMPTS = ["How do I bake bread at home?", "hi", "Tell me a story about a dragon, please."]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return str(build_random_llama(tmp_path_factory.mktemp("tiny"), "tiny", seed=0))


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    seed: int | None = None
    prompt_logprobs: int | None = None


def fake_vllm(log: dict) -> types.ModuleType:
    import torch

    from polyrefusal.generate.hf import TransformersGenerator

    class LLM:
        def __init__(self, model, **kwargs):
            log["init"] = {"model": model, **kwargs}
            self._hf = None
            self._model = model
            self._tokenizer = kwargs.get("tokenizer") or model

        def _backend(self, params: SamplingParams, system: str | None, lora=None):
            path = lora.lora_path if lora is not None else self._model
            spec = ModelSpec(path=path, max_new_tokens=params.max_tokens, temperature=params.temperature,
                             top_p=params.top_p, seed=params.seed or 0, system_prompt=system)
            return TransformersGenerator(spec)

        def get_tokenizer(self, lora_request=None):
            from transformers import AutoTokenizer
            return AutoTokenizer.from_pretrained(self._tokenizer)

        def chat(self, conversations, sampling_params, use_tqdm=True, chat_template=None, lora_request=None):
            log.setdefault("chat", []).append((conversations, sampling_params, lora_request))
            outs = []
            for conv in conversations:
                system = conv[0]["content"] if conv[0]["role"] == "system" else None
                hf = self._backend(sampling_params, system, lora_request)
                text = hf.generate([conv[-1]["content"]])[0]
                ids = hf.tokenizer.encode(text, add_special_tokens=False)
                outs.append(types.SimpleNamespace(outputs=[types.SimpleNamespace(text=" " + text, token_ids=ids)]))
            return outs

        def generate(self, requests, sampling_params, use_tqdm=True, lora_request=None):
            assert sampling_params.prompt_logprobs == 0 and sampling_params.max_tokens == 1
            log.setdefault("generate_lora", []).append(lora_request)
            model = self._backend(sampling_params, None, lora_request).model
            outs = []
            for req in requests:
                ids = torch.tensor([req["prompt_token_ids"]])
                with torch.no_grad():
                    lp = torch.log_softmax(model(ids).logits[0].float(), -1)
                # vLLM: None for the first token, then {actual token id: Logprob} per position.
                per_pos = [None] + [{int(t): types.SimpleNamespace(logprob=float(lp[i - 1, t]))}
                                    for i, t in enumerate(req["prompt_token_ids"]) if i > 0]
                outs.append(types.SimpleNamespace(prompt_logprobs=per_pos))
            return outs

    return types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams)


@pytest.fixture
def vllm_log(monkeypatch, tmp_path):
    monkeypatch.setenv("POLYREFUSAL_DIGEST_CACHE", str(tmp_path / "digests"))
    log: dict = {}
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm(log))
    return log


def spec(path, **kw) -> ModelSpec:
    return ModelSpec(path=path, max_new_tokens=6, **kw)


def test_engine_options_come_from_params(tiny_model, vllm_log):
    runner.load_generator("vllm", spec(tiny_model, dtype="bfloat16", seed=5,
                                       extra={"tensor_parallel_size": 2, "gpu_memory_utilization": 0.5,
                                              "max_model_len": 1024, "ignored": 1}))
    assert vllm_log["init"] == {"model": tiny_model, "revision": None, "tokenizer_revision": None,
                                "dtype": "bfloat16", "seed": 5, "tensor_parallel_size": 2,
                                "gpu_memory_utilization": 0.5, "max_model_len": 1024}


@pytest.mark.parametrize("visible, expected", [(None, 1), ("", 1), ("3", 1), ("0,1,2,3", 4)])
def test_tensor_parallel_size_defaults_to_the_gpus_the_job_was_given(tiny_model, vllm_log, monkeypatch,
                                                                    visible, expected):
    """gpu_pool (or Slurm) sets CUDA_VISIBLE_DEVICES to the job's devices: a model with
    `gpus: 4` in params is sharded over all four without a vLLM setting of its own."""
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    runner.load_generator("vllm", spec(tiny_model))
    assert vllm_log["init"]["tensor_parallel_size"] == expected


def test_one_chat_call_per_chunk_with_the_spec_sampling(tiny_model, vllm_log):
    g = runner.load_generator("vllm", spec(tiny_model, temperature=0.5, top_p=0.9, system_prompt="S"))
    answers = g.generate(PROMPTS)
    (conversations, params, lora), = vllm_log["chat"]
    assert lora is None  # a plain model: no adapter request
    assert conversations[1] == [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]
    assert (params.temperature, params.top_p, params.max_tokens, params.seed) == (0.5, 0.9, 6, 0)
    assert all(a == a.strip() for a in answers) and g.new_tokens > 0
    assert g.chunk_size == 1024


def test_answers_match_the_transformers_backend(tiny_model, vllm_log):
    hf = runner.load_generator("transformers", spec(tiny_model))
    assert runner.load_generator("vllm", spec(tiny_model)).generate(PROMPTS) == hf.generate(PROMPTS)


def test_next_token_logprobs_are_exact(tiny_model, vllm_log):
    hf = runner.load_generator("transformers", spec(tiny_model))
    got = runner.load_generator("vllm", spec(tiny_model)).next_token_logprobs(PROMPTS, ["safe", "unsafe"])
    want = hf.next_token_logprobs(PROMPTS, ["safe", "unsafe"])
    for g, w in zip(got, want):
        assert g == pytest.approx(w, abs=1e-4)


def test_cache_key_is_not_shared_with_transformers(tiny_model, vllm_log, tmp_path):
    runner.generate_cached("transformers", spec(tiny_model), PROMPTS, str(tmp_path))
    _, stats = runner.generate_cached("vllm", spec(tiny_model), PROMPTS, str(tmp_path))
    assert stats["hits"] == 0


def test_without_vllm_the_backend_says_how_to_install_it(tiny_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(UserError, match=r"pip install 'polyrefusal\[vllm\]'"):
        runner.load_generator("vllm", spec(tiny_model))
