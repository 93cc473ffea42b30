"""What each stage reads besides its data (polyrefusal.stage_inputs), and the input digests DVC
depends on in its place: a digest changes exactly when its rule's code or params keys change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from polyrefusal.params import load_params
from polyrefusal.stage_inputs import (CODE, DIGEST_RULE, PACKAGE, PARAMS, changed_code, code_entries, code_files,
                                      digest, digest_path, digest_rule, digests, write_digests)

from .helpers.project import ROOT


@pytest.fixture
def package(tmp_path) -> Path:
    """A copy of the package's source beside a params file, as a project root."""
    shutil.copytree(ROOT / PACKAGE, tmp_path / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def test_every_rule_declares_code_and_params_and_validate_reads_all_code():
    assert set(CODE) == set(PARAMS)
    every = {f for rule in CODE for f in code_files(rule, ROOT)}
    assert set(code_files(DIGEST_RULE, ROOT)) == every
    entries = code_entries(DIGEST_RULE)
    # a directory stands for its files: nothing inside a listed directory is listed again
    assert not [e for e in entries if any(e.startswith(d + "/") for d in entries)]
    assert all((ROOT / e).exists() for rule in CODE for e in code_entries(rule))


def test_digest_paths_round_trip():
    for rule in CODE:
        assert digest_rule(digest_path(rule)) == rule
    assert digest_rule("logs/inputs/nonesuch.json") is None and digest_rule("logs/params/split.json") is None


def test_a_code_edit_changes_the_digests_of_the_rules_that_read_it_only(package):
    params = load_params(package / "params.yaml")
    before = digests(params, package)
    assert DIGEST_RULE not in before
    split = package / PACKAGE / "stages/split.py"
    split.write_text(split.read_text() + "\n# edited\n")
    after = digests(params, package)
    assert {r for r in before if before[r] != after[r]} == {"split"}
    assert changed_code(before["split"], json.loads(after["split"])) == [f"{PACKAGE}/stages/split.py"]
    # a file inside a package directory: every rule that reads the package
    lexicon = next((package / PACKAGE / "data/lexicon").glob("*.txt"))
    lexicon.write_text(lexicon.read_text() + "\n")
    again = digests(params, package)
    assert {r for r in after if after[r] != again[r]} == {r for r in CODE if "data/lexicon" in CODE[r]}
    assert changed_code(None, json.loads(again["judge"])) is None  # old bytes unknown


def test_a_params_edit_changes_the_digests_of_the_rules_that_read_its_key_only(package):
    params = load_params(package / "params.yaml")
    before = digests(params, package)
    params["split"] = {**params["split"], "seed": params["split"]["seed"] + 1}
    after = digests(params, package)
    assert {r for r in before if before[r] != after[r]} == {r for r in PARAMS if "split" in PARAMS[r]}
    assert json.loads(after["split"])["params"]["split"]["seed"] == params["split"]["seed"]
    # a key that varies by job is not in the digest (it has its own file of params split by key)
    assert "config_defs" not in json.dumps(json.loads(after["train"])["params"])
    assert digest("train", params, package)["code"] == json.loads(after["train"])["code"]


def test_write_digests_rewrites_only_what_changed(package):
    params = load_params(package / "params.yaml")
    out = package / "logs/inputs"
    assert write_digests(params, out, package) == len(CODE) - 1
    (out / "gone.json").write_text("{}")  # a rule no longer declared
    dates = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    params["split"] = {**params["split"], "seed": params["split"]["seed"] + 1}
    write_digests(params, out, package)
    now = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    assert "gone.json" not in now
    assert {n for n in now if now[n] != dates[n]} == {f"{r}.json" for r in PARAMS if "split" in PARAMS[r]}
