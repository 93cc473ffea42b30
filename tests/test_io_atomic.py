"""io.atomic_path: a write either lands whole or not at all, and the temporary a killed writer
left behind is removed by the next write of the same file on the same host."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from polyrefusal.io import atomic_path, remove_stale_temporaries, write_text


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "de.parquet"
    # A writer SIGKILLed while its temporary exists (no chance to clean up).
    code = ("import os, sys, time; from polyrefusal.io import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_text('partial'); print(tmp, flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    left = proc.stdout.readline().strip()
    assert os.path.exists(left)
    # While the writer lives, its temporary is not stale.
    assert remove_stale_temporaries(target) == []
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert os.path.exists(left) and not target.exists()
    # Another host's temporary on a shared file system, and another file's, stay.
    foreign = tmp_path / ".de.parquet.otherhost-1.abc.tmp"
    other = tmp_path / ".en.parquet.x-1.abc.tmp"
    foreign.write_text(""), other.write_text("")
    write_text(target, "done")
    assert target.read_text() == "done"
    assert not os.path.exists(left)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([foreign.name, other.name, "de.parquet"])


def test_a_directory_is_replaced_whole_or_not_at_all(tmp_path):
    from polyrefusal.io import MANIFEST, atomic_dir

    out = tmp_path / "eval" / "base"
    out.mkdir(parents=True)
    (out / "old.json").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "en.json").write_text("half")
            raise RuntimeError("failed")
    assert [p.name for p in out.iterdir()] == ["old.json"] and not (tmp_path / "eval" / ".base.tmp").exists()
    (tmp_path / "eval" / ".base.tmp").mkdir()  # what a killed writer leaves
    (tmp_path / "eval" / ".base.tmp" / "stale").write_text("")
    with atomic_dir(out) as tmp:
        assert list(tmp.iterdir()) == []
        (tmp / "en.json").write_text("new")
    # the directory's files and its manifest (test_a_directory_output_carries_its_manifest)
    assert sorted(p.name for p in out.iterdir()) == ["en.json", MANIFEST] and not (tmp_path / "eval" / ".base.tmp").exists()


def test_a_directory_output_carries_its_manifest(tmp_path):
    """What DVC's stages depend on in place of a directory output (polyrefusal.dvc_yaml): the md5
    of each file by relative path, sorted, hidden files and the manifest itself left out; the
    same files give the same bytes, other bytes another manifest."""
    import hashlib
    import json

    from polyrefusal.io import MANIFEST, atomic_dir

    out = tmp_path / "answers" / "base"

    def build(text):
        with atomic_dir(out) as tmp:
            (tmp / "de.jsonl").write_text(text)
            (tmp / "sub").mkdir()
            (tmp / "sub" / "en.jsonl").write_text("en")
            (tmp / ".snakemake_timestamp").write_text("")
        return (out / MANIFEST).read_bytes()

    first = build("de")
    assert json.loads(first) == {"md5": {"de.jsonl": hashlib.md5(b"de").hexdigest(),
                                         "sub/en.jsonl": hashlib.md5(b"en").hexdigest()}}
    assert build("de") == first
    assert build("de2") != first
