"""``memory``: the built-in translation memory (the seed set's parallel texts), no network.

It translates exactly the texts the seed set has in both languages; anything else is an error
that tells the user to configure a real translator for that language.
"""

from __future__ import annotations

from .. import seed
from ..errors import UserError
from ..io import stable_hash
from .base import TRANSLATORS, MissingTranslation, Translator


@TRANSLATORS.register("memory")
class BuiltinMemory(Translator):
    known_options = frozenset()
    # Nothing to send anywhere: one "batch" can be as large as we like.
    max_batch_texts = 10_000
    max_batch_bytes = 1 << 40

    def __init__(self, **options):
        super().__init__(**options)
        self._digests: dict[tuple[str, str], str] = {}

    def _table(self, source: str, target: str) -> dict[str, str]:
        # A language without seed data has an empty table: each text is then "missing" and
        # the error names the record and field. (Looked up through the module so tests can
        # substitute a table.)
        try:
            return seed.parallel_table(source, target)
        except UserError:
            if {source, target} <= set(seed.available_languages()):
                raise  # the seed data exists but is broken: say so
            return {}

    def fingerprint(self, source: str, target: str) -> dict:
        # The seed data is the "model": editing a seed translation must not be masked by a
        # stale memory entry, so its content is part of the key.
        if (source, target) not in self._digests:
            self._digests[source, target] = stable_hash(sorted(self._table(source, target).items()))
        return {**super().fingerprint(source, target), "seed": self._digests[source, target]}

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        table = self._table(source, target)
        out = []
        for i, text in enumerate(texts):
            if text not in table:
                raise MissingTranslation(
                    i, f"text not in the built-in translation memory ({source}->{target}) and no "
                       f"translator is configured for language {target!r} (set translate.backend "
                       f"to deepl or transformers)")
            out.append(table[text])
        return out


@TRANSLATORS.register("none")
class NoTranslation(Translator):
    """``none``: no machine translation. For a corpus that brings every language itself
    (MiJaBench's English and Portuguese prompts are written from separate seed corpora, not
    translated from each other): each language keeps only the rows the corpus has in it."""

    known_options = frozenset()
    translates = False

    def translate(self, texts, source, target):
        raise MissingTranslation(0, "translate.backend is none: this language has no row of its own")
