"""The generator interface: chat prompts in, answers out.

A ``ModelSpec`` names the model and every decoding parameter; ``Generator.cache_identity()``
plus the chat-templated prompt is the key of the response cache (``cache.ResponseCache``), so a
cached answer is never served across models, revisions, weights or sampling parameters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field

from ..registry import Registry


@dataclass
class ModelSpec:
    path: str                      # local directory or hub id
    revision: str | None = None
    dtype: str = "auto"            # auto | float32 | bfloat16 | float16
    max_new_tokens: int = 64
    temperature: float = 0.0       # 0 = greedy
    top_p: float = 1.0
    seed: int = 0
    system_prompt: str | None = None
    batch_size: int = 16
    device: str | None = None      # None = cuda if available else cpu
    extra: dict = field(default_factory=dict)  # backend-specific (tensor_parallel_size, base_url...)

    def sampling(self) -> dict:
        return {k: getattr(self, k) for k in ("max_new_tokens", "temperature", "top_p", "seed")}

    def to_dict(self) -> dict:
        return asdict(self)


class Generator(ABC):
    name: str = "?"

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def cache_identity(self) -> dict:
        """Backend, model identity (weights digest for local dirs) and sampling parameters."""
        return {"backend": self.name, "model": self.spec.path, "revision": self.spec.revision,
                "sampling": self.spec.sampling(), "system_prompt": self.spec.system_prompt}

    def render(self, prompt: str) -> str:
        """The chat-templated prompt exactly as the model sees it (part of the cache key)."""
        return prompt

    @abstractmethod
    def generate(self, prompts: list[str]) -> list[str]:
        """Answer each user prompt (a single user turn); one answer per prompt, in order."""

    def next_token_logprobs(self, prompts: list[str], candidates: list[str]) -> list[dict[str, float]]:
        """Log-probability of each candidate string's first token as the first answer token
        (e.g. Llama Guard's ``safe``/``unsafe``). Backends without logits raise
        NotImplementedError and judges then report no score."""
        raise NotImplementedError(f"{self.name} does not expose logits")


GENERATORS: Registry[Generator] = Registry("generator")
GENERATORS.lazy("transformers", "polyrefusal.generate.hf")
GENERATORS.lazy("vllm", "polyrefusal.generate.vllm_backend")
GENERATORS.lazy("openai", "polyrefusal.generate.openai_backend")
