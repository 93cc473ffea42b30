"""The prompt corpus, one concern per module:

- ``schema``: the fields (``SCHEMA``, ``FIELDS``), validation (``validate``, ``CorpusError``) and
  the normalisation of user values (languages, hazard codes, groups, chat message lists);
- ``readers``: a source (a file, a ``save_to_disk`` directory, the hub's file layout, a hub id)
  read into rows, each file format through its one reader in ``polyrefusal.io``;
- ``layouts``: the published layouts (``custom``, ``refuseu``, ``mijabench``) and their id
  mappings;
- ``build``: the corpus the ``corpus`` stage writes (the built-in seed set and its selection, an
  import, ``corpus.include`` merged in).

The public names of all four are re-exported here (``from polyrefusal.corpus import X``).
"""

from ..seed import SELECTION_AXES, seed_axes
from .build import (CORPUS_KEYS, builtin_records, check_corpus_params, corpus_from_params, import_corpus,
                    load_corpus, merge, read_corpus_file, resolve_selection, select_builtin,
                    write_corpus)
from .layouts import (LANG_FROM, LAYOUTS, MIJABENCH_GROUPS, MIJABENCH_STRATEGIES, PREPARE, PROMPT_TURN,
                      SOURCE_ID_FROM, map_value, resolve_mapping)
from .readers import FILE_SUFFIXES, Rows, card_configs, is_saved_dataset, read_any, read_rows
from .schema import (EXTRA_FIELDS, FIELDS, HAZARD_CATEGORIES, KNOWN_LANGS, MAX_TEXT_CHARS, ORIGIN_KINDS, SCHEMA,
                     CorpusError, arrow_schema, axis_of, is_messages, message_turn, meta_json, normalise_category,
                     normalise_group, normalise_lang, normalise_value, record_problems, slug, validate)

__all__ = [
    "SELECTION_AXES", "seed_axes",
    "CORPUS_KEYS", "builtin_records", "check_corpus_params", "corpus_from_params", "import_corpus",
    "load_corpus", "merge", "read_corpus_file", "resolve_selection", "select_builtin",
    "write_corpus",
    "LANG_FROM", "LAYOUTS", "MIJABENCH_GROUPS", "MIJABENCH_STRATEGIES", "PREPARE", "PROMPT_TURN",
    "SOURCE_ID_FROM", "map_value", "resolve_mapping",
    "FILE_SUFFIXES", "Rows", "card_configs", "is_saved_dataset", "read_any", "read_rows",
    "EXTRA_FIELDS", "FIELDS", "HAZARD_CATEGORIES", "KNOWN_LANGS", "MAX_TEXT_CHARS", "ORIGIN_KINDS", "SCHEMA",
    "CorpusError", "arrow_schema", "axis_of", "is_messages", "message_turn", "meta_json", "normalise_category",
    "normalise_group", "normalise_lang", "normalise_value", "record_problems", "slug", "validate",
]
