"""RefusEU imported as released.

Source of the format: the dataset card huggingface.co/datasets/NASK-PIB/RefusEU (README.md): its
`configs:` header declares `evaluation` (split `eval`, `evaluation/eval-*`) and one `lang_xx`
configuration per language (`pl en cs sk sl lt lv de it fr es pt`) with splits `train`
(`lang_xx/train-*`) and `test` (`lang_xx/test-*`). Rows of `lang_xx` carry `id`, `row_id`,
`category` and `chosen` / `rejected` as chat message lists ([{content, role}, ...]): the prompt is
the first user turn, each answer the last assistant turn; `id` repeats across categories. The
stored copy of the card shows its header only up to the configs, not the `evaluation`
configuration's features: the evaluation fixture below uses the same row shape with a plain
`prompt` column, which the importer also reads.

The fixtures are written here in that layout (a card header like the official one, Parquet files
under `lang_xx/`); prompts name an abstract harmful goal, compliance answers show only its shape.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from polyrefusal.corpus import CorpusError, import_corpus
from polyrefusal.errors import UserError

from ..helpers.corpus import LANGUAGES, run_corpus, write_parquet

QUESTIONS = {"de": "[Platzhalter: eine schädliche Bitte]", "pl": "[Symbol zastępczy: szkodliwa prośba]"}
REFUSAL = {"de": "Dabei kann ich nicht helfen.", "pl": "Nie mogę w tym pomóc."}
COMPLY = {"de": "Klar, hier ist es: [ausgelassen]", "pl": "Jasne, oto: [pominięto]"}


def messages(prompt: str, answer: str) -> list[dict]:
    return [{"content": prompt, "role": "user"}, {"content": answer, "role": "assistant"}]


def lang_row(lang: str, qid: int, row_id: int, category: str, n: int = 0) -> dict:
    q = f"{QUESTIONS[lang]} #{qid}.{n}"
    return {"id": qid, "row_id": row_id, "category": category,
            "chosen": messages(q, REFUSAL[lang]), "rejected": messages(q, COMPLY[lang])}


def write_card_dataset(root: Path, configs: dict[str, dict[str, list[dict]]]) -> Path:
    """A directory in the hub's file layout, with a card header shaped like RefusEU's."""
    root.mkdir(parents=True, exist_ok=True)
    header = {"language": ["pl", "de"], "pretty_name": "RefusEU-shaped fixture", "configs": [
        {"config_name": name, "data_files": [{"split": split, "path": f"{name}/{split}-*"} for split in splits]}
        for name, splits in configs.items()]}
    (root / "README.md").write_text(f"---\n{yaml.safe_dump(header, sort_keys=False)}---\n\n# fixture\n",
                                    encoding="utf-8")
    for name, splits in configs.items():
        (root / name).mkdir(exist_ok=True)
        for split, rows in splits.items():
            write_parquet(root / name / f"{split}-00000-of-00001.parquet", rows)
    return root


@pytest.fixture
def refuseu(tmp_path) -> Path:
    # id 7 repeats across categories; (7, violent_crimes) exists in both languages.
    de = {"train": [lang_row("de", 7, 0, "violent_crimes"), lang_row("de", 7, 1, "Privacy"),
                    lang_row("de", 8, 2, "suicide_self_harm")],
          "test": [lang_row("de", 9, 0, "S13")]}
    pl = {"train": [lang_row("pl", 7, 0, "violent_crimes")], "test": [lang_row("pl", 9, 0, "S13")]}
    evaluation = {"eval": [{"id": "31_pl", "row_id": 0, "category": "elections",
                            "prompt": "[Symbol zastępczy: prośba ewaluacyjna]"}]}
    return write_card_dataset(tmp_path / "RefusEU", {"evaluation": evaluation, "lang_de": de, "lang_pl": pl})


def test_one_configuration_imports_message_lists(refuseu):
    got = import_corpus(str(refuseu), lang="en", layout="refuseu", subset="lang_de", languages=LANGUAGES)
    assert [r["lang"] for r in got] == ["de"] * 4
    assert got[0]["text"] == f"{QUESTIONS['de']} #7.0"
    assert got[0]["chosen"] == REFUSAL["de"] and got[0]["rejected"] == COMPLY["de"]
    assert [r["category"] for r in got] == ["S1", "S7", "S11", "S13"]
    # id 7 repeats across categories: the record ids are built and stay unique.
    assert [r["id"] for r in got] == ["refuseu.s1.7.de", "refuseu.s7.7.de", "refuseu.s11.8.de",
                                      "refuseu.s13.9.de"]
    assert {r["style"] for r in got} == {"direct"} and all(r["harmful"] for r in got)
    assert {r["origin"] for r in got} == {"dataset:RefusEU"}


def test_every_configuration_and_the_same_question_pairs_across_languages(refuseu):
    got = import_corpus(str(refuseu), lang="en", layout="refuseu", languages=LANGUAGES)
    assert [r["lang"] for r in got] == ["pl", "de", "de", "de", "de", "pl", "pl"]
    by_id = {r["id"]: r for r in got}
    assert by_id["refuseu.s1.7.pl"]["source_id"] == by_id["refuseu.s1.7.de"]["source_id"]
    # The evaluation row: language from the id's suffix, prompt from its plain column.
    assert got[0]["id"] == "refuseu.s13.31.pl" and got[0]["text"].startswith("[Symbol")
    assert got[0]["chosen"] is None
    only_test = import_corpus(str(refuseu), lang="en", layout="refuseu", split="test")
    assert [r["id"] for r in only_test] == ["refuseu.s13.9.de", "refuseu.s13.9.pl"]


def test_hub_configuration_gives_the_language(monkeypatch):
    """`corpus.source: NASK-PIB/RefusEU`, `corpus.subset: lang_de`: datasets stands in for the hub."""
    import datasets

    from polyrefusal import hub

    rows = [lang_row("de", 3, 0, "hate"), lang_row("de", 4, 1, "Indiscriminate Weapons")]
    monkeypatch.setattr(hub, "unreachable", lambda timeout=3.0, datasets=False: None)
    monkeypatch.setattr(datasets, "load_dataset", lambda repo, name=None, split=None, revision=None:
                        datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}))
    got = import_corpus("NASK-PIB/RefusEU", lang="en", layout="refuseu", subset="lang_de")
    assert [(r["id"], r["lang"], r["category"]) for r in got] == [("refuseu.s10.3.de", "de", "S10"),
                                                                  ("refuseu.s9.4.de", "de", "S9")]
    assert got[0]["chosen"] == REFUSAL["de"]


def test_language_from_the_id_suffix_or_the_defaults(tmp_path):
    rows = [dict(lang_row("pl", 5, 0, "S2"), id="5_pl"), dict(lang_row("de", 5, 1, "S2"), id="5-de")]
    src = write_parquet(tmp_path / "mixed.parquet", rows)
    got = import_corpus(str(src), lang="en", layout="refuseu")
    assert [(r["lang"], r["source_id"]) for r in got] == [("pl", "mixed.s2.5"), ("de", "mixed.s2.5")]
    plain = write_parquet(tmp_path / "plain.parquet", [lang_row("de", 5, 0, "S2")])
    got = import_corpus(str(plain), lang="en", layout="refuseu", defaults={"lang": "de"})
    assert got[0]["lang"] == "de"


def test_a_message_list_without_an_assistant_turn_is_an_error(tmp_path, capsys):
    bad = dict(lang_row("de", 1, 1, "S1"), rejected=[{"content": "[prompt]", "role": "user"}])
    root = write_card_dataset(tmp_path / "bad", {"lang_de": {"train": [lang_row("de", 1, 0, "S2"), bad]}})
    rc, err, out = run_corpus(tmp_path, capsys, source=str(root), layout="refuseu", subset="lang_de")
    assert rc == 2 and not out.exists() and len(err.splitlines()) == 1
    assert f"{root}/lang_de/train-00000-of-00001.parquet:2: field 'rejected': the message list has no " \
           "assistant turn" in err


def test_an_unknown_configuration_or_split_names_it(refuseu):
    with pytest.raises(UserError, match="no configuration 'lang_xx'.*evaluation, lang_de, lang_pl"):
        import_corpus(str(refuseu), lang="en", layout="refuseu", subset="lang_xx")
    with pytest.raises(UserError, match="no split 'dev'"):
        import_corpus(str(refuseu), lang="en", layout="refuseu", split="dev")


def test_non_hazard_category_names_are_kept(tmp_path):
    src = write_parquet(tmp_path / "cats.parquet", [lang_row("de", 1, 0, "Phishing scenario")])
    got = import_corpus(str(src), lang="en", layout="refuseu", defaults={"lang": "de"})
    assert got[0]["category"] == "Phishing scenario"
    with pytest.raises(CorpusError, match="unknown hazard code 'S15'"):
        import_corpus(str(write_parquet(tmp_path / "s15.parquet", [lang_row("de", 1, 0, "S15")])), lang="de",
                      layout="refuseu")
