"""params.yaml split by key (polyrefusal.params.slices): what DVC's stages depend on in place of
`params:` keys (see polyrefusal.dvc_yaml)."""

from __future__ import annotations

import json
import os

import pytest

from polyrefusal.errors import UserError
from polyrefusal.params import load_params, slice_key, slice_path, slices, write_slices

from .helpers.project import ROOT


def test_every_section_and_every_entry_of_a_section_has_its_file():
    params = load_params(ROOT / "params.yaml")
    got = slices(params)
    for key, value in params.items():
        assert json.loads(got[key]) == json.loads(json.dumps(value))
        for sub, subvalue in (value.items() if isinstance(value, dict) else []):
            assert json.loads(got[f"{key}.{sub}"]) == json.loads(json.dumps(subvalue))
    assert len(got) == len(params) + sum(len(v) for v in params.values() if isinstance(v, dict))


def test_bytes_do_not_depend_on_key_order():
    assert slices({"a": {"x": 1, "y": [1, 2]}}) == slices({"a": {"y": [1, 2], "x": 1}})


def test_a_stage_key_is_a_section_or_one_entry():
    assert slice_path("config_defs.balanced") == "logs/params/config_defs.balanced.json"
    with pytest.raises(UserError, match="3 levels deep"):
        slice_path("judge.options.guard")


def test_unchanged_files_keep_their_date_and_dropped_keys_lose_their_file(tmp_path):
    write_slices({"a": 1, "b": {"c": 2}, "d": 3}, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.c.json", "b.json", "d.json"]
    old = tmp_path / "a.json"
    os.utime(old, ns=(1_000_000_000, 1_000_000_000))
    write_slices({"a": 1, "b": {"c": 5}}, tmp_path)
    assert old.stat().st_mtime_ns == 1_000_000_000  # same bytes: not rewritten
    assert json.loads((tmp_path / "b.c.json").read_text()) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.c.json", "b.json"]


def test_a_file_path_gives_back_its_key():
    for key in ("generation", "config_defs.balanced"):
        assert slice_key(slice_path(key)) == key
    assert slice_key("logs/params.valid") is None and slice_key("results/x.json") is None
