"""``transformers``: a local seq2seq translation model (M2M100, NLLB, Marian/OPUS-MT), batched.

Options:
  model           local directory or hub id (required); ``{source}``/``{target}`` are filled in,
                  e.g. ``Helsinki-NLP/opus-mt-{source}-{target}`` for one Marian model per pair
  revision        hub revision (part of the memory key)
  src_lang, tgt_lang
                  the model's language codes, when the defaults below do not fit: M2M100 uses
                  ``__de__`` tokens, NLLB ``deu_Latn``, multi-target Marian ``>>deu<<`` prefixes,
                  single-pair Marian none
  max_new_tokens  (default 256), num_beams (default 1), dtype (auto | float32 | bfloat16 | float16)
  batch_size      texts per forward pass (default 16), device (default: cuda if available) —
                  both runtime-only: not part of the memory key

Nothing is downloaded by this module itself: a hub id must already be in the local cache (or
the user's environment must allow downloads). Local directories are keyed by a digest of their
files, so retraining a model in place invalidates its memory entries.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from ..errors import BackendError, UserError
from .base import TRANSLATORS, Translator

log = logging.getLogger(__name__)

#: FLORES-200 codes (NLLB) of the study languages; Standard Latvian is ``lvs``.
NLLB_CODES = {"en": "eng_Latn", "de": "deu_Latn", "it": "ita_Latn", "fr": "fra_Latn",
              "es": "spa_Latn", "pt": "por_Latn", "pl": "pol_Latn", "cs": "ces_Latn",
              "sk": "slk_Latn", "sl": "slv_Latn", "lt": "lit_Latn", "lv": "lvs_Latn"}
#: ISO 639-3 codes, used by multi-target OPUS-MT models as ``>>deu<<``.
ISO3 = {"en": "eng", "de": "deu", "it": "ita", "fr": "fra", "es": "spa", "pt": "por",
        "pl": "pol", "cs": "ces", "sk": "slk", "sl": "slv", "lt": "lit", "lv": "lav"}
#: Files up to this size are hashed whole for the key; larger weights by name and size only
#: (hashing gigabytes on every run would cost more than it protects).
HASH_WHOLE_BYTES = 64 << 20


def dir_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        size = f.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        if size <= HASH_WHOLE_BYTES:
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:24]


@TRANSLATORS.register("transformers")
class TransformersTranslator(Translator):
    known_options = frozenset({"model", "revision", "src_lang", "tgt_lang", "max_new_tokens",
                               "num_beams", "dtype", "batch_size", "device"})
    runtime_options = frozenset({"batch_size", "device"})
    max_batch_bytes = 1 << 40  # a local model has no request size; batch_size bounds memory

    def __init__(self, **options):
        super().__init__(**options)
        if not self.options.get("model"):
            raise UserError("the transformers backend needs option 'model' (a local directory "
                            "or hub id)", field="translate.options.model")
        self.max_batch_texts = int(self.options.get("batch_size", 16))
        self._loaded: dict[str, tuple] = {}  # model id -> (tokenizer, model)
        self._digests: dict[str, str] = {}

    def model_id(self, source: str, target: str) -> str:
        return str(self.options["model"]).format(source=source, target=target)

    def fingerprint(self, source: str, target: str) -> dict:
        fp = super().fingerprint(source, target)
        model = self.model_id(source, target)
        if Path(model).is_dir():
            # A local model is keyed by its content, not its path: the memory stays valid for
            # another checkout that keeps the same model elsewhere.
            if model not in self._digests:
                self._digests[model] = dir_digest(Path(model))
            fp["options"] = {k: v for k, v in fp["options"].items() if k != "model"}
            fp["model_digest"] = self._digests[model]
        else:
            fp["options"]["model"] = model
        return fp

    def _load(self, model_id: str):
        if model_id not in self._loaded:
            import torch
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
            device = self.options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
            dtype = self.options.get("dtype", "auto")
            kwargs = {"revision": self.options.get("revision")}
            try:
                tokenizer = AutoTokenizer.from_pretrained(model_id, **kwargs)
                model = AutoModelForSeq2SeqLM.from_pretrained(
                    model_id, dtype=dtype if dtype == "auto" else getattr(torch, dtype), **kwargs)
            except (OSError, ValueError) as exc:
                raise BackendError(f"cannot load translation model {model_id!r}: "
                                   f"{str(exc).splitlines()[0]}", field="translate.options.model") from None
            model.to(device).eval()
            log.info("loaded translation model %s on %s", model_id, device)
            self._loaded[model_id] = (tokenizer, model)
        return self._loaded[model_id]

    def _language_setup(self, tokenizer, source: str, target: str) -> tuple[str, dict]:
        """(prefix for each input, generate() kwargs) for the model family the vocabulary shows.
        ``src_lang``/``tgt_lang`` override the codes as the tokenizer names them (M2M100: "de",
        NLLB: "deu_Latn", Marian: "deu")."""
        vocab = tokenizer.get_vocab()
        src, tgt = self.options.get("src_lang"), self.options.get("tgt_lang")
        # M2M100 (token __de__) and NLLB (token deu_Latn): the target is forced as the first
        # generated token; the tokenizer marks the source itself once src_lang is set.
        families = ((src or source, tgt or target, "__{}__"),
                    (src or NLLB_CODES.get(source), tgt or NLLB_CODES.get(target), "{}"))
        for src_code, tgt_code, token_form in families:
            token = token_form.format(tgt_code)
            if tgt_code and token in vocab:
                if src_code and hasattr(tokenizer, "src_lang"):
                    tokenizer.src_lang = src_code
                return "", {"forced_bos_token_id": vocab[token]}
        # Multi-target Marian (OPUS-MT): a >>deu<< prefix selects the target language.
        for code in (tgt, ISO3.get(target), target):
            if code and f">>{code}<<" in vocab:
                return f">>{code}<< ", {}
        return "", {}  # a single-pair model

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        import torch
        tokenizer, model = self._load(self.model_id(source, target))
        prefix, gen_kwargs = self._language_setup(tokenizer, source, target)
        enc = tokenizer([prefix + t for t in texts], return_tensors="pt", padding=True,
                        truncation=True).to(model.device)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=int(self.options.get("max_new_tokens", 256)),
                                 num_beams=int(self.options.get("num_beams", 1)), do_sample=False,
                                 **gen_kwargs)
        self.requests += 1
        return [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]
