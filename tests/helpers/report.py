"""A synthetic study on disk (judged answers, scores, training logs, capability, pair stats and
its params.yaml) and the `report` stage run on it, for the report tests."""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

import yaml

from .project import ROOT

LANGS = ["en", "de", "sl"]
CONFIGS = ["balanced", "english_only", "single_en", "single_de", "single_sl"]
GROUPS = ["black", "jewish", "women", "elderly"]
CATEGORIES = ["S1", "S2", "S10"]
STYLES = ["role_play", "hypothetical"]
LONG_ANSWER = "Sure, here is what you asked for. Step 1: [details omitted]. " * 4
#: attack success probability per model (the synthetic "truth")
P_SUCCESS = {"base": 0.9, "audit_x": 0.6, "balanced": 0.2, "english_only": 0.5, "single_en": 0.55,
             "single_de": 0.5, "single_sl": 0.45}


def synthetic_records(model: str, lang: str, seed: int = 0, two_judges: bool = False) -> list[dict]:
    rnd = random.Random(f"{seed}:{model}:{lang}")
    out = []
    i = 0
    for cat in CATEGORIES:
        for style in STYLES:
            for k in range(3):
                group = GROUPS[(i + k) % len(GROUPS)] if cat == "S10" else None
                p = P_SUCCESS[model] * (1.1 if group == "women" else 1.0) * (0.8 if lang == "en" else 1.0)
                unsafe = rnd.random() < min(p, 1.0)
                label = "unsafe" if unsafe else "safe"
                if i == 5 and model == "base":
                    label = "unparsed"
                out.append(dict(id=f"harm.{cat}.{style}.{k}.{lang}", source_id=f"harm.{cat}.{style}.{k}",
                                lang=lang, category=cat, style=style, target_group=group, harmful=True,
                                origin="builtin", prompt=f"prompt {i}", model=model, judge="refusal_lexicon",
                                response=LONG_ANSWER if unsafe else "I'm sorry, but I can't help with that.",
                                label=label, refused=None if label == "unparsed" else not unsafe,
                                answer_lang=lang if rnd.random() < 0.8 else "en",
                                verdicts={"refusal_lexicon": {"label": label, "refused": not unsafe,
                                                              "score": None, "categories": []}}))
                i += 1
    for k in range(6):
        refused = rnd.random() < (0.6 if model == "balanced" else 0.1)
        out.append(dict(id=f"benign.{k}.{lang}", source_id=f"benign.{k}", lang=lang, category="benign",
                        style="benign", target_group=None, harmful=False, origin="builtin",
                        prompt=f"benign {k}", model=model, judge="refusal_lexicon",
                        response="I'm sorry, I can't." if refused else "Happy to help: [explanation].",
                        label="safe", refused=refused, answer_lang=lang,
                        verdicts={"refusal_lexicon": {"label": "safe", "refused": refused, "score": None,
                                                      "categories": []}}))
    if two_judges:  # a second judge that disagrees on every fifth answer
        for k, r in enumerate(out):
            label = r["label"] if k % 5 else {"safe": "unsafe", "unsafe": "safe"}.get(r["label"], "unparsed")
            r["verdicts"]["llama_guard"] = {"label": label, "refused": None, "score": None, "categories": []}
    return out


def make_project(root: Path, *, audit: bool = True, capability: bool = True, two_judges: bool = False,
                 report: dict | None = None) -> dict:
    """results/{eval,models,capability,pairs} and a params.yaml for the synthetic study."""
    from polyrefusal.scoring.metrics import score

    root.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(languages=LANGS, train_configs=CONFIGS, preset="test")
    if report:
        params["report"] = report
    if audit:
        params["audit_models"] = {"audit_x": {"path": "some/model", "backend": "transformers", "gpus": 0}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    models = ["base", *(["audit_x"] if audit else []), *CONFIGS]
    res = root / "results"
    for m in models:
        for lang in LANGS:
            recs = synthetic_records(m, lang, two_judges=two_judges)
            d = res / "eval" / m
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{lang}.judged.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
            s = {"model": m, "lang": lang, "judges": ["refusal_lexicon"], "rule": "unanimous", **score(recs, lang)}
            (d / f"{lang}.json").write_text(json.dumps(s))
        if capability:
            rnd = random.Random(m)
            cap = {"model": m, "source": "builtin", "format": "cloze", "lm_eval_version": "0.4.13",
                   "not_covered": ["sl"], "languages": {}}
            for lang in ["en", "de"]:
                items = {f"q{i:02d}": int(rnd.random() < (0.6 if m == "base" else 0.5)) for i in range(20)}
                cap["languages"][lang] = {"n": 20, "acc": sum(items.values()) / 20, "items": items}
            (res / "capability").mkdir(parents=True, exist_ok=True)
            (res / "capability" / f"{m}.json").write_text(json.dumps(cap))
    for c in CONFIGS:
        d = res / "models" / c
        d.mkdir(parents=True, exist_ok=True)
        (d / "metrics.json").write_text(json.dumps({"config": c, "examples": 40, "steps": 15, "final_loss": 0.4,
                                                    "final_reward_margin": 1.2, "final_reward_accuracy": 0.9}))
        with open(d / "train_log.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["step", "loss", "reward_margin", "reward_accuracy"])
            for step in range(1, 16):
                w.writerow([step, 0.7 - 0.02 * step, 0.1 * step, min(1.0, 0.5 + 0.03 * step)])
    for lang in LANGS:
        (res / "pairs").mkdir(parents=True, exist_ok=True)
        (res / "pairs" / f"{lang}.stats.json").write_text(json.dumps({"test": 30, "train_kept": 50, "train_dropped": 3}))
    return params


def run_report(root: Path, *extra: str, bootstrap: int = 200) -> None:
    from polyrefusal.stages import report

    p = argparse.ArgumentParser()
    report.add_arguments(p)
    res = root / "results"
    args = p.parse_args(["--params", str(root / "params.yaml"), "--eval-dir", str(res / "eval"),
                         "--models-dir", str(res / "models"), "--scores-dir", str(res / "scores"),
                         "--report-dir", str(res / "report"), "--capability-dir", str(res / "capability"),
                         "--pairs-dir", str(res / "pairs"), "--bootstrap", str(bootstrap), *extra])
    report.run(args)
