"""Stand-ins on the generation side: a ``vllm`` module that answers through the transformers
backend (so the vllm backend runs without a GPU), and a counter of what the runner loads and sends."""

from __future__ import annotations

import types
from dataclasses import dataclass

from polyrefusal.generate import runner
from polyrefusal.generate.base import ModelSpec


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


def count_backend(monkeypatch) -> dict:
    """Count generators built and prompts sent to them by the runner."""
    counts = {"loads": 0, "calls": 0, "prompts": 0}
    real = runner.load_generator

    def load(backend, spec):
        counts["loads"] += 1
        gen = real(backend, spec)
        inner = gen.generate

        def generate(prompts):
            counts["calls"] += 1
            counts["prompts"] += len(prompts)
            return inner(prompts)

        gen.generate = generate
        return gen

    monkeypatch.setattr(runner, "load_generator", load)
    return counts
