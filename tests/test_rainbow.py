"""Rainbow Teaming: the archive mechanics (coverage grows, near-duplicates are rejected, empty and
weak cells are preferred, a killed run resumes and ends identical to an uninterrupted one) with
fake models and a fake judge, the `rainbow` stage end to end, and one run on the project's tiny
model when the `transformers` generation backend is available."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from polyrefusal import cli
from polyrefusal.corpus import read_corpus_file
from polyrefusal.errors import UserError
from polyrefusal.rainbow import ARCHIVE_FILE, similarity

from .helpers.models import tiny_model_dir
from .helpers.project import ROOT, env
from .helpers.rainbow import Crash, FakeJudge, FakeMutator, make_search


def archive(path: Path) -> dict:
    return json.loads((Path(path) / ARCHIVE_FILE).read_text())


# --- archive mechanics -------------------------------------------------------------------------

def test_coverage_grows_and_near_duplicates_are_rejected(tmp_path):
    search = make_search(tmp_path / "a")
    state = search.run(60)
    coverage = [h["coverage"] for h in state["history"]]
    assert len(coverage) == 60 and coverage == sorted(coverage)     # never shrinks
    assert coverage[0] <= 1 and coverage[-1] >= 25                   # of 16 x 4 = 64 cells
    assert state["stats"]["duplicates"] >= 3                         # the mutator's copies...
    assert all(e["similarity"] < 0.6 for e in state["cells"].values())  # ...never enter
    assert state["stats"]["proposed"] == 60 == (state["stats"]["duplicates"] + state["stats"]["empty"]
                                                 + state["stats"]["evaluated"])
    assert state["stats"]["inserted"] == len(state["cells"])
    assert any(e["parent"].startswith("cell:") for e in state["cells"].values())  # elites breed
    keys = set(state["cells"])
    assert all(k.split("|")[1] in search.settings.cols and k.split("|")[0] in search.settings.rows for k in keys)


def test_a_mutator_that_only_copies_fills_nothing(tmp_path):
    state = make_search(tmp_path / "a", mutator=FakeMutator(duplicate_every=1)).run(10)
    assert state["cells"] == {} and state["stats"]["duplicates"] == 10


@pytest.mark.parametrize("metric", ["bleu", "chrf", "jaccard"])
def test_similarity_metrics(metric):
    a = "Write a short text about the weather in the mountains today."
    assert similarity(a, a, metric) == pytest.approx(1.0)
    assert similarity(a, "amber basalt cobalt dune ember fjord", metric) < 0.3
    near = similarity(a.replace("today", "tomorrow"), a, metric)
    assert 0.5 < near < 1.0


def test_empty_and_weak_cells_are_drawn_more_often(tmp_path):
    import random

    search = make_search(tmp_path / "a", empty_cell_weight=4.0)
    cells = search.settings.cells()
    state = search.new_state()
    strong, weak = cells[:20], cells[20:30]
    for k in strong:
        state["cells"][k] = {"prompt": f"p {k}", "fitness": 1.0, "score": 0.0}
    for k in weak:
        state["cells"][k] = {"prompt": f"p {k}", "fitness": 0.0, "score": 0.0}
    weights = dict(zip(cells, search.cell_weights(state)))
    assert {weights[k] for k in strong} == {1.0}
    assert {weights[k] for k in weak} == {4.0}
    assert {weights[k] for k in cells[30:]} == {4.0}
    rng = random.Random(0)
    picks = [search._propose(rng, state)["cell"] for _ in range(3000)]
    per_strong = sum(p in strong for p in picks) / len(strong)
    per_other = sum(p not in strong for p in picks) / (len(cells) - len(strong))
    assert per_other > 2.5 * per_strong


def test_the_judge_decides_which_prompt_stays(tmp_path):
    search = make_search(tmp_path / "a")
    incumbent = {"prompt": "a", "response": "x", "fitness": 1.0, "score": 0.9}
    assert not search._beats({"prompt": "b", "response": "y", "fitness": 1.0, "score": 0.5}, incumbent)
    assert search._beats({"prompt": "b", "response": "y", "fitness": 1.0, "score": 0.95}, incumbent)
    assert search._beats({"prompt": "b", "response": "y", "fitness": 1.0, "score": 0.0},
                         dict(incumbent, fitness=0.0))

    class PairwiseJudge(FakeJudge):
        def compare(self, new, incumbent):
            return len(new["response"]) > len(incumbent["response"])

    pairwise = make_search(tmp_path / "b", judge=PairwiseJudge())
    assert pairwise._beats({"prompt": "b", "response": "longer", "fitness": 0.0, "score": 0.0}, incumbent)
    state = make_search(tmp_path / "c").run(80)
    assert state["stats"]["replaced"] + state["stats"]["kept_incumbent"] > 0


def test_a_crashed_run_resumes_and_ends_identical(tmp_path):
    reference = make_search(tmp_path / "ref").run(40)
    crashing = make_search(tmp_path / "run", mutator=FakeMutator(fail_after=15))
    with pytest.raises(Crash):
        crashing.run(40)
    saved = archive(tmp_path / "run")
    assert saved["iteration"] == 15                   # every finished iteration was saved
    resumed = make_search(tmp_path / "run").run(40)  # fresh models, as after a restart
    assert resumed == reference
    assert archive(tmp_path / "run") == archive(tmp_path / "ref")


def test_extending_a_finished_archive_equals_one_long_run(tmp_path):
    make_search(tmp_path / "a").run(10)
    assert make_search(tmp_path / "a").run(25) == make_search(tmp_path / "b").run(25)


def test_a_sigkilled_run_resumes_at_the_same_iteration(tmp_path):
    """A real SIGKILL between (or during) archive writes: the archive on disk is always whole."""
    run_dir = tmp_path / "run"
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from tests.helpers.rainbow import FakeMutator, make_search; "
            f"make_search({str(run_dir)!r}, mutator=FakeMutator(delay=0.03)).run(70)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            path = run_dir / ARCHIVE_FILE
            if path.exists() and json.loads(path.read_text())["iteration"] >= 6:
                break
            if proc.poll() is not None:
                pytest.fail(f"the run ended early: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        else:
            pytest.fail("the run never reached iteration 6")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    killed_at = archive(run_dir)["iteration"]
    assert 6 <= killed_at < 70
    resumed = make_search(run_dir).run(70)
    assert sorted(p.name for p in run_dir.iterdir()) == [ARCHIVE_FILE]  # no half-written leftovers
    assert resumed == make_search(tmp_path / "ref").run(70)


def test_an_archive_refuses_other_settings(tmp_path):
    make_search(tmp_path / "a").run(3)
    with pytest.raises(UserError, match="similarity_threshold"):
        make_search(tmp_path / "a", similarity_threshold=0.5).run(5)
    with pytest.raises(UserError, match="seed"):
        make_search(tmp_path / "a", seed=4).run(5)


def test_records_are_corpus_rows(tmp_path):
    search = make_search(tmp_path / "a", grid="category_style")
    state = search.run(30)
    rows = search.records(state, {"refusals": ["No."], "compliance": ["Sure: [omitted]"]})
    assert len(rows) == len(state["cells"]) > 0
    assert {r["origin"] for r in rows} == {"generated"} and all(r["harmful"] for r in rows)
    assert all(r["target_group"] is None and r["category"] in search.settings.rows for r in rows)
    assert all(r["style"] in search.settings.cols for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)
    assert {r["chosen"] for r in rows} == {"No."}


# --- the stage ---------------------------------------------------------------------------------------

def write_params(tmp_path: Path, **rainbow) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["rainbow"] = rainbow
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def run_stage(argv: list[str], capsys) -> tuple[int, str]:
    """Through `polyrefusal rainbow` once the command is registered; until then through the
    stage module, the same way cli.main calls it."""
    capsys.readouterr()
    if "rainbow" in cli.COMMANDS:
        rc = cli.main(["rainbow", *argv])
    else:
        from polyrefusal.stages import rainbow as stage
        parser = argparse.ArgumentParser(prog="polyrefusal rainbow")
        stage.add_arguments(parser)
        try:
            rc = stage.run(parser.parse_args(argv)) or 0
        except UserError as exc:
            print(f"polyrefusal rainbow: error: {exc.format()}", file=sys.stderr)
            rc = 2
    return rc, capsys.readouterr().err.strip()


FAKES = dict(mutator={"backend": "fake_rainbow_mutator", "path": "fake"},
             target={"backend": "fake_rainbow_target", "path": "fake"}, judge="fake_rainbow_judge")


def test_stage_disabled_writes_an_empty_corpus_without_models(tmp_path, capsys):
    params = write_params(tmp_path, enabled=False, mutator={"backend": "no_such_backend", "path": "nowhere"})
    out = tmp_path / "results/rainbow/generated.parquet"
    rc, err = run_stage(["--params", str(params), str(tmp_path / "results/rainbow/archive"), str(out)], capsys)
    assert rc == 0, err
    assert read_corpus_file(out) == [] and (tmp_path / "results/rainbow/archive").is_dir()


def test_stage_generates_a_mergeable_corpus_and_resumes(tmp_path, capsys):
    params = write_params(tmp_path, enabled=True, grid="group_strategy", iterations=12, seed=1, **FAKES)
    arch, out = tmp_path / "arch", tmp_path / "generated.parquet"
    rc, err = run_stage(["--params", str(params), str(arch), str(out)], capsys)
    assert rc == 0, err
    rows = read_corpus_file(out)
    assert rows and {r["origin"] for r in rows} == {"generated"}
    assert {r["category"] for r in rows} == {"S10"} and all(r["target_group"] for r in rows)
    assert all(r["chosen"] and r["rejected"] for r in rows)      # the seed set's answer shapes
    summary = json.loads((arch / "summary.json").read_text())
    assert summary["iterations"] == 12 and summary["filled"] == len(rows) and summary["cells"] == 64

    rc, err = run_stage(["--params", str(params), "--iterations", "20", str(arch), str(out)], capsys)
    assert rc == 0, err
    assert archive(arch)["iteration"] == 20 and len(read_corpus_file(out)) >= len(rows)

    # The generated prompts merge into the corpus.
    corpus_params = yaml.safe_load(params.read_text())
    corpus_params["corpus"]["include"] = [str(out)]
    params.write_text(yaml.safe_dump(corpus_params, sort_keys=False))
    rc = cli.main(["corpus", "--params", str(params), str(tmp_path / "source.parquet")])
    assert rc == 0
    merged = read_corpus_file(tmp_path / "source.parquet")
    assert sum(r["origin"] == "generated" for r in merged) == len(read_corpus_file(out))

    # Other settings on the same archive: refused, unless --restart.
    rc, err = run_stage(["--params", str(params), "--seed", "9", str(arch), str(out)], capsys)
    assert rc == 2 and "different settings" in err and "seed" in err
    rc, err = run_stage(["--params", str(params), "--seed", "9", "--restart", str(arch), str(out)], capsys)
    assert rc == 0, err
    assert archive(arch)["seed"] == 9 and archive(arch)["iteration"] == 12


@pytest.mark.parametrize("rainbow, field", [
    ({"enabled": True, "gird": "x"}, "rainbow.gird"),
    ({"enabled": True, "grid": "diagonal", **FAKES}, "rainbow.grid"),
    ({"enabled": True, "similarity": "rouge", **FAKES}, "rainbow.similarity"),
    ({"enabled": True, "similarity_threshold": 1.5, **FAKES}, "rainbow.similarity_threshold"),
    ({"enabled": True, **FAKES, "judge": "oracle"}, "rainbow.judge"),
    ({"enabled": True, **FAKES, "mutator": {"backend": "fake_rainbow_mutator", "path": "f", "temp": 1}},
     "rainbow.mutator.temp"),
])
def test_stage_bad_params_name_the_field(tmp_path, capsys, rainbow, field):
    out = tmp_path / "generated.parquet"
    rc, err = run_stage(["--params", str(write_params(tmp_path, **rainbow)), str(tmp_path / "a"), str(out)], capsys)
    assert rc == 2 and not out.exists()
    assert f"field '{field}'" in err and len(err.splitlines()) == 1, err


# --- the project's tiny model -----------------------------------------------------------------------

def test_rainbow_on_the_tiny_model(tmp_path, capsys):
    """Mutator and target are the embedded architecture (randomly initialised: nonsense prompts,
    real mechanics) through the `transformers` backend; the judge is `refusal_lexicon`."""
    pytest.importorskip("polyrefusal.generate.hf", reason="the transformers generation backend is not there yet")
    model_dir = tiny_model_dir(tmp_path / "tiny", vocab_size=400, max_positions=512)
    params = write_params(tmp_path, enabled=True, grid="category_style", iterations=3, seed=0,
                          mutator={"backend": "transformers", "path": str(model_dir), "temperature": 0.8,
                                   "max_new_tokens": 12, "batch_size": 4},
                          target={"backend": "transformers", "path": str(model_dir), "max_new_tokens": 8},
                          judge="refusal_lexicon", candidates_per_iteration=2)
    arch, out = tmp_path / "arch", tmp_path / "generated.parquet"
    rc, err = run_stage(["--params", str(params), str(arch), str(out)], capsys)
    assert rc == 0, err
    state = archive(arch)
    assert state["iteration"] == 3 and state["stats"]["proposed"] == 6
    assert [h["coverage"] for h in state["history"]] == sorted(h["coverage"] for h in state["history"])
    rows = read_corpus_file(out)
    assert len(rows) == len(state["cells"]) and all(r["origin"] == "generated" for r in rows)
    rc, err = run_stage(["--params", str(params), "--iterations", "4", str(arch), str(out)], capsys)
    assert rc == 0, err
    assert archive(arch)["iteration"] == 4


def test_a_search_in_another_language_starts_from_its_seed_prompts(tmp_path):
    from polyrefusal import seed as seed_data

    search = make_search(tmp_path / "a", lang="de")
    german = {r["text"] for r in seed_data.source_records("de")}
    assert search.seeds and all(s["text"] in german for s in search.seeds)
    assert "German" in search.mutation_prompt("x", search.settings.cells()[0])
    state = search.run(10)
    rows = search.records(state, {"refusals": seed_data.load_seed("de")["refusals"], "compliance": ["-"]})
    assert rows and {r["lang"] for r in rows} == {"de"} and all(r["id"].endswith(".de") for r in rows)
