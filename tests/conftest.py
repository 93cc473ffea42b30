"""Shared fixtures and hooks. Tests that run the DAG work in a copy of the project (tmp dir), with
the `ci` preset applied, so the checkout's own results/ is never touched. What tests import
(paths, the project copy, fake servers, builders) lives in tests/helpers/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .helpers.project import copy_project, run_cli


def pytest_addoption(parser):
    parser.addoption("--run-slurm", action="store_true", help="run tests that start a local Slurm")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slurm") or os.environ.get("POLYREFUSAL_RUN_SLURM") == "1":
        return
    skip = pytest.mark.skip(reason="needs --run-slurm (starts a local Slurm cluster)")
    for item in items:
        if "slurm" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def project(tmp_path) -> Path:
    return copy_project(tmp_path / "proj")


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory) -> Path:
    """The `ci` preset run end to end once per session (shared by the slow tests)."""
    proj = copy_project(tmp_path_factory.mktemp("pipeline") / "proj")
    run_cli(["snakemake", "--cores", "2"], cwd=proj)
    return proj
