"""The judge interface.

A judge labels (prompt, response) records. Its verdict for each record:
- ``label``: ``safe``, ``unsafe`` or ``unparsed`` (the judge's output could not be read; counted
  separately, never silently safe or silently an attack success);
- ``refused``: True / False, or None where the judge cannot tell;
- ``score``: a probability or rubric score where the judge has one, else None;
- ``categories``: hazard codes (Llama Guard taxonomy) where the judge gives them;
- ``raw``: the judge's raw output (for audit), or None.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TypedDict

from ..registry import Registry


class Verdict(TypedDict, total=False):
    label: str
    refused: bool | None
    score: float | None
    categories: list[str]
    raw: str | None


class Judge(ABC):
    name: str = "?"
    #: Languages the judge officially supports (None = no claim). Figures resting on a judge
    #: outside its coverage are marked in the report.
    languages: frozenset[str] | None = None

    def __init__(self, **options):
        self.options = options

    @abstractmethod
    def judge(self, records: list[dict]) -> list[Verdict]:
        """Records carry ``lang``, ``prompt``, ``response`` and ``harmful`` (default True)."""


JUDGES: Registry[Judge] = Registry("judge")
JUDGES.lazy("refusal_lexicon", "polyrefusal.judges.refusal_lexicon")
JUDGES.lazy("llama_guard", "polyrefusal.judges.guards")
JUDGES.lazy("polyguard", "polyrefusal.judges.guards")
JUDGES.lazy("llm_judge", "polyrefusal.judges.llm_judge")
