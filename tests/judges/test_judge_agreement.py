"""Cohen's kappa (against hand-computed values), the per-language kappa table and heatmap, and the
human audit sample out and back in."""

from __future__ import annotations

import pandas as pd
import pytest

from polyrefusal.errors import UserError
from polyrefusal.judges.agreement import cohen_kappa, kappa_table, plot_kappa_heatmap
from polyrefusal.judges.audit import export_sample, import_reviewed

S, U = "safe", "unsafe"


def test_cohen_kappa_hand_computed():
    a = [S, S, U, U, S, U, S, S, U, S]
    b = [S, U, U, U, S, S, S, S, U, S]
    # confusion: SS=5 SU=1 US=1 UU=3; po=0.8; pe=0.6*0.6+0.4*0.4=0.52; kappa=0.28/0.48
    assert cohen_kappa(a, b) == pytest.approx(0.28 / 0.48)
    assert cohen_kappa([S, U], [U, S]) == pytest.approx(-1.0)
    assert cohen_kappa([S, U, S], [S, U, S]) == pytest.approx(1.0)
    # po=0.5, pe=0.5*0.75+0.5*0.25=0.5 -> 0
    assert cohen_kappa([S, S, U, U], [S, U, U, U]) == pytest.approx(0.5)
    assert cohen_kappa([S, S, U, U], [U, S, U, S]) == pytest.approx(0.0)
    assert cohen_kappa([S, S], [S, S]) is None  # chance agreement 1: undefined
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        cohen_kappa([S], [S, U])


def test_cohen_kappa_agrees_with_sklearn_when_installed():
    sk = pytest.importorskip("sklearn.metrics")
    import random
    rng = random.Random(3)
    for _ in range(20):
        a = [rng.choice([S, U]) for _ in range(30)]
        b = [x if rng.random() < 0.7 else rng.choice([S, U]) for x in a]
        assert cohen_kappa(a, b) == pytest.approx(sk.cohen_kappa_score(a, b))


def rec(lang, **labels):
    return {"id": f"{lang}-{len(labels)}", "lang": lang, "prompt": "p", "response": "r",
            "label": "safe", "refused": True,
            "verdicts": {j: {"label": lb, "refused": None, "score": None, "categories": []} for j, lb in labels.items()}}


def judged_records():
    out = []
    a = [S, S, U, U, S, U, S, S, U, S]
    b = [S, U, U, U, S, S, S, S, U, S]
    for x, y in zip(a, b):
        out.append(rec("de", lg=x, pg=y, lex=x))
    out.append(rec("de", lg="unparsed", pg=S, lex=S))
    out += [rec("sl", lg=S, pg=S), rec("sl", lg=U, pg=U), rec("sl", lg=S, pg=U)]
    return out


def test_kappa_table_per_language_and_pair():
    table = kappa_table(judged_records())
    rows = {(r["lang"], r["judge_a"], r["judge_b"]): r for r in table}
    assert set(rows) == {("de", "lex", "lg"), ("de", "lex", "pg"), ("de", "lg", "pg"), ("sl", "lg", "pg")}
    de = rows[("de", "lg", "pg")]
    assert (de["n"], de["n_unparsed"]) == (10, 1)
    assert de["kappa"] == pytest.approx(0.28 / 0.48) and de["agreement"] == pytest.approx(0.8)
    assert rows[("de", "lex", "lg")]["kappa"] == pytest.approx(1.0)
    assert rows[("de", "lex", "pg")]["n"] == 11
    sl = rows[("sl", "lg", "pg")]
    # SS, UU, SU: po=2/3, pe=(2/3*1/3)+(1/3*2/3)=4/9 -> (2/3-4/9)/(5/9)=0.4
    assert sl["n"] == 3 and sl["kappa"] == pytest.approx(0.4)
    assert set(table[0]) >= {"lang", "judge_a", "judge_b", "n", "kappa", "agreement"}


def test_kappa_table_pooled_and_prefixed_fields():
    recs = judged_records()
    pooled = [r for r in kappa_table(recs, include_all=True) if r["lang"] == "all"]
    assert {(r["judge_a"], r["judge_b"]) for r in pooled} == {("lex", "lg"), ("lex", "pg"), ("lg", "pg")}
    assert next(r for r in pooled if r["judge_a"] == "lg")["n"] == 13
    moved = [{"lang": r["lang"], "chosen_verdicts": r["verdicts"]} for r in recs]
    assert kappa_table(moved, field="chosen") == kappa_table(recs)
    assert kappa_table([{"lang": "en", "verdicts": {"a": {"label": S}}}]) == []  # one judge: no pair
    only = kappa_table(recs, judges=["lg", "pg"])
    assert {(r["judge_a"], r["judge_b"]) for r in only} == {("lg", "pg")}


def test_heatmap_is_written(tmp_path):
    table = kappa_table(judged_records())
    path = tmp_path / "plots" / "kappa.png"
    plot_kappa_heatmap(table, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plot_kappa_heatmap([], tmp_path / "empty.png")  # nothing to show is not an error
    assert (tmp_path / "empty.png").exists()


# --- audit ------------------------------------------------------------------------------------------

def many_records():
    out = []
    for i in range(40):
        lang = ["de", "sl"][i % 2]
        lg = S if i % 3 else U
        pg = S if i % 4 else U
        r = rec(lang, lg=lg, pg=pg)
        r["id"] = f"id{i}"
        r["label"] = U if (lg == U and pg == U) else S
        out.append(r)
    return out


def test_export_sample_is_stratified_and_seeded(tmp_path):
    recs = many_records()
    rows = export_sample(recs, tmp_path / "a.csv", per_cell=2, seed=1)
    cells = {(r["lang"], r["cell"]) for r in recs for r in [dict(r, cell="|".join(f"{j}={v['label']}" for j, v in sorted(r["verdicts"].items())))]}
    assert len(rows) == sum(min(2, sum(1 for r in recs if (r["lang"], "|".join(f"{j}={v['label']}" for j, v in sorted(r["verdicts"].items()))) == c)) for c in cells)
    assert {(r["lang"], r["cell"]) for r in rows} == cells
    df = pd.read_csv(tmp_path / "a.csv", dtype=str, keep_default_na=False)
    assert list(df.columns) == ["id", "lang", "cell", "prompt", "response", "label", "refused", "lg_label", "pg_label",
                                "human_label", "human_refused", "notes"]
    assert (df["human_label"] == "").all()
    again = export_sample(recs, tmp_path / "b.csv", per_cell=2, seed=1)
    other = export_sample(recs, tmp_path / "c.csv", per_cell=2, seed=2)
    assert [r["id"] for r in again] == [r["id"] for r in rows]
    assert [r["id"] for r in other] != [r["id"] for r in rows]
    with pytest.raises(UserError):
        export_sample(recs, tmp_path / "d.csv", per_cell=0)


def test_import_reviewed_reports_accuracy_and_kappa(tmp_path):
    path = tmp_path / "audit.csv"
    rows = [
        {"id": "1", "lang": "de", "label": S, "refused": True, "lg_label": S, "pg_label": S, "human_label": "safe"},
        {"id": "2", "lang": "de", "label": U, "refused": False, "lg_label": U, "pg_label": S, "human_label": "Unsafe"},
        {"id": "3", "lang": "de", "label": S, "refused": True, "lg_label": S, "pg_label": U, "human_label": "safe"},
        {"id": "4", "lang": "sl", "label": U, "refused": False, "lg_label": "unparsed", "pg_label": U, "human_label": "unsafe"},
        {"id": "5", "lang": "sl", "label": S, "refused": True, "lg_label": S, "pg_label": S, "human_label": ""},
        {"id": "6", "lang": "sl", "label": S, "refused": True, "lg_label": U, "pg_label": S, "human_label": "skip"},
    ]
    for r in rows:
        r.update(human_refused="yes" if r["refused"] else "no", notes="")
    pd.DataFrame(rows).to_csv(path, index=False)
    rep = import_reviewed(path)
    assert (rep["n_rows"], rep["n_reviewed"], rep["n_skipped"]) == (6, 4, 2)
    lg, pg, ens = rep["judges"]["lg"], rep["judges"]["pg"], rep["judges"]["ensemble"]
    assert (lg["n"], lg["n_parsed"], lg["n_unparsed"]) == (4, 3, 1)
    assert lg["accuracy"] == pytest.approx(1.0) and lg["kappa"] == pytest.approx(1.0)
    # pg vs human: (S,S) (S,U) (U,S) (U,U): po=0.5, pe=0.5 -> kappa 0
    assert pg["accuracy"] == pytest.approx(0.5) and pg["kappa"] == pytest.approx(0.0)
    assert ens["accuracy"] == pytest.approx(1.0)
    assert rep["per_language"]["sl"]["pg"]["n"] == 1
    assert rep["refused_accuracy"] == {"n": 4, "accuracy": 1.0}


def test_import_reviewed_rejects_bad_labels_with_the_row(tmp_path):
    path = tmp_path / "audit.csv"
    pd.DataFrame([{"id": "1", "lang": "de", "label": S, "lg_label": S, "human_label": "safe"},
                  {"id": "2", "lang": "de", "label": S, "lg_label": S, "human_label": "usafe"}]).to_csv(path, index=False)
    with pytest.raises(UserError) as exc:
        import_reviewed(path)
    assert exc.value.line == 2 and exc.value.field == "human_label"
    pd.DataFrame([{"id": "1", "x": "y"}]).to_csv(path, index=False)
    with pytest.raises(UserError, match="human_label"):
        import_reviewed(path)


def test_audit_roundtrip(tmp_path):
    recs = many_records()
    path = tmp_path / "sample.csv"
    export_sample(recs, path, per_cell=3, seed=0)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df["human_label"] = df["label"]  # the humans agree with the ensemble
    df.to_csv(path, index=False)
    rep = import_reviewed(path)
    assert rep["n_reviewed"] == len(df)
    assert rep["judges"]["ensemble"]["accuracy"] == pytest.approx(1.0)
    assert set(rep["judges"]) == {"ensemble", "lg", "pg"}
