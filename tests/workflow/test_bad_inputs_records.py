"""Record inputs with a byte-order mark: a CSV and a JSONL behave alike (issue 16).

Many Windows tools write UTF-8 with a byte-order mark (U+FEFF, the bytes EF BB BF) in front of
the first line. Python's csv readers were already given it decoded away ("utf-8-sig"); a JSONL
reader saw `\\ufeff{"id": ...}`, which `json.loads` refuses ("Unexpected UTF-8 BOM"), so the
same records were accepted as CSV and refused as JSONL. The BOM is defined in The Unicode
Standard, section 23.8 (https://www.unicode.org/versions/latest/ch23.pdf), and RFC 8259
section 8.1 lets a JSON parser ignore it.
"""

from __future__ import annotations

import json

from polyrefusal.corpus import import_corpus
from polyrefusal.io import read_records

BOM = b"\xef\xbb\xbf"
ROWS = [dict(id="p1.en", source_id="p1", lang="en", text="How do I pick a lock?", category="S2",
             style="role_play", origin="file:c", harmful="true"),
        dict(id="p2.en", source_id="p2", lang="en", text="What is the weather?", category="benign",
             style="direct", origin="file:c", harmful="false")]


def write_both(tmp_path):
    header = list(ROWS[0])
    csv = ",".join(header) + "\n" + "".join(",".join(r[h] for h in header) + "\n" for r in ROWS)
    (tmp_path / "c.csv").write_bytes(BOM + csv.encode("utf-8"))
    (tmp_path / "c.jsonl").write_bytes(BOM + "".join(json.dumps(r) + "\n" for r in ROWS).encode("utf-8"))
    return tmp_path / "c.csv", tmp_path / "c.jsonl"


def test_stage_inputs_with_a_bom_read_alike(tmp_path):
    csv, jsonl = write_both(tmp_path)
    from_csv, from_jsonl = read_records(csv, with_lines=True), read_records(jsonl, with_lines=True)
    assert from_csv == from_jsonl
    assert list(from_csv[0])[0] == "id"  # not "\ufeffid"


def test_corpus_files_with_a_bom_import_alike(tmp_path):
    csv, jsonl = write_both(tmp_path)

    def plain(records):
        return [{k: v for k, v in r.items() if k not in ("origin", "_file", "_line")} for r in records]

    from_csv, from_jsonl = import_corpus(str(csv), lang="en"), import_corpus(str(jsonl), lang="en")
    assert len(from_csv) == 2 and plain(from_csv) == plain(from_jsonl)
