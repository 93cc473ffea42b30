"""Stage `export-dataset`: the study's judged preference pairs as a dataset in a published layout.

    polyrefusal export-dataset --layout refuseu --pairs-dir results/pairs --out DIR

Reads ``<lang>.train.jsonl`` and ``<lang>.test.jsonl`` of ``--pairs-dir`` (the ``pairs`` stage's
TRL conversational records) and writes them in RefusEU's layout (huggingface.co/datasets/
NASK-PIB/RefusEU, its dataset card): one configuration per language, ``lang_xx/train-00000-of-
00001.parquet`` and ``lang_xx/test-00000-of-00001.parquet``, and a dataset card ``README.md``
whose YAML header declares the ``configs:`` (data files per split) and ``dataset_info:``
(features, split sizes), so that ``datasets.load_dataset(DIR, "lang_de")`` and
``polyrefusal corpus`` (``corpus.source: DIR``, ``layout: refuseu``) both read it.

Each row carries RefusEU's columns, ``id`` (``<source_id>_<lang>``: the id's suffix is the
language), ``row_id``, ``category`` and ``chosen`` / ``rejected`` as chat message lists (the user's
prompt, then the assistant's answer), then the study's own fields, so that importing the export
gives back the same records: ``record_id``, ``source_id``, ``style``, ``target_group``,
``harmful``, ``origin``. DIR is replaced as a whole, only once everything is written; bad input
(a malformed pairs line) is one error naming file, line and field, before anything is written.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from ..errors import UserError
from ..corpus import is_messages, message_turn
from ..io import read_records

log = logging.getLogger(__name__)

#: The layouts this stage writes (corpus.LAYOUTS reads these and more).
WRITABLE_LAYOUTS = ("refuseu",)
SPLITS = ("train", "test")
_PAIRS_FILE = re.compile(r"(?P<lang>[a-z]{2,3})\.(?P<split>train|test)\.jsonl")
#: The study's fields each row carries after RefusEU's own columns (record_id = the corpus id).
OWN_FIELDS = ("record_id", "source_id", "style", "target_group", "harmful", "origin")


def add_arguments(p):
    p.add_argument("--layout", default="refuseu", choices=WRITABLE_LAYOUTS,
                   help="the published layout to write (refuseu: one lang_xx configuration per language, "
                        "train and test splits, chat message lists)")
    p.add_argument("--pairs-dir", required=True, metavar="DIR",
                   help="the pairs stage's output: <lang>.train.jsonl and <lang>.test.jsonl (TRL format)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the dataset directory to write (replaced as a whole once complete)")
    p.add_argument("--languages", metavar="CODES",
                   help="comma-separated languages to export (default: every language found in --pairs-dir)")
    p.add_argument("--name", default="polyrefusal preference pairs (RefusEU layout)",
                   help="the dataset card's pretty_name")


def _features():
    import pyarrow as pa

    message = pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))
    return pa.schema([("id", pa.string()), ("row_id", pa.int64()), ("category", pa.string()),
                      ("chosen", message), ("rejected", message), ("record_id", pa.string()),
                      ("source_id", pa.string()), ("style", pa.string()), ("target_group", pa.string()),
                      ("harmful", pa.bool_()), ("origin", pa.string())])


#: The same features as the card's ``dataset_info`` describes them (the hub's YAML form).
CARD_FEATURES = [
    {"name": "id", "dtype": "string"}, {"name": "row_id", "dtype": "int64"},
    {"name": "category", "dtype": "string"},
    {"name": "chosen", "list": [{"name": "content", "dtype": "string"}, {"name": "role", "dtype": "string"}]},
    {"name": "rejected", "list": [{"name": "content", "dtype": "string"}, {"name": "role", "dtype": "string"}]},
    {"name": "record_id", "dtype": "string"}, {"name": "source_id", "dtype": "string"},
    {"name": "style", "dtype": "string"}, {"name": "target_group", "dtype": "string"},
    {"name": "harmful", "dtype": "bool"}, {"name": "origin", "dtype": "string"},
]


def _pairs_files(pairs_dir: Path, languages: list[str] | None) -> dict[str, dict[str, Path]]:
    """language -> split -> pairs file, in language order."""
    if not pairs_dir.is_dir():
        raise UserError("not a directory", file=str(pairs_dir), field="--pairs-dir")
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(pairs_dir.iterdir()):
        m = _PAIRS_FILE.fullmatch(path.name)
        if m:
            found.setdefault(m.group("lang"), {})[m.group("split")] = path
    if languages is not None:
        missing = [lang for lang in languages if lang not in found]
        if missing:
            raise UserError(f"no pairs for {', '.join(missing)} (found: {', '.join(found) or 'none'})",
                            file=str(pairs_dir), field="--languages")
        found = {lang: found[lang] for lang in languages}
    if not found:
        raise UserError("no <lang>.train.jsonl / <lang>.test.jsonl files", file=str(pairs_dir), field="--pairs-dir")
    return found


def _turn(rec: dict, field: str, role: str, path: Path) -> str:
    value = rec.get(field)
    turn = message_turn(value, role, last=True) if is_messages(value) else None
    if not isinstance(turn, str):
        raise UserError(f"expected a chat message list with a turn of role {role!r}", file=str(path),
                        line=rec.get("_line"), field=field)
    return turn


def to_row(rec: dict, row_id: int, lang: str, path: Path) -> dict:
    """One pairs record (TRL conversational format) as a RefusEU-layout row."""
    for field in ("id", "source_id", "lang"):
        if not isinstance(rec.get(field), str) or not rec[field]:
            raise UserError("missing required field", file=str(path), line=rec.get("_line"), field=field)
    if rec["lang"] != lang:
        raise UserError(f"a {rec['lang']!r} record in the {lang!r} pairs file", file=str(path),
                        line=rec.get("_line"), field="lang")
    prompt = _turn(rec, "prompt", "user", path)
    chosen, rejected = _turn(rec, "chosen", "assistant", path), _turn(rec, "rejected", "assistant", path)
    user = {"content": prompt, "role": "user"}
    return {"id": f"{rec['source_id']}_{lang}", "row_id": row_id, "category": rec.get("category"),
            "chosen": [user, {"content": chosen, "role": "assistant"}],
            "rejected": [user, {"content": rejected, "role": "assistant"}],
            "record_id": rec["id"], "source_id": rec["source_id"], "style": rec.get("style"),
            "target_group": rec.get("target_group"), "harmful": rec.get("harmful"), "origin": rec.get("origin")}


def card_text(name: str, configs: dict[str, dict[str, int]]) -> str:
    """The dataset card: the hub's YAML header (language, configs, dataset_info), then prose."""
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(
        language=[c.removeprefix("lang_") for c in configs], pretty_name=name,
        multilinguality="multilingual" if len(configs) > 1 else "monolingual",
        tags=["safety", "refusal", "preference-dataset"],
        configs=[{"config_name": c, "data_files": [{"split": s, "path": f"{c}/{s}-*"} for s in SPLITS]}
                 for c in configs],
        # A copy per configuration: a shared list would be written as a YAML anchor and alias.
        dataset_info=[{"config_name": c, "features": copy.deepcopy(CARD_FEATURES),
                       "splits": [{"name": s, "num_examples": n} for s, n in sizes.items()]}
                      for c, sizes in configs.items()])
    body = (f"# {name}\n\nJudged preference pairs written by `polyrefusal export-dataset` in the layout of "
            "RefusEU (NASK-PIB/RefusEU): one `lang_xx` configuration per language with `train` and `test` "
            "splits. `chosen` (a refusal) and `rejected` (a compliance) are chat message lists: the user's "
            "prompt, then the assistant's answer. `id` is `<source_id>_<lang>`; `record_id`, `source_id`, "
            "`style`, `target_group`, `harmful` and `origin` are the study's own fields.\n")
    return str(DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))


def run(args):
    import pyarrow as pa
    import pyarrow.parquet as pq

    languages = [s.strip() for s in args.languages.split(",") if s.strip()] if args.languages else None
    files = _pairs_files(Path(args.pairs_dir), languages)
    tables: dict[str, dict[str, pa.Table]] = {}
    for lang, splits in files.items():
        for split in SPLITS:
            path = splits.get(split)
            records = read_records(path, with_lines=True) if path else []
            rows = [to_row(r, i, lang, path) for i, r in enumerate(records)]
            tables.setdefault(f"lang_{lang}", {})[split] = pa.Table.from_pylist(rows, schema=_features())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for config, splits in tables.items():
            (tmp / config).mkdir()
            for split, table in splits.items():
                pq.write_table(table, tmp / config / f"{split}-00000-of-00001.parquet")
        sizes = {c: {s: t.num_rows for s, t in splits.items()} for c, splits in tables.items()}
        (tmp / "README.md").write_text(card_text(args.name, sizes), encoding="utf-8")
        os.chmod(tmp, 0o755)
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("export-dataset: %s -> %s (%s)", args.pairs_dir, out,
             ", ".join(f"{c}: {s['train']} train / {s['test']} test" for c, s in sizes.items()))
    return 0
