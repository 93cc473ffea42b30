"""The transfer matrix, its change against the base model, and the seriation of the
single-language configurations, on hand-made matrices."""

from __future__ import annotations

import pandas as pd
import pytest

from polyrefusal.scoring import transfer as T

LANGS = ["en", "de", "cs", "sk"]


def asr_rows(table: dict) -> pd.DataFrame:
    return pd.DataFrame([{"config": c, "lang": lang, "asr": v} for c, row in table.items()
                         for lang, v in zip(LANGS, row)])


@pytest.fixture
def table():
    # en and de transfer to each other, cs and sk to each other; little across the blocks.
    return {
        "base": [0.9, 0.9, 0.8, 0.8],
        "balanced": [0.1, 0.2, 0.2, 0.2],
        "single_cs": [0.8, 0.9, 0.2, 0.3],
        "single_en": [0.1, 0.3, 0.7, 0.8],
        "single_sk": [0.9, 0.8, 0.3, 0.2],
        "single_de": [0.3, 0.1, 0.8, 0.7],
    }


def test_matrix_and_delta(table):
    models = list(table)
    m = T.transfer_matrix(asr_rows(table), models, LANGS)
    assert list(m.index) == models and list(m.columns) == LANGS
    assert m.loc["single_en", "de"] == 0.3
    d = T.transfer_delta(m)
    assert d.loc["base"].tolist() == [0.0] * 4
    assert d.loc["single_en"].tolist() == pytest.approx([-0.8, -0.6, -0.1, 0.0])
    sq = T.single_language_matrix(d, LANGS)
    assert list(sq.index) == ["en", "de", "cs", "sk"]  # study order, prefix stripped
    assert sq.loc["cs", "sk"] == pytest.approx(-0.5)


def test_seriation_puts_mutually_transferring_languages_together(table):
    d = T.transfer_delta(T.transfer_matrix(asr_rows(table), list(table), LANGS))
    sq = T.single_language_matrix(d, LANGS)
    o = T.seriate(sq)
    blocks = [{"en", "de"}, {"cs", "sk"}]
    assert {frozenset(o.rows[:2]), frozenset(o.rows[2:])} == {frozenset(b) for b in blocks}
    assert o.columns == o.rows  # square: columns follow the rows
    assert o.clusters["en"] == o.clusters["de"] != o.clusters["cs"] == o.clusters["sk"]
    assert len(o.linkage) == 3  # n - 1 merges


def test_seriation_needs_three_rows():
    sq = pd.DataFrame([[-0.1, 0.0], [0.0, -0.2]], index=["en", "de"], columns=["en", "de"])
    o = T.seriate(sq)
    assert o.rows == ["en", "de"] and o.linkage == [] and "fewer than 3" in o.method


def test_transfer_summary(table):
    d = T.transfer_delta(T.transfer_matrix(asr_rows(table), list(table), LANGS))
    s = T.transfer_summary(T.single_language_matrix(d, LANGS)).set_index("train_lang")
    # training on en: itself -0.8; others de -0.6, cs -0.1, sk 0.0 -> mean -0.2333, best de
    assert s.loc["en", "self"] == pytest.approx(-0.8)
    assert s.loc["en", "others_mean"] == pytest.approx((-0.6 - 0.1 + 0.0) / 3)
    assert s.loc["en", "best_other"] == "de" and s.loc["en", "best_other_delta"] == pytest.approx(-0.6)
    # en receives from de -0.6, cs -0.1, sk 0.0
    assert s.loc["en", "received_mean"] == pytest.approx((-0.6 - 0.1 + 0.0) / 3)
