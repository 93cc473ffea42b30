"""``deepl``: DeepL's v2 API through the official ``deepl`` client.

* The key comes from ``DEEPL_AUTH_KEY`` only and the server from ``DEEPL_SERVER_URL`` when set
  (the convention of DeepL's own client tests), else the client's default. The client is made
  on the first request, so a run served entirely from the translation memory needs no key.
* Retries: 429 and 5xx are retried by the client itself with exponential backoff
  (``max_retries`` option, default 5). When it gives up, or on 456 (quota exceeded), we raise a
  ``BackendError``; the driver has already saved every batch received before it, and a re-run
  resumes there. A status no retry can fix (400, 403, 404, 413, 414, other 4xx) is a
  ``RequestRejected``: the driver then does not offer to resume.
* Formality: DeepL rejects ``less`` / ``more`` for a target language without formality
  support (HTTP 400; DeepL API reference, ``formality``). Which targets have it, the API's
  target-language list says (``GET /v2/languages?type=target``, ``supports_formality``); it is
  asked once per server and process, before the first text is sent. For a target without it,
  ``less`` / ``more`` are sent as ``prefer_less`` / ``prefer_more`` (DeepL's own fallback to the
  default formality) with one warning, so one setting serves all twelve languages; the memory
  key keeps the option as configured (the choice depends on the language only).
* Batching: DeepL takes at most 50 texts and 128 KiB per request. ``requests`` sends the body
  as JSON with ``ensure_ascii``, so a text costs its JSON-escaped length, not its UTF-8 length.

Options (params ``translate.options`` / ``--options``):
  formality      less | more | default | prefer_less | prefer_more (``less`` / ``more`` become
                 the ``prefer_`` form, with a warning, where the target lacks formality)
  glossary_id    a glossary id, or {target language: glossary id} (glossaries are per pair)
  context        extra context text (not translated, not billed)
  model_type     quality_optimized | latency_optimized | prefer_quality_optimized
  en_variant     EN-GB (default) | EN-US: DeepL's code when translating into English
  pt_variant     PT-PT (default) | PT-BR: DeepL's code when translating into Portuguese
  max_retries    client retries on 429/5xx/network errors (default 5; not part of the key)
"""

from __future__ import annotations

import json
import logging
import os

from .. import __version__
from ..errors import BackendError, UserError
from .base import TRANSLATORS, RequestRejected, Translator

log = logging.getLogger(__name__)

KEY_ENV = "DEEPL_AUTH_KEY"
URL_ENV = "DEEPL_SERVER_URL"
VARIANTS = {"en": ("en_variant", ("EN-GB", "EN-US")), "pt": ("pt_variant", ("PT-PT", "PT-BR"))}
#: Options DeepL's translate call takes, by our name -> the client's keyword.
PASS_THROUGH = {"formality": "formality", "glossary_id": "glossary", "context": "context",
                "model_type": "model_type"}
#: Formality values DeepL refuses for a target without formality -> the form it accepts there.
STRICT_FORMALITY = {"less": "prefer_less", "more": "prefer_more"}
#: server URL -> {target code: supports formality}, from the API's target-language list.
_FORMALITY_SUPPORT: dict[str, dict[str, bool]] = {}


@TRANSLATORS.register("deepl")
class DeepLTranslator(Translator):
    known_options = frozenset({*PASS_THROUGH, "en_variant", "pt_variant", "max_retries"})
    runtime_options = frozenset({"max_retries"})
    max_batch_texts = 50           # DeepL: "up to 50 texts can be sent in one request"
    max_batch_bytes = 128 * 1024   # DeepL: "the total request size must not exceed 128 KiB"

    def __init__(self, **options):
        super().__init__(**options)
        for lang, (opt, allowed) in VARIANTS.items():
            value = str(self.options.get(opt, allowed[0])).upper()
            if value not in allowed:
                raise UserError(f"{opt} must be one of {', '.join(allowed)}, not {value!r}",
                                field=f"translate.options.{opt}")
            self.options[opt] = value
        retries = self.options.get("max_retries", 5)
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise UserError(f"max_retries must be a whole number >= 0, not {retries!r}",
                            field="translate.options.max_retries")
        glossary = self.options.get("glossary_id")
        if glossary is not None and not isinstance(glossary, (str, dict)):
            raise UserError("glossary_id must be an id or a mapping {language: id}",
                            field="translate.options.glossary_id")
        self._client = None
        self._key: str | None = None
        self._softened: set[str] = set()  # targets whose formality was warned about

    # -- language codes and parameters -------------------------------------------------------
    def target_code(self, target: str) -> str:
        lang = target.lower()
        if lang in VARIANTS:
            return self.options[VARIANTS[lang][0]]
        return lang.upper()

    @staticmethod
    def source_code(source: str) -> str:
        return source.split("-")[0].upper()  # DeepL source codes carry no regional variant

    def _params(self, source: str, target: str) -> dict:
        """Keyword arguments of ``translate_text`` for this pair (our option names)."""
        params = {k: self.options.get(k) for k in PASS_THROUGH}
        if isinstance(params["glossary_id"], dict):
            params["glossary_id"] = params["glossary_id"].get(target)
        return {k: v for k, v in params.items() if v is not None}

    def fingerprint(self, source: str, target: str) -> dict:
        # Only what changes this pair's output: the resolved DeepL target code (not both
        # variant options) and this target's glossary (not every language's).
        return {"backend": self.name, "version": self.version,
                "options": {**self._params(source, target), "target_lang": self.target_code(target)}}

    def request_bytes(self, text: str) -> int:
        return len(json.dumps(text)) + 2  # ensure_ascii JSON string plus ", " between items

    def request_overhead(self, source: str, target: str) -> int:
        body = {"target_lang": self.target_code(target), "source_lang": self.source_code(source),
                "show_billed_characters": True, "text": [], **self._params(source, target)}
        return len(json.dumps(body)) + 256  # margin for parameters a future client may add

    # -- the client ---------------------------------------------------------------------------
    def _connect(self):
        import deepl
        key = os.environ.get(KEY_ENV, "").strip()
        if not key:
            raise UserError(f"{KEY_ENV} is not set: the deepl backend reads its API key from the "
                            "environment only")
        # The client's retry count is module state; its backoff (1 s, x1.6, jittered) is the one
        # DeepL recommends, so we use it rather than a second retry loop of our own.
        deepl.http_client.max_network_retries = int(self.options.get("max_retries", 5))
        deepl_log = logging.getLogger("deepl")
        if deepl_log.level == logging.NOTSET and logging.getLogger().level > logging.DEBUG:
            deepl_log.setLevel(logging.WARNING)  # one INFO line per request is noise
        self._key = key
        self._client = deepl.DeepLClient(key, server_url=os.environ.get(URL_ENV) or None,
                                         send_platform_info=False)
        self._client.set_app_info("polyrefusal", __version__)
        return self._client

    def _scrub(self, message: str) -> str:
        """Error text may echo request details: never let the key through."""
        return message.replace(self._key, "***") if self._key else message

    def _explain(self, exc: Exception) -> UserError:
        """One line for a failed call; resumable (quota, rate limit, 5xx, network) or not."""
        import deepl
        detail = self._scrub(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, deepl.QuotaExceededException):
            return BackendError(f"DeepL quota exceeded (HTTP 456): {detail}")
        if isinstance(exc, deepl.AuthorizationException):
            return RequestRejected(f"DeepL rejected the API key (HTTP 403): check {KEY_ENV} and "
                                   f"{URL_ENV} (free keys need the api-free server): {detail}")
        if isinstance(exc, deepl.TooManyRequestsException):
            return BackendError(f"DeepL is rate-limiting (HTTP 429) after {self._retries()} "
                                f"retries: {detail}")
        if isinstance(exc, deepl.DeepLException):
            status = getattr(exc, "http_status_code", None)
            if status and status < 500:  # 400, 404, 413, 414...: the same request fails again
                return RequestRejected(f"DeepL refused the request (HTTP {status}): {detail}")
            # 5xx and network errors were retried by the client before it gave up.
            what = f"HTTP {status}" if status else "no response"
            return BackendError(f"DeepL request failed ({what}, gave up after {self._retries()} "
                                f"retries): {detail}")
        if isinstance(exc, ValueError):  # the client's own argument checks
            return UserError(f"invalid DeepL options: {exc}", field="translate.options")
        raise exc

    def supports_formality(self, target: str) -> bool:
        """Does DeepL offer formality for this target? Asked of the server once (its
        target-language list), before any text is sent."""
        import deepl
        client = self._client or self._connect()
        url = os.environ.get(URL_ENV) or "(default)"
        if url not in _FORMALITY_SUPPORT:
            try:
                languages = client.get_target_languages()
            except (deepl.DeepLException, ValueError) as exc:
                raise self._explain(exc) from None
            _FORMALITY_SUPPORT[url] = {lang.code.upper(): bool(lang.supports_formality) for lang in languages}
        return _FORMALITY_SUPPORT[url].get(self.target_code(target).upper(), False)

    def _request_params(self, source: str, target: str) -> dict:
        """The client's keyword arguments for this pair: glossary under the client's name,
        a strict formality softened where the target has none."""
        params = self._params(source, target)
        if "glossary_id" in params:
            params["glossary"] = params.pop("glossary_id")
        formality = params.get("formality")
        if formality in STRICT_FORMALITY and not self.supports_formality(target):
            params["formality"] = STRICT_FORMALITY[formality]
            if target not in self._softened:
                self._softened.add(target)
                log.warning("DeepL has no formality for %s: formality %r sent as %r (the default "
                            "formality)", self.target_code(target), formality, params["formality"])
        return params

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        import deepl
        client = self._client or self._connect()
        params = self._request_params(source, target)
        try:
            results = client.translate_text(texts, source_lang=self.source_code(source),
                                            target_lang=self.target_code(target), **params)
        except (deepl.DeepLException, ValueError) as exc:
            raise self._explain(exc) from None
        self.requests += 1
        self.characters_billed += sum(r.billed_characters or 0 for r in results)
        return [r.text for r in results]

    def _retries(self) -> int:
        return int(self.options.get("max_retries", 5))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
