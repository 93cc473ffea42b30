"""Language identification of answers (py3langid, restricted to the study's languages so that
short answers are not assigned to unrelated languages)."""

from __future__ import annotations

import functools

from .. import ALL_LANGUAGES

LIBRARY = "py3langid"


@functools.lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(list(ALL_LANGUAGES))
    return ident


def identify(text: str) -> str | None:
    if not text or not text.strip():
        return None
    return _identifier().classify(text)[0]
