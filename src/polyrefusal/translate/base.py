"""The translator interface. Every backend is a small class registered by name.

The content-addressed translation memory (``store.TranslationMemory``) wraps every backend:
``driver.translate_records`` asks the memory first, sends only misses to the backend in
batches, and writes each successful batch to the memory at once, so an interrupted run loses
nothing and a re-run pays for nothing twice.

A backend only translates one batch; it knows nothing of records, files or the memory. What it
must tell the driver is everything that changes its output (``fingerprint``: part of every
memory key) and how big a request may be (``max_batch_texts``, ``max_batch_bytes``,
``request_bytes``, ``request_overhead``).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod

from ..errors import BackendError, UserError
from ..registry import Registry


#: Option names that look like credentials (``auth_key``, ``api_key``, ``hf_token``...), but
#: not ``max_new_tokens``.
_SECRET_NAME = re.compile(r"auth|secret|password|passwd|(^|_)(api_?)?key$|(^|_)token$", re.I)


class RequestRejected(BackendError):
    """The backend refused a request for a reason no retry and no re-run can fix (a bad
    parameter, a wrong key, a request too large: DeepL's 400, 403, 404, 413, 414): unlike a
    quota, rate-limit or network error, the driver does not offer to resume."""


class MissingTranslation(Exception):
    """Raised by a backend that cannot translate ``texts[index]`` (e.g. the built-in memory has
    no entry). The driver turns it into a ``UserError`` naming the record and field."""

    def __init__(self, index: int, reason: str, text: str | None = None):
        self.index = index
        self.reason = reason
        self.text = text  # set when raised outside a batch (the batch planner)
        super().__init__(reason)


class Translator(ABC):
    name: str = "?"
    #: Bump when a code change alters a backend's output: it invalidates that backend's memory.
    version: str = "1"
    #: Per-request limits; the driver batches within them.
    max_batch_texts: int = 50
    max_batch_bytes: int = 128 * 1024
    #: Accepted option names (None: anything). Secrets are never options: they come from the
    #: environment, so they can never reach params.yaml, a memory key or a log line.
    known_options: frozenset[str] | None = None
    #: False for ``none``: the stage then translates nothing (each language keeps its own rows).
    translates: bool = True
    #: Options that change how a backend runs (retries, device, batch size) but not what it
    #: outputs: kept out of the memory key, so changing them never re-bills a text.
    runtime_options: frozenset[str] = frozenset()

    def __init__(self, **options):
        for key in options:
            if _SECRET_NAME.search(key):
                raise UserError(f"option {key!r} looks like a secret; secrets are read from the "
                                "environment only (e.g. DEEPL_AUTH_KEY)", field="translate.options")
        if self.known_options is not None:
            unknown = sorted(set(options) - self.known_options)
            if unknown:
                raise UserError(f"unknown {self.name} option(s) {', '.join(map(repr, unknown))}; "
                                f"known: {', '.join(sorted(self.known_options))}",
                                field="translate.options")
        # ``None`` means "backend default": dropping it keeps {"formality": None} and {} on the
        # same memory key.
        self.options = {k: v for k, v in options.items() if v is not None}
        #: Counters the driver reports in the usage file.
        self.characters_billed = 0
        self.requests = 0

    def fingerprint(self, source: str, target: str) -> dict:
        """Everything that changes the output of ``source -> target``: part of every memory key.
        Backends narrow it to what matters for this pair (a Portuguese variant must not
        invalidate German entries)."""
        return {"backend": self.name, "version": self.version,
                "options": {k: v for k, v in self.options.items() if k not in self.runtime_options}}

    def request_bytes(self, text: str) -> int:
        """What one text adds to a request's size (the unit of ``max_batch_bytes``)."""
        return len(text.encode("utf-8"))

    def request_overhead(self, source: str, target: str) -> int:
        """Bytes of a request that are not texts (parameters, JSON framing)."""
        return 0

    @abstractmethod
    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        """Translate one batch; return one string per input, in order. Raise ``BackendError``
        for failures the user must act on, ``MissingTranslation`` for an untranslatable text."""

    def close(self) -> None:
        """Release clients or models (optional)."""


TRANSLATORS: Registry[Translator] = Registry("translator")
TRANSLATORS.lazy("memory", "polyrefusal.translate.builtin")
TRANSLATORS.lazy("none", "polyrefusal.translate.builtin")
TRANSLATORS.lazy("deepl", "polyrefusal.translate.deepl_backend")
TRANSLATORS.lazy("transformers", "polyrefusal.translate.transformers_mt")
