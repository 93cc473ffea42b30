"""The report names where a run departs from its preset's published protocol (params
report.deviations, set by configs/presets/paper.yaml and mijabench.yaml)."""

from __future__ import annotations

import yaml

from polyrefusal.presets import resolve

from ..helpers.project import ROOT
from ..helpers.report import make_project, run_report


def test_the_report_lists_the_presets_deviations(tmp_path):
    deviations = resolve(ROOT / "configs" / "presets", "paper")["report"]["deviations"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    make_project(tmp_path, capability=False, report={**params["report"], "deviations": deviations})
    run_report(tmp_path, bootstrap=50)
    md = (tmp_path / "results" / "report" / "report.md").read_text()
    html = (tmp_path / "results" / "report" / "report.html").read_text()
    assert "departs from the published protocol" in md
    for text in deviations:
        assert text.split(":")[0] in md and text.split(":")[0] in html


def test_no_deviation_section_without_deviations(tmp_path):
    make_project(tmp_path, capability=False)
    run_report(tmp_path, bootstrap=50)
    assert "departs from the published protocol" not in (tmp_path / "results" / "report" / "report.md").read_text()
