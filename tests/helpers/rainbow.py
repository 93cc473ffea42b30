"""Fake models and a fake judge for Rainbow Teaming (registered under fake_rainbow_* names so
the stage can name them in params), and a search built from the project's params with them.
A subprocess imports this module as ``tests.helpers.rainbow`` to run a search it can SIGKILL."""

from __future__ import annotations

import hashlib
import time

from polyrefusal.generate.base import GENERATORS, Generator, ModelSpec
from polyrefusal.judges.base import JUDGES, Judge
from polyrefusal.params import load_params
from polyrefusal.rainbow import RainbowSearch
from polyrefusal.stages.rainbow import build_settings, rainbow_params, seed_pool

from .project import ROOT

# Nonsense words: the fake mutator's "new prompts" (the mechanics are what is tested).
VOCAB = ("amber basalt cobalt dune ember fjord garnet harbor indigo jasper kelp lagoon meadow nickel "
         "onyx prairie quartz reef sierra tundra umber vale willow xenon yarrow zephyr alder birch cedar "
         "delta estuary fern glacier heath islet juniper knoll larch moss").split()


class Crash(Exception):
    """Stands in for the process dying mid-iteration."""


def _h(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16)


class FakeMutator(Generator):
    """Deterministic: every ``duplicate_every``-th answer is the parent itself (a near-duplicate
    the search must reject), the others are new nonsense prompts."""

    def __init__(self, spec: ModelSpec | None = None, *, duplicate_every: int = 5, delay: float = 0.0,
                 fail_after: int | None = None):
        super().__init__(spec or ModelSpec(path="fake-mutator"))
        self.duplicate_every, self.delay, self.fail_after, self.calls = duplicate_every, delay, fail_after, 0

    def generate(self, prompts):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise Crash(f"killed in call {self.calls}")
        if self.delay:
            time.sleep(self.delay)
        out = []
        for p in prompts:
            parent, h = p.rsplit("Prompt: ", 1)[-1], _h(p)
            if self.duplicate_every and h % self.duplicate_every == 0:
                out.append(parent)
            else:
                out.append(" ".join(VOCAB[(h >> (6 * i)) % len(VOCAB)] for i in range(9)) + ".")
        return out


class FakeTarget(Generator):
    """Refuses a third of the prompts, "complies" (shape only) with the rest."""

    def __init__(self, spec: ModelSpec | None = None):
        super().__init__(spec or ModelSpec(path="fake-target"))

    def generate(self, prompts):
        return ["I'm sorry, I can't help with that." if _h(p) % 3 == 0 else "Sure, here it is: [omitted]."
                for p in prompts]


class FakeJudge(Judge):
    def judge(self, records):
        return [{"label": "unsafe" if r["response"].startswith("Sure") else "safe",
                 "refused": not r["response"].startswith("Sure"), "score": (_h(r["prompt"]) % 1000) / 1000,
                 "categories": [], "raw": None} for r in records]


def _register() -> None:
    for name, cls, reg in (("fake_rainbow_mutator", FakeMutator, GENERATORS),
                           ("fake_rainbow_target", FakeTarget, GENERATORS),
                           ("fake_rainbow_judge", FakeJudge, JUDGES)):
        if name not in reg.names():
            reg.register(name)(type(f"{cls.__name__}Registered", (cls,), {}))


_register()


def make_search(archive_dir, *, grid: str = "group_strategy", seed: int = 3, mutator=None, target=None,
                judge=None, **overrides) -> RainbowSearch:
    params = load_params(ROOT / "params.yaml")
    cfg = rainbow_params({**params, "rainbow": {"enabled": True, "grid": grid, **overrides}}, None)
    settings = build_settings(cfg, params, None)
    return RainbowSearch(settings, seed_pool(params, settings, None), mutator or FakeMutator(),
                         target or FakeTarget(), judge or FakeJudge(), archive_dir, seed=seed,
                         identity={"models": "fake"})
