"""The prompt corpus: schema, validation, selection of the built-in seed set, loading, merging.

One record per prompt (the corpus schema, ``SCHEMA``)::

    id            unique id of this record (``<source_id>.<lang>`` for the built-in set)
    source_id     id of the prompt across languages (a prompt and its translations share it)
    lang          ISO 639-1 code of ``text``
    text          the prompt
    category      Llama Guard 3 hazard code S1..S14, or a scenario category ("benign", ...)
    style         attack style (harm axis) or jailbreak strategy family (demographic axis)
    target_group  the demographic group the prompt targets, or null
    origin        "builtin" | "generated" | "file:<name>" | "dataset:<name>" | "hub:<id>"
    harmful       true; false for the benign control prompts
    chosen        optional: the preferred answer (a refusal; the helpful answer when benign)
    rejected      optional: the dispreferred answer

plus one optional field outside ``SCHEMA`` (``EXTRA_FIELDS``), present only where a source gives it:

    meta          a JSON object as a string: what a published dataset says about the prompt
                  beyond the schema (MiJaBench: original_index, dataset_source, scenario_category,
                  scenario). Kept out of ``FIELDS`` so that a corpus without it (the built-in set)
                  is written byte for byte as before; every stage passes it through unread.

Validation reports *every* violation with file, line/row and field, and raises before anything
is written (``CorpusError``: the message names the first violation and counts the others; the
full list is in ``.problems``).

Sources (``corpus.source`` in params): ``builtin`` (the seed set of ``seed.py``, restricted by
``corpus.categories/styles/strategies/groups``), or anything ``importers.import_corpus`` reads
(JSONL, CSV, Parquet, a ``datasets`` directory saved with ``save_to_disk``, a hub id).
``corpus.include`` lists further files already in the corpus schema (e.g. the ``rainbow``
stage's generated prompts) that are merged in; ids must stay unique across all of them.

Imported corpora may hold several languages. Rows whose ``lang`` is not the source language
are kept as *pre-translated* rows (same ``source_id`` as their source-language row where the
import provides one). The translate stage for target T should translate only the rows with
``lang == source_language``, pass rows with ``lang == T`` through unchanged (they replace the
machine translation of the same ``source_id``), and skip rows of any other language.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

from . import seed as seed_data
from .errors import UserError
from .io import only_invisible

#: field -> (required, allowed types)
SCHEMA: dict[str, tuple[bool, tuple[type, ...]]] = {
    "id": (True, (str,)),
    "source_id": (True, (str,)),
    "lang": (True, (str,)),
    "text": (True, (str,)),
    "category": (True, (str,)),
    "style": (True, (str,)),
    "target_group": (False, (str, type(None))),
    "origin": (True, (str,)),
    "harmful": (True, (bool,)),
    "chosen": (False, (str, type(None))),
    "rejected": (False, (str, type(None))),
}
FIELDS = tuple(SCHEMA)
#: Optional fields that are not columns of every corpus: field -> allowed types.
EXTRA_FIELDS: dict[str, tuple[type, ...]] = {"meta": (str, type(None))}
MAX_TEXT_CHARS = 20_000
KNOWN_LANGS = {"en", "de", "it", "fr", "es", "pt", "pl", "cs", "sk", "sl", "lt", "lv", "bg", "da", "el",
               "et", "fi", "ga", "hr", "hu", "mt", "nl", "ro", "sv", "hi", "th", "ru", "uk", "tr", "ar",
               "zh", "ja", "ko"}

#: Llama Guard 3 hazard taxonomy.
HAZARD_CATEGORIES: dict[str, str] = {
    "S1": "Violent Crimes", "S2": "Non-Violent Crimes", "S3": "Sex-Related Crimes",
    "S4": "Child Sexual Exploitation", "S5": "Defamation", "S6": "Specialized Advice",
    "S7": "Privacy", "S8": "Intellectual Property", "S9": "Indiscriminate Weapons", "S10": "Hate",
    "S11": "Suicide & Self-Harm", "S12": "Sexual Content", "S13": "Elections",
    "S14": "Code Interpreter Abuse",
}
_HAZARD_CODE = re.compile(r"S\d+")
ORIGIN_KINDS = ("file", "dataset", "hub")
_ORIGIN = re.compile(r"builtin|generated|(?:%s):.+" % "|".join(ORIGIN_KINDS), re.S)

#: params key -> (seed-file key whose entries it selects, singular noun for messages)
SELECTION_AXES: dict[str, tuple[str, str]] = {
    "categories": ("goals", "hazard category"),
    "styles": ("styles", "attack style"),
    "strategies": ("strategies", "jailbreak strategy"),
    "groups": ("groups", "target group"),
}
#: Keys of the params `corpus:` block.
CORPUS_KEYS = frozenset({"source", "columns", "layout", "defaults", "include", "split", "subset",
                         "revision", *SELECTION_AXES})


class CorpusError(UserError):
    """Several violations at once; the message names the first and counts the others."""

    def __init__(self, problems: list[UserError], file: str):
        self.problems = problems
        head = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(head.message + more, file=head.file or file, line=head.line, field=head.field)


# --- validation ------------------------------------------------------------------------------

def _label(field: str, labels: dict[str, str] | None) -> str:
    return (labels or {}).get(field, field)


def record_problems(rec: dict, source: str, line: int | None,
                    labels: dict[str, str] | None = None) -> list[UserError]:
    """Every schema violation of one record. ``labels`` maps a schema field to the name the
    user knows it by (their column), used in the messages."""
    problems: list[UserError] = []

    def bad(message: str, field: str) -> None:
        problems.append(UserError(message, file=source, line=line, field=_label(field, labels)))

    skip = rec.get("_skip", ())  # fields already reported (e.g. a value that could not be read)
    for field, (required, types) in SCHEMA.items():
        if field in skip:
            continue
        if field not in rec or rec[field] is None:
            if required:
                bad("missing required field", field)
            continue
        if not isinstance(rec[field], types):
            bad(f"expected {'/'.join(t.__name__ for t in types)}, got {type(rec[field]).__name__}", field)
    for field, types in EXTRA_FIELDS.items():
        if field not in skip and not isinstance(rec.get(field), types):
            bad(f"expected {'/'.join(t.__name__ for t in types)}, got {type(rec[field]).__name__}", field)
    meta = rec.get("meta")
    if isinstance(meta, str) and "meta" not in skip:
        try:
            parsed = json.loads(meta)
        except json.JSONDecodeError as exc:
            parsed, why = None, f"invalid JSON: {exc.msg}"
        else:
            why = "must be a JSON object"
        if not isinstance(parsed, dict):
            bad(why, "meta")
    text = rec.get("text")
    if isinstance(text, str):
        if not text.strip():
            bad("empty text", "text")
        elif only_invisible(text):
            bad("text is made only of invisible characters (zero-width, format or control)", "text")
        elif len(text) > MAX_TEXT_CHARS:
            bad(f"text is {len(text):,} characters, over the {MAX_TEXT_CHARS:,} limit", "text")
    lang = rec.get("lang")
    if isinstance(lang, str) and lang not in KNOWN_LANGS and "lang" not in skip:
        bad(f"unknown language code {lang!r}", "lang")
    for field in ("id", "source_id", "category", "style", "target_group"):
        value = rec.get(field)
        if isinstance(value, str) and not value.strip():
            bad("empty value", field)
    category = rec.get("category")
    if isinstance(category, str) and _HAZARD_CODE.fullmatch(category) and category not in HAZARD_CATEGORIES:
        bad(f"unknown hazard code {category!r} (Llama Guard 3 has S1..S14)", "category")
    origin = rec.get("origin")
    if isinstance(origin, str) and not _ORIGIN.fullmatch(origin):
        bad(f"invalid origin {origin!r} (builtin, generated, or file:/dataset:/hub:<name>)", "origin")
    return problems


def validate(records: list[dict], source: str, *, labels: dict[str, str] | None = None,
             extra_problems: list[UserError] | None = None) -> list[dict]:
    """Check every record; raise CorpusError listing all violations (and ``extra_problems``,
    found earlier by the caller), else return the records without their ``_line``/``_file``."""
    problems: list[UserError] = list(extra_problems or [])
    seen: dict[str, tuple[str, int]] = {}
    for i, rec in enumerate(records, start=1):
        line = rec.get("_line", i)
        file = rec.get("_file", source)
        problems += record_problems(rec, file, line, labels)
        rid = rec.get("id")
        if isinstance(rid, str):
            if rid in seen:
                first_file, first_line = seen[rid]
                where = f"line/row {first_line}" + (f" of {first_file}" if first_file != file else "")
                problems.append(UserError(f"duplicate id {rid!r} (first at {where})", file=file,
                                          line=line, field=_label("id", labels)))
            seen.setdefault(rid, (file, line))
    if problems:
        problems.sort(key=lambda p: (p.file != source, p.line if p.line is not None else 0))
        raise CorpusError(problems, file=source)
    return [{k: v for k, v in r.items() if k not in ("_line", "_file", "_skip")} for r in records]


# --- normalisation of user values ----------------------------------------------------------------

def _fold(text: str) -> str:
    """Case-folded, accents stripped, spaces/underscores/hyphens unified to single spaces."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[\s_\-]+", " ", text).strip()


_LANG_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("english", "eng"), "de": ("german", "deutsch", "deu", "ger"),
    "it": ("italian", "italiano", "ita"), "fr": ("french", "francais", "fra", "fre"),
    "es": ("spanish", "espanol", "castellano", "spa"), "pt": ("portuguese", "portugues", "por"),
    "pl": ("polish", "polski", "pol"), "cs": ("czech", "cestina", "ces", "cze"),
    "sk": ("slovak", "slovencina", "slk", "slo"), "sl": ("slovenian", "slovene", "slovenscina", "slv"),
    "lt": ("lithuanian", "lietuviu", "lit"), "lv": ("latvian", "latviesu", "lav"),
    "bg": ("bulgarian", "bul"), "da": ("danish", "dansk", "dan"), "el": ("greek", "ell", "gre"),
    "et": ("estonian", "eesti", "est"), "fi": ("finnish", "suomi", "fin"),
    "ga": ("irish", "gaeilge", "gle"), "hr": ("croatian", "hrvatski", "hrv"),
    "hu": ("hungarian", "magyar", "hun"), "mt": ("maltese", "malti", "mlt"),
    "nl": ("dutch", "nederlands", "nld", "dut"), "ro": ("romanian", "romana", "ron", "rum"),
    "sv": ("swedish", "svenska", "swe"), "hi": ("hindi", "hin"), "th": ("thai", "tha"),
    "ru": ("russian", "rus"), "uk": ("ukrainian", "ukr"), "tr": ("turkish", "turkce", "tur"),
    "ar": ("arabic", "ara"), "zh": ("chinese", "mandarin", "zho", "chi"), "ja": ("japanese", "jpn"),
    "ko": ("korean", "kor"),
}
_LANG_LOOKUP = {name: code for code, names in _LANG_NAMES.items() for name in names}


def normalise_lang(value) -> str | None:
    """A language name or code ("English", "Português", "pt-BR", "en_US", "deu") -> the
    project's ISO 639-1 code; None when it is not recognised."""
    if not isinstance(value, str):
        return None
    folded = _fold(re.sub(r"\(.*?\)", " ", value))  # "Portuguese (Brazil)" -> "portuguese"
    if not folded:
        return None
    if folded in KNOWN_LANGS:
        return folded
    primary = folded.split(" ")[0]                   # "pt br" (from pt-BR / pt_BR), "zh hans"
    for cand in (folded, primary):
        if cand in KNOWN_LANGS:
            return cand
        if cand in _LANG_LOOKUP:
            return _LANG_LOOKUP[cand]
    return None


_HAZARD_BY_NAME = {_fold(name): code for code, name in HAZARD_CATEGORIES.items()}
_HAZARD_BY_NAME.update({_fold(name.replace("&", "and")): code for code, name in HAZARD_CATEGORIES.items()})


def _bare(folded: str) -> str:
    """A folded name without punctuation: "suicide & self harm" -> "suicide self harm"."""
    return " ".join(re.sub(r"[^\w\s]", " ", folded).split())


# "suicide_self_harm", "Suicide / Self-Harm": the name with its "&" left out.
_HAZARD_BY_NAME.update({_bare(_fold(name)): code for code, name in HAZARD_CATEGORIES.items()})


def normalise_category(value: str) -> str:
    """"s1", "S1: Violent Crimes", "violent crimes" -> "S1"; anything else (a scenario
    category) is returned stripped."""
    text = value.strip()
    m = re.fullmatch(r"[sS]\s*0*(\d{1,2})(?:\s*[:.\-)]\s*.*)?", text, re.S)
    if m:
        return f"S{int(m.group(1))}"
    folded = _fold(text)
    return _HAZARD_BY_NAME.get(folded) or _HAZARD_BY_NAME.get(_bare(folded), text)


def meta_json(values: dict) -> str | None:
    """The ``meta`` field for ``values`` (nulls dropped): canonical JSON, so that the same
    metadata always gives the same bytes; None when nothing is left."""
    kept = {k: v for k, v in values.items() if v is not None}
    return json.dumps(kept, ensure_ascii=False, sort_keys=True) if kept else None


def slug(value: str) -> str:
    """"Persona Assignment" -> "persona_assignment" (accents kept out, ASCII word chars)."""
    return re.sub(r"[^0-9a-z]+", "_", _fold(value)).strip("_")


def normalise_group(value: str) -> str:
    """A target group given as the project's id or its English name ("Black people" ->
    "black"); any other group is slugged."""
    groups = seed_data.load_seed("en")["groups"]
    s = slug(value)
    if s in groups:
        return s
    by_name = {slug(name): gid for gid, name in groups.items()}
    return by_name.get(s, s)


# --- the built-in seed set and its selection ------------------------------------------------------

def seed_axes(lang: str = "en") -> dict[str, list[str]]:
    """The keys the seed set offers on each selection axis (same in every language)."""
    seed = seed_data.load_seed(lang)
    return {axis: list(seed[key]) for axis, (key, _) in SELECTION_AXES.items()}


def params_line(params_file: str | None, path: list) -> int | None:
    """Line of a key path in the params file, for error messages (None when unknown)."""
    if not params_file or not Path(params_file).exists():
        return None
    from .params import _yaml_line
    return _yaml_line(params_file, path)


def resolve_selection(cfg: dict, params_file: str | None = "params.yaml") -> dict[str, list[str]]:
    """``corpus.{categories,styles,strategies,groups}`` -> the selected seed keys per axis.

    A missing key, null or "all" selects every entry (the default); a list selects those
    entries, in the seed's order; an empty list switches that axis off. Unknown entries are an
    error naming the params field and the available keys."""
    available = seed_axes()
    selection: dict[str, list[str]] = {}
    for axis, (_, noun) in SELECTION_AXES.items():
        value = cfg.get(axis)
        if value is None or value == "all":
            selection[axis] = list(available[axis])
            continue
        where = dict(file=params_file, line=params_line(params_file, ["corpus", axis]), field=f"corpus.{axis}")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UserError(f"must be \"all\" or a list of {noun} keys", **where)
        unknown = [v for v in value if v not in available[axis]]
        if unknown:
            raise UserError(f"unknown {noun}(s) {', '.join(map(repr, unknown))}; the seed set has: "
                            f"{', '.join(available[axis])}", **where)
        dupes = sorted({v for v in value if value.count(v) > 1})
        if dupes:
            raise UserError(f"listed twice: {', '.join(dupes)}", **where)
        selection[axis] = [k for k in available[axis] if k in value]
    return selection


def select_builtin(records: list[dict], selection: dict[str, list[str]] | None) -> list[dict]:
    """The seed records on the selected cells (benign controls are always kept)."""
    if not selection:
        return records
    out = []
    for r in records:
        if not r["harmful"]:
            out.append(r)
        elif r.get("target_group"):
            if r["style"] in selection["strategies"] and r["target_group"] in selection["groups"]:
                out.append(r)
        elif r["style"] in selection["styles"] and r["category"] in selection["categories"]:
            out.append(r)
    return out


def builtin_records(lang: str, selection: dict[str, list[str]] | None = None) -> list[dict]:
    return validate(select_builtin(seed_data.source_records(lang), selection), source="builtin seed set")


# --- loading -------------------------------------------------------------------------------------

def load_corpus(source: str, lang: str, columns: dict | None = None, *, layout: str | None = None,
                defaults: dict | None = None, selection: dict[str, list[str]] | None = None,
                languages: list[str] | None = None, split: str | None = None,
                subset: str | None = None, revision: str | None = None,
                params_file: str | None = None) -> list[dict]:
    """The built-in seed set (restricted to ``selection``), or a user corpus imported with a
    layout and column mapping (see ``importers.import_corpus``). ``lang`` is the source
    language (the language of rows that name none); ``languages`` (optional) keeps only rows in
    those languages."""
    if source == "builtin":
        return builtin_records(lang, selection)
    from .importers import import_corpus
    return import_corpus(source, lang=lang, columns=columns, layout=layout, defaults=defaults,
                         languages=languages, split=split, subset=subset, revision=revision,
                         params_file=params_file)


def check_corpus_params(cfg, params_file: str | None = "params.yaml") -> None:
    """Keys and shapes of the params ``corpus:`` block a JSON schema does not check."""
    if not isinstance(cfg, dict):
        raise UserError("must be a mapping", file=params_file, field="corpus")
    for key in cfg:
        if key not in CORPUS_KEYS:
            raise UserError(f"unknown key {key!r} (known: {', '.join(sorted(CORPUS_KEYS))})",
                            file=params_file, line=params_line(params_file, ["corpus", key]),
                            field=f"corpus.{key}")
    include = cfg.get("include") or []
    if not isinstance(include, list) or not all(isinstance(p, str) and p for p in include):
        raise UserError("must be a list of corpus files", file=params_file,
                        line=params_line(params_file, ["corpus", "include"]), field="corpus.include")


def read_corpus_file(path: str | Path) -> list[dict]:
    """A file already in the corpus schema (e.g. the rainbow stage's output), validated, with
    ``_file``/``_line`` kept for merge-time messages."""
    from .importers import read_rows
    path = Path(path)
    rows, _ = read_rows(str(path))
    records = []
    for line, row in rows:
        rec = {k: row.get(k) for k in (*FIELDS, *EXTRA_FIELDS) if k in row}
        rec["_line"], rec["_file"] = line, str(path)
        records.append(rec)
    validate(records, source=str(path))
    return records


def merge(parts: list[tuple[str, list[dict]]]) -> list[dict]:
    """Concatenate corpora; ids must be unique across all of them (a violation names the file
    and line of both occurrences)."""
    tagged = []
    for source, records in parts:
        for i, r in enumerate(records, start=1):
            tagged.append({"_file": source, "_line": i, **r})
    return validate(tagged, source=parts[0][0] if parts else "corpus")


def corpus_from_params(params: dict, params_file: str | None = "params.yaml") -> list[dict]:
    """The source corpus the ``corpus`` stage writes: ``corpus.source`` (the built-in set
    restricted to the selected cells, or an import), then every ``corpus.include`` file."""
    cfg = params["corpus"]
    check_corpus_params(cfg, params_file)
    selection = resolve_selection(cfg, params_file)
    src = params["source_language"]
    records = load_corpus(cfg["source"], src, cfg.get("columns") or None, layout=cfg.get("layout"),
                          defaults=cfg.get("defaults"), selection=selection,
                          languages=params.get("languages"), split=cfg.get("split"),
                          subset=cfg.get("subset"), revision=cfg.get("revision"), params_file=params_file)
    parts = [(str(cfg["source"]), records)]
    for path in cfg.get("include") or []:
        parts.append((path, [{k: v for k, v in r.items() if k not in ("_line", "_file")}
                             for r in read_corpus_file(path)]))
    if len(parts) == 1:
        return records
    return merge(parts)


# --- writing -------------------------------------------------------------------------------------

def arrow_schema():
    import pyarrow as pa
    return pa.schema([(f, pa.bool_() if f == "harmful" else pa.string()) for f in FIELDS])


def write_corpus(path: str | Path, records: list[dict]) -> None:
    """Write records as Parquet with the corpus schema's column types (so an empty corpus, or
    one whose ``target_group`` is all null, still has typed columns and loads with
    ``datasets.load_dataset("parquet", ...)``); extra fields follow, types inferred. Atomic."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .io import atomic_path, write_records

    path = Path(path)
    if path.suffix.lower() != ".parquet":
        write_records(path, records)
        return
    records = [{k: v for k, v in r.items() if not k.startswith("_")} for r in records]
    extra = list(dict.fromkeys(k for r in records for k in r if k not in SCHEMA))
    columns = {f: pa.array([r.get(f) for r in records], type=t)
               for f, t in zip(arrow_schema().names, arrow_schema().types)}
    for k in extra:
        columns[k] = pa.array([r.get(k) for r in records])
    table = pa.table(columns)
    with atomic_path(path, suffix=".parquet.tmp") as tmp:
        pq.write_table(table, tmp)


def axis_of(record: dict) -> str:
    """"harm", "group" or "benign"."""
    if not record["harmful"]:
        return "benign"
    return "group" if record.get("target_group") else "harm"
