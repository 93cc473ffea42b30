"""Backend ``vllm``: offline batched inference with ``vllm.LLM`` (GPU).

An optional extra (``pip install 'polyrefusal[vllm]'``), imported when the backend is built,
never at module import. ``LLM.chat`` applies the model's chat template and schedules all
prompts of a call itself (continuous batching), so the runner hands it large chunks.

Settings (``spec.extra``): ``tensor_parallel_size`` (default: every GPU the job was given,
``CUDA_VISIBLE_DEVICES`` as ``polyrefusal.gpu_pool`` or Slurm set it, so a model's ``gpus`` in
params is all it takes to shard a 70B model), ``gpu_memory_utilization``
(default 0.9), ``max_model_len``, ``enforce_eager``, ``chat_template``, ``chunk_size`` (prompts
per call between cache flushes, default 1024). Each request is seeded with ``spec.seed``, so a
sampled answer depends on its prompt only, not on what else was in the batch.

A LoRA adapter directory (``dpo.merge_lora: false``) is served over its base model without
merging (vLLM's LoRA support, docs "LoRA Adapters"): the engine loads the base named in the
adapter's ``adapter_config.json`` with ``enable_lora=True`` and a ``max_lora_rank`` that holds
the adapter's rank (``max_lora_rank`` in extra overrides it), the tokenizer and chat template
come from the adapter directory (what ``train`` saved, and what the cache identity hashes), and
every request carries ``LoRARequest(name, 1, adapter_dir)``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import UserError
from .base import GENERATORS, Generator, ModelSpec, Prompt
from .identity import Adapter, adapter_info, locate_model

log = logging.getLogger(__name__)
LLM_OPTIONS = {"tensor_parallel_size": int, "gpu_memory_utilization": float, "max_model_len": int,
               "enforce_eager": bool, "max_lora_rank": int}
#: The values vLLM accepts for max_lora_rank (vllm/config/lora.py, MaxLoRARanks; 1 is newer).
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def lora_rank_slot(rank: int, requested: int | None = None) -> int:
    """The max_lora_rank to start the engine with: ``requested`` if given (it must hold the
    adapter), else the smallest value vLLM accepts that is at least ``rank``."""
    if requested is not None:
        if requested < rank:
            raise UserError(f"max_lora_rank {requested} is below the adapter's rank {rank}",
                            field="generation.extra.max_lora_rank")
        return requested
    for slot in LORA_RANKS:
        if slot >= rank:
            return slot
    raise UserError(f"LoRA rank {rank} exceeds vLLM's largest max_lora_rank ({LORA_RANKS[-1]})",
                    field="dpo.lora.r")


def visible_gpus() -> int:
    """The number of devices in CUDA_VISIBLE_DEVICES (at least 1; unset: 1)."""
    import os

    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return max(1, len([d for d in visible.split(",") if d.strip()]))


@GENERATORS.register("vllm")
class VLLMGenerator(Generator):
    answer_extras = ("chat_template",)
    # torch_threads: the generate stage passes it to every backend (used by transformers only)
    known_extra = frozenset(LLM_OPTIONS) | {"chat_template", "chunk_size", "torch_threads"}

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        try:
            import vllm
        except ImportError:
            raise UserError("backend 'vllm' needs vLLM (GPU machines): pip install 'polyrefusal[vllm]'",
                            field="generation.backend") from None
        self._vllm = vllm
        where = locate_model(spec.path, spec.revision)
        options = {k: cast(spec.extra[k]) for k, cast in LLM_OPTIONS.items() if spec.extra.get(k) is not None}
        options.setdefault("tensor_parallel_size", visible_gpus())
        options.setdefault("gpu_memory_utilization", 0.9)
        adapter = adapter_info(where.source)
        self.lora_request = None
        model, revision = where, spec.revision
        if adapter is not None:
            options.update(self._lora_options(adapter, options.pop("max_lora_rank", None)))
            model, revision = locate_model(adapter.base, adapter.revision), adapter.revision
            self.lora_request = self._lora_request(adapter)
        else:
            options.pop("max_lora_rank", None)  # only meaningful with an adapter
        # A cached hub snapshot is passed as its directory: vLLM then needs no network.
        revision = None if model.local_only else revision
        try:
            self.llm = vllm.LLM(model=model.source, revision=revision, tokenizer_revision=revision,
                                dtype=spec.dtype, seed=int(spec.seed), **options)
        except (OSError, ValueError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserError(f"vLLM cannot load the model: {first}", file=spec.path) from None
        self.chat_template = spec.extra.get("chat_template")
        self.sampling = vllm.SamplingParams(n=1, temperature=float(spec.temperature), top_p=float(spec.top_p),
                                            max_tokens=int(spec.max_new_tokens), seed=int(spec.seed))

    @staticmethod
    def _lora_options(adapter: Adapter, requested_rank: int | None) -> dict:
        # One adapter per engine (a job serves one model); the tokenizer is the adapter
        # directory's own, so the chat template is the one the cache identity hashed.
        return {"enable_lora": True, "max_loras": 1,
                "max_lora_rank": lora_rank_slot(adapter.rank, requested_rank),
                **({"tokenizer": adapter.path} if adapter.has_tokenizer else {})}

    def _lora_request(self, adapter: Adapter):
        from vllm.lora.request import LoRARequest

        # Positional: the third field is lora_path in current vLLM, lora_local_path in old ones.
        return LoRARequest(Path(adapter.path).name, 1, adapter.path)

    @property
    def chunk_size(self) -> int:
        return max(1, int(self.spec.extra.get("chunk_size", 1024)))

    def render(self, prompt: Prompt) -> str:
        tokenizer = self.llm.get_tokenizer()
        return tokenizer.apply_chat_template(self.messages(self.spec, prompt), tokenize=False,
                                             add_generation_prompt=True, chat_template=self.chat_template)

    def generate(self, prompts: list[Prompt]) -> list[str]:
        if not prompts:
            return []
        outputs = self.llm.chat([self.messages(self.spec, p) for p in prompts], self.sampling,
                                use_tqdm=False, chat_template=self.chat_template,
                                lora_request=self.lora_request)
        answers = []
        for out in outputs:  # in request order
            completion = out.outputs[0]
            self.new_tokens += len(completion.token_ids)
            answers.append(completion.text.strip())
        return answers

    def next_token_logprobs(self, prompts: list[Prompt], candidates: list[str],
                            prefix: str = "") -> list[dict[str, float]]:
        """Exact log-probabilities: each candidate's first token is appended to the templated
        prompt (and the answer ``prefix``) and scored as a prompt token (``prompt_logprobs``),
        so no candidate falls out of a top-k. The shared prefix is computed once with prefix
        caching."""
        if not prompts:
            return []
        tokenizer = self.llm.get_tokenizer()
        first = {}
        for c in candidates:
            ids = tokenizer.encode(c, add_special_tokens=False)
            if not ids:
                raise UserError(f"candidate {c!r} encodes to no token")
            first[c] = ids[0]
        requests = []
        for p in prompts:
            ids = tokenizer.encode(self.render(p) + prefix, add_special_tokens=False)
            requests += [{"prompt_token_ids": ids + [t]} for t in first.values()]
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outputs = self.llm.generate(requests, params, use_tqdm=False, lora_request=self.lora_request)
        result, it = [], iter(outputs)
        for _ in prompts:
            row = {}
            for c, t in first.items():
                row[c] = float(next(it).prompt_logprobs[-1][t].logprob)
            result.append(row)
        return result

    def close(self) -> None:
        import gc
        self.llm = None
        gc.collect()
        try:
            import torch
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass
