"""The judge interface.

A judge labels (prompt, response) records: by default the *answer* (is the response unsafe?);
a record with ``target: "prompt"`` (and ``response: None``) asks about the *prompt* itself (is
the request harmful? RefusEU keeps a generated prompt only where both guards find it unsafe).
A judge declares what it can label in ``targets``; ``unsupported(target, options)`` says why it
cannot (None when it can), so the ensemble refuses a plan before any model is loaded. Records
without ``target`` are answers, as before. Its verdict for each record:
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

from ..errors import UserError
from ..registry import Registry


LABELS = ("safe", "unsafe", "unparsed")
#: What a record asks a judge to label: the answer (default) or the prompt alone.
TARGETS = ("response", "prompt")


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
    #: What the judge can label (see ``TARGETS``): answers only, unless a judge says otherwise.
    targets: frozenset[str] = frozenset({"response"})

    #: The option names the judge takes (None: it declares none and takes any). The constructor
    #: refuses any other, and params validation names them before anything runs.
    known_options: frozenset[str] | None = None
    #: Known options that code passes (tests inject a generator), never a params file.
    internal_options: frozenset[str] = frozenset()

    def __init__(self, **options):
        known = self.known_options
        unknown = sorted(set(options) - known) if known is not None else []
        if unknown:
            raise UserError(f"unknown option(s) for judge {self.name}: {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(known - self.internal_options))})", field=self.name)
        self.options = options

    @abstractmethod
    def judge(self, records: list[dict]) -> list[Verdict]:
        """Records carry ``lang``, ``prompt``, ``response`` and ``harmful`` (default True),
        and optionally ``target`` (``response`` by default; ``prompt``: label the prompt, the
        response is None). One verdict per record, in order."""

    @classmethod
    def unsupported(cls, target: str, options: dict | None = None) -> str | None:
        """Why the judge (built with ``options``) cannot label ``target``, or None if it can."""
        if target not in TARGETS:
            return f"unknown target {target!r} (one of {', '.join(TARGETS)})"
        if target not in cls.targets:
            return f"{cls.name} labels answers, not prompts"
        return None

    def check_targets(self, records: list[dict]) -> None:
        """Refuse records asking for a target this judge cannot label (one UserError, before
        the model is asked anything)."""
        for target in dict.fromkeys(target_of(r) for r in records):
            reason = self.unsupported(target, self.options)
            if reason:
                raise UserError(f"judge {self.name} cannot label the {target}: {reason}", field="target")

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


def target_of(record: dict) -> str:
    """What ``record`` asks to be labelled: its ``target``, ``response`` when absent."""
    target = record.get("target") or "response"
    if target not in TARGETS:
        raise UserError(f"unknown target {target!r} (one of {', '.join(TARGETS)})", field="target")
    return target


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
