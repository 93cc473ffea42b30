"""A local stand-in for the DeepL v2 API, for tests and the benchmark.

Speaks what the official ``deepl`` client sends and expects (``POST /v2/translate`` with a JSON
or form body, ``Authorization: DeepL-Auth-Key ...``; ``GET/POST /v2/usage``,
``/v2/languages``), on 127.0.0.1 with an ephemeral port, in a thread::

    with FakeDeepL(auth_key="...") as server:
        os.environ["DEEPL_SERVER_URL"] = server.url

``/v2/languages`` answers as DeepL documents it (developers.deepl.com/api-reference/languages:
``type=source`` or ``type=target``, a JSON array of ``{"language", "name"}``, target entries
with ``supports_formality``); the list below holds the study's twelve targets with the values
of DeepL's documented example response. As DeepL does (API reference, ``formality``: "Setting
this parameter with a target language that does not support formality will fail, unless one of
the ``prefer_...`` options are used"), ``formality=less|more`` for a target without it is a 400.

The translation is deterministic: ``"[DE] original text"``. The server counts the characters
it billed per target language, records every request, and can be scripted to fail:
``fail_next(429, times=2)``, ``fail_next(500)``, ``quota = N`` (456 once a request would take
the billed total over N characters; nothing of a rejected request is billed).
"""

from __future__ import annotations

import json
import urllib.parse
from collections import Counter

from .local_server import JSONHandler, LocalServer

MAX_TEXTS = 50
MAX_BODY = 128 * 1024
#: Target code -> (English name, supports_formality), as in DeepL's example response.
TARGETS = {
    "EN-GB": ("English (British)", False), "EN-US": ("English (American)", False),
    "DE": ("German", True), "IT": ("Italian", True), "FR": ("French", True), "ES": ("Spanish", True),
    "PT-PT": ("Portuguese (European)", True), "PT-BR": ("Portuguese (Brazilian)", True),
    "PL": ("Polish", True), "CS": ("Czech", False), "SK": ("Slovak", False), "SL": ("Slovenian", False),
    "LT": ("Lithuanian", False), "LV": ("Latvian", False),
}
LANGUAGES = list(TARGETS)
#: Source languages carry no regional variant and no formality flag.
SOURCES = {code.split("-")[0]: name.split(" (")[0] for code, (name, _) in TARGETS.items()}


class FakeDeepL(LocalServer):
    def __init__(self, auth_key: str = "test-key"):
        super().__init__(self._handler_class())
        self.auth_key = auth_key
        self.quota: int | None = None
        self.billed = Counter()            # target_lang -> characters billed
        self.requests: list[dict] = []     # every /v2/translate request, failed ones too
        self.language_requests: list[str] = []  # the ``type`` of every /v2/languages request
        self.calls: list[str] = []         # the path of every request, in order
        self.statuses: list[int] = []      # status of each /v2/translate response
        self._failures: list[tuple[int, float | None]] = []

    # -- scripting -------------------------------------------------------------------------
    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        """The next ``times`` translate requests answer ``status``."""
        with self._lock:
            self._failures += [(status, retry_after)] * times

    @property
    def total_billed(self) -> int:
        return sum(self.billed.values())

    @property
    def url(self) -> str:
        return self.origin

    # -- the API ---------------------------------------------------------------------------
    def _translate(self, params: dict, body_bytes: int) -> tuple[int, dict, dict]:
        texts = params.get("text") or []
        if isinstance(texts, str):
            texts = [texts]
        target = str(params.get("target_lang", "")).upper()
        request = {"target_lang": target, "texts": list(texts), "body_bytes": body_bytes,
                   **{k: params.get(k) for k in ("source_lang", "formality", "glossary_id",
                                                  "context", "model_type")}}
        with self._lock:
            self.requests.append(request)
            if self._failures:
                status, retry_after = self._failures.pop(0)
                headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                return status, {"message": "scripted failure"}, headers
            if body_bytes > MAX_BODY:
                return 413, {"message": "Request Entity Too Large"}, {}
            if not texts or len(texts) > MAX_TEXTS:
                return 400, {"message": f"Between 1 and {MAX_TEXTS} texts are allowed"}, {}
            if target not in LANGUAGES:
                return 400, {"message": f"Value for 'target_lang' not supported: {target}"}, {}
            if params.get("formality") in ("less", "more") and not TARGETS[target][1]:
                return 400, {"message": "'formality' is not supported for given 'target_lang'."}, {}
            chars = sum(len(t) for t in texts)
            if self.quota is not None and self.total_billed + chars > self.quota:
                return 456, {"message": "Quota Exceeded"}, {}
            self.billed[target] += chars
        source = str(params.get("source_lang") or "EN").upper()
        return 200, {"translations": [
            {"detected_source_language": source, "text": f"[{target}] {t}", "billed_characters": len(t)}
            for t in texts]}, {}

    def _handler_class(self):
        server = self

        class Handler(JSONHandler):
            def _params(self) -> tuple[dict, int]:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    return (json.loads(raw) if raw else {}), length
                query = urllib.parse.urlsplit(self.path).query
                form = urllib.parse.parse_qs(raw.decode() + ("&" + query if query else ""))
                params = {k: (v if k == "text" else v[-1]) for k, v in form.items()}
                return params, length

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") == f"DeepL-Auth-Key {server.auth_key}":
                    return True
                self.send_json(403, {"message": "Wrong auth key"})
                return False

            def _dispatch(self) -> None:
                params, length = self._params()
                path = urllib.parse.urlsplit(self.path).path
                server.calls.append(path)
                if not self._authorised():
                    return
                if path == "/v2/translate" and self.command == "POST":
                    status, obj, headers = server._translate(params, length)
                    server.statuses.append(status)
                    self.send_json(status, obj, headers)
                elif path == "/v2/usage":
                    self.send_json(200, {"character_count": server.total_billed,
                                      "character_limit": server.quota or 10**12})
                elif path == "/v2/languages":
                    kind = str(params.get("type") or "source")
                    server.language_requests.append(kind)
                    if kind == "target":
                        self.send_json(200, [{"language": code, "name": name, "supports_formality": formal}
                                          for code, (name, formal) in TARGETS.items()])
                    else:
                        self.send_json(200, [{"language": code, "name": name} for code, name in SOURCES.items()])
                else:
                    self.send_json(404, {"message": "Not found"})

            do_GET = do_POST = _dispatch

        return Handler
