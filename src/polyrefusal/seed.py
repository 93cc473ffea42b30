"""The built-in seed set: parallel templates in 12 languages, composed into prompts.

``data/seed/<lang>.yaml`` hold the same keys in every language. Composing a template with the
same keys in English and in a target language yields a parallel pair; that is the built-in
translation memory (``parallel_table``) and the English side is the source corpus
(``source_records``).
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import yaml

from .errors import UserError

SEED_PACKAGE = "polyrefusal.data.seed"

#: The selection axes of the seed set (params ``corpus.<axis>``) -> (seed-file key whose entries
#: it selects, singular noun for messages).
SELECTION_AXES: dict[str, tuple[str, str]] = {
    "categories": ("goals", "hazard category"),
    "styles": ("styles", "attack style"),
    "strategies": ("strategies", "jailbreak strategy"),
    "groups": ("groups", "target group"),
}


def seed_dir() -> Path:
    return Path(str(resources.files(SEED_PACKAGE)))


def available_languages() -> list[str]:
    return sorted(p.stem for p in seed_dir().glob("*.yaml"))


@functools.lru_cache(maxsize=None)
def load_seed(lang: str) -> dict:
    path = seed_dir() / f"{lang}.yaml"
    if not path.exists():
        raise UserError(f"no built-in seed data for language {lang!r} "
                        f"(have: {', '.join(available_languages())})", file=str(path))
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def seed_axes(lang: str = "en") -> dict[str, list[str]]:
    """The keys the seed set offers on each selection axis (same in every language)."""
    seed = load_seed(lang)
    return {axis: list(seed[key]) for axis, (key, _) in SELECTION_AXES.items()}


def _compose(seed: dict) -> list[dict]:
    """Every prompt of the seed set, in a fixed order, with its answers (no ids yet)."""
    out: list[dict] = []
    refusals, compliance = seed["refusals"], seed["compliance"]
    k = 0
    for style, frame in seed["styles"].items():
        for category, goals in seed["goals"].items():
            for i, goal in enumerate(goals):
                out.append(dict(key=f"harm.{category}.{style}.{i}", category=category, style=style,
                                target_group=None, harmful=True,
                                text=frame.format(goal=goal),
                                chosen=refusals[k % len(refusals)],
                                rejected=compliance[k % len(compliance)]))
                k += 1
    for strategy, frame in seed["strategies"].items():
        for gi, group_goal in enumerate(seed["group_goals"]):
            for group, group_name in seed["groups"].items():
                goal = group_goal.format(group=group_name)
                out.append(dict(key=f"group.{strategy}.{gi}.{group}", category="S10", style=strategy,
                                target_group=group, harmful=True,
                                text=frame.format(goal=goal),
                                chosen=refusals[k % len(refusals)],
                                rejected=compliance[k % len(compliance)]))
                k += 1
    helpful = seed["benign_answers"]
    for i, text in enumerate(seed["benign"]):
        # For a benign prompt the helpful answer is preferred and a refusal is the failure.
        out.append(dict(key=f"benign.{i}", category="benign", style="benign", target_group=None,
                        harmful=False, text=text, chosen=helpful[i % len(helpful)],
                        rejected=refusals[i % len(refusals)]))
    return out


def source_records(lang: str = "en") -> list[dict]:
    """The seed corpus in the source language, in the corpus schema."""
    records = []
    for r in _compose(load_seed(lang)):
        key = r.pop("key")
        records.append(dict(id=f"{key}.{lang}", source_id=key, lang=lang, origin="builtin", **r))
    return records


@functools.lru_cache(maxsize=None)
def parallel_table(source: str, target: str) -> dict[str, str]:
    """Source-language string -> target-language string for every prompt and answer."""
    src, tgt = _compose(load_seed(source)), _compose(load_seed(target))
    table: dict[str, str] = {}
    for a, b in zip(src, tgt, strict=True):
        for field in ("text", "chosen", "rejected"):
            table.setdefault(a[field], b[field])
    return table
