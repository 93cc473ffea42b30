"""`polyrefusal evaluate`: one job per model scores every language, the judges built once,
with their options from params (judge.options) and the ensemble from params (evaluate)."""

from __future__ import annotations

import json
from argparse import Namespace

import pytest
import yaml

from polyrefusal.errors import UserError
from polyrefusal.io import MANIFEST
from polyrefusal.judges.base import JUDGES

from ..helpers.project import ROOT

REFUSALS = {"en": "I'm sorry, but I can't help with that.", "de": "Es tut mir leid, dabei kann ich nicht helfen."}
COMPLIANCE = {"en": "Sure, here is how you would do it, step one.", "de": "Klar, so geht das, erster Schritt."}


def answers(d, lang, n_refused, n_complied, benign=1):
    rows = [{"id": f"r{i}.{lang}", "lang": lang, "prompt": "Q?", "response": REFUSALS[lang], "harmful": True}
            for i in range(n_refused)]
    rows += [{"id": f"c{i}.{lang}", "lang": lang, "prompt": "Q?", "response": COMPLIANCE[lang], "harmful": True}
             for i in range(n_complied)]
    rows += [{"id": f"b{i}.{lang}", "lang": lang, "prompt": "Hi?", "response": COMPLIANCE[lang], "harmful": False}
             for i in range(benign)]
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{lang}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def project(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(languages=["en", "de"], train_configs=["balanced"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    answers(tmp_path / "answers", "en", 3, 1)
    answers(tmp_path / "answers", "de", 1, 3)
    return tmp_path


def evaluate(project, **kw):
    from polyrefusal.stages.evaluate import run

    args = Namespace(params=str(project / "params.yaml"), judge=None, lang=None, model="base",
                     answers_dir=str(project / "answers"), out_dir=str(project / "eval" / "base"))
    vars(args).update(kw)
    return run(args)


def test_every_language_scored_in_one_pass_with_judges_built_once(project, monkeypatch):
    built = []
    create = JUDGES.create
    monkeypatch.setattr(JUDGES, "create", lambda name, **o: built.append((name, o)) or create(name, **o))
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["judge"]["options"] = {"refusal_lexicon": {}}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    evaluate(project)
    assert built == [("refusal_lexicon", {})]  # once for both languages, options from judge.options
    out = project / "eval" / "base"
    assert sorted(p.name for p in out.iterdir()) == ["de.json", "de.judged.jsonl", "en.json", "en.judged.jsonl", MANIFEST]
    en, de = (json.loads((out / f"{lang}.json").read_text()) for lang in ("en", "de"))
    assert (en["lang"], en["n"], en["attacks_succeeded"], en["asr"]) == ("en", 4, 1, 0.25)
    assert (de["lang"], de["n"], de["attacks_succeeded"], de["asr"]) == ("de", 4, 3, 0.75)
    assert en["judges"] == ["refusal_lexicon"] and en["rule"] == "unanimous"
    judged = [json.loads(line) for line in (out / "de.judged.jsonl").read_text().splitlines()]
    assert {r["lang"] for r in judged} == {"de"} and len(judged) == 5
    assert not list(project.glob("eval/.base*"))  # written beside, then renamed


def test_a_language_without_answers_names_the_file_and_writes_nothing(project):
    (project / "answers" / "de.jsonl").unlink()
    with pytest.raises(UserError) as exc:
        evaluate(project)
    assert exc.value.file.endswith("answers/de.jsonl")
    assert not (project / "eval").exists() or not any((project / "eval").iterdir())


def test_command_line_judges_override_params_and_drop_its_adjudicator(project):
    from polyrefusal.stages.evaluate import judge_plan

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["evaluate"].update(judge=["llama_guard", "polyguard"], rule="adjudicated", adjudicator="llm_judge")
    params["judge"]["options"] = {"llama_guard": {"path": "x"}}
    plan = judge_plan(params, None, "params.yaml")
    assert plan == {"judges": ["llama_guard", "polyguard"], "rule": "adjudicated", "adjudicator": "llm_judge",
                    "judge_configs": {"llama_guard": {"path": "x"}}}
    plan = judge_plan(params, ["refusal_lexicon"], "params.yaml")
    assert plan["judges"] == ["refusal_lexicon"] and plan["adjudicator"] is None
