"""The end-of-run commit (rule dvc_commit: `polyrefusal sync --commit --produced`) records in
dvc.lock only outputs that a Snakemake job made; a file changed outside the pipeline is listed
and not laundered into dvc.lock.

Snakemake's record of a job (its default file persistence: `.snakemake/metadata/<urlsafe
base64 of the output path>`, JSON with `rule`, `endtime` = the output's modification time when
the job ended, `incomplete`) is read as Snakemake writes it: snakemake/snakemake,
src/snakemake/persistence/file.py (`_record_path`) and src/snakemake/persistence/__init__.py
(`finished`, `MetadataRecord`).
"""

from __future__ import annotations

import json
import os
import time

import pytest

from polyrefusal.stages.sync import _metadata

from ..helpers.project import copy_project, run_cli

#: Each test runs Snakemake and DVC on a copy of the project.
pytestmark = pytest.mark.slow

TARGETS = ["logs/params.valid", "results/split/assignment.json"]
STAGES = ["validate", "corpus", "split"]


def commit(proj, *args, check=True):
    return run_cli(["polyrefusal", "sync", "--commit", *args], cwd=proj, check=check)


@pytest.fixture
def ran(tmp_path):
    proj = copy_project(tmp_path / "p", preset=None)
    run_cli(["snakemake", "--cores", "1", *TARGETS], cwd=proj)
    return proj


def test_a_run_is_recorded_and_a_second_commit_records_nothing(ran):
    assert "3 stage(s) recorded" in commit(ran, "--produced", *STAGES).stdout
    assert "0 stage(s) recorded" in commit(ran, "--produced", *STAGES).stdout
    assert "up to date" in run_cli(["dvc", "status", *STAGES], cwd=ran).stdout
    record = _metadata(ran, "results/split/assignment.json")
    assert record["rule"] == "split"
    assert record["endtime"] == pytest.approx(os.stat(ran / "results/split/assignment.json").st_mtime)


def test_a_result_edited_by_hand_is_reported_not_recorded(ran):
    commit(ran, "--produced", *STAGES)
    lock = (ran / "dvc.lock").read_bytes()
    out = ran / "results/split/assignment.json"
    time.sleep(0.05)
    out.write_text(json.dumps(json.loads(out.read_text())) + "\n")  # same data, other bytes
    proc = commit(ran, "--produced", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "results/split/assignment.json: changed after its job (split) ended" in proc.stderr
    assert (ran / "dvc.lock").read_bytes() == lock
    # rerunning the job makes it the pipeline's again
    run_cli(["snakemake", "--cores", "1", "-R", "split", "--", "results/split/assignment.json"], cwd=ran)
    assert "stage(s) recorded" in commit(ran, "--produced").stdout
    assert "up to date" in run_cli(["dvc", "status", *STAGES], cwd=ran).stdout


def test_outputs_older_than_their_changed_code_are_reported(ran):
    commit(ran, "--produced", *STAGES)
    code = ran / "src/polyrefusal/stages/split.py"
    code.write_text(code.read_text() + "\n# edited after the run\n")
    proc = commit(ran, "--produced", "split", check=False)
    assert proc.returncode == 2
    assert "src/polyrefusal/stages/split.py: changed after the job that used it ended" in proc.stderr


def test_a_file_no_job_made_is_reported_and_plain_commit_adopts_it_on_purpose(ran):
    commit(ran, "--produced", *STAGES)
    out = ran / "results/split/assignment.json"
    out.write_text(json.dumps(json.loads(out.read_text())) + "\n")  # as if copied in from elsewhere
    for record in (ran / ".snakemake/metadata").iterdir():
        record.unlink()
    proc = commit(ran, "--produced", "split", check=False)
    assert proc.returncode == 2
    assert "results/split/assignment.json: no Snakemake job made it" in proc.stderr
    assert "1 stage(s) recorded" in commit(ran, "split").stdout  # a person's explicit choice


def test_sync_check_refuses_code_edited_since_the_digests_were_written(ran):
    """DVC compares a stage with its rule's input digest, which only stage validate rewrites: a
    code edit since then is found by `sync --check`, naming the rule and the file, before DVC's
    status could call the stage unchanged."""
    commit(ran, "--produced", *STAGES)
    assert "match dvc.lock" in run_cli(["polyrefusal", "sync", "--check"], cwd=ran).stdout
    code = ran / "src/polyrefusal/stages/split.py"
    code.write_text(code.read_text() + "\n# edited after the run\n")
    proc = run_cli(["polyrefusal", "sync", "--check"], cwd=ran, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "code changed since the locked stages ran: split (src/polyrefusal/stages/split.py)" in proc.stderr


#: `polyrefusal sync --commit`, killed (SIGKILL, as a cancelled Slurm job or a kill -9) when
#: DVC's YAML writer has written half of the lock file (whatever its name): DVC's `_dump_data`
#: (dvc/utils/serialize/_common.py) writes through the dumper `_dump` of
#: dvc/utils/serialize/_yaml.py, looked up at each call, so replacing it reaches every lock write.
KILLED_MID_WRITE = """
import io, os, signal, sys
import dvc.utils.serialize._yaml as dvc_yaml
whole = dvc_yaml._dump
def torn(data, stream, **kwargs):
    if "dvc.lock" not in os.path.basename(getattr(stream, "name", "")):  # DVC's run cache, say
        return whole(data, stream, **kwargs)
    text = io.StringIO()
    whole(data, text, **kwargs)
    stream.write(text.getvalue()[: len(text.getvalue()) // 2])
    stream.flush()
    os.kill(os.getpid(), signal.SIGKILL)
dvc_yaml._dump = torn
from polyrefusal.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_commit_killed_while_it_writes_dvc_lock_leaves_the_last_whole_record(ran):
    """The CI run of 2026-12-01 found this: the kill-anywhere trial `several` landed while the
    end-of-run commit wrote dvc.lock, and left a dvc.lock cut off mid-line ("could not find
    expected ':'"), which DVC then refuses to read. The record is now replaced whole or not at
    all, and the next commit records what the killed one did not."""
    import sys

    from dvc.utils.serialize import load_yaml

    commit(ran, "--produced", "validate")
    before = (ran / "dvc.lock").read_bytes()
    killed = run_cli([sys.executable, "-c", KILLED_MID_WRITE, "sync", "--commit", "--produced", *STAGES],
                     cwd=ran, check=False)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert (ran / "dvc.lock").read_bytes() == before
    assert list(load_yaml(ran / "dvc.lock")["stages"]) == ["validate"]
    assert list(ran.glob(".dvc.lock.*")), "the killed writer's temporary (the test's premise)"
    assert "2 stage(s) recorded" in commit(ran, "--produced", *STAGES).stdout
    assert "up to date" in run_cli(["dvc", "status", *STAGES], cwd=ran).stdout
    assert not list(ran.glob(".dvc.lock.*")), "the next commit clears what the killed one left"


def test_a_rwlock_torn_by_a_killed_dvc_process_is_cleared_by_the_next_commit(ran):
    """DVC records the stages a command reads and writes in `.dvc/tmp/rwlock`, JSON that
    dvc/rwlock.py (`_edit_rwlock`) rewrites in place twice per stage; a kill between its truncation
    and its write leaves a file that DVC refuses ("Unable to read RWLock-file ... JSON structure
    is corrupted") in every later command. The end-of-run commit, holding DVC's repository lock,
    removes it."""
    rwlock = ran / ".dvc/tmp/rwlock"
    rwlock.parent.mkdir(parents=True, exist_ok=True)
    rwlock.write_text('{"read": {"results/corpus/source.parq')  # cut off mid-write
    refused = run_cli(["dvc", "status", *STAGES], cwd=ran, check=False)
    assert refused.returncode != 0 and "rwlock" in refused.stderr.lower(), refused.stderr  # the premise
    assert "3 stage(s) recorded" in commit(ran, "--produced", *STAGES).stdout
    assert "up to date" in run_cli(["dvc", "status", *STAGES], cwd=ran).stdout
