"""Quality checks on translations: language identification and back-translation chrF.

Neither check changes a translation: each writes flags (one JSONL row per suspicious field)
for a human to review, and the usage file counts them.
"""

from __future__ import annotations

import functools

from .. import ALL_LANGUAGES
from ..errors import UserError

#: The study's languages. Language identification is restricted to them because the failure
#: we look for is "left in English / came out in another study language"; the full 97-language
#: model mislabels short prompts as unrelated languages far more often.
STUDY_LANGUAGES = ALL_LANGUAGES


@functools.lru_cache(maxsize=8)
def _identifier(languages: tuple[str, ...]):
    from py3langid.langid import MODEL_FILE, LanguageIdentifier
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    try:
        identifier.set_languages(list(languages))
    except ValueError as exc:  # a code py3langid does not know
        raise UserError(f"language identification: {exc}", field="--langid-languages") from None
    return identifier


def _fields_of(record: dict, fields: tuple[str, ...]):
    """The translated fields of a record: those that carry a ``source_<field>``."""
    for field in fields:
        text = record.get(field)
        if isinstance(text, str) and text.strip() and f"source_{field}" in record:
            yield field, text


def langid_flags(records: list[dict], fields: tuple[str, ...], target: str,
                 languages: tuple[str, ...] = STUDY_LANGUAGES) -> list[dict]:
    """Flag every translated field whose identified language is not ``target``."""
    languages = tuple(sorted(set(languages) | {target}))
    identifier = _identifier(languages)
    flags = []
    for rec in records:
        for field, text in _fields_of(rec, fields):
            lang, prob = identifier.classify(text)
            if lang != target:
                flags.append({"id": rec["id"], "field": field, "check": "langid", "expected": target,
                              "detected": lang, "probability": round(float(prob), 4),
                              "text": text, "source_text": rec[f"source_{field}"]})
    return flags


def chrf_flags(records: list[dict], back_records: list[dict], fields: tuple[str, ...],
               threshold: float) -> list[dict]:
    """Flag fields whose back-translation scores under ``threshold`` chrF against the source.
    ``back_records[i]`` is the back-translation of ``records[i]`` (same fields)."""
    from sacrebleu.metrics import CHRF
    chrf = CHRF()
    flags = []
    for rec, back in zip(records, back_records, strict=True):
        for field, text in _fields_of(rec, fields):
            source_text = rec[f"source_{field}"]
            score = chrf.sentence_score(back[field], [source_text]).score
            if score < threshold:
                flags.append({"id": rec["id"], "field": field, "check": "chrf",
                              "chrf": round(score, 2), "threshold": threshold, "text": text,
                              "back_translation": back[field], "source_text": source_text})
    return flags
