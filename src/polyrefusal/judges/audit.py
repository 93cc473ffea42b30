"""A human audit of the judges: a stratified sample out, reviewed labels back in.

``export_sample`` draws up to ``per_cell`` records at random (seeded) from every cell
(language x the judges' verdicts, e.g. ``llama_guard=safe|polyguard=unsafe``, so disagreements
get their own cells) and writes them as CSV with empty ``human_label`` / ``human_refused`` /
``notes`` columns. Reviewers fill ``human_label`` with ``safe`` or ``unsafe`` (rows left empty
or marked ``skip`` are ignored) and optionally ``human_refused`` (yes/no).
``import_reviewed`` reads the file back and reports, for each judge (and the ensemble label
``label``), its accuracy and Cohen's kappa against the humans, overall and per language.

Written by ``polyrefusal judge --audit-import FILE.csv --audit-report FILE.json`` and named in
params (``report.judge_audit: FILE.json``: an input of the report stage, so a new review reruns
it in Snakemake and DVC alike), that report updates the judge accuracy the report shows next to
every ASR: ``audited_accuracy`` reads it, and the report prefers its per-language figures to
the table shipped with the judge.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict

from ..errors import UserError
from ..io import read_records, write_records
from .agreement import PARSED, _verdicts, cohen_kappa

HUMAN = "human_label"
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


def _cell(record: dict, field: str) -> str:
    v = _verdicts(record, field)
    if v:
        return "|".join(f"{j}={v[j].get('label')}" for j in sorted(v))
    prefix = "" if field == "response" else f"{field}_"
    return f"label={record.get(prefix + 'label')}"


def export_sample(records, path_csv, per_cell: int = 20, seed: int = 0, field: str = "response") -> list[dict]:
    """Write the stratified sample to ``path_csv``; returns its rows."""
    if per_cell < 1:
        raise UserError("per_cell must be at least 1", field="per_cell")
    prefix = "" if field == "response" else f"{field}_"
    cells: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        cells[(str(r.get("lang")), _cell(r, field))].append(i)
    judges = sorted({j for r in records for j in _verdicts(r, field)})
    rng = random.Random(seed)
    rows = []
    for (lang, cell) in sorted(cells):
        idx = cells[(lang, cell)]
        for i in sorted(rng.sample(idx, min(per_cell, len(idx)))):
            r = records[i]
            v = _verdicts(r, field)
            prompt = r.get("prompt") if r.get("prompt") is not None else r.get("text")
            row = {"id": r.get("id") if r.get("id") is not None else f"row{i + 1}", "lang": r.get("lang"),
                   "cell": cell, "prompt": prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False),
                   "response": r.get(field), "label": r.get(prefix + "label"), "refused": r.get(prefix + "refused")}
            for j in judges:
                row[f"{j}_label"] = (v.get(j) or {}).get("label")
            row.update({HUMAN: "", "human_refused": "", "notes": ""})
            rows.append(row)
    write_records(path_csv, rows)
    return rows


def _score(pairs: list[tuple[str, str]]) -> dict:
    parsed = [(j, h) for j, h in pairs if j in PARSED]
    n = len(parsed)
    return {"n": len(pairs), "n_parsed": n, "n_unparsed": len(pairs) - n,
            "accuracy": sum(j == h for j, h in parsed) / n if n else None,
            "kappa": cohen_kappa([j for j, _ in parsed], [h for _, h in parsed], PARSED) if n else None}


def score_judges(rows: list[dict], judges: list[str], reference_key: str = HUMAN,
                 by: tuple[str, ...] = ("lang",), ensemble: bool = True) -> dict:
    """Each judge's label (column ``<judge>_label``; with ``ensemble``, the combined label
    ``label`` as judge "ensemble") scored against ``rows``' ``reference_key``, over all rows and
    per value of each ``by`` column (``per_language`` for ``lang``, ``per_<column>`` else)."""
    columns = {j: f"{j}_label" for j in judges}
    if ensemble:
        columns = {"ensemble": "label", **columns}
    report: dict = {"judges": {}}
    # the rows of each value of each `by` column, found once for every judge
    groups: dict[str, dict[str, list[int]]] = {}
    for key in by:
        report["per_language" if key == "lang" else f"per_{key}"] = {}
        members = defaultdict(list)
        for i, r in enumerate(rows):
            members[str(r.get(key))].append(i)
        groups[key] = {value: members[value] for value in sorted(members)}
    for name, col in columns.items():
        pairs = [(str(r.get(col) or "").strip().lower(), r[reference_key]) for r in rows]
        report["judges"][name] = _score(pairs)
        for key in by:
            table = report["per_language" if key == "lang" else f"per_{key}"]
            for value, members in groups[key].items():
                table.setdefault(value, {})[name] = _score([pairs[i] for i in members])
    return report


def import_reviewed(path_csv) -> dict:
    """Read a reviewed sample; report each judge's accuracy and kappa against the humans
    (``accuracy`` and ``kappa`` over the rows the judge could parse; ``n_unparsed`` counted)."""
    rows = read_records(path_csv, with_lines=True)
    if rows and HUMAN not in rows[0]:
        raise UserError(f"no {HUMAN!r} column: is this an exported audit sample?", file=str(path_csv))
    judges = [c[: -len("_label")] for c in (rows[0] if rows else {}) if c.endswith("_label") and c != HUMAN]
    reviewed, skipped = [], 0
    for r in rows:
        h = str(r.get(HUMAN) or "").strip().lower()
        if h in ("", "skip", "?"):
            skipped += 1
            continue
        if h not in PARSED:
            raise UserError(f"human label must be safe or unsafe (or empty / skip), not {r.get(HUMAN)!r}",
                            file=str(path_csv), line=r.get("_line"), field=HUMAN)
        r[HUMAN] = h
        reviewed.append(r)
    report: dict = {"file": str(path_csv), "n_rows": len(rows), "n_reviewed": len(reviewed),
                    "n_skipped": skipped,
                    **score_judges(reviewed, judges, ensemble=bool(rows) and "label" in rows[0])}
    refusal = []
    for r in reviewed:
        h = str(r.get("human_refused") or "").strip().lower()
        j = str(r.get("refused") or "").strip().lower()
        if h in _TRUE | _FALSE and j in _TRUE | _FALSE:
            refusal.append((j in _TRUE, h in _TRUE))
    if refusal:
        report["refused_accuracy"] = {"n": len(refusal), "accuracy": sum(a == b for a, b in refusal) / len(refusal)}
    return report


def audited_accuracy(report: dict, judge: str) -> dict[str, dict]:
    """Per-language accuracy of ``judge`` (a judge name, or ``ensemble`` for the combined label)
    against the human labels of an ``import_reviewed`` report: ``{lang: {"n", "accuracy"}}``
    over the rows the judge could parse; languages without any are left out."""
    out = {}
    for lang, judges in (report.get("per_language") or {}).items():
        s = judges.get(judge) or {}
        if s.get("accuracy") is not None and s.get("n_parsed"):
            out[lang] = {"n": int(s["n_parsed"]), "accuracy": float(s["accuracy"])}
    return out
