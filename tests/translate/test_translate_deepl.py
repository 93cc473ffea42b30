"""The deepl backend against a local fake of the DeepL v2 API, driving the real client.

What must hold: nothing is billed twice (re-runs, new languages), a quota or rate-limit error
never loses a received batch, retries happen, requests stay within DeepL's limits, and the key
never lands in a file or a log.
"""

from __future__ import annotations

import json
import logging

import pytest

from polyrefusal.cli import main
from polyrefusal.errors import BackendError, UserError
from polyrefusal.io import read_json, read_records, write_records
from polyrefusal.translate.driver import translate_records

from ..helpers.deepl_server import MAX_BODY, FakeDeepL
from ..helpers.project import ROOT

KEY = "PR-FAKE-KEY-7f3a9c-do-not-leak:fx"


@pytest.fixture
def server(monkeypatch):
    import deepl
    # The client's backoff starts at 1 s (x1.6 per retry): right for DeepL, slow for a test.
    monkeypatch.setattr(deepl.http_client._BackoffTimer, "BACKOFF_INITIAL", 0.01)
    monkeypatch.setattr(deepl.http_client, "max_network_retries", deepl.http_client.max_network_retries)
    with FakeDeepL(auth_key=KEY) as srv:
        monkeypatch.setenv("DEEPL_AUTH_KEY", KEY)
        monkeypatch.setenv("DEEPL_SERVER_URL", srv.url)
        yield srv


def corpus(n: int = 12) -> list[dict]:
    """Prompts plus answers that repeat (as in the seed corpus): repeated texts bill once."""
    return [{"id": f"p{i}.en", "source_id": f"p{i}", "lang": "en",
             "text": f"Prompt number {i}: explain the topic in detail.",
             "chosen": "I can't help with that.", "rejected": f"Sure, step {i % 3}."}
            for i in range(n)]


FIELDS = ("text", "chosen", "rejected")


def chars(records: list[dict]) -> int:
    """Characters of the distinct texts of ``records`` (what one full translation bills)."""
    return sum(len(t) for t in {r[f] for r in records for f in FIELDS})


def run(records, memory, target="de", **kw):
    return translate_records(records, backend="deepl", source="en", target=target,
                             memory_dir=str(memory), fields=FIELDS, **kw)


def test_second_run_bills_nothing(server, tmp_path):
    records = corpus()
    out1, usage1 = run(records, tmp_path / "mem")
    assert server.billed["DE"] == usage1["characters_billed"] == chars(records)
    assert usage1["misses"] == usage1["texts"] and usage1["hits"] == 0
    n_requests = len(server.requests)

    out2, usage2 = run(records, tmp_path / "mem")
    assert len(server.requests) == n_requests  # not even a request
    assert server.total_billed == chars(records)
    assert usage2["characters_billed"] == 0 and usage2["misses"] == 0
    assert usage2["hits"] == usage1["texts"]
    assert out1 == out2
    assert out1[0]["text"] == "[DE] " + records[0]["text"]
    assert out1[0]["source_text"] == records[0]["text"]
    assert out1[0]["id"] == "p0.de" and out1[0]["lang"] == "de"


def test_cached_run_needs_no_key(server, tmp_path, monkeypatch):
    run(corpus(), tmp_path / "mem")
    monkeypatch.delenv("DEEPL_AUTH_KEY")
    _, usage = run(corpus(), tmp_path / "mem")
    assert usage["misses"] == 0


def test_missing_key_is_a_clear_error(server, tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPL_AUTH_KEY")
    with pytest.raises(UserError, match="DEEPL_AUTH_KEY is not set"):
        run(corpus(), tmp_path / "mem")


def test_adding_a_language_bills_only_that_language(server, tmp_path):
    records = corpus()
    run(records, tmp_path / "mem", target="de")
    before = dict(server.billed)
    for target in ("de", "fr"):  # the pipeline with one more language
        run(records, tmp_path / "mem", target=target)
    assert server.billed["DE"] == before["DE"]
    assert server.billed["FR"] == chars(records)


def test_adding_records_bills_only_new_texts(server, tmp_path):
    records = corpus(10)
    run(records, tmp_path / "mem")
    bigger = corpus(14)
    run(bigger, tmp_path / "mem")
    assert server.total_billed == chars(bigger)


def test_quota_exceeded_keeps_received_batches_and_resumes(server, tmp_path, capsys):
    # 120 distinct texts of 40 characters: three requests of 50, 50 and 20 texts.
    records = [{"id": f"r{i}", "text": f"Sentence {i:03d} which needs a translation!!"}
               for i in range(120)]
    assert {len(r["text"]) for r in records} == {40}
    total = 120 * 40
    server.quota = 50 * 40 + 10  # the second request crosses the quota
    src, out = tmp_path / "in.jsonl", tmp_path / "out" / "de.jsonl"
    write_records(src, records)
    argv = ["translate", "--backend", "deepl", "--target", "de", "--memory",
            str(tmp_path / "mem"), str(src), str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "quota exceeded (HTTP 456)" in err and "50 of 120 new texts were translated and saved" in err
    assert not out.exists()
    assert server.total_billed == 50 * 40

    server.quota = None  # next billing period
    assert main(argv) == 0
    assert server.total_billed == total  # only the 70 texts not yet received
    usage = read_json(out.with_name("de.usage.json"))
    assert usage["hits"] == 50 and usage["misses"] == 70
    assert usage["characters_billed"] == total - 50 * 40
    assert [r["text"] for r in read_records(out)] == [f"[DE] {r['text']}" for r in records]


def test_429_and_5xx_are_retried(server, tmp_path):
    server.fail_next(429, times=2, retry_after=0)
    server.fail_next(500)
    server.fail_next(503)
    records = corpus(3)
    out, usage = run(records, tmp_path / "mem")
    assert server.statuses == [429, 429, 500, 503, 200]
    assert usage["requests"] == 1 and usage["characters_billed"] == chars(records)
    assert out[2]["rejected"] == "[DE] Sure, step 2."


def test_rate_limit_that_does_not_end_is_a_clear_error(server, tmp_path):
    server.fail_next(429, times=10)
    with pytest.raises(BackendError, match=r"rate-limiting \(HTTP 429\) after 2 retries.*re-run"):
        run(corpus(3), tmp_path / "mem", options={"max_retries": 2})
    assert server.statuses == [429, 429, 429]


def test_wrong_key_is_a_clear_error(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEEPL_AUTH_KEY", "some-other-key")
    src = tmp_path / "in.jsonl"
    write_records(src, corpus(2))
    assert main(["translate", "--backend", "deepl", "--target", "de", "--memory",
                 str(tmp_path / "mem"), str(src), str(tmp_path / "de.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "rejected the API key (HTTP 403)" in err and "DEEPL_AUTH_KEY" in err
    assert "some-other-key" not in err


def test_batches_stay_within_deepl_limits(server, tmp_path):
    # 120 short texts: 50 + 50 + 20.
    short = [{"id": f"s{i}", "text": f"Short text {i}."} for i in range(120)]
    run(short, tmp_path / "mem")
    assert [len(r["texts"]) for r in server.requests] == [50, 50, 20]
    # Long texts, some non-ASCII (JSON-escaped to 6 bytes a character): bytes bound the batch.
    long = [{"id": f"l{i}", "text": (f"{i} " + ("x" * 30_000 if i % 2 else "č" * 6_000))}
            for i in range(12)]
    server.requests.clear()
    run(long, tmp_path / "mem")
    assert all(r["body_bytes"] <= MAX_BODY for r in server.requests)
    assert all(s == 200 for s in server.statuses)
    assert sum(len(r["texts"]) for r in server.requests) == 12
    assert len(server.requests) >= 3  # 12 texts of ~30-36 KB cannot go in one request


def test_a_text_over_the_request_limit_names_the_record(server, tmp_path):
    records = [{"id": "ok", "text": "fine"}, {"id": "huge", "text": "y" * (MAX_BODY + 1)}]
    with pytest.raises(UserError, match="record 'huge'.*over the deepl limit") as err:
        run(records, tmp_path / "mem")
    assert err.value.field == "text"


def test_options_are_passed_and_keyed(server, tmp_path):
    records = corpus(2)
    options = {"formality": "prefer_more", "glossary_id": {"de": "gloss-de", "fr": "gloss-fr"},
               "context": "A safety evaluation.", "model_type": "quality_optimized"}
    run(records, tmp_path / "mem", options=options)
    req = server.requests[-1]
    assert (req["formality"], req["glossary_id"], req["context"], req["model_type"],
            req["source_lang"]) == ("prefer_more", "gloss-de", "A safety evaluation.",
                                    "quality_optimized", "EN")
    billed = server.total_billed
    # Runtime-only options and other languages' settings do not change the key...
    run(records, tmp_path / "mem", options={**options, "max_retries": 1, "pt_variant": "PT-BR",
                                            "glossary_id": {"de": "gloss-de"}})
    assert server.total_billed == billed
    # ...an output-changing option does (a different translation is a different entry).
    run(records, tmp_path / "mem", options={**options, "formality": "prefer_less"})
    assert server.total_billed == 2 * billed


def test_language_variants(server, tmp_path):
    run(corpus(1), tmp_path / "mem", target="pt")
    run(corpus(1), tmp_path / "mem", target="pt", options={"pt_variant": "PT-BR"})
    back = [{"id": "x", "text": "Hallo"}]
    translate_records(back, backend="deepl", source="de", target="en", memory_dir=str(tmp_path / "mem"))
    assert [r["target_lang"] for r in server.requests] == ["PT-PT", "PT-BR", "EN-GB"]
    assert server.requests[-1]["source_lang"] == "DE"


def test_bad_options_are_user_errors(server, tmp_path):
    with pytest.raises(UserError, match="unknown deepl option"):
        run(corpus(1), tmp_path / "mem", options={"formalty": "more"})
    with pytest.raises(UserError, match="looks like a secret"):
        run(corpus(1), tmp_path / "mem", options={"auth_key": KEY})
    with pytest.raises(UserError, match="pt_variant must be one of"):
        run(corpus(1), tmp_path / "mem", options={"pt_variant": "PT-AO"})


def test_cli_end_to_end_and_the_key_never_leaks(server, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="deepl")  # the client's request/response details too
    records = corpus(6)
    src = tmp_path / "in" / "en.parquet"
    write_records(src, records)
    out_dir, mem = tmp_path / "out", tmp_path / "mem"
    server.fail_next(429)
    argv = ["-v", "translate", "--backend", "deepl", "--source", "en", "--target", "de",
            "--fields", "text,chosen,rejected", "--memory", str(mem),
            "--options", json.dumps({"formality": "prefer_more"}), "--back-translate",
            "--chrf-threshold", "99",  # "[EN-GB] [DE] text" vs "text" scores under 99
            str(src), str(out_dir / "de.parquet")]
    assert main(argv) == 0
    out = read_records(out_dir / "de.parquet")
    assert [r["id"] for r in out] == [f"p{i}.de" for i in range(6)]
    assert out[0]["source_chosen"] == "I can't help with that." and out[0]["lang"] == "de"
    usage = read_json(out_dir / "de.usage.json")
    assert usage["characters_billed"] == chars(records) == server.billed["DE"]
    assert usage["backend"] == "deepl" and usage["requests"] == 1
    # The fake's "[DE] ..." is English, so language identification flags every field.
    assert usage["flagged_langid"] == 18
    review = read_records(out_dir / "de.review.jsonl")
    assert {r["check"] for r in review} == {"langid", "chrf"}
    assert usage["flagged_chrf"] == 18 == sum(r["check"] == "chrf" for r in review)
    assert all(r["chrf"] < 99 and r["back_translation"].startswith("[EN-GB] [DE] ")
               for r in review if r["check"] == "chrf")
    assert usage["back_translation"]["characters_billed"] == server.billed["EN-GB"] > 0

    assert main(argv) == 0  # the re-run, back-translation included, bills nothing
    assert read_json(out_dir / "de.usage.json")["characters_billed"] == 0
    assert read_json(out_dir / "de.usage.json")["back_translation"]["characters_billed"] == 0
    assert server.total_billed == usage["characters_billed"] + usage["back_translation"]["characters_billed"]

    # The key: in no file under output, memory or input, in no log line, on no stream.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    captured = capsys.readouterr()
    for text in (caplog.text, captured.out, captured.err):
        assert KEY not in text
    assert "hits" in caplog.text and "characters billed" in caplog.text
    assert "Request details" in caplog.text  # the client's debug log was captured and checked


def test_usage_json_never_holds_the_key(server, tmp_path):
    _, usage = run(corpus(2), tmp_path / "mem")
    assert KEY not in json.dumps(usage)
    assert {"hits", "misses", "characters_billed", "requests", "backend", "source", "target"} <= set(usage)


def test_cli_takes_backend_and_options_from_params(server, tmp_path):
    import yaml
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["translate"] = {"backend": "deepl", "options": {"formality": "prefer_less"},
                           "memory_dir": str(tmp_path / "mem")}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    write_records(tmp_path / "en.jsonl", corpus(2))
    assert main(["translate", "--params", str(tmp_path / "params.yaml"), "--target", "de",
                 "--options", json.dumps({"context": "c"}), str(tmp_path / "en.jsonl"),
                 str(tmp_path / "de.jsonl")]) == 0
    assert (server.requests[-1]["formality"], server.requests[-1]["context"]) == ("prefer_less", "c")
    assert any((tmp_path / "mem" / "en-de").glob("*.jsonl"))


def test_fake_server_speaks_the_form_api_too(server):
    """The fake accepts the documented form body as well as the client's JSON."""
    import httpx
    auth = {"Authorization": f"DeepL-Auth-Key {KEY}"}
    r = httpx.post(f"{server.url}/v2/translate", headers=auth,
                   data={"text": ["Hello", "World"], "target_lang": "DE", "source_lang": "EN"})
    assert r.status_code == 200
    assert [t["text"] for t in r.json()["translations"]] == ["[DE] Hello", "[DE] World"]
    assert httpx.get(f"{server.url}/v2/usage", headers=auth).json()["character_count"] == 10
    assert httpx.get(f"{server.url}/v2/usage").status_code == 403


# --- formality, final errors, usage of a failed run ------------------------------------------------

#: The study's twelve languages as DeepL targets (en reached by back-translation from de).
TWELVE = ("de", "fr", "it", "es", "pt", "pl", "cs", "sk", "sl", "lt", "lv")


@pytest.mark.parametrize("formality", ["more", "less"])
def test_formality_goes_only_to_targets_that_support_it(server, tmp_path, caplog, formality):
    """DeepL API reference: ``formality`` less/more fails for a target without formality support
    unless the ``prefer_`` form is used; ``GET /v2/languages?type=target`` lists
    ``supports_formality`` per language (developers.deepl.com/api-reference/languages). The
    list is asked once, before any text is billed, and every one of the twelve targets works."""
    caplog.set_level(logging.WARNING)
    records = corpus(2)
    for target in TWELVE:
        run(records, tmp_path / "mem", target=target, options={"formality": formality})
    translate_records([{"id": "x", "text": "Hallo"}], backend="deepl", source="de", target="en",
                      memory_dir=str(tmp_path / "mem"), options={"formality": formality})
    assert set(server.statuses) == {200}
    assert server.language_requests == ["target"]
    assert server.calls.index("/v2/languages") < server.calls.index("/v2/translate")
    sent = {r["target_lang"]: r["formality"] for r in server.requests}
    supported = {"DE", "FR", "IT", "ES", "PT-PT", "PL"}
    assert sent == {code: formality if code in supported else f"prefer_{formality}"
                    for code in supported | {"CS", "SK", "SL", "LT", "LV", "EN-GB"}}
    warned = [r.getMessage() for r in caplog.records if "has no formality" in r.getMessage()]
    assert len(warned) == 6 and any("EN-GB" in w for w in warned)


def test_formality_that_every_target_accepts_asks_no_language_list(server, tmp_path):
    for target in ("de", "cs"):
        run(corpus(1), tmp_path / "mem", target=target, options={"formality": "prefer_more"})
    assert server.language_requests == [] and set(server.statuses) == {200}


@pytest.mark.parametrize("status", [400, 404, 413, 414])
def test_a_4xx_no_retry_can_fix_does_not_offer_to_resume(server, tmp_path, capsys, status):
    """DeepL's documented errors: 429 and 5xx are to be retried with backoff, 456 is the quota
    (developers.deepl.com/docs/best-practices/error-handling); a 400/404/413/414 fails the same
    way on every attempt, so the message must not say that a re-run resumes."""
    from polyrefusal.translate.base import RequestRejected

    server.fail_next(status)
    with pytest.raises(RequestRejected) as err:
        run(corpus(3), tmp_path / "mem")
    message = str(err.value)
    assert f"HTTP {status}" in message and "no retry can fix" in message and "re-run" not in message
    assert server.statuses == [status]  # not retried
    # Quota and rate limit still say how to go on.
    server.quota = 1
    with pytest.raises(BackendError, match="re-run to resume") as quota:
        run(corpus(3), tmp_path / "mem2")
    assert not isinstance(quota.value, RequestRejected)


def test_a_wrong_key_does_not_offer_to_resume(server, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPL_AUTH_KEY", "some-other-key")
    with pytest.raises(BackendError) as err:
        run(corpus(1), tmp_path / "mem")
    assert "HTTP 403" in str(err.value) and "re-run" not in str(err.value)


def test_a_failed_target_still_writes_its_usage(server, tmp_path, caplog):
    """The quota runs out in the middle of a target: what was billed is in the usage file."""
    records = [{"id": f"r{i}", "text": f"Sentence {i:03d} which needs a translation!!"} for i in range(120)]
    server.quota = 50 * 40 + 10
    src, out = tmp_path / "in.jsonl", tmp_path / "out" / "de.jsonl"
    write_records(src, records)
    assert main(["translate", "--backend", "deepl", "--target", "de", "--memory", str(tmp_path / "mem"),
                 str(src), str(out)]) == 2
    usage = read_json(out.with_name("de.usage.json"))
    assert usage["characters_billed"] == 50 * 40 == server.total_billed and usage["requests"] == 1
    assert "HTTP 456" in usage["failed"] and not out.exists()
    assert KEY not in json.dumps(usage)
    # The same record logged (to stderr: a rule's log), where it outlives a job whose outputs are removed.
    assert json.dumps(usage, sort_keys=True) in caplog.text and KEY not in caplog.text


@pytest.mark.slow
def test_a_failed_targets_bill_survives_snakemake_removing_its_outputs(server, tmp_path):
    """Snakemake removes the outputs of a failed job ("Removing output files of failed job ...
    since they might be corrupted", snakemake/snakemake#45), the usage file with them, and keeps
    its log: the log holds what was billed. The rule has the shape of rules/translate.smk
    (`--usage {output.usage} ... 2> {log}`)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    records = [{"id": f"r{i}", "text": f"Sentence {i:03d} which needs a translation!!"} for i in range(120)]
    server.quota = 50 * 40 + 10
    write_records(tmp_path / "in.jsonl", records)
    (tmp_path / "Snakefile").write_text(
        "rule translate:\n"
        "    input: 'in.jsonl'\n"
        "    output: translations='out/de.jsonl', usage='out/de.usage.json'\n"
        "    log: 'logs/de.log'\n"
        "    shell: 'polyrefusal translate --backend deepl --target de --memory mem "
        "--usage {output.usage} {input} {output.translations} 2> {log}'\n")
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([f"{bin_dir}/snakemake", "--cores", "1"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "Removing output files of failed job" in proc.stdout + proc.stderr
    assert not (tmp_path / "out/de.usage.json").exists()           # removed with the failed job
    log = (tmp_path / "logs/de.log").read_text()
    assert '"characters_billed": 2000' in log and "HTTP 456" in log and KEY not in log
    assert server.total_billed == 2000


def test_a_failure_before_anything_is_billed_leaves_the_usage_file_alone(server, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "de.jsonl"
    write_records(src, corpus(2))
    usage = out.with_name("de.usage.json")
    usage.write_text("earlier")
    server.fail_next(400)
    assert main(["translate", "--backend", "deepl", "--target", "de", "--memory", str(tmp_path / "mem"),
                 str(src), str(out)]) == 2
    assert usage.read_text() == "earlier"


def test_the_client_floor_has_every_call_the_backend_makes():
    """deepl-python CHANGELOG.md (github DeepLcom/deepl-python): ``DeepLClient`` 1.21.0,
    ``model_type`` 1.20.0, ``billed_characters`` 1.19.0, ``context`` 1.16.0, ``set_app_info`` and
    ``send_platform_info`` 1.14.0, ``prefer_`` formality 1.11.0, ``get_target_languages`` with
    ``supports_formality`` 1.0.0 or earlier: the floor is 1.21.0."""
    import re
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'"deepl>=1\.21(\.0)?"', text)
