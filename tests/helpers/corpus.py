"""Corpus inputs written in each format the importers read, a params file naming them, and the
`corpus` command run on it (shared by the importer and export tests)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml

from polyrefusal import cli

from .project import ROOT

LANGUAGES = ["en", "de", "it", "fr", "es", "pt", "pl", "cs", "sk", "sl", "lt", "lv"]


# --- writers for each format ----------------------------------------------------------------------

def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return path


def rectangular(rows: list[dict]) -> list[dict]:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    return [{c: r.get(c) for c in cols} for r in rows]


def write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.Table.from_pylist(rectangular(rows)), path)
    return path


def write_hf_dir(path: Path, rows: list[dict] | dict[str, list[dict]]) -> Path:
    import datasets
    if isinstance(rows, dict):
        datasets.DatasetDict({k: datasets.Dataset.from_list(rectangular(v))
                              for k, v in rows.items()}).save_to_disk(str(path))
    else:
        datasets.Dataset.from_list(rectangular(rows)).save_to_disk(str(path))
    return path


WRITERS = {"jsonl": (write_jsonl, "prompts.jsonl"), "csv": (write_csv, "prompts.csv"),
           "parquet": (write_parquet, "prompts.parquet"), "hf": (write_hf_dir, "prompts_ds")}


def write_params(tmp_path: Path, **corpus) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpus"] = {"columns": {}, **corpus}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    return path


def run_corpus(tmp_path: Path, capsys, **corpus) -> tuple[int, str, Path]:
    out = tmp_path / "results" / "source.parquet"
    capsys.readouterr()  # what writing the inputs printed (progress bars)
    rc = cli.main(["corpus", "--params", str(write_params(tmp_path, **corpus)), str(out)])
    return rc, capsys.readouterr().err.strip(), out
