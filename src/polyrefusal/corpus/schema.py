"""The corpus schema: its fields, validation, and the normalisation of user values.

One record per prompt (``SCHEMA``)::

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
                  beyond the schema (MiJaBench: seed_index, or original_index and
                  dataset_source, then scenario_category, scenario). Kept out of ``FIELDS``
                  so that a corpus without it (the built-in set) is written byte for byte as
                  before; every stage passes it through unread.

Validation reports *every* violation with file, line/row and field, and raises before anything
is written (``CorpusError``: the message names the first violation and counts the others; the
full list is in ``.problems``).

Values are normalised (``normalise_value``): language names or codes ("English", "Português",
"pt-BR", "deu") to the project's codes; hazard codes/names ("s1", "Violent Crimes") to S1..S14;
styles and target groups to snake_case ids (a group given by its English name, "Black people",
becomes the project's id, "black"); "true"/"yes"/"1" to booleans; empty cells to null; a chat
message list ([{role, content}, ...]) in a ``text`` cell to its first user turn, in ``chosen`` /
``rejected`` to its last assistant turn.
"""

from __future__ import annotations

import json
import re
import unicodedata

from .. import seed as seed_data
from ..errors import UserError
from ..io import only_invisible
from ..params import key_schema

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
#: The language codes the project knows: the params schema's list (one declaration).
KNOWN_LANGS = frozenset(key_schema("#/definitions/lang")["enum"])

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

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


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


def axis_of(record: dict) -> str:
    """"harm", "group" or "benign"."""
    if not record["harmful"]:
        return "benign"
    return "group" if record.get("target_group") else "harm"


def arrow_schema():
    """The corpus schema's columns as pyarrow types (``harmful`` bool, every other string)."""
    import pyarrow as pa
    return pa.schema([(f, pa.bool_() if f == "harmful" else pa.string()) for f in FIELDS])


# --- chat message lists (RefusEU's chosen / rejected, TRL's conversational format) --------------

def is_messages(value) -> bool:
    """A chat message list: a non-empty list of {role, content} mappings."""
    return (isinstance(value, list) and bool(value)
            and all(isinstance(m, dict) and "role" in m and "content" in m for m in value))


def message_turn(messages: list[dict], role: str, *, last: bool) -> str | None:
    """The content of the first (or last) turn of ``role``, or None when there is none."""
    turns = [m["content"] for m in messages if m.get("role") == role]
    if not turns:
        return None
    return turns[-1] if last else turns[0]


def _to_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise ValueError(f"expected true/false, got {value!r}")


def normalise_value(field: str, value):
    """A user's value for ``field`` in the project's form. Raises ValueError with a message."""
    if value is None:
        return None
    if field in ("id", "source_id"):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return str(int(value))
        return value.strip() if isinstance(value, str) else value
    if field == "harmful":
        if isinstance(value, str) and not value.strip():
            return None
        return _to_bool(value)
    if field in ("text", "chosen", "rejected") and isinstance(value, list):
        # A chat message list: the prompt is its first user turn, an answer its last assistant turn.
        if not is_messages(value):
            raise ValueError("expected a string or a chat message list ([{role, content}, ...])")
        role = "user" if field == "text" else "assistant"
        turn = message_turn(value, role, last=field != "text")
        if turn is None:
            raise ValueError(f"the message list has no {role} turn")
        value = turn
    if field == "meta" and isinstance(value, dict):
        return meta_json(value)
    if not isinstance(value, str):
        return value  # validation reports the type
    if field in ("text", "chosen", "rejected"):
        return value if (value.strip() or field == "text") else None
    value = value.strip()
    if not value:
        return None
    if field == "lang":
        code = normalise_lang(value)
        if code is None:
            raise ValueError(f"unknown language {value!r}")
        return code
    if field == "category":
        return normalise_category(value)
    if field == "style":
        return slug(value) or value
    if field == "target_group":
        return normalise_group(value) or value
    return value
