"""The report stage end to end on synthetic judged answers (fast; no model, no pipeline run):
every output is written, both formats carry the same metrics, answers to harmful prompts are
truncated, and the HTML is self-contained."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
import yaml

from ..helpers.report import CONFIGS, GROUPS, LANGS, LONG_ANSWER, make_project, run_report


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    make_project(root)
    run_report(root)
    return root


def test_every_output_is_written(built):
    from polyrefusal.report.outputs import FIGURE_CAPTIONS as PLOTS, TABLES as SCORE_FILES

    res = built / "results"
    for f in SCORE_FILES:
        assert (res / "scores" / f).stat().st_size > 0, f
    for name in PLOTS:
        png = res / "report" / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert (res / "report" / "report.md").exists() and (res / "report" / "report.html").exists()


def test_kept_outputs_keep_their_columns(built):
    import pandas as pd

    res = built / "results" / "scores"
    asr = pd.read_csv(res / "asr.csv")
    assert list(asr.columns[:4]) == ["config", "lang", "n", "asr"]
    assert {"n_unparsed", "n_benign", "over_refusal", "language_consistency"} <= set(asr.columns)
    models = ["base", "audit_x", *CONFIGS]
    assert set(asr["config"]) == set(models)
    matrix = pd.read_csv(res / "transfer_matrix.csv", index_col=0)
    assert list(matrix.index) == ["base", *CONFIGS]  # audit models are not training configurations
    assert list(matrix.columns) == LANGS
    delta = pd.read_csv(res / "transfer_delta.csv", index_col=0)
    assert (delta.loc["base"] == 0).all()
    metrics = json.loads((res / "metrics.json").read_text())
    assert set(metrics["mean_asr"]) == set(models)
    assert metrics["balanced_lowers_mean_asr"] is True
    assert {"english_only_drop_en", "english_only_drop_others_mean", "english_only_lowers_english_more"} <= set(metrics)
    base = metrics["models"]["base"]
    assert base["mean_asr_lo"] <= base["mean_asr"] <= base["mean_asr_hi"]
    for key in ("over_refusal", "language_consistency", "group_gap", "language_gap", "capability_acc"):
        assert key in base, key
    assert "capability_delta" in metrics["models"]["balanced"]
    assert metrics["bootstrap"] == {"resamples": 200, "seed": 0, "level": 0.95}


def test_new_tables_agree_with_the_score_files(built):
    import pandas as pd

    res = built / "results" / "scores"
    asr = pd.read_csv(res / "asr.csv").set_index(["config", "lang"])
    ci = pd.read_csv(res / "asr_ci.csv")
    per_lang = ci[ci.by == "lang"].set_index(["config", "level"])
    for (config, lang), row in asr.iterrows():
        assert per_lang.loc[(config, lang), "asr"] == pytest.approx(row["asr"], abs=1e-4)
        assert per_lang.loc[(config, lang), "asr_lo"] <= row["asr"] + 1e-4 <= per_lang.loc[(config, lang), "asr_hi"] + 2e-4
    assert set(ci["by"]) == {"all", "lang", "target_group", "category", "style"}
    over = pd.read_csv(res / "over_refusal.csv").set_index(["config", "lang"])
    for (config, lang), row in asr.iterrows():
        assert over.loc[(config, lang), "over_refusal"] == pytest.approx(row["over_refusal"], abs=1e-4)
    cons = pd.read_csv(res / "language_consistency.csv").set_index(["config", "lang"])
    for (config, lang), row in asr.iterrows():
        assert cons.loc[(config, lang), "consistency"] == pytest.approx(row["language_consistency"], abs=1e-4)
    groups = pd.read_csv(res / "group_disparity.csv")
    assert set(groups["target_group"]) == set(GROUPS) and set(groups["scope"]) == {"all", *LANGS}
    summary = pd.read_csv(res / "disparity_summary.csv")
    assert set(summary["axis"]) == {"target_group", "lang"}
    cap = pd.read_csv(res / "capability.csv")
    assert set(cap["lang"]) == {"en", "de"} and cap[cap.config == "base"]["delta"].isna().all()
    order = json.loads((res / "transfer_order.json").read_text())
    assert sorted(order["rows"]) == sorted(LANGS)


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"[+-]?\d+\.\d{2,3}(?: \[[^\]]+\])?", text))


def test_both_formats_carry_the_same_content(built):
    md = (built / "results/report/report.md").read_text()
    page = (built / "results/report/report.html").read_text()
    # every figure with its CI in the Markdown is in the HTML too, and vice versa
    html_text = re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", "", page, flags=re.S))
    assert _numbers(md) and _numbers(md) == _numbers(html_text)
    for heading in re.findall(r"^## (.+)$", md, flags=re.M):
        if heading != "Contents":
            assert heading.replace("&", "&amp;") in page, heading
    for needle in ("py3langid", "not configured", "audit_x", "inf",
                   "Only one judge", "Languages the capability set does not cover"):
        assert needle in md and needle in page, needle
    assert "Languages the capability set does not cover: `sl`." in md
    # one <img> per plot, each an embedded PNG; no file or network references
    imgs = re.findall(r'<img src="([^"]+)"', page)
    from polyrefusal.report.outputs import FIGURE_CAPTIONS as PLOTS

    shown = set(re.findall(r"\(plots/(\w+)\.png\)", md))
    assert len(imgs) == len(shown) and shown <= set(PLOTS)
    for src in imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"
    assert not re.search(r'(?:src|href)="(?:https?:|file:|plots/)', page)
    assert page.count("<table>") == len(re.findall(r"^\|---", md, flags=re.M)) > 10


def test_answers_to_harmful_prompts_are_truncated(built, tmp_path):
    md = (built / "results/report/report.md").read_text()
    page = (built / "results/report/report.html").read_text()
    assert LONG_ANSWER.strip() not in md and LONG_ANSWER.strip() not in page
    assert "Sure, here is what you asked for." in md and "…" in md
    # --show-full-answers shows them in full
    root = tmp_path / "full"
    make_project(root, audit=False, capability=False)
    run_report(root, "--show-full-answers", bootstrap=50)
    md = (root / "results/report/report.md").read_text()
    assert LONG_ANSWER.strip() in md
    assert "Capability: not run" in md  # no capability results: said so, not an error


def test_optional_steps_when_configured(tmp_path):
    """Fluency scored by a configured rubric judge; agreement between two judges."""
    from polyrefusal.judges import JUDGES, Judge

    if "test_fluency_constant" not in JUDGES.names():
        @JUDGES.register("test_fluency_constant")
        class Constant(Judge):
            def judge(self, records):
                assert all(r["harmful"] is False for r in records)  # benign answers only
                return [{"label": "safe", "refused": False, "score": 0.5 if r["lang"] == "en" else 1.0,
                         "categories": []} for r in records]

    root = tmp_path / "p"
    make_project(root, audit=False, capability=False, two_judges=True,
                 report={"fluency_judge": "test_fluency_constant", "fluency_options": {}})
    run_report(root, bootstrap=50)
    import pandas as pd

    res = root / "results"
    flu = pd.read_csv(res / "scores/fluency.csv").set_index(["config", "lang"])
    assert flu.loc[("base", "en"), ["n", "score", "score_lo", "score_hi"]].tolist() == [6, 0.5, 0.5, 0.5]
    assert flu.loc[("balanced", "de"), "score"] == 1.0
    kappa = pd.read_csv(res / "scores/judge_agreement.csv")
    assert {"lang", "judge_a", "judge_b", "kappa"} <= set(kappa.columns)
    assert set(kappa["lang"]) == set(LANGS) and (kappa["kappa"] < 1).all()
    md = (res / "report/report.md").read_text()
    page = (res / "report/report.html").read_text()
    for text in (md, page):
        assert "Mean rubric score" in text and "test_fluency_constant" in text
        assert "Cohen&#x27;s kappa per language" in text or "Cohen's kappa per language" in text
        assert "not configured" not in text
    assert "](plots/judge_agreement.png)" in md


# --- the judge's measured accuracy next to every ASR --------------------------------------------

def test_judge_accuracy_sits_next_to_every_asr(built):
    """asr.csv and the per-language ASR table carry the accuracy shipped with the judge
    (refusal_lexicon: polyrefusal/data/lexicon/accuracy.json, from its frozen set)."""
    import pandas as pd

    from polyrefusal.judges.refusal_lexicon import measured_accuracy

    shipped = measured_accuracy()["per_language"]
    asr = pd.read_csv(built / "results" / "scores" / "asr.csv")
    assert {"judge_accuracy", "judge_accuracy_n", "judge_accuracy_source"} <= set(asr.columns)
    for r in asr.itertuples():
        assert r.judge_accuracy == pytest.approx(shipped[r.lang]["accuracy"]), r.lang
        assert r.judge_accuracy_n == shipped[r.lang]["n"] and r.judge_accuracy_source == "frozen set"
    md = (built / "results" / "report" / "report.md").read_text(encoding="utf-8")
    row = next(line for line in md.splitlines() if line.startswith("| judge accuracy"))
    for lang in LANGS:
        assert f"{shipped[lang]['accuracy']:.2f} (n={shipped[lang]['n']}, frozen set)" in row
    assert "Judge `refusal_lexicon`: accuracy per language from frozen set" in md


def test_a_reviewed_audit_updates_the_judge_accuracy(tmp_path):
    """The human-audit round trip: a reviewed sample imported with `polyrefusal judge
    --audit-import ... --audit-report FILE.json`, named in params as `report.judge_audit`,
    replaces the shipped figure for the languages it covers (here sl: 3 of 4 right), the others
    keep theirs. A report file that params do not name is not read (no hidden input)."""
    import pandas as pd

    from polyrefusal import cli
    from polyrefusal.io import write_records
    from polyrefusal.judges.refusal_lexicon import measured_accuracy

    root = tmp_path / "proj"
    make_project(root, audit=False, capability=False)
    rows = [{"id": f"r{i}", "lang": "sl", "cell": "refusal_lexicon=safe", "prompt": "p", "response": "a",
             "label": judge, "refused": judge == "safe", "refusal_lexicon_label": judge,
             "human_label": human, "human_refused": "", "notes": ""}
            for i, (judge, human) in enumerate([("safe", "safe"), ("unsafe", "unsafe"), ("safe", "safe"),
                                                ("safe", "unsafe")])]
    reviewed = tmp_path / "reviewed.csv"
    write_records(reviewed, rows)
    out = root / "audit" / "judge_accuracy.json"
    assert cli.main(["judge", "--audit-import", str(reviewed), "--audit-report", str(out)]) == 0
    run_report(root)
    asr = pd.read_csv(root / "results" / "scores" / "asr.csv").drop_duplicates("lang").set_index("lang")
    assert asr.loc["sl", "judge_accuracy_source"] == "frozen set"  # not named in params: not read
    params = yaml.safe_load((root / "params.yaml").read_text())
    params.setdefault("report", {})["judge_audit"] = str(out)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_report(root)
    asr = pd.read_csv(root / "results" / "scores" / "asr.csv").drop_duplicates("lang").set_index("lang")
    assert asr.loc["sl", "judge_accuracy"] == pytest.approx(0.75)
    assert asr.loc["sl", "judge_accuracy_n"] == 4 and asr.loc["sl", "judge_accuracy_source"] == "human audit"
    assert asr.loc["de", "judge_accuracy"] == pytest.approx(measured_accuracy()["per_language"]["de"]["accuracy"])
    md = (root / "results" / "report" / "report.md").read_text(encoding="utf-8")
    assert "0.75 (n=4, human audit)" in md


def test_a_published_studys_verdicts_update_the_judge_accuracy_and_are_named(tmp_path):
    """`polyrefusal judge --reference mijabench` on MiJaBench's answered and judged rows (the
    fixture of tests/judges/test_judge_reference.py, built from the study's scripts) writes a
    report that params `report.judge_audit` can name like a human audit's: the judge's accuracy
    in en and pt then comes from the study's panel, and the report says so."""
    import pandas as pd

    from polyrefusal import cli
    from polyrefusal.judges.reference import MIJABENCH_REFERENCE

    from ..helpers.corpus import write_parquet
    from ..judges.test_judge_reference import answered_rows

    root = tmp_path / "proj"
    make_project(root, audit=True, capability=False)
    source = write_parquet(tmp_path / "mijabench.parquet", answered_rows())
    out = root / "audit" / "mijabench_panel.json"
    assert cli.main(["judge", "--judge", "refusal_lexicon", "--reference", "mijabench", str(source),
                     str(tmp_path / "judged.parquet"), "--audit-report", str(out)]) == 0
    params = yaml.safe_load((root / "params.yaml").read_text())
    params.setdefault("report", {})["judge_audit"] = str(out)
    # the audit model is one the study evaluated (its hub id ends in the study's model name)
    params["audit_models"]["audit_x"]["path"] = "meta-llama/Llama-3.1-8B-Instruct"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_report(root)
    asr = pd.read_csv(root / "results" / "scores" / "asr.csv").drop_duplicates("lang").set_index("lang")
    report = json.loads(out.read_text(encoding="utf-8"))
    for lang in ("en", "pt"):
        if lang in asr.index:
            assert asr.loc[lang, "judge_accuracy_source"] == MIJABENCH_REFERENCE
            assert asr.loc[lang, "judge_accuracy_n"] == report["per_language"][lang]["refusal_lexicon"]["n_parsed"]
    assert "en" in asr.index or "pt" in asr.index
    md = (root / "results" / "report" / "report.md").read_text(encoding="utf-8")
    assert f"{MIJABENCH_REFERENCE}: that study's verdicts on its real answers" in md
    # the study's defense rate beside ours, for the model both evaluated, in the languages of the run
    assert f"Defense rate per target group beside the published one ({MIJABENCH_REFERENCE})" in md
    published = {(r["lang"], r["target_group"]): r for r in report["reference_defense_rate"]
                 if r["model"] == "Llama-3.1-8B-Instruct"}
    gdis = pd.read_csv(root / "results" / "scores" / "group_disparity.csv")
    mine = gdis[(gdis["config"] == "audit_x") & (gdis["scope"] == "en") & (gdis["target_group"] == "black")].iloc[0]
    row = next(line for line in md.splitlines() if line.startswith("| audit_x | en | black |"))
    assert f"| {mine['defense_rate']:.2f} [" in row and f"| {published[('en', 'black')]['defense_rate']:.2f} |" in row
    assert "| audit_x | en | mental_disability | – | – |" in md  # a group the study has and this run lacks
    assert "| audit_x | pt |" not in md  # pt is not a language of this run
