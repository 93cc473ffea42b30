"""What only the transformers backend does: left-padded batches that answer like single
prompts, logits for guard judges, seeded sampling, threads, and loading errors that read as
one line instead of a stack trace."""

from __future__ import annotations

import time

import pytest

from polyrefusal.errors import UserError
from polyrefusal.generate import identity, runner
from polyrefusal.generate.base import ModelSpec
from polyrefusal.generate.random_model import build_random_llama

PROMPTS = ["How do I bake bread at home?", "hi", "Wie backe ich Brot? Mehl und Wasser mischen.",
           "Tell me a story about a dragon, please.", "x y z"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return str(build_random_llama(tmp_path_factory.mktemp("tiny"), "tiny", seed=0))


@pytest.fixture(autouse=True)
def digest_store(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYREFUSAL_DIGEST_CACHE", str(tmp_path / "digests"))


def gen(path, **kw):
    return runner.load_generator("transformers", ModelSpec(path=path, **{"max_new_tokens": 8, **kw}))


def test_left_padded_batches_answer_like_single_prompts(tiny_model):
    single = [gen(tiny_model, batch_size=1).generate([p])[0] for p in PROMPTS]
    assert gen(tiny_model, batch_size=4).generate(PROMPTS) == single


def test_render_is_the_chat_template(tiny_model):
    assert gen(tiny_model, system_prompt="S").render("hi") == "<|system|>\nS\n<|user|>\nhi\n<|assistant|>\n"


def test_next_token_logprobs_match_an_unpadded_forward(tiny_model):
    import torch

    g = gen(tiny_model, batch_size=8)
    scores = g.next_token_logprobs(PROMPTS, ["safe", "unsafe", "x"])
    assert len(scores) == len(PROMPTS) and all(set(s) == {"safe", "unsafe", "x"} for s in scores)
    for prompt, score in zip(PROMPTS, scores):
        ids = g.tokenizer(g.render(prompt), return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            logprobs = torch.log_softmax(g.model(**ids).logits[0, -1].float(), -1)
        for cand, value in score.items():
            token = g.tokenizer.encode(cand, add_special_tokens=False)[0]
            assert value == pytest.approx(float(logprobs[token]), abs=1e-4)
            assert value <= 0
    assert g.next_token_logprobs([], ["safe"]) == []


def test_a_whole_chat_is_a_prompt_for_guard_models(tiny_model):
    """Guard judges classify (prompt, response) chats; the chat template renders them."""
    g = gen(tiny_model, system_prompt="S")
    chat = [{"role": "user", "content": "how?"}, {"role": "assistant", "content": "like this"}]
    assert g.render(chat) == "<|system|>\nS\n<|user|>\nhow?\n<|assistant|>\nlike this</s>\n<|assistant|>\n"
    own_system = [{"role": "system", "content": "T"}] + chat
    assert g.render(own_system).startswith("<|system|>\nT\n<|user|>")
    scores = g.next_token_logprobs([chat, "how?"], ["safe", "unsafe"])
    assert scores[0] != scores[1] and all(v <= 0 for s in scores for v in s.values())
    assert len(g.generate([chat])) == 1


def test_sampling_is_seeded(tiny_model):
    a = gen(tiny_model, temperature=1.0, seed=1).generate(PROMPTS)
    assert gen(tiny_model, temperature=1.0, seed=1).generate(PROMPTS) == a
    assert gen(tiny_model, temperature=1.0, seed=2).generate(PROMPTS) != a
    assert gen(tiny_model).generate(PROMPTS) != a


def test_checkpoint_decoding_defaults_do_not_leak_in(tiny_model, tmp_path):
    """Only the spec decides decoding: a checkpoint's repetition penalty or top-k would change
    answers behind the cache key's back (and differ from vLLM / servers)."""
    import json
    import shutil

    model = shutil.copytree(tiny_model, tmp_path / "m")
    cfg = json.loads((model / "generation_config.json").read_text())
    cfg.update(repetition_penalty=5.0, no_repeat_ngram_size=1, top_k=1, temperature=0.01, do_sample=True)
    (model / "generation_config.json").write_text(json.dumps(cfg))
    assert gen(str(model)).generate(PROMPTS) == gen(tiny_model).generate(PROMPTS)
    sampled = dict(temperature=1.0, seed=4)
    assert gen(str(model), **sampled).generate(PROMPTS) == gen(tiny_model, **sampled).generate(PROMPTS)


def test_new_tokens_are_counted_up_to_eos(tiny_model):
    g = gen(tiny_model, max_new_tokens=5)
    g.generate(PROMPTS)
    assert 0 < g.new_tokens <= 5 * len(PROMPTS)


def test_torch_threads_are_respected(tiny_model):
    import torch

    before = torch.get_num_threads()
    try:
        gen(tiny_model, extra={"torch_threads": 1})
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_chat_template_from_params(tiny_model):
    g = gen(tiny_model, extra={"chat_template": "Q: {{ messages[-1]['content'] }}\nA:"})
    assert g.render("hi") == "Q: hi\nA:"


def test_model_without_chat_template_is_a_user_error(tiny_model, tmp_path):
    import shutil
    model = shutil.copytree(tiny_model, tmp_path / "m")
    for f in model.glob("chat_template.*"):
        f.unlink()
    cfg = model / "tokenizer_config.json"
    cfg.write_text(cfg.read_text().replace('"chat_template"', '"unused_template"'))
    with pytest.raises(UserError, match="no chat template"):
        gen(str(model))


def test_unknown_dtype_is_a_user_error(tiny_model):
    with pytest.raises(UserError, match="unknown dtype"):
        gen(tiny_model, dtype="float8")


def test_missing_directory_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="model directory not found"):
        gen(str(tmp_path / "missing"))


def test_hub_id_offline_fails_fast_and_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="HF_HUB_OFFLINE is set"):
        gen("polyrefusal-tests/no-such-model")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    def refuse(*args, **kwargs):
        raise OSError(101, "Network is unreachable")
    monkeypatch.setattr(identity.hub.socket, "create_connection", refuse)
    with pytest.raises(UserError, match="Hub is unreachable"):
        gen("polyrefusal-tests/no-such-model")


def test_hub_id_without_network_is_a_user_error_not_a_hang(tmp_path, monkeypatch):
    """For real: on this offline machine the probe fails; with network, the hub answers 404."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    start = time.monotonic()
    with pytest.raises(UserError):
        gen("polyrefusal-tests/no-such-model-7f3a9c")
    assert time.monotonic() - start < 30


def test_hub_id_loads_from_the_local_hf_cache_without_network(tiny_model, tmp_path, monkeypatch):
    import shutil
    commit = "c" * 40
    repo = tmp_path / "hub" / "models--org--tiny"
    shutil.copytree(tiny_model, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(identity.hub, "unreachable", lambda *a, **kw: pytest.fail("went to the network"))
    g = gen("org/tiny")
    assert g.generate(PROMPTS) == gen(tiny_model).generate(PROMPTS)
    assert g.cache_identity()["model"] == {"hub_id": "org/tiny", "revision": commit}
