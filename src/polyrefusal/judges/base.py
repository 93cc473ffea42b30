"""The judge interface.

A judge labels (prompt, response) records. Its verdict for each record:
- ``label``: ``safe``, ``unsafe`` or ``unparsed`` (the judge's output could not be read; counted
  separately, never silently safe or silently an attack success);
- ``refused``: True / False, or None where the judge cannot tell;
- ``score``: a probability or rubric score where the judge has one, else None;
- ``categories``: hazard codes (Llama Guard taxonomy) where the judge gives them;
- ``raw``: the judge's raw output (for audit), or None.

Every judge is built from its options (``JUDGES.create(name, **options)``; the options come
from ``--judge-config``) and labels a batch of records at once. ``coverage(name, lang)`` says
whether a judge officially supports a language; figures resting on a judge outside its
coverage must be marked in the report.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TypedDict

from ..registry import Registry


LABELS = ("safe", "unsafe", "unparsed")


class Verdict(TypedDict, total=False):
    label: str
    refused: bool | None
    score: float | None
    categories: list[str]
    raw: str | None
    #: PolyGuard also judges the request: is it harmful, which categories.
    request_harmful: bool | None
    request_categories: list[str]


class Judge(ABC):
    name: str = "?"
    #: Languages the judge officially supports (None = no claim). Figures resting on a judge
    #: outside its coverage are marked in the report.
    languages: frozenset[str] | None = None

    def __init__(self, **options):
        self.options = options

    @abstractmethod
    def judge(self, records: list[dict]) -> list[Verdict]:
        """Records carry ``lang``, ``prompt``, ``response`` and ``harmful`` (default True).
        One verdict per record, in order."""

    def close(self) -> None:
        """Release what the judge holds (a guard's model)."""

    @classmethod
    def covers(cls, lang: str | None, options: dict | None = None) -> bool:
        """Official support for ``lang`` (a ``languages`` option overrides the class claim;
        a judge that makes no claim covers every language)."""
        langs = (options or {}).get("languages") or cls.languages
        if langs is None:
            return True
        return lang is not None and lang in set(langs)


JUDGES: Registry[Judge] = Registry("judge")
JUDGES.lazy("refusal_lexicon", "polyrefusal.judges.refusal_lexicon")
JUDGES.lazy("llama_guard", "polyrefusal.judges.guards")
JUDGES.lazy("polyguard", "polyrefusal.judges.guards")
JUDGES.lazy("llm_judge", "polyrefusal.judges.llm_judge")


def coverage(judge_name: str, lang: str | None, judge_configs: dict | None = None) -> bool:
    """Does judge ``judge_name`` officially support language ``lang``? (Llama Guard 3: en fr de
    hi it pt es th; PolyGuard: 17 languages, none of sk sl lt lv; refusal_lexicon: the
    languages it has a lexicon file for; llm_judge: no claim unless configured.)"""
    cls = JUDGES.get(judge_name)
    return cls.covers(lang, (judge_configs or {}).get(judge_name))
