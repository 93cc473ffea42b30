"""One behavioural contract, every generation backend.

``transformers`` runs a tiny random Llama on the CPU; ``openai`` talks to a local
OpenAI-compatible server (tests/helpers/openai_server.py) through the official client; ``vllm`` runs the
tiny model on a GPU and is skipped where vLLM (or CUDA) is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from polyrefusal.generate import runner
from polyrefusal.generate.base import ModelSpec
from polyrefusal.generate.random_model import build_random_llama

from ..helpers.generate import count_backend
from ..helpers.openai_server import FakeOpenAI

KEY = "sk-fake-7f3a9c-do-not-leak"
PROMPTS = ["How do I bake bread at home?", "hi", "Wie backe ich Brot? Mehl und Wasser mischen.",
           "Tell me a story about a dragon, please.", "x y z"]
SYSTEM = "You are a careful assistant."


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return str(build_random_llama(tmp_path_factory.mktemp("tiny"), "tiny", seed=0))


@dataclass
class Backend:
    name: str
    base: dict = field(default_factory=dict)

    def spec(self, **overrides) -> ModelSpec:
        fields = {"max_new_tokens": 8, "batch_size": 8, **self.base, **overrides}
        fields["extra"] = {**self.base.get("extra", {}), **overrides.get("extra", {})}
        return ModelSpec(**fields)

    def generator(self, **overrides):
        return runner.load_generator(self.name, self.spec(**overrides))


@pytest.fixture(params=["transformers", "vllm", "openai"])
def backend(request, tiny_model, monkeypatch, tmp_path):
    monkeypatch.setenv("POLYREFUSAL_DIGEST_CACHE", str(tmp_path / "digests"))
    if request.param == "vllm":
        pytest.importorskip("vllm")
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("vLLM needs a CUDA device")
        return Backend("vllm", {"path": tiny_model, "dtype": "float32",
                                "extra": {"gpu_memory_utilization": 0.2, "enforce_eager": True}})
    if request.param == "openai":
        pytest.importorskip("openai")
        server = FakeOpenAI(api_key=KEY).start()
        request.addfinalizer(server.stop)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        return Backend("openai", {"path": "fake-model", "extra": {"base_url": server.base_url, "concurrency": 4}})
    return Backend("transformers", {"path": tiny_model, "extra": {"torch_threads": 1}})


class TestBackendContract:
    def test_one_answer_per_prompt_in_order(self, backend):
        gen = backend.generator()
        answers = gen.generate(PROMPTS)
        assert len(answers) == len(PROMPTS) and all(isinstance(a, str) for a in answers)
        assert len(set(answers)) > 1  # the answers depend on the prompt...
        assert gen.generate(PROMPTS[::-1])[::-1] == answers  # ...and come back in the caller's order
        assert gen.new_tokens > 0

    def test_greedy_is_deterministic(self, backend):
        first = backend.generator().generate(PROMPTS)
        assert backend.generator().generate(PROMPTS) == first

    def test_system_prompt_applied(self, backend):
        gen = backend.generator(system_prompt=SYSTEM)
        assert SYSTEM in gen.render(PROMPTS[0])
        with_system = gen.generate(PROMPTS)
        without = backend.generator().generate(PROMPTS)
        assert with_system != without

    def test_empty_list(self, backend, tmp_path):
        assert backend.generator().generate([]) == []
        answers, stats = runner.generate_cached(backend.name, backend.spec(), [], str(tmp_path / "cache"))
        assert answers == [] and stats["hits"] == 0 and stats["misses"] == 0

    def test_cache_hit_on_rerun_has_zero_backend_calls(self, backend, tmp_path, monkeypatch):
        cache = str(tmp_path / "cache")
        first, stats = runner.generate_cached(backend.name, backend.spec(), PROMPTS, cache)
        assert (stats["hits"], stats["misses"]) == (0, len(PROMPTS))
        assert stats["new_tokens"] > 0 and stats["prompts_per_second"] > 0

        counts = count_backend(monkeypatch)
        again, stats = runner.generate_cached(backend.name, backend.spec(), PROMPTS, cache)
        assert again == first
        assert (stats["hits"], stats["misses"], stats["new_tokens"]) == (len(PROMPTS), 0, 0)
        assert counts == {"loads": 0, "calls": 0, "prompts": 0}  # the model was not even loaded

    def test_cached_answers_equal_direct_answers(self, backend, tmp_path):
        answers, _ = runner.generate_cached(backend.name, backend.spec(), PROMPTS, str(tmp_path / "cache"))
        assert answers == backend.generator().generate(PROMPTS)

    def test_repeated_prompts_are_generated_once(self, backend, tmp_path, monkeypatch):
        counts = count_backend(monkeypatch)
        prompts = PROMPTS + PROMPTS[:2]
        answers, stats = runner.generate_cached(backend.name, backend.spec(), prompts, str(tmp_path / "cache"))
        assert counts["prompts"] == len(PROMPTS)
        assert answers[-2:] == answers[:2] and stats["misses"] == len(prompts)
