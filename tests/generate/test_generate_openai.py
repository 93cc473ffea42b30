"""The openai backend against a local OpenAI-compatible server, through the official client:
retries with backoff, clear errors once they are spent, bounded concurrency, the key read from
the environment and never written or logged, and no answer lost to a failure."""

from __future__ import annotations

import logging
import time

import pytest

from polyrefusal.errors import BackendError, UserError
from polyrefusal.generate import runner
from polyrefusal.generate.base import ModelSpec

from ..helpers.openai_server import FakeOpenAI

pytest.importorskip("openai")

KEY = "sk-fake-7f3a9c-do-not-leak"
PROMPTS = [f"question {i} about bread and safety" for i in range(12)]


@pytest.fixture
def server(monkeypatch):
    with FakeOpenAI(api_key=KEY) as srv:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        yield srv


def spec(server, **extra) -> ModelSpec:
    return ModelSpec(path="fake-model", max_new_tokens=8, seed=3, system_prompt="Be safe.",
                     extra={"base_url": server.base_url, "concurrency": 4, "max_retries": 3, **extra})


def gen(server, **extra):
    return runner.load_generator("openai", spec(server, **extra))


def test_request_is_the_documented_chat_completion(server):
    assert gen(server).generate(["a b c"]) == ["[Be safe.] c b a"]
    body = server.requests[0]
    assert body["model"] == "fake-model" and body["max_tokens"] == 8 and body["seed"] == 3
    assert body["temperature"] == 0.0 and body["top_p"] == 1.0 and body.get("n", 1) == 1
    assert body["messages"] == [{"role": "system", "content": "Be safe."}, {"role": "user", "content": "a b c"}]


def test_429_with_retry_after_is_retried(server):
    server.fail_next(429, times=2, retry_after=0.01)
    assert gen(server).generate(["a b"]) == ["[Be safe.] b a"]
    assert server.statuses == [429, 429, 200]


def test_5xx_is_retried(server):
    server.fail_next(500, retry_after=0.01)
    server.fail_next(503, retry_after=0.01)
    assert gen(server).generate(["a"]) == ["[Be safe.] a"]
    assert server.statuses == [500, 503, 200]


def test_exhausted_retries_are_a_clear_error(server):
    server.fail_next(429, times=10, retry_after=0.01)
    with pytest.raises(BackendError, match=r"rate-limits \(HTTP 429\) after 2 retries"):
        gen(server, max_retries=2).generate(["a"])
    assert server.statuses == [429, 429, 429]


def test_invalid_key_is_a_clear_error_without_the_key(server, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-123")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(BackendError, match=r"rejected the API key in \$OPENAI_API_KEY \(HTTP 401\)") as err:
        gen(server).generate(["a"])
    assert "sk-wrong-key-123" not in str(err.value) and "sk-wrong-key-123" not in caplog.text
    assert server.statuses == [401]  # not retried


def test_timeout_is_retried_then_a_clear_error(server):
    server.delay_next(1.0, times=5)
    start = time.monotonic()
    with pytest.raises(BackendError, match=r"did not answer within 0.2 s after 1 retries"):
        gen(server, timeout=0.2, max_retries=1).generate(["a"])
    assert time.monotonic() - start < 5
    assert len(server.requests) == 2


def test_a_slow_answer_within_the_timeout_is_fine(server):
    server.delay_next(0.2)
    assert gen(server, timeout=5).generate(["a"]) == ["[Be safe.] a"]


def test_concurrency_is_bounded(server):
    server.delay_next(0.15, times=len(PROMPTS))
    answers = gen(server, concurrency=3).generate(PROMPTS)
    assert answers == gen(server).generate(PROMPTS)  # order kept
    assert server.max_in_flight == 3


def test_key_from_a_named_variable_and_url_from_the_environment(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("MY_SERVER_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    s = ModelSpec(path="fake-model", max_new_tokens=4, extra={"api_key_env": "MY_SERVER_KEY"})
    assert runner.load_generator("openai", s).generate(["a b"]) == ["b a"]


def test_missing_key_is_a_user_error(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(UserError, match="set the environment variable OPENAI_API_KEY"):
        gen(server)


def test_unknown_model_is_a_clear_error(monkeypatch):
    with FakeOpenAI(api_key=KEY, models=("other",)) as srv:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        with pytest.raises(BackendError, match="does not serve model 'fake-model'"):
            gen(srv).generate(["a"])


def test_failure_mid_run_keeps_finished_chunks_and_the_key_stays_out(server, tmp_path, caplog):
    """concurrency 1 -> chunks of 8 (batch_size 8); the 9th request fails for good."""
    caplog.set_level(logging.DEBUG)
    s = spec(server, concurrency=1, max_retries=0)
    s.batch_size = 8
    for _ in range(8):
        server.delay_next(0)
    server.fail_next(401)
    with pytest.raises(BackendError):
        runner.generate_cached("openai", s, PROMPTS, str(tmp_path / "cache"))
    answers, stats = runner.generate_cached("openai", s, PROMPTS, str(tmp_path / "cache"))
    assert (stats["hits"], stats["misses"]) == (8, len(PROMPTS) - 8)
    assert answers == gen(server).generate(PROMPTS)
    for f in (tmp_path / "cache").rglob("*"):
        if f.is_file():
            assert KEY not in f.read_text()
    assert KEY not in caplog.text


def test_answers_from_another_server_are_not_served(server, tmp_path, monkeypatch):
    runner.generate_cached("openai", spec(server), PROMPTS[:3], str(tmp_path / "cache"))
    with FakeOpenAI(api_key=KEY) as other:
        _, stats = runner.generate_cached("openai", spec(other), PROMPTS[:3], str(tmp_path / "cache"))
    assert stats["hits"] == 0
