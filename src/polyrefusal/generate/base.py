"""The generator interface: chat prompts in, answers out.

A ``ModelSpec`` names the model and every decoding parameter. The response cache
(``cache.ResponseCache``) keys an answer by ``Generator.identity(spec)`` (backend, model
identity, dtype, every sampling parameter, the extras that change answers) and the chat
messages of the prompt, so a cached answer is never served across models, revisions, weights
or sampling parameters.

Why the messages and not the chat-templated string: the templated prompt is a pure function
of (messages, tokenizer files), and the tokenizer files and chat template are part of the
model identity (``identity.model_files``). Keying by messages gives the same guarantee while
letting a fully cached run skip loading even the tokenizer. ``render`` still returns the exact
string the model sees, for audits and tests.

Identity and messages are class-level so the runner computes keys without building (loading)
a generator. Backend modules import their heavy dependencies inside methods only.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Union

from ..registry import Registry

#: A user turn, or a whole chat ``[{"role": ..., "content": ...}, ...]`` (see ``Generator.messages``).
Prompt = Union[str, list[dict]]

#: Bump when a change in this package changes the answers a backend produces for the same
#: model and parameters (answer post-processing, decoding defaults): old entries then miss.
CACHE_FORMAT = 1


def _generation_default(key: str):
    """A field default from params ``generation``'s schema (one statement of each default): a
    spec built without it (a guard judge, a respond backend, a test) decodes as a generate job."""
    from ..params import default

    return field(default_factory=lambda: default(f"generation.{key}"))


@dataclass
class ModelSpec:
    path: str                      # local directory or hub id (openai: the served model name)
    revision: str | None = None
    dtype: str = _generation_default("dtype")  # auto | float32 | bfloat16 | float16
    max_new_tokens: int = 64       # generation.max_new_tokens is required in params: no default there
    temperature: float = _generation_default("temperature")  # 0 = greedy
    top_p: float = _generation_default("top_p")
    seed: int = _generation_default("seed")
    system_prompt: str | None = _generation_default("system_prompt")
    batch_size: int = _generation_default("batch_size")
    device: str | None = None      # None = cuda if available else cpu
    extra: dict = field(default_factory=dict)  # backend-specific (tensor_parallel_size, base_url...)

    def sampling(self) -> dict:
        return {k: getattr(self, k) for k in ("max_new_tokens", "temperature", "top_p", "seed")}

    def to_dict(self) -> dict:
        return asdict(self)


class Generator(ABC):
    name: str = "?"
    #: ``spec.extra`` keys that change the answers, hence part of the cache key. The others
    #: (threads, concurrency, memory settings) change only how fast answers come.
    answer_extras: tuple[str, ...] = ()
    #: The ``spec.extra`` keys the backend reads (None: not declared). Params validation names
    #: any other before a job starts: a misspelt ``base_url`` would send the requests elsewhere.
    known_extra: frozenset[str] | None = None

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        #: Answer tokens generated so far (EOS included), for throughput statistics.
        self.new_tokens = 0

    # -- cache identity (no model needed) ------------------------------------------------------
    @classmethod
    def model_identity(cls, spec: ModelSpec) -> dict:
        from .identity import model_identity
        return model_identity(spec.path, spec.revision)

    @classmethod
    def identity(cls, spec: ModelSpec) -> dict:
        """Everything besides the prompt that decides an answer."""
        return {"format": CACHE_FORMAT, "backend": cls.name, "model": cls.model_identity(spec),
                "dtype": spec.dtype, "sampling": spec.sampling(),
                "extra": {k: spec.extra[k] for k in cls.answer_extras if k in spec.extra}}

    @staticmethod
    def messages(spec: ModelSpec, prompt: Prompt) -> list[dict]:
        """The chat the model answers: the spec's system prompt (if any) and the prompt, which
        is one user turn, or a whole chat (``[{"role", "content"}, ...]``: what a guard model
        such as Llama Guard classifies, its chat template turning it into the moderation prompt)."""
        turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        if spec.system_prompt and not (turns and turns[0].get("role") == "system"):
            turns.insert(0, {"role": "system", "content": spec.system_prompt})
        return turns

    def cache_identity(self) -> dict:
        return type(self).identity(self.spec)

    # -- generation --------------------------------------------------------------------------
    def render(self, prompt: Prompt) -> str:
        """The prompt exactly as the model sees it (the chat-templated text; a remote backend,
        whose server applies the template, shows the messages it sends)."""
        return json.dumps(self.messages(self.spec, prompt), ensure_ascii=False)

    @property
    def chunk_size(self) -> int:
        """How many prompts the runner hands to one ``generate`` call, i.e. how much work an
        interruption can lose. Backends that schedule their own batches want more."""
        return max(1, int(self.spec.batch_size))

    @abstractmethod
    def generate(self, prompts: list[Prompt]) -> list[str]:
        """Answer each user prompt (a single user turn, or a chat: see ``messages``); one
        answer per prompt, in order."""

    def next_token_logprobs(self, prompts: list[Prompt], candidates: list[str],
                            prefix: str = "") -> list[dict[str, float]]:
        """Log-probability of each candidate string's first token as the answer token that
        follows ``prefix`` (e.g. Llama Guard's ``safe``/``unsafe`` after the blank line its
        template leaves to the model), one dict per prompt; a prompt may be a whole chat (see
        ``messages``). ``prefix`` is blank text the model writes before the label: a local
        backend appends it to the templated prompt; a remote one, which cannot, reads the
        first generated token that is not blank, the same position. Backends without logits
        raise NotImplementedError and judges then report no score."""
        raise NotImplementedError(f"{self.name} does not expose logits")

    def close(self) -> None:
        """Release the model (GPU memory, worker processes, connections)."""


GENERATORS: Registry[Generator] = Registry("generator")
GENERATORS.lazy("transformers", "polyrefusal.generate.hf")
GENERATORS.lazy("vllm", "polyrefusal.generate.vllm_backend")
GENERATORS.lazy("openai", "polyrefusal.generate.openai_backend")
