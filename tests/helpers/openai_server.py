"""A local OpenAI-compatible chat-completions server, for tests and the benchmark.

Speaks what the official ``openai`` client sends and expects (``POST /v1/chat/completions``
with ``Authorization: Bearer KEY``, the documented request and response JSON, OpenAI-style
error bodies; ``GET /v1/models``), on 127.0.0.1 with an ephemeral port, in a thread::

    with FakeOpenAI(api_key="...") as server:
        spec.extra["base_url"] = server.base_url

Answers come from ``responder(messages, params) -> str`` (default ``echo``: deterministic,
shows the system prompt, honours max_tokens and, when sampling, the seed). The server records
every request and can be scripted:
``logprober(messages, params) -> [(token, logprob, {alternative: logprob, ...}), ...]`` gives
the answer's tokens when a request asks for ``logprobs`` (the API's ``ChatCompletionTokenLogprob``
shape: ``token``, ``logprob``, ``bytes``, ``top_logprobs`` cut to the requested number), and ``fail_next(429, times=2, retry_after=0.01)``,
``fail_next(500)``, ``fail_next(401)``, ``delay_next(2.0)`` (a slow answer, for timeouts).

Bounded: request bodies over MAX_BODY are refused (413), delays are capped at MAX_DELAY, a
handler gives up on a silent client after SOCKET_TIMEOUT, and ``stop`` ends it all.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from typing import Callable

from .local_server import JSONHandler, LocalServer

MAX_BODY = 1 << 20
MAX_DELAY = 10.0
SOCKET_TIMEOUT = 10.0
ERRORS = {
    400: ("invalid_request_error", None, "Bad request"),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("rate_limit_exceeded", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The server is overloaded."),
}


def echo(messages: list[dict], params: dict) -> str:
    """``[system] words of the user turn, reversed`` cut to max_tokens words (a word is a
    token here). With temperature > 0 the words are shuffled by (seed, prompt)."""
    system = " ".join(m["content"] for m in messages if m["role"] == "system")
    user = " ".join(m["content"] for m in messages if m["role"] == "user")
    words = user.split()[::-1]
    if params.get("temperature", 1.0) > 0:
        seed = hashlib.sha256(f"{params.get('seed')}|{user}".encode()).hexdigest()
        random.Random(seed).shuffle(words)
    if system:
        words = [f"[{system}]"] + words
    return " ".join(words[: int(params.get("max_tokens") or 16)])


class FakeOpenAI(LocalServer):
    def __init__(self, api_key: str = "test-key", responder: Callable[[list[dict], dict], str] = echo,
                 models: tuple[str, ...] | None = None, logprober: Callable | None = None):
        super().__init__(self._handler_class())
        self.api_key = api_key
        self.responder = responder
        self.logprober = logprober
        self.models = models                 # None: any model name is served
        self.requests: list[dict] = []       # every chat request (JSON body), failed ones too
        self.statuses: list[int] = []        # status of each chat response
        self.max_in_flight = 0
        self._in_flight = 0
        self._script: list[tuple[str, float, float | None]] = []  # (kind, status/delay, retry_after)

    # -- scripting -------------------------------------------------------------------------
    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        """The next ``times`` chat requests answer ``status`` (with an OpenAI error body)."""
        with self._lock:
            self._script += [("fail", status, retry_after)] * times

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """The next ``times`` chat requests are answered after ``seconds`` (capped)."""
        with self._lock:
            self._script += [("delay", min(seconds, MAX_DELAY), None)] * times

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    # -- protocol --------------------------------------------------------------------------
    def _next_action(self) -> tuple[str, float, float | None] | None:
        with self._lock:
            return self._script.pop(0) if self._script else None

    def complete(self, body: dict) -> dict:
        messages = body["messages"]
        logprobs = None
        if body.get("logprobs") and self.logprober is not None:
            tokens = self.logprober(messages, body)
            text = "".join(t for t, _, _ in tokens)
            top = int(body.get("top_logprobs") or 0)

            def entry(token: str, lp: float) -> dict:
                return {"token": token, "logprob": lp, "bytes": list(token.encode("utf-8"))}
            logprobs = {"content": [
                {**entry(t, lp), "top_logprobs": [entry(a, alp) for a, alp in
                                                  sorted(alts.items(), key=lambda kv: -kv[1])[:top]]}
                for t, lp, alts in tokens], "refusal": None}
        else:
            text = self.responder(messages, body)
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        completion_tokens = len(text.split())
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        return {
            "id": "chatcmpl-" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": logprobs,
                         "finish_reason": "length" if limit and completion_tokens >= limit else "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    def _handler_class(self):
        server = self

        class Handler(JSONHandler):
            timeout = SOCKET_TIMEOUT

            def _error(self, status: int, headers: dict | None = None, message: str | None = None) -> None:
                kind, code, default = ERRORS.get(status, ("server_error", None, "error"))
                self.send_json(status, {"error": {"message": message or default, "type": kind, "param": None,
                                              "code": code}}, headers)

            def _authorized(self) -> bool:
                return self.headers.get("Authorization") == f"Bearer {server.api_key}"

            def do_GET(self):
                if self.path.rstrip("/") != "/v1/models":
                    return self._error(404, message="unknown path")
                if not self._authorized():
                    return self._error(401)
                names = server.models or ("fake-model",)
                self.send_json(200, {"object": "list", "data": [{"id": n, "object": "model", "created": 0,
                                                             "owned_by": "fake"} for n in names]})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self.close_connection = True
                    return self._error(413, message="request too large")
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._error(404, message="unknown path")
                try:
                    body = json.loads(raw)
                    assert isinstance(body.get("messages"), list) and body.get("model")
                except (ValueError, AssertionError):
                    return self._error(400, message="body must be JSON with model and messages")
                with server._lock:
                    server.requests.append(body)
                    server._in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server._in_flight)
                try:
                    status = self._chat(body)
                finally:
                    with server._lock:
                        server._in_flight -= 1
                        server.statuses.append(status)

            def _chat(self, body: dict) -> int:
                if not self._authorized():
                    self._error(401)
                    return 401
                action = server._next_action()
                if action and action[0] == "fail":
                    _, status, retry_after = action
                    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
                    self._error(int(status), headers)
                    return int(status)
                if action and action[0] == "delay":
                    time.sleep(action[1])
                if server.models is not None and body["model"] not in server.models:
                    self._error(404)
                    return 404
                try:
                    self.send_json(200, server.complete(body))
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    return 499
                return 200

        return Handler
