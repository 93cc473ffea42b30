"""Bad input gets a clear error and loses nothing.

A table of malformed inputs, each fed through the real console script (`polyrefusal ...` in a
subprocess) in a scratch project that already holds results: corpus files, the inputs of the
other stages, params, and answers of backends (an OpenAI-compatible server and DeepL that fail
with HTTP 500 and then time out, a quota, a wrong key). Each must end with

* a non-zero exit status (2: a user error), no Python traceback;
* exactly one `polyrefusal <command>: error: ...` line naming the file (and line or row, and
  field where there is one);
* every file of the project untouched: same bytes, same modification time (the output the
  command was asked to write included, which exists from an earlier run).

A guard judge's garbage output is not an error: it is labelled ``unparsed`` (never silently
safe), which its own test checks through the same command.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import yaml

from ..helpers.project import ROOT
from ..helpers.deepl_server import FakeDeepL
from ..helpers.faults import changed, cli, snapshot
from ..helpers.openai_server import FakeOpenAI

OPENAI_KEY = "sk-test-bad-inputs-0000"
DEEPL_KEY = "deepl-test-bad-inputs-0000:fx"

GOOD = dict(id="p1.en", source_id="p1", lang="en", text="How do I pick a lock?", category="S2",
            style="role_play", target_group=None, origin="file:c", harmful=True,
            chosen="I can't help with that.", rejected="Sure, here is how.")


def rec(**kw) -> dict:
    r = {**GOOD, **kw}
    return {k: v for k, v in r.items() if v != "DROP"}


def jsonl(*records) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)


def ci_params() -> dict:
    """The repository's params with the `ci` preset applied (what the pipeline tests run)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    for key, value in yaml.safe_load((ROOT / "configs/presets/ci.yaml").read_text(encoding="utf-8")).items():
        params[key] = {**params[key], **value} if isinstance(value, dict) else value
    params["preset"] = "ci"
    return params


def set_in(params: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    node = params
    for key in path:
        node = node.setdefault(key, {})
    node[last] = value


@dataclass
class Row:
    id: str
    argv: list[str]                            # after `polyrefusal`
    names: tuple[str, ...]                     # the error line contains each of these
    files: dict[str, bytes] = field(default_factory=dict)
    params: dict = field(default_factory=dict)  # dotted key -> value, over the ci params
    params_text: str | None = None              # params.yaml verbatim (for broken YAML)
    server: str | None = None                   # "openai" | "deepl": started for the row
    script: Callable | None = None              # scripts the server's failures
    extra_env: dict = field(default_factory=dict)
    xfail: str | None = None                    # a patch the lead still has to apply
    edit: Callable[[str], str] | None = None    # rewrites the params text (what a dict cannot say)


CORPUS = ["corpus", "--params", "params.yaml", "results/corpus/source.parquet"]
TRANSLATE = ["translate", "--params", "params.yaml", "--source", "en", "--target", "de",
             "--memory", "results/translation_memory/de", "--fields", "text,chosen,rejected",
             "data/in.jsonl", "results/translations/de.parquet"]
GENERATE = ["generate", "--params", "params.yaml", "--model", "data/model", "--name", "base",
            "--cache-dir", "results/response_cache/base", "--out-dir", "results/answers/base",
            "--pairs-dir", "data/pairs"]
EVALUATE = ["evaluate", "--params", "params.yaml", "--lang", "en", "--model", "base", "data/answers",
            "results/eval/base"]
TRAIN = ["train", "--params", "params.yaml", "--config", "single_de", "--base", "data/model",
         "--pairs-dir", "data/pairs", "results/models/single_de"]
OPENAI_GENERATION = {"generation.backend": "openai",
                     "generation.extra": {"base_url": "{openai}", "timeout": 1, "max_retries": 1,
                                          "concurrency": 1}}


def corpus_row(id, content: bytes, names, name="data/c.jsonl", **params) -> Row:
    return Row(id, CORPUS, names, files={name: content}, params={"corpus.source": name, **params})


def fail_then_timeout(server) -> None:
    """HTTP 500, retried by the client, then answers slower than the client waits."""
    server.fail_next(500)
    server.delay_next(4.0 if isinstance(server, FakeOpenAI) else DEEPL_SLOW, times=3)


ROWS = [
    # --- corpus files (the corpus stage; corpus.source is a user file) ---
    corpus_row("corpus-invalid-json-line", jsonl(rec(), b'{"id": "p2.en", "text": '),
               ("data/c.jsonl:2", "invalid JSON")),
    corpus_row("corpus-missing-field", jsonl(rec(), rec(id="p2.en", source_id="p2", text="DROP")),
               ("data/c.jsonl:2", "field 'text'", "missing")),
    corpus_row("corpus-unknown-language", jsonl(rec(lang="xx")), ("data/c.jsonl:1", "field 'lang'", "'xx'")),
    corpus_row("corpus-empty-text", jsonl(rec(text="   ")), ("data/c.jsonl:1", "field 'text'", "empty")),
    corpus_row("corpus-invalid-utf8", jsonl(rec(), b'{"id": "p2.en", "text": "caf\xe9"}'),
               ("data/c.jsonl:2", "UTF-8")),
    corpus_row("corpus-duplicate-id", jsonl(rec(), rec(source_id="p9"), rec(id="p3.en", source_id="p3")),
               ("data/c.jsonl:2", "field 'id'", "duplicate id 'p1.en'")),
    corpus_row("corpus-10mb-prompt", jsonl(rec(), rec(id="p2.en", source_id="p2", text="x" * 10_000_000)),
               ("data/c.jsonl:2", "bytes")),
    corpus_row("corpus-prompt-over-limit", jsonl(rec(text="y" * 25_000)),
               ("data/c.jsonl:1", "field 'text'", "20,000")),
    corpus_row("corpus-wrong-type-bool", jsonl(rec(harmful="maybe")), ("data/c.jsonl:1", "field 'harmful'")),
    corpus_row("corpus-wrong-type-text", jsonl(rec(text=123)), ("data/c.jsonl:1", "field 'text'", "int")),
    corpus_row("corpus-record-not-an-object", jsonl(rec(), b"[1, 2, 3]"), ("data/c.jsonl:2", "JSON object")),
    corpus_row("corpus-unknown-hazard-code", jsonl(rec(category="S99")), ("data/c.jsonl:1", "field 'category'")),
    corpus_row("corpus-csv-ragged-row",
               b"id,source_id,lang,text,category,style,origin,harmful\n"
               b"p1.en,p1,en,How?,S1,role_play,file:c,true\np2.en,p2,en,Why?,S1\n",
               ("data/c.csv:3", "fields"), name="data/c.csv"),
    corpus_row("corpus-truncated-parquet", b"PAR1\x15\x04\x15\x00", ("data/c.parquet", "Parquet"),
               name="data/c.parquet"),
    corpus_row("corpus-file-not-found", b"", ("data/missing.jsonl", "not found"),
               name="data/other.jsonl", **{"corpus.source": "data/missing.jsonl"}),
    Row("corpus-include-duplicate-id", CORPUS, ("data/extra.jsonl:1", "field 'id'", "duplicate"),
        files={"data/c.jsonl": jsonl(rec()), "data/extra.jsonl": jsonl(rec(origin="generated"))},
        params={"corpus.source": "data/c.jsonl", "corpus.include": ["data/extra.jsonl"]}),

    # --- the inputs of other stages ---
    Row("translate-record-without-id", TRANSLATE, ("data/in.jsonl:2", "field 'id'"),
        files={"data/in.jsonl": jsonl(rec(), rec(id="DROP", source_id="DROP"))}),
    Row("translate-text-wrong-type", TRANSLATE, ("data/in.jsonl:1", "field 'chosen'", "int"),
        files={"data/in.jsonl": jsonl(rec(chosen=7))}),
    Row("judge-answer-field-missing", ["judge", "--fields", "chosen,rejected", "data/in.jsonl",
                                       "results/judged/en.parquet"],
        ("data/in.jsonl:2", "field 'rejected'"), files={"data/in.jsonl": jsonl(rec(), rec(id="p2.en", rejected="DROP"))}),
    Row("respond-corrupt-parquet", ["respond", "--backend", "corpus", "data/in.parquet",
                                    "results/responses/en.parquet"],
        ("data/in.parquet", "parquet"), files={"data/in.parquet": b"PAR1 not really parquet"}),
    Row("pairs-truncated-split-json", ["pairs", "--split", "data/split.json", "--stats", "results/pairs/en.stats.json",
                                       "data/in.jsonl", "results/pairs/en.train.jsonl", "results/pairs/en.test.jsonl"],
        ("data/split.json:1", "invalid JSON"), files={"data/split.json": b'{"groups": {"S1|role', "data/in.jsonl": jsonl(rec())}),
    Row("evaluate-answer-not-text", EVALUATE, ("data/answers/en.jsonl:2", "field 'response'"),
        files={"data/answers/en.jsonl": jsonl({**rec(), "prompt": "Q?", "response": "No."},
                                              {**rec(id="p2.en"), "prompt": "Q?", "response": 5})}),
    Row("evaluate-harmful-missing", EVALUATE, ("data/answers/en.jsonl:1", "field 'harmful'"),
        files={"data/answers/en.jsonl": jsonl({**rec(harmful="DROP"), "prompt": "Q?", "response": "No."})}),
    Row("split-corpus-field-missing", ["split", "--test-fraction", "0.3", "--seed", "1", "data/in.jsonl",
                                       "results/split/assignment.json"],
        ("data/in.jsonl:2", "field 'harmful'"), files={"data/in.jsonl": jsonl(rec(), rec(id="p2.en", harmful="DROP"))}),

    # --- params ---
    Row("params-invalid-yaml", CORPUS, ("params.yaml:3", "invalid YAML"),
        params_text="preset: ci\nlanguages: [en, de\nsource_language: en\n"),
    Row("params-unknown-configuration", CORPUS, ("params.yaml:", "field 'train_configs'", "'balanced_x'"),
        params={"train_configs": ["balanced", "balanced_x"]}),
    Row("params-unknown-key", CORPUS, ("params.yaml:", "field 'corpus.sorce'", "did you mean 'source'"),
        params={"corpus.sorce": "data/c.jsonl"}),
    Row("params-unknown-translate-backend", TRANSLATE, ("params.yaml:", "field 'translate.backend'", "google"),
        params={"translate.backend": "google"}, files={"data/in.jsonl": jsonl(rec())}),
    Row("params-unknown-generation-backend", GENERATE, ("params.yaml:", "field 'generation.backend'", "nosuch"),
        params={"generation.backend": "nosuch"},
        files={"data/model/polyrefusal_model.json": b'{"path": "fake-model"}',
               **{f"data/pairs/{lang}.test.jsonl": jsonl({**rec(lang=lang), "prompt": [{"role": "user", "content": "Q?"}]})
                  for lang in ("en", "de", "sl")}}),
    Row("params-negative-beta", TRAIN, ("params.yaml:", "field 'dpo.beta'"), params={"dpo.beta": -0.1}),
    Row("params-test-fraction-out-of-range", CORPUS, ("params.yaml:", "field 'split.test_fraction'"),
        params={"split.test_fraction": 1.5}),
    Row("params-source-language-not-studied", CORPUS, ("params.yaml:", "field 'source_language'"),
        params={"source_language": "fr"}),
    # single_lv is generated (no config_defs line): the error names its train_configs entry
    Row("params-configuration-without-data", CORPUS, ("params.yaml:", "field 'train_configs", "'single_lv' has no data"),
        params={"train_configs": ["balanced", "single_lv"]}),
    Row("params-language-missing-from-memory", [*TRANSLATE[:6], "bg", *TRANSLATE[7:8], "results/translation_memory/bg",
                                                *TRANSLATE[9:-1], "results/translations/bg.parquet"],
        ("data/in.jsonl:1", "field 'text'", "no translator is configured for language 'bg'"),
        params={"languages": ["en", "de", "sl", "bg"]}, files={"data/in.jsonl": jsonl(rec())}),

    # --- params: every key known, cross-field rules, local sources exist (issue 16) ---
    Row("params-misspelt-key", CORPUS, ("params.yaml:", "field 'report.bootstrp'", "did you mean 'bootstrap'"),
        params={"report.bootstrp": 100}),
    Row("params-duplicate-key", CORPUS, ("params.yaml:", "field 'split.seed'", "duplicate key (first given at line"),
        edit=lambda t: t.replace("  seed: 13\n", "  seed: 13\n  seed: 14\n", 1)),
    Row("params-learning-rate-not-a-number", TRAIN, ("params.yaml:", "field 'dpo.learning_rate'", "'fast'"),
        params={"dpo.learning_rate": "fast"}),
    Row("params-base-model-dir-missing", ["base-model", "--params", "params.yaml", "results/models/base"],
        ("params.yaml:", "field 'base_model.source'", "model directory not found: ./models/absent"),
        params={"base_model.source": "./models/absent"}),
    Row("params-audit-model-dir-missing", ["base-model", "--params", "params.yaml", "--audit", "m7b", "results/models/m7b"],
        ("params.yaml:", "field 'audit_models.m7b.path'", "model directory not found"),
        params={"audit_models": {"m7b": {"path": "/models/none/here", "gpus": 0}}}),
    Row("params-audit-model-named-base", CORPUS, ("params.yaml:", "field 'audit_models.base'", "the base model"),
        params={"audit_models": {"base": {"path": "owner/model", "gpus": 0}}}),
    Row("params-corpus-include-missing", CORPUS, ("params.yaml:", "field 'corpus.include'", "file not found"),
        params={"corpus.include": ["data/nope.jsonl"]}),
    Row("params-judge-audit-missing", CORPUS, ("params.yaml:", "field 'report.judge_audit'", "file not found"),
        params={"report.judge_audit": "audit/reviewed.json"}),
    Row("params-unknown-judge", ["judge", "--params", "params.yaml", "--fields", "chosen", "data/in.jsonl",
                                 "results/judged/en.parquet"],
        ("params.yaml:", "field 'judge.judges'", "unknown judge 'refusal_lexicom'"),
        params={"judge.judges": ["refusal_lexicom"]}, files={"data/in.jsonl": jsonl(rec())}),
    Row("params-adjudicated-without-adjudicator", EVALUATE, ("params.yaml:", "field 'evaluate.adjudicator'", "adjudicator"),
        params={"evaluate.rule": "adjudicated"}),
    Row("params-rainbow-language-not-studied", ["rainbow", "--params", "params.yaml", "results/rainbow/archive",
                                                "results/rainbow/generated.parquet"],
        ("params.yaml:", "field 'rainbow.lang'", "'fr'"), params={"rainbow.lang": "fr"}),
    Row("params-model-spec-misspelt-key", CORPUS,
        ("params.yaml:", "field 'respond.chosen_model.temprature'", "did you mean 'temperature'"),
        params={"respond.chosen_model": {"path": "owner/aligned", "temprature": 0.5}}),
    Row("params-config-def-misspelt-key", CORPUS,
        ("params.yaml:", "field 'config_defs.demo_holdout.grups'", "did you mean 'groups'"),
        params={"config_defs.demo_holdout.grups": ["women"]}),

    # --- stage flags: the same rules as the params key they carry ---
    Row("split-fraction-flag-out-of-range", ["split", "--test-fraction", "1.5", "--seed", "1", "data/in.jsonl",
                                             "results/split/assignment.json"],
        ("argument --test-fraction", "1.5", "split.test_fraction"), files={"data/in.jsonl": jsonl(rec())}),
    Row("split-seed-flag-not-an-integer", ["split", "--test-fraction", "0.3", "--seed", "1.5", "data/in.jsonl",
                                           "results/split/assignment.json"],
        ("argument --seed", "not of type 'integer'"), files={"data/in.jsonl": jsonl(rec())}),
    Row("report-bootstrap-flag-too-small", ["report", "--params", "params.yaml", "--eval-dir", "results/eval",
                                            "--models-dir", "results/models", "--scores-dir", "results/scores",
                                            "--report-dir", "results/report", "--bootstrap", "3"],
        ("argument --bootstrap", "minimum of 10", "report.bootstrap")),

    # --- record inputs are typed: an answer or a prompt that is not text ---
    Row("judge-answer-is-a-number", ["judge", "--fields", "chosen,rejected", "data/in.jsonl", "results/judged/en.parquet"],
        ("data/in.jsonl:2", "field 'rejected'", "must be text, got int"),
        files={"data/in.jsonl": jsonl(rec(), rec(id="p2.en", rejected=42))}),
    Row("judge-answer-is-a-boolean", ["judge", "data/in.jsonl", "results/judged/en.parquet"],
        ("data/in.jsonl:1", "field 'response'", "must be text, got bool"),
        files={"data/in.jsonl": jsonl({**rec(), "prompt": "Q?", "response": True})}),
    Row("judge-prompt-is-a-list-of-numbers", ["judge", "data/in.jsonl", "results/judged/en.parquet"],
        ("data/in.jsonl:1", "field 'prompt'", "must be text"),
        files={"data/in.jsonl": jsonl({**rec(), "prompt": 7, "response": "No."})}),
    Row("evaluate-answer-is-a-boolean", EVALUATE, ("data/answers/en.jsonl:1", "field 'response'", "bool"),
        files={"data/answers/en.jsonl": jsonl({**rec(), "prompt": "Q?", "response": False})}),
    corpus_row("corpus-invisible-only-prompt", jsonl(rec(), rec(id="p2.en", source_id="p2", text="\u200b\u2060\u200b")),
               ("data/c.jsonl:2", "field 'text'", "invisible")),
    corpus_row("corpus-invisible-only-prompt-csv-with-bom",
               "\ufeffid,source_id,lang,text,category,style,origin,harmful\n"
               "p1.en,p1,en,\u200b\u200d,S1,role_play,file:c,true\n".encode("utf-8"),
               ("data/c.csv:2", "field 'text'", "invisible"), name="data/c.csv"),

    # --- backend answers ---
    Row("openai-500-then-timeout", GENERATE, ("did not answer within 1 s", "generation.extra.timeout"),
        params=OPENAI_GENERATION, server="openai", script=fail_then_timeout,
        files={"data/model/polyrefusal_model.json": b'{"path": "fake-model"}',
               **{f"data/pairs/{lang}.test.jsonl": jsonl({**rec(lang=lang), "prompt": [{"role": "user", "content": "Q?"}]})
                  for lang in ("en", "de", "sl")}}),
    Row("openai-wrong-key", GENERATE, ("$OPENAI_API_KEY", "HTTP 401"), params=OPENAI_GENERATION, server="openai",
        extra_env={"OPENAI_API_KEY": "sk-wrong-key"},
        files={"data/model/polyrefusal_model.json": b'{"path": "fake-model"}',
               **{f"data/pairs/{lang}.test.jsonl": jsonl({**rec(lang=lang), "prompt": [{"role": "user", "content": "Q?"}]})
                  for lang in ("en", "de", "sl")}}),
    Row("llm-judge-500-then-timeout",
        ["judge", "--judge", "llm_judge", "--judge-config", "data/judges.yaml", "--fields", "chosen",
         "data/in.jsonl", "results/judged/en.parquet"],
        ("did not answer within 1 s", "timeout"), server="openai", script=fail_then_timeout,
        files={"data/in.jsonl": jsonl(rec()),
               "data/judges.yaml": b"llm_judge: {backend: openai, path: fake-model, extra: {base_url: '{openai}', "
                                   b"timeout: 1, max_retries: 1}}\n"}),
    Row("deepl-500-then-timeout", TRANSLATE, ("DeepL request failed", "gave up after 1 retries"),
        params={"translate.backend": "deepl", "translate.options": {"max_retries": 1}}, server="deepl",
        script=fail_then_timeout, files={"data/in.jsonl": jsonl(rec())}),
    Row("deepl-quota-exceeded", TRANSLATE, ("DeepL quota exceeded", "HTTP 456"),
        params={"translate.backend": "deepl", "translate.options": {"max_retries": 0}}, server="deepl",
        script=lambda s: setattr(s, "quota", 5), files={"data/in.jsonl": jsonl(rec())}),
]


class SlowDeepL(FakeDeepL):
    """FakeDeepL that can also answer slowly (for the client's timeout)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._delays: list[float] = []
        # A delayed answer's thread is still asleep at shutdown: do not wait for it.
        self._httpd.block_on_close = False

    def delay_next(self, seconds: float, times: int = 1) -> None:
        with self._lock:
            self._delays += [seconds] * times

    def _translate(self, params, body_bytes):
        with self._lock:
            delay = self._delays.pop(0) if self._delays and not self._failures else 0.0
        if delay:
            time.sleep(delay)
        return super()._translate(params, body_bytes)


#: The DeepL client waits at least 10 s for an answer (deepl.http_client.min_connection_timeout);
#: the fake's slow answer must outlast that.
DEEPL_SLOW = 12.0


def sentinel_project(root: Path, row: Row, url: dict) -> None:
    """Scratch project: params, the row's inputs, and results of an earlier run (sentinels),
    the command's own outputs among them."""
    params = ci_params()
    for key, value in row.params.items():
        set_in(params, key, json.loads(json.dumps(value).replace("{openai}", url.get("openai", ""))))
    text = row.params_text if row.params_text is not None else yaml.safe_dump(params, sort_keys=False)
    (root / "params.yaml").write_text(row.edit(text) if row.edit else text, encoding="utf-8")
    for rel, content in row.files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.replace(b"{openai}", url.get("openai", "").encode()))
    for rel in row.argv:  # every results/ path the command names exists from "an earlier run"
        if rel.startswith("results/"):
            p = root / rel
            if Path(rel).suffix:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(b"SENTINEL earlier result of " + rel.encode() + b"\n")
            else:
                p.mkdir(parents=True, exist_ok=True)
                (p / "earlier.jsonl").write_bytes(b'{"sentinel": true}\n')
    (root / "results/scores").mkdir(parents=True, exist_ok=True)
    (root / "results/scores/asr.csv").write_text("config,lang,n,asr\nbase,en,1,1.0\n")
    old = time.time() - 3600  # an hour old: a rewrite with the same bytes still shows
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))


def _param(row: Row):
    marks = [pytest.mark.xfail(strict=True, reason=f"needs patch: {row.xfail}")] if row.xfail else []
    return pytest.param(row, id=row.id, marks=marks)


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_bad_input_is_one_clear_line_and_loses_nothing(row: Row, tmp_path):
    env = {"OPENAI_API_KEY": OPENAI_KEY, "DEEPL_AUTH_KEY": DEEPL_KEY, **row.extra_env}
    server = None
    url: dict = {}
    if row.server == "openai":
        server = FakeOpenAI(api_key=OPENAI_KEY).start()
        url["openai"] = server.base_url
    elif row.server == "deepl":
        server = SlowDeepL(auth_key=DEEPL_KEY).start()
        env["DEEPL_SERVER_URL"] = server.url
    try:
        if row.script:
            row.script(server)
        sentinel_project(tmp_path, row, url)
        before = snapshot(tmp_path)
        res = cli(["polyrefusal", *row.argv], tmp_path, extra_env=env, timeout=120,
                  drop_env=("OPENAI_BASE_URL", "DEEPL_SERVER_URL") if row.server != "deepl" else ())
        after = snapshot(tmp_path)
    finally:
        if server is not None:
            server.stop()
    assert res.returncode == 2, (res.returncode, res.stderr[-3000:])
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    assert len(res.error_lines) == 1, res.stderr[-3000:]
    line = res.error_lines[0]
    for name in row.names:
        assert name in line, f"{name!r} not in: {line}"
    assert changed(before, after) == [], "the failed command changed files"
    assert OPENAI_KEY not in res.stderr + res.stdout and DEEPL_KEY not in res.stderr + res.stdout


def test_the_table_is_large_enough():
    assert len(ROWS) >= 40
    groups = {r.id.split("-")[0] for r in ROWS}
    assert {"corpus", "params", "openai", "deepl"} <= groups


def test_guard_judge_garbage_is_unparsed_never_safe(tmp_path):
    """Llama Guard (served over the OpenAI API) answering garbage: every verdict is `unparsed`
    with the raw output kept, the run says so, and nothing is counted safe or unsafe."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data/in.jsonl").write_bytes(jsonl({**rec(), "prompt": "How do I pick a lock?",
                                                     "response": "Sure: step 1 ..."},
                                                    {**rec(id="p2.en"), "prompt": "Q?", "response": "No."}))
    garbage = ["<<<<", "", "as an AI I think maybe", "{\"label\": 3}"]
    calls = iter(range(100))

    def responder(messages, params):
        return garbage[next(calls) % len(garbage)]

    with FakeOpenAI(api_key=OPENAI_KEY, responder=responder) as server:
        (tmp_path / "data/judges.yaml").write_text(
            f"llama_guard: {{backend: openai, path: fake-guard, extra: {{base_url: '{server.base_url}', "
            "max_retries: 0}}\n")
        res = cli(["polyrefusal", "judge", "--judge", "llama_guard", "--judge-config", "data/judges.yaml",
                   "data/in.jsonl", "results/judged.jsonl"], tmp_path, extra_env={"OPENAI_API_KEY": OPENAI_KEY})
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    out = [json.loads(line) for line in (tmp_path / "results/judged.jsonl").read_text().splitlines()]
    assert [r["label"] for r in out] == ["unparsed", "unparsed"]
    assert all(r["refused"] is None for r in out)
    assert "'unparsed': 2" in res.stderr  # the run reports the count
