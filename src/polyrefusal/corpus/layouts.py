"""The published corpus layouts and their column mappings.

Column mapping: ``corpus.layout`` names a ready mapping (``LAYOUTS``: ``refuseu`` for the
multilingual refusal dataset RefusEU as released, ``mijabench`` for the demographic benchmark
MiJaBench as its own scripts write it, ``custom`` = none) and ``corpus.columns`` maps further
columns ``{their_column: schema_field}``. A user entry refines the layout: it replaces the
layout's entry for the same field (and ``{column: null}`` drops a column). Columns named like
schema fields are taken as they are; any other column is dropped. ``corpus.defaults`` gives
constant values for fields a file lacks (e.g. ``{style: direct, harmful: true}``).

The published layouts, checked against their official sources:

- ``mijabench`` (github iagoalvesb/mijabench), in either of the two shapes its code writes:
  - the release (``create_mijabench.py`` over ``build/``, the code behind the Hugging Face
    dataset ``AKCIT/mijabench`` that its README links): ``build/build_seed.py`` writes
    ``seed_index, seed_text, language, group`` (``seed_index`` is ``<dataset_id>_<n>``, e.g.
    ``toxsyn_12``: the seed's position in the sampled seed table), and
    ``build/build_mijabench.py`` adds ``scenario_category, scenario, jb_strategy, jb_prompt``,
    ``jb_strategy`` being a strategy's ``name`` from ``configs/jailbreak_strategies.yaml``
    (``Persona Assignment``, ``Representation Shifting``, ``Chain-of-Thought``, ``Logical
    Rationalization``, the same in both languages);
  - the first scripts (src/01_data_prep.py then src/03_prompts.py): ``original_index, text,
    group, language, dataset_source, is_harmful, scenario_category, scenario, jb_strategy,
    jb_prompt``, with strategy ids ``persona_assign, new_language, chaining,
    false_equivalence``.
  The prompt is ``jb_prompt``; the hate seed it was written from (``seed_text``, or ``text`` in
  the first scripts) never becomes the prompt (it is dropped). The strategies and the group ids
  (ToxiGen's for English, ToxSyn-PT's for Portuguese) are mapped onto the seed's strategy
  families and 16 target groups (``MIJABENCH_STRATEGIES``, ``MIJABENCH_GROUPS``); one that maps
  to none is an error naming it. ``seed_index`` (or ``original_index`` and ``dataset_source``),
  ``scenario_category`` and ``scenario`` are kept in ``meta``. The record's ``source_id`` is
  ``<name>.<seed corpus>.<n>`` (``mijabench.toxsyn.12``): a seed of that corpus; the English
  and Portuguese prompts come from different seeds, so no key pairs them across languages.
- ``refuseu`` (huggingface.co/datasets/NASK-PIB/RefusEU, its dataset card): configurations
  ``lang_xx`` (splits ``train``, ``test``) whose rows carry ``id``, ``row_id``, ``category`` and
  ``chosen`` / ``rejected`` as chat message lists; the prompt is the first user turn, each
  answer the last assistant turn; and ``evaluation`` (split ``eval``; the stored copy of the card
  does not show its features: it is read in the same row shape, a plain ``prompt`` or
  ``question`` column also taking the prompt's place). The language comes from a
  language column, else the configuration (``lang_de``), else the id's suffix, else
  ``corpus.defaults``. ``id`` repeats across categories, so ``source_id`` is built as
  ``<name>.<category>.<id without its language suffix>`` (the same question in every language
  shares it). Category names that are Llama Guard 3's become S1..S14; others stay as given
  (``normalise_category``). ``style`` defaults to ``direct``. What ``export-dataset`` writes
  adds ``record_id`` (read as ``id``) and the study's own fields, so it reads back unchanged.
"""

from __future__ import annotations

import re
from collections import Counter

from .. import seed as seed_data
from ..errors import UserError
from .schema import (EXTRA_FIELDS, FIELDS, KNOWN_LANGS, SCHEMA, is_messages, message_turn, normalise_category,
                     normalise_group, normalise_lang, slug)

#: MiJaBench's jailbreak strategies (keys slugged) -> the seed's strategy families. The release
#: writes each strategy's `name` (configs/jailbreak_strategies.yaml, the same four names under
#: `english` and `portuguese`); the first scripts wrote ids (src/03_prompts.py, the keys of
#: `strategies_english` and `strategies_portuguese`), paired here by their own names for them
#: (the `base_text` of each). The paper's figures label them Persona, Rep. Shift, CoT and Logic.
MIJABENCH_STRATEGIES: dict[str, str] = {
    # the release: the strategy's name
    "persona_assignment": "persona_assignment",            # "Persona Assignment"
    "representation_shifting": "representation_shifting",  # "Representation Shifting"
    "chain_of_thought": "chain_of_thought",                # "Chain-of-Thought"
    "logical_rationalization": "logical_rationalization",  # "Logical Rationalization"
    # the first scripts: the strategy's id
    "persona_assign": "persona_assignment",          # "Persona Assignment"
    "new_language": "representation_shifting",       # "Language and Representation Shift"
    "chaining": "chain_of_thought",                  # "Orchestrated Chain Reasoning"
    "false_equivalence": "logical_rationalization",  # "False Equivalence and Logical Rationalization"
}
#: MiJaBench's `group` values (keys slugged) -> the seed's 16 target groups. English rows keep
#: ToxiGen's ids (toxigen/toxigen-data, configuration `train`: the 13 groups printed in
#: microsoft/TOXIGEN notebooks/load_datasets.ipynb; `immigrant` from its prompts/ files).
#: Portuguese rows keep ToxSyn-PT's groups, named in Portuguese as in MiJaBench's own
#: src/03_prompts.py (judeus, pessoas negras, povos indígenas, pessoas com deficiência,
#: mulheres, muçulmanos) and the paper's Table 2 (Black, Jewish, Muslim, Native Peoples,
#: Immigrants, Women, LGBTQIA+, Disability, Elderly). A seed id or English name also maps.
MIJABENCH_GROUPS: dict[str, str] = {
    # ToxiGen
    "black": "black", "asian": "asian", "native_american": "native", "muslim": "muslim",
    "latino": "latino", "jewish": "jewish", "chinese": "chinese", "lgbtq": "lgbtqia",
    "mental_dis": "mental_disability", "physical_dis": "physical_disability", "mexican": "mexican",
    "women": "women", "middle_east": "middle_eastern", "immigrant": "immigrants",
    # ToxSyn-PT (Portuguese)
    "pessoas_negras": "black", "negros": "black", "negras": "black", "judeus": "jewish",
    "muculmanos": "muslim", "povos_indigenas": "native", "indigenas": "native",
    "imigrantes": "immigrants", "mulheres": "women", "lgbtqia": "lgbtqia", "pessoas_lgbtqia": "lgbtqia",
    "lgbt": "lgbtqia", "pessoas_com_deficiencia": "disability", "deficientes": "disability",
    "idosos": "elderly", "pessoas_idosas": "elderly",
}

#: Columns the ``refuseu`` and ``mijabench`` layouts compute from several of theirs (``PREPARE``,
#: below); named so that a message says where a value came from.
PROMPT_TURN = "prompt (first user turn)"
LANG_FROM = "language (column, configuration or id suffix)"
SOURCE_ID_FROM = "source_id (built)"

#: Published layouts: their column -> schema field (None: not used as a field), defaults for
#: fields they lack, and optionally ``prepare`` (computed columns), ``values`` (field -> (table,
#: seed axis, noun): a value must map through the table or be a seed id), ``meta`` (columns kept
#: in the ``meta`` field), ``prefer`` (field -> their columns that, when present and the user maps
#: none to it, feed it instead of the layout's entry) and ``forbid`` (mappings that would be wrong).
LAYOUTS: dict[str, dict] = {
    "custom": {"columns": {}, "defaults": {}},
    "refuseu": {
        "columns": {PROMPT_TURN: "text", "chosen": "chosen", "rejected": "rejected", LANG_FROM: "lang",
                    "category": "category", SOURCE_ID_FROM: "source_id", "record_id": "id",
                    # read by `prepare`, not fields themselves
                    "id": None, "row_id": None, "prompt": None, "question": None, "language": None,
                    "lang": None},
        "defaults": {"style": "direct", "harmful": True},
        "prepare": "refuseu",
        # A plain column present in the data replaces the computed one (and names itself in messages).
        "prefer": {"text": ("prompt", "question"), "lang": ("language", "lang"), "source_id": ("source_id",)},
    },
    "mijabench": {
        "columns": {"jb_prompt": "text", "jb_strategy": "style", "group": "target_group",
                    "language": "lang", "is_harmful": "harmful", SOURCE_ID_FROM: "source_id",
                    # the hate seed (the release's seed_text, the first scripts' text): never the prompt
                    "seed_text": None, "text": None},
        # Hate speech against a group is Llama Guard 3's S10.
        "defaults": {"category": "S10", "harmful": True},
        "prepare": "mijabench",
        "values": {"style": (MIJABENCH_STRATEGIES, "strategies", "MiJaBench strategy"),
                   "target_group": (MIJABENCH_GROUPS, "groups", "MiJaBench group")},
        "meta": ("seed_index", "original_index", "dataset_source", "scenario_category", "scenario"),
        "forbid": {(seed, "text"): f"MiJaBench's `{seed}` is the hate seed a prompt was written from, "
                                   "not a prompt (the prompt is `jb_prompt`)" for seed in ("seed_text", "text")},
    },
}

def resolve_mapping(layout: str | None, columns: dict | None, defaults: dict | None,
                    params_file: str | None = None) -> tuple[dict[str, str], dict]:
    """(their column -> schema field, field defaults) for a layout refined by the user's
    columns and defaults. A user entry replaces the layout's entry for the same field; two
    user columns onto one field are a conflict."""
    name = layout or "custom"
    if name not in LAYOUTS:
        raise UserError(f"unknown layout {name!r} (known: {', '.join(LAYOUTS)})", file=params_file,
                        field="corpus.layout")
    spec = LAYOUTS[name]
    mapping = dict(spec["columns"])
    user = dict(columns or {})
    targets = Counter(f for f in user.values() if f)
    clash = [f for f, n in targets.items() if n > 1]
    if clash:
        cols = [c for c, f in user.items() if f in clash]
        raise UserError(f"several columns ({', '.join(cols)}) are mapped to {', '.join(clash)}",
                        file=params_file, field="corpus.columns")
    for col, field in user.items():
        if field not in SCHEMA and field not in EXTRA_FIELDS and field is not None:
            raise UserError(f"column {col!r} is mapped to {field!r}, which is not a corpus field "
                            f"({', '.join((*FIELDS, *EXTRA_FIELDS))})", file=params_file,
                            field=f"corpus.columns.{col}")
        why = spec.get("forbid", {}).get((col, field))
        if why:
            raise UserError(f"column {col!r} cannot be mapped to {field!r} in layout {name!r}: {why}",
                            file=params_file, field=f"corpus.columns.{col}")
        if field:
            # The user's column for this field replaces the layout's.
            for other in [c for c, f in mapping.items() if f == field and c != col]:
                mapping[other] = None
        mapping[col] = field
    merged_defaults = dict(spec["defaults"])
    for field, value in (defaults or {}).items():
        if field not in SCHEMA or field in ("id", "source_id", "text"):
            raise UserError(f"no default possible for {field!r} (fields with defaults: "
                            f"{', '.join(f for f in FIELDS if f not in ('id', 'source_id', 'text'))})",
                            file=params_file, field=f"corpus.defaults.{field}")
        merged_defaults[field] = value
    return mapping, merged_defaults


# --- the layouts' computed columns -----------------------------------------------------------------

_CONFIG_LANG = re.compile(r"lang[_\-](?P<lang>[A-Za-z]{2,3})")
_ID_LANG_SUFFIX = re.compile(r"(?P<stem>.+?)[_\-.](?P<lang>[A-Za-z]{2})")


def _id_language(value) -> tuple[str | None, str | None]:
    """RefusEU's ``id`` -> (id without its language suffix, the suffix's language code)."""
    if value is None:
        return None, None
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value).strip()
    m = _ID_LANG_SUFFIX.fullmatch(text)
    if m and normalise_lang(m.group("lang")) in KNOWN_LANGS:
        return m.group("stem"), normalise_lang(m.group("lang"))
    return text or None, None


def _prepare_refuseu(raw: dict, part: dict[str, str], prefix: str) -> dict:
    """RefusEU's computed columns for one row: the prompt (first user turn of ``chosen``), the
    language (configuration ``lang_xx``, else the id's suffix) and the built source id."""
    prompt = None
    for col in ("chosen", "rejected", "messages"):
        if prompt is None and is_messages(raw.get(col)):
            prompt = message_turn(raw[col], "user", last=False)
    stem, lang = _id_language(raw.get("id"))
    if part.get("config"):
        m = _CONFIG_LANG.fullmatch(part["config"])
        lang = m.group("lang") if m else lang
    source_id = None
    if stem is not None or raw.get("row_id") is not None:
        category = raw.get("category")
        cat = slug(normalise_category(category)) if isinstance(category, str) and category.strip() else "nocategory"
        source_id = f"{prefix}.{cat}.{stem if stem is not None else raw['row_id']}"
    return {PROMPT_TURN: prompt, LANG_FROM: lang, SOURCE_ID_FROM: source_id}


_SEED_INDEX = re.compile(r"(?P<source>.+)_(?P<index>\d+)")


def _prepare_mijabench(raw: dict, part: dict[str, str], prefix: str) -> dict:
    """MiJaBench's source id for one row: the seed corpus and the seed's number in it (the
    release's ``seed_index`` ``toxsyn_12``, or the first scripts' ``dataset_source`` and
    ``original_index``)."""
    index, source = raw.get("original_index"), raw.get("dataset_source")
    if isinstance(index, float) and index.is_integer():
        index = int(index)
    seed_index = raw.get("seed_index")
    if isinstance(seed_index, str) and seed_index.strip():
        m = _SEED_INDEX.fullmatch(seed_index.strip())
        source, index = (m.group("source"), int(m.group("index"))) if m else ("seed", seed_index.strip())
    source_id = None
    if index is not None and source is not None:
        source_id = f"{prefix}.{slug(str(source)) or 'source'}.{index}"
    return {SOURCE_ID_FROM: source_id}


PREPARE = {"refuseu": _prepare_refuseu, "mijabench": _prepare_mijabench}


def map_value(value, table: dict[str, str], axis: str, noun: str):
    """A published id through its mapping table, or a seed id / English name on ``axis``;
    anything else is an error naming the value (never a silent new group or strategy)."""
    if not isinstance(value, str):
        return value  # None stays missing; another type is reported by validation
    if not value.strip():
        return None
    key = slug(value)
    if key in table:
        return table[key]
    known = seed_data.seed_axes()[axis]
    own = normalise_group(value) if axis == "groups" else key
    if own in known:
        return own
    raise ValueError(f"unknown {noun} {value.strip()!r}: it maps to none of the seed's {axis} "
                     f"(known: {', '.join(sorted(table))}; or a seed id: {', '.join(known)})")
