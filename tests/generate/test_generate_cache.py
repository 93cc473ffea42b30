"""The response cache: never a hit across models or parameters, resume after a crash, safe
with concurrent writers, and a weights digest that stays cheap.

Documented choice: a local model is identified by the content of its files, not its path, so
the same weights copied to another directory HIT (and a retrained model in the same directory
misses).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from pathlib import Path

import pytest

from polyrefusal.errors import UserError
from polyrefusal.generate import identity, runner
from polyrefusal.generate.base import ModelSpec
from polyrefusal.generate.cache import ResponseCache
from polyrefusal.generate.random_model import build_random_llama

from ..helpers.generate import count_backend

PROMPTS = [f"Question number {i}: how do I {w}?" for i, w in
           enumerate(["bake bread", "fix a bike", "learn Polish", "plant trees", "write poems",
                      "cook rice", "paint walls", "sing", "swim", "run fast"])]


@pytest.fixture(autouse=True)
def digest_store(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYREFUSAL_DIGEST_CACHE", str(tmp_path / "digests"))
    return tmp_path / "digests"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {seed: str(build_random_llama(root / f"seed{seed}", "tiny", seed=seed)) for seed in (0, 1)}


def spec(path, **kw) -> ModelSpec:
    return ModelSpec(path=path, **{"max_new_tokens": 6, "batch_size": 4, "extra": {"torch_threads": 1}, **kw})


def run(s: ModelSpec, cache, prompts=PROMPTS):
    return runner.generate_cached("transformers", s, prompts, str(cache))


# -- no cross-model, cross-parameter hits ------------------------------------------------------

def test_two_models_never_share_answers(models, tmp_path, monkeypatch):
    run(spec(models[0]), tmp_path / "c")
    counts = count_backend(monkeypatch)
    _, stats = run(spec(models[1]), tmp_path / "c")
    assert stats["hits"] == 0 and counts["prompts"] == len(PROMPTS)


@pytest.mark.parametrize("change", [{"temperature": 0.7}, {"seed": 1}, {"max_new_tokens": 7},
                                   {"system_prompt": "Be brief."}, {"top_p": 0.9}, {"dtype": "float32"},
                                   {"extra": {"torch_threads": 1, "chat_template": "{{ messages[0]['content'] }}"}}])
def test_any_parameter_change_misses(models, tmp_path, monkeypatch, change):
    run(spec(models[0]), tmp_path / "c")
    counts = count_backend(monkeypatch)
    _, stats = run(spec(models[0], **change), tmp_path / "c")
    assert stats["hits"] == 0 and counts["prompts"] == len(PROMPTS)


def test_speed_settings_do_not_change_the_key(models, tmp_path):
    run(spec(models[0]), tmp_path / "c")
    _, stats = run(spec(models[0], batch_size=3, device="cpu", extra={"torch_threads": 2}), tmp_path / "c")
    assert stats["hits"] == len(PROMPTS)


def test_copied_weights_hit_by_content(models, tmp_path, monkeypatch):
    first, _ = run(spec(models[0]), tmp_path / "c")
    copy = shutil.copytree(models[0], tmp_path / "copy")
    (copy / "README.md").write_text("docs do not change answers")
    counts = count_backend(monkeypatch)
    again, stats = run(spec(str(copy)), tmp_path / "c")
    assert again == first and stats["hits"] == len(PROMPTS) and counts["loads"] == 0


def test_edited_chat_template_misses(models, tmp_path):
    run(spec(models[0]), tmp_path / "c")
    copy = shutil.copytree(models[0], tmp_path / "copy")
    for name in ("tokenizer_config.json", "chat_template.jinja"):
        path = copy / name
        if name.endswith(".jinja") and path.exists():
            path.write_text(path.read_text().replace("<|assistant|>", "<|assistant|> "))
        elif name.endswith(".json"):
            cfg = json.loads(path.read_text())
            if "chat_template" in cfg:
                cfg["chat_template"] = cfg["chat_template"].replace("<|assistant|>", "<|assistant|> ")
                path.write_text(json.dumps(cfg))
    _, stats = run(spec(str(copy)), tmp_path / "c")
    assert stats["hits"] == 0


def test_retrained_in_place_misses(models, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    local = shutil.copytree(models[0], tmp_path / "model")
    run(spec(str(local)), tmp_path / "c")
    model = AutoModelForCausalLM.from_pretrained(local)
    with torch.no_grad():
        model.lm_head.weight.mul_(1.01)
    model.save_pretrained(local)
    _, stats = run(spec(str(local)), tmp_path / "c")
    assert stats["hits"] == 0


def test_entries_are_partitioned_by_identity(models, tmp_path):
    run(spec(models[0]), tmp_path / "c")
    run(spec(models[1]), tmp_path / "c")
    run(spec(models[0], temperature=0.5), tmp_path / "c")
    partitions = [p for p in (tmp_path / "c").iterdir() if p.is_dir()]
    assert len(partitions) == 3
    ids = [json.loads((p / "identity.json").read_text()) for p in partitions]
    assert {i["sampling"]["temperature"] for i in ids} == {0.0, 0.5}


# -- resume after an interruption -------------------------------------------------------------

class Crash(Exception):
    pass


def test_resume_after_crash_generates_only_the_rest(models, tmp_path, monkeypatch):
    expected, _ = runner.generate_cached("transformers", spec(models[0]), PROMPTS, None)

    real = runner.load_generator
    calls = {"n": 0}

    def crashing(backend, s):
        gen = real(backend, s)
        inner = gen.generate

        def generate(prompts):
            if calls["n"] == 2:
                raise Crash("killed after two batches")
            calls["n"] += 1
            return inner(prompts)

        gen.generate = generate
        return gen

    with monkeypatch.context() as m, pytest.raises(Crash):
        m.setattr(runner, "load_generator", crashing)
        run(spec(models[0]), tmp_path / "c")

    counts = count_backend(monkeypatch)
    answers, stats = run(spec(models[0]), tmp_path / "c")
    assert stats["hits"] == 2 * 4 and stats["misses"] == len(PROMPTS) - 8
    assert counts["prompts"] == len(PROMPTS) - 8 and counts["calls"] == 1
    assert answers == expected


def test_without_cache_dir_nothing_is_written(models, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    answers, stats = runner.generate_cached("transformers", spec(models[0]), PROMPTS[:2], None)
    assert len(answers) == 2 and stats["misses"] == 2
    assert not any(p.name != "digests" for p in tmp_path.iterdir())


def test_unknown_backend_is_a_user_error(models):
    with pytest.raises(UserError, match="unknown generator 'nope'"):
        runner.generate_cached("nope", spec(models[0]), PROMPTS, None)


# -- the store itself -------------------------------------------------------------------------

IDENTITY = {"backend": "test", "model": {"digest": "abc"}}


def _writer(root: str, worker: int, n: int, barrier=None) -> None:
    with ResponseCache(root, IDENTITY) as cache:
        if barrier is not None:
            barrier.wait(20)  # both processes write at the same time
        for start in range(0, n, 10):
            cache.put_many([(cache.key([{"role": "user", "content": f"{worker}-{i}"}]), f"answer {worker}-{i}")
                            for i in range(start, start + 10)])


def test_two_processes_writing_one_partition(tmp_path):
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 300, barrier)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    cache = ResponseCache(tmp_path, IDENTITY)
    assert len(cache) == 600 and len(cache.shards()) == 2
    key = cache.key([{"role": "user", "content": "1-299"}])
    assert cache.get_many([key]) == {key: "answer 1-299"}


def test_torn_last_line_is_ignored(tmp_path):
    _writer(str(tmp_path), 0, 20)
    cache = ResponseCache(tmp_path, IDENTITY)
    with open(cache.shards()[0], "ab") as fh:
        fh.write(b'{"k": "deadbeef", "a": "half a li')  # killed mid-write
    assert len(ResponseCache(tmp_path, IDENTITY)) == 20


def test_compaction_merges_idle_shards_only(tmp_path):
    for w in range(4):
        _writer(str(tmp_path), w, 10)
    live = ResponseCache(tmp_path, IDENTITY)
    live.put_many([("live-key", "still being written")])  # holds its shard's lock
    assert ResponseCache(tmp_path, IDENTITY).compact() == 4
    shards = live.shards()
    assert len(shards) == 2 and live._writer.path in shards
    assert any(p.name.startswith("compact-") for p in shards)
    live.put_many([("live-key-2", "more")])
    live.close()
    fresh = ResponseCache(tmp_path, IDENTITY)
    assert len(fresh) == 42


def test_damaged_partition_files_do_not_crash(tmp_path):
    _writer(str(tmp_path), 0, 10)
    cache = ResponseCache(tmp_path, IDENTITY)
    with open(cache.shards()[0], "ab") as fh:
        fh.write(b"not json\n[1, 2]\n")
    assert len(ResponseCache(tmp_path, IDENTITY)) == 10


# -- model identity ---------------------------------------------------------------------------

def _fake_model_dir(path: Path, size: int = 2 << 20) -> Path:
    path.mkdir()
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(os.urandom(size))
    return path


def test_weights_digest_is_remembered_per_path_size_mtime(tmp_path, monkeypatch):
    model = _fake_model_dir(tmp_path / "m")
    hashed = []
    real = identity._sha256_file
    monkeypatch.setattr(identity, "_sha256_file", lambda p: hashed.append(p.name) or real(p))
    monkeypatch.setattr(identity, "_memo", {})
    first = identity.directory_digest(model)
    assert hashed.count("model.safetensors") == 1
    assert identity.directory_digest(model) == first
    monkeypatch.setattr(identity, "_memo", {})  # a new process: the on-disk memo answers
    assert identity.directory_digest(model) == first
    assert hashed.count("model.safetensors") == 1
    os.utime(model / "model.safetensors", ns=(1, 1))  # touched: hashed again, same content
    assert identity.directory_digest(model) == first
    assert hashed.count("model.safetensors") == 2


def test_digest_ignores_docs_and_training_state(tmp_path):
    model = _fake_model_dir(tmp_path / "m", size=100)
    digest = identity.directory_digest(model)
    (model / "README.md").write_text("hello")
    (model / "training_args.bin").write_bytes(b"x")
    (model / "checkpoint-5").mkdir()
    assert identity.directory_digest(model) == digest
    (model / "generation_config.json").write_text('{"eos_token_id": 3}')
    assert identity.directory_digest(model) != digest


def test_hub_id_identity_resolves_the_commit_offline(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    assert identity.model_identity("org/model", None) == {"hub_id": "org/model", "revision": "main"}
    commit = "a" * 40
    (hub / "models--org--model" / "refs").mkdir(parents=True)
    (hub / "models--org--model" / "refs" / "main").write_text(commit)
    assert identity.model_identity("org/model", None) == {"hub_id": "org/model", "revision": commit}
    assert identity.model_identity("org/model", "b" * 40)["revision"] == "b" * 40


def test_missing_directory_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="model directory not found"):
        identity.model_identity(str(tmp_path / "nope"), None)
