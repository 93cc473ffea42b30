"""The study's rules for which data is trained on and tested: the split and the kept pairs.

Declared here once; the `pairs` and `split` stages apply them, params choose them
(``pairs.keep``, ``pairs.unsafe_prompts_only``, ``split.test_per_category``).

Split: by (harm category, attack style) group, made once on the source corpus and applied to
every language, so a prompt and all its translations land on the same side and no group is on
both sides; within each category a seeded shuffle picks the test styles, so every category is
tested (``assign_groups``).

Pair rules (``pairs.keep``):

- ``refusal``: the judges' combined decision (``judge.rule``) says the chosen answer is a
  refusal and the rejected one is not. Right for refusal judges (the lexicon, a rubric judge).
- ``guards``: RefusEU's rule for harm classifiers (Krasnodębska et al. 2026, dataset card
  huggingface.co/datasets/NASK-PIB/RefusEU): every judge of the panel finds the chosen answer
  safe, and at least one finds the rejected answer unsafe. The adjudicator, which runs only
  where the panel disagrees, is not part of the panel: a pair the panel does not agree is safe
  is never kept.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict

PAIR_RULES = ("refusal", "guards")


def group_key(record: dict) -> str:
    return f"{record['category']}|{record['style']}"


def assign_groups(records: list[dict], test_fraction: float, seed: int) -> dict[str, str]:
    styles_by_category: dict[str, set[str]] = defaultdict(set)
    for r in records:
        if r["harmful"]:
            styles_by_category[r["category"]].add(r["style"])
    rng = random.Random(seed)
    sides: dict[str, str] = {}
    for category in sorted(styles_by_category):
        styles = sorted(styles_by_category[category])
        rng.shuffle(styles)
        n_test = min(len(styles) - 1, max(1, math.ceil(test_fraction * len(styles)))) if len(styles) > 1 else 0
        for i, style in enumerate(styles):
            sides[f"{category}|{style}"] = "test" if i < n_test else "train"
    return sides


def _panel(verdicts) -> list[dict]:
    if not isinstance(verdicts, dict):
        return []
    return [v for v in verdicts.values() if isinstance(v, dict) and not v.get("adjudicator")]


def keeps_pair(record: dict, rule: str = "refusal") -> bool:
    """Is this judged harmful prompt's (chosen, rejected) pair kept for training?"""
    if rule == "refusal":
        return record.get("chosen_refused") is True and record.get("rejected_refused") is False
    if rule == "guards":
        chosen, rejected = _panel(record.get("chosen_verdicts")), _panel(record.get("rejected_verdicts"))
        return bool(chosen) and bool(rejected) and all(v.get("label") == "safe" for v in chosen) \
            and any(v.get("label") == "unsafe" for v in rejected)
    raise ValueError(f"unknown pair rule {rule!r} (use {', '.join(PAIR_RULES)})")


def keeps_prompt(record: dict, source: str | None = None) -> bool:
    """Did every judge of the panel find the prompt itself unsafe (RefusEU keeps only such
    prompts)? Needs the judge stage to have labelled the field ``prompt``."""
    from .errors import UserError

    panel = _panel(record.get("prompt_verdicts"))
    if not panel:
        raise UserError("no verdicts on the prompt itself: with pairs.unsafe_prompts_only the judge stage "
                        "labels the field `prompt` (judges that can classify prompts: llama_guard, polyguard)",
                        file=source, field="prompt_verdicts")
    return all(v.get("label") == "unsafe" for v in panel)


def cap_test_per_category(sides: dict[str, str], records: list[dict], per_category: int | None,
                          seed: int) -> dict[str, str]:
    """Keep at most ``per_category`` harmful test prompts per hazard category (a seeded sample,
    the same prompts in every language: sampled by source id); the others leave the split
    (``unused``: neither trained on nor tested). RefusEU tests 100 prompts per category and
    language. Benign controls are not capped."""
    if per_category is None:
        return dict(sides)
    by_category: dict[str, list[str]] = defaultdict(list)
    for r in records:
        sid = r["source_id"]
        if r["harmful"] and sides.get(sid) == "test" and sid not in by_category[r["category"]]:
            by_category[r["category"]].append(sid)
    out = dict(sides)
    rng = random.Random(seed)
    for category in sorted(by_category):
        ids = sorted(by_category[category])
        if len(ids) > per_category:
            for sid in set(ids) - set(rng.sample(ids, per_category)):
                out[sid] = "unused"
    return out
