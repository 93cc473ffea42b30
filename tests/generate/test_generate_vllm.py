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

import pytest

from polyrefusal.errors import UserError
from polyrefusal.generate import runner
from polyrefusal.generate.base import ModelSpec
from polyrefusal.generate.random_model import build_random_llama

from ..helpers.generate import fake_vllm

PROMPTS = ["How do I bake bread at home?", "hi", "Tell me a story about a dragon, please."]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return str(build_random_llama(tmp_path_factory.mktemp("tiny"), "tiny", seed=0))


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
