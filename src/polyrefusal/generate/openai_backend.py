"""Backend ``openai``: any OpenAI-compatible chat-completions server (vLLM's, a hosted API).

``spec.path`` is the served model name. The server applies the chat template, so the cache
key holds the messages sent; the model identity is (base URL, model name, revision): a model
name is only meaningful on its server. ``spec.revision`` is free text for servers that swap
weights under one name (bump it, e.g. to the weights' date, and old answers miss).

Settings (``spec.extra``): ``base_url`` (else env ``OPENAI_BASE_URL``, else the OpenAI API),
``api_key_env`` (the variable holding the key; default ``OPENAI_API_KEY``), ``concurrency``
(requests in flight, default 8), ``max_retries`` (default 5), ``timeout`` (seconds per
request, default 120), ``top_logprobs`` (alternatives per token for guard scores, default 20). The key is read from the environment only, and goes nowhere but the
``Authorization`` header: not into params, the cache, logs or error messages.

Retries: the official client retries 408/409/429/5xx, timeouts and dropped connections with
exponential backoff, honouring ``Retry-After``. What is still failing after that is a
``BackendError`` naming the cause and the remedy.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from ..errors import BackendError, UserError
from .base import GENERATORS, Generator, ModelSpec, Prompt

log = logging.getLogger(__name__)
DEFAULT_BASE_URL = "https://api.openai.com/v1"


def base_url(spec: ModelSpec) -> str:
    return (spec.extra.get("base_url") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


@GENERATORS.register("openai")
class OpenAIGenerator(Generator):
    # torch_threads: the generate stage passes it to every backend (used by transformers only)
    known_extra = frozenset({"base_url", "api_key_env", "concurrency", "max_retries", "timeout", "top_logprobs",
                             "torch_threads"})

    @classmethod
    def model_identity(cls, spec: ModelSpec) -> dict:
        return {"base_url": base_url(spec), "served_model": spec.path, "revision": spec.revision}

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        try:
            import openai
        except ImportError:
            raise UserError("backend 'openai' needs the openai client: pip install openai") from None
        self._openai = openai
        self.base_url = base_url(spec)
        self.key_env = spec.extra.get("api_key_env") or "OPENAI_API_KEY"
        key = os.environ.get(self.key_env)
        if not key:
            raise UserError(f"no API key: set the environment variable {self.key_env} (for a local server "
                            "without authentication any value, e.g. EMPTY)", field="generation.extra.api_key_env")
        self.concurrency = max(1, int(spec.extra.get("concurrency", 8)))
        self.max_retries = int(spec.extra.get("max_retries", 5))
        self.timeout = float(spec.extra.get("timeout", 120))
        self.client = openai.OpenAI(api_key=key, base_url=self.base_url, max_retries=self.max_retries,
                                    timeout=self.timeout)
        self._lock = threading.Lock()

    @property
    def chunk_size(self) -> int:
        # Enough requests to keep every connection busy between cache flushes.
        return max(int(self.spec.batch_size), 4 * self.concurrency)

    def generate(self, prompts: list[Prompt]) -> list[str]:
        if not prompts:
            return []
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts)),
                                  thread_name_prefix="openai")
        try:
            return list(pool.map(self._answer, prompts))  # map keeps the order
        finally:
            # On the first error, drop the queued requests instead of sending them.
            pool.shutdown(wait=True, cancel_futures=True)

    def _answer(self, prompt: Prompt) -> str:
        spec = self.spec
        try:
            resp = self.client.chat.completions.create(
                model=spec.path, messages=self.messages(spec, prompt), n=1,
                max_tokens=int(spec.max_new_tokens), temperature=float(spec.temperature),
                top_p=float(spec.top_p), seed=int(spec.seed))
        except self._openai.OpenAIError as exc:
            raise self._explain(exc) from None
        if not resp.choices:
            raise BackendError(f"{self.base_url} answered without a choice for model {spec.path!r}")
        message = resp.choices[0].message
        if resp.usage is not None and resp.usage.completion_tokens:
            with self._lock:
                self.new_tokens += int(resp.usage.completion_tokens)
        return (message.content or getattr(message, "refusal", None) or "").strip()

    def next_token_logprobs(self, prompts: list[Prompt], candidates: list[str],
                            prefix: str = "") -> list[dict[str, float]]:
        """The candidates' log-probabilities where the answer's first non-blank token is
        generated, from the chat completion's ``logprobs`` (``top_logprobs``: the
        ``extra.top_logprobs`` most likely tokens, default 20, the API's maximum). A client
        cannot force ``prefix`` into the answer; the served template decides whether the model
        writes it, and the blank tokens it writes are skipped either way. A candidate outside
        the top tokens, or an answer that is all blank, gets no value (the judge then reports
        no score)."""
        if prefix.strip():
            raise UserError(f"the openai backend can only skip a blank prefix, not {prefix!r}")
        if not prompts:
            return []
        top = int(self.spec.extra.get("top_logprobs", 20))
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts)),
                                  thread_name_prefix="openai")
        try:
            return list(pool.map(lambda p: self._label_logprobs(p, candidates, top), prompts))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _label_logprobs(self, prompt: Prompt, candidates: list[str], top: int) -> dict[str, float]:
        spec = self.spec
        try:
            # A few tokens: the blank line before the label, then the label itself.
            resp = self.client.chat.completions.create(
                model=spec.path, messages=self.messages(spec, prompt), n=1, max_tokens=4,
                temperature=0.0, seed=int(spec.seed), logprobs=True, top_logprobs=top)
        except self._openai.OpenAIError as exc:
            raise self._explain(exc) from None
        content = (resp.choices[0].logprobs.content or []) if resp.choices and resp.choices[0].logprobs else []
        for position in content:
            if not position.token.strip():
                continue  # the blank line the template leaves to the model
            alternatives = {t.token.strip(): t.logprob for t in position.top_logprobs or []}
            alternatives.setdefault(position.token.strip(), position.logprob)
            return {c: float(alternatives[c]) for c in candidates if c in alternatives}
        return {}

    def _explain(self, exc: Exception) -> BackendError:
        """One line that says what failed and what to do; the client's retries are spent."""
        o, where, tries = self._openai, self.base_url, f"after {self.max_retries} retries"
        status = getattr(exc, "status_code", None)
        if isinstance(exc, (o.AuthenticationError, o.PermissionDeniedError)):
            return BackendError(f"{where} rejected the API key in ${self.key_env} (HTTP {status}): "
                                "check the key and its access to the model")
        if isinstance(exc, o.RateLimitError):
            return BackendError(f"{where} still rate-limits (HTTP 429) {tries}: lower "
                                "generation.extra.concurrency or check the quota, then re-run (finished "
                                "answers are cached)")
        if isinstance(exc, o.APITimeoutError):
            return BackendError(f"{where} did not answer within {self.timeout:g} s {tries}: raise "
                                "generation.extra.timeout or check the server")
        if isinstance(exc, o.APIConnectionError):
            return BackendError(f"cannot reach {where} {tries}: is the server up?")
        if isinstance(exc, o.NotFoundError):
            return BackendError(f"{where} does not serve model {self.spec.path!r} (HTTP 404)")
        if isinstance(exc, o.APIStatusError) and status is not None and status >= 500:
            return BackendError(f"{where} keeps failing (HTTP {status}) {tries}")
        detail = getattr(exc, "message", None) or str(exc)
        return BackendError(f"{where} refused the request (HTTP {status}): {detail.splitlines()[0][:300]}")

    def close(self) -> None:
        self.client.close()
