"""Backend ``transformers``: batched ``model.generate`` with left padding, on CPU or GPU.

The default for the embedded tiny model, and the backend that exposes logits
(``next_token_logprobs``, used by guard judges). Prompts are sorted by token length so that
each batch pads little, and answers are returned in the caller's order. Greedy decoding is
deterministic; sampled decoding is seeded per ``generate`` call (``spec.seed``), so it is
reproducible for the same batches.

Decoding is exactly what the spec says (temperature, top-p, max new tokens): the checkpoint's
``generation_config.json`` contributes its stop tokens only, not a top-k or a repetition
penalty the spec (and the cache key) knows nothing about, and not what vLLM and OpenAI-style
servers would not apply either.
"""

from __future__ import annotations

import logging

from ..errors import UserError
from .base import GENERATORS, Generator, ModelSpec, Prompt
from .identity import adapter_info, locate_model

log = logging.getLogger(__name__)
DTYPES = ("auto", "float32", "bfloat16", "float16")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def resolve_device(spec: ModelSpec) -> str:
    import torch
    return spec.device or ("cuda" if torch.cuda.is_available() else "cpu")


def resolve_dtype(spec: ModelSpec, device: str):
    import torch
    if spec.dtype not in DTYPES:
        raise UserError(f"unknown dtype {spec.dtype!r}; use one of {', '.join(DTYPES)}", field="generation.dtype")
    if spec.dtype == "auto":
        # The checkpoint's own dtype on a GPU; float32 on a CPU, where bf16/fp16 matmuls are
        # slow or missing.
        return "auto" if device.startswith("cuda") else torch.float32
    return getattr(torch, spec.dtype)


def load_pretrained(spec: ModelSpec, device: str):
    """(tokenizer, model) for ``spec``, or a one-line UserError (missing path, offline hub id,
    not a causal LM...)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = locate_model(spec.path, spec.revision)
    kwargs = {"revision": spec.revision, "local_files_only": where.local_only}
    device_map = spec.extra.get("device_map")  # e.g. "auto": shard a big model over GPUs
    dtype = resolve_dtype(spec, device)
    adapter = adapter_info(where.source)
    try:
        if adapter is not None:
            # A LoRA adapter (dpo.merge_lora: false): its base located like any model (a clear
            # error offline), the adapter applied with peft and merged in memory only, so
            # decoding runs at the base model's speed and nothing is written to disk. The
            # tokenizer and chat template are the adapter directory's (what train saved).
            from peft import PeftModel
            base = locate_model(adapter.base, adapter.revision)
            base_kwargs = {"local_files_only": base.local_only,
                           "revision": None if base.local_only else adapter.revision}
            tokenizer = (AutoTokenizer.from_pretrained(adapter.path, local_files_only=True)
                         if adapter.has_tokenizer else AutoTokenizer.from_pretrained(base.source, **base_kwargs))
            model = AutoModelForCausalLM.from_pretrained(base.source, dtype=dtype, device_map=device_map,
                                                         **base_kwargs)
            model = PeftModel.from_pretrained(model, adapter.path).merge_and_unload()
        else:
            tokenizer = AutoTokenizer.from_pretrained(where.source, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(where.source, dtype=dtype,
                                                         device_map=device_map, **kwargs)
    except (OSError, ValueError, KeyError) as exc:  # what transformers/hub/peft raise for bad models
        raise UserError(f"cannot load model: {_first_line(exc)}", file=spec.path) from None
    if device_map is None:
        model.to(device)
    model.eval()
    return tokenizer, model


def decoding_config(spec: ModelSpec, model, tokenizer):
    """A GenerationConfig that is the spec and nothing else (see the module docstring)."""
    from transformers import GenerationConfig

    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    eos_ids = [eos] if isinstance(eos, int) else list(eos)
    # Explicit neutral values throughout: generate() fills unset ones from the checkpoint.
    decoding = {"do_sample": False}
    if spec.temperature > 0:
        decoding = {"do_sample": True, "temperature": float(spec.temperature), "top_p": float(spec.top_p),
                    "top_k": 0}
    return GenerationConfig(max_new_tokens=int(spec.max_new_tokens), repetition_penalty=1.0,
                            no_repeat_ngram_size=0, num_beams=1, eos_token_id=eos_ids,
                            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                            **decoding)


@GENERATORS.register("transformers")
class TransformersGenerator(Generator):
    answer_extras = ("chat_template",)
    known_extra = frozenset({"chat_template", "device_map", "torch_threads"})

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        import torch

        if spec.extra.get("torch_threads"):
            torch.set_num_threads(int(spec.extra["torch_threads"]))
        self.device = resolve_device(spec)
        self.tokenizer, self.model = load_pretrained(spec, self.device)
        tok = self.tokenizer
        if spec.extra.get("chat_template"):
            tok.chat_template = spec.extra["chat_template"]
        if not tok.chat_template:
            raise UserError("the model has no chat template; give one in generation.extra.chat_template",
                            file=spec.path)
        tok.padding_side = "left"  # decoder-only: generation continues from the right edge
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self.generation_config = decoding_config(spec, self.model, tok)
        stop = set(self.generation_config.eos_token_id) | {tok.pad_token_id}
        self._stop_ids = torch.tensor(sorted(stop), device=self.model.device)

    def render(self, prompt: Prompt) -> str:
        return self.tokenizer.apply_chat_template(self.messages(self.spec, prompt), tokenize=False,
                                                  add_generation_prompt=True)

    def _batches(self, prompts: list[Prompt], suffix: str = ""):
        """(indices, padded encoding) per batch, longest prompts first; ``suffix`` is appended
        to each templated prompt (answer text forced before a scored token)."""
        if not prompts:
            return
        texts = [self.render(p) + suffix for p in prompts]
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        size = max(1, int(self.spec.batch_size))
        for start in range(0, len(order), size):
            batch = order[start:start + size]
            # The template already holds BOS and friends: no special tokens added again.
            enc = self.tokenizer([texts[i] for i in batch], padding=True, return_tensors="pt",
                                 add_special_tokens=False).to(self.model.device)
            yield batch, enc

    def generate(self, prompts: list[Prompt]) -> list[str]:
        import torch

        answers: list[str] = [""] * len(prompts)
        if self.spec.temperature > 0:
            torch.manual_seed(int(self.spec.seed))
        for batch, enc in self._batches(prompts):
            with torch.inference_mode():
                out = self.model.generate(**enc, generation_config=self.generation_config)
            new = out[:, enc["input_ids"].shape[1]:]
            self.new_tokens += self._count_tokens(new)
            for i, text in zip(batch, self.tokenizer.batch_decode(new, skip_special_tokens=True)):
                answers[i] = text.strip()
        return answers

    def _count_tokens(self, new) -> int:
        """Answer tokens up to and including the first stop token (the rest is padding)."""
        import torch
        stop = torch.isin(new, self._stop_ids)
        first = stop.int().argmax(dim=1)
        return int(torch.where(stop.any(dim=1), first + 1, new.shape[1]).sum())

    def next_token_logprobs(self, prompts: list[Prompt], candidates: list[str],
                            prefix: str = "") -> list[dict[str, float]]:
        import torch

        ids = {}
        for c in candidates:
            tokens = self.tokenizer.encode(c, add_special_tokens=False)
            if not tokens:
                raise UserError(f"candidate {c!r} encodes to no token")
            ids[c] = tokens[0]
        out: list[dict[str, float]] = [{} for _ in prompts]
        for batch, enc in self._batches(prompts, prefix):
            # Positions must count from each row's first real token, as generate() does: a
            # plain forward would shift left-padded rows and change their logits.
            positions = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                logits = self.model(**enc, position_ids=positions, logits_to_keep=1).logits[:, -1, :]
            logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
            for row, i in enumerate(batch):
                out[i] = {c: float(logprobs[row, t]) for c, t in ids.items()}
        return out

    def close(self) -> None:
        import gc

        import torch
        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
