"""Capability cost: multiple-choice accuracy per language, in the style of Global MMLU, through
lm-evaluation-harness (``lm_eval.simple_evaluate``) with task definitions that read local files.

Data (``capability.source`` in params.yaml):

- ``builtin``: the project's small set, ``polyrefusal/data/capability/<lang>.jsonl`` (20
  questions, the same in all 12 study languages);
- a directory with Global MMLU's own files: ``<dir>/<lang>/test-*.parquet`` (the layout of the
  Hugging Face dataset ``CohereForAI/Global-MMLU``) or ``<dir>/<lang>.{jsonl,parquet,csv}``, with
  Global MMLU's columns (``question``, ``option_a`` .. ``option_d``, ``answer`` as a letter;
  ``sample_id`` and ``subject`` optional).

A language without a file is *not covered*: it is listed in the output (and the report), never
scored as 0. The questions of each language are normalised to JSONL in a task directory that is
generated per run, with one lm-eval YAML task per language (``dataset_path: json`` +
``dataset_kwargs.data_files``), loaded through ``TaskManager(include_path=...)``; nothing is
downloaded (``HF_DATASETS_OFFLINE``, a datasets cache inside the task directory).

A LoRA adapter directory (``dpo.merge_lora: false``) is scored over its base without merging:
lm-eval's ``hf`` model gets ``pretrained=<base>, peft=<adapter dir>`` (lm_eval/models/huggingface.py,
the ``peft`` argument: ``PeftModel.from_pretrained`` on the loaded base), and the tokenizer of
the adapter directory when it has one.

Prompt formats: ``letters`` (Global MMLU's own lm-eval prompt: question, lettered options,
"Answer:", the model chooses among the letters) and ``cloze`` (the model scores each option's
text after "Answer:"; more sensitive for very small models).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from importlib import resources
from pathlib import Path
from typing import Sequence

from ..errors import UserError
from ..io import read_records, stable_hash

log = logging.getLogger(__name__)

DATA_PACKAGE = "polyrefusal.data.capability"
TASK_PREFIX = "polyrefusal_mc_"
COLUMNS = ("question", "option_a", "option_b", "option_c", "option_d", "answer")
LETTERS = ("A", "B", "C", "D")
#: languages of Global MMLU (the full set, 42 languages), for the coverage note
GLOBAL_MMLU_LANGUAGES = frozenset(
    "am ar bn cs de el en es fa fil fr ha he hi id ig it ja ko ky lt mg ms ne nl ny pl pt ro ru "
    "si sn so sr sv sw te tr uk vi yo zh".split())

FORMATS = {
    "letters": {
        "doc_to_text": "{{question.strip()}}\nA. {{option_a}}\nB. {{option_b}}\nC. {{option_c}}\n"
                       "D. {{option_d}}\nAnswer:",
        "doc_to_choice": list(LETTERS),
        "doc_to_target": "answer",
    },
    "cloze": {
        "doc_to_text": "{{question.strip()}}\nAnswer:",
        "doc_to_choice": "{{[option_a, option_b, option_c, option_d]}}",
        "doc_to_target": "{{['A', 'B', 'C', 'D'].index(answer)}}",
    },
}


def builtin_dir() -> Path:
    return Path(str(resources.files(DATA_PACKAGE)))


def builtin_languages() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.jsonl"))


def dataset_file(source: str, lang: str) -> Path | None:
    """The question file of one language, or None when the source does not cover it."""
    if source == "builtin":
        p = builtin_dir() / f"{lang}.jsonl"
        return p if p.exists() else None
    root = Path(source)
    if not root.is_dir():
        raise UserError("capability source is neither 'builtin' nor a directory", file=str(root),
                        field="capability.source")
    for ext in ("jsonl", "parquet", "csv"):
        if (root / f"{lang}.{ext}").exists():
            return root / f"{lang}.{ext}"
    if (root / lang).is_dir():
        for pattern in ("test*.parquet", "test*.jsonl", "test*.csv", "*.parquet", "*.jsonl"):
            hits = sorted((root / lang).glob(pattern))
            if hits:
                return hits[0]
    return None


def load_questions(path: Path) -> list[dict]:
    """Questions with Global MMLU's columns; ``sample_id`` defaults to the row number."""
    rows = read_records(path)
    out = []
    for i, r in enumerate(rows, start=1):
        missing = [c for c in COLUMNS if r.get(c) in (None, "")]
        if missing:
            raise UserError(f"capability question lacks {', '.join(missing)}", file=str(path), line=i)
        answer = str(r["answer"]).strip().upper()
        if answer not in LETTERS:
            raise UserError(f"answer must be one of A, B, C, D (got {r['answer']!r})",
                            file=str(path), line=i, field="answer")
        out.append({"sample_id": str(r.get("sample_id") or i), "subject": r.get("subject") or "",
                    **{c: str(r[c]) for c in COLUMNS[:-1]}, "answer": answer})
    return out


def select(questions: list[dict], limit: int | None, seed: int) -> list[dict]:
    """At most ``limit`` questions, chosen by a seeded hash of ``sample_id`` (the same ids in
    every language, unlike lm-eval's first-N ``limit``); in the file's order."""
    if not limit or len(questions) <= limit:
        return questions
    keep = set(sorted((stable_hash([seed, q["sample_id"]]), q["sample_id"]) for q in questions)[:limit])
    ids = {sid for _, sid in keep}
    return [q for q in questions if q["sample_id"] in ids]


def write_tasks(task_dir: Path, questions: dict[str, list[dict]], fmt: str) -> dict[str, str]:
    """One JSONL data file and one YAML task per language; returns {lang: task name}."""
    import yaml

    if fmt not in FORMATS:
        raise UserError(f"unknown capability format {fmt!r} (known: {', '.join(FORMATS)})",
                        field="capability.format")
    task_dir.mkdir(parents=True, exist_ok=True)
    names = {}
    for lang, qs in questions.items():
        data = task_dir / f"{lang}.jsonl"
        data.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in qs), encoding="utf-8")
        name = f"{TASK_PREFIX}{lang}"
        task = {
            "task": name,
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(data.resolve())},
                               "cache_dir": str((task_dir / "hf_datasets_cache").resolve())},
            "test_split": "test",
            "output_type": "multiple_choice",
            **FORMATS[fmt],
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
            "metadata": {"version": 1.0},
        }
        (task_dir / f"{name}.yaml").write_text(yaml.safe_dump(task, sort_keys=False, allow_unicode=True),
                                              encoding="utf-8")
        names[lang] = name
    return names


@contextlib.contextmanager
def offline_env(local_model: bool):
    """Make lm-eval / datasets / transformers work from local files only."""
    keys = {"HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if local_model:
        keys.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def model_args(model_path: str, dtype: str, revision: str | None = None) -> tuple[dict, bool, dict | None]:
    """lm-eval ``hf`` model arguments for a model directory, hub id (at `revision`, a pointer's)
    or adapter directory; whether everything it loads is local (then the hub is switched off);
    and, for an adapter, the base it names (for the output: as recorded, not where this machine
    found it)."""
    from ..generate.identity import adapter_info, locate_model

    adapter = adapter_info(model_path) if Path(model_path).is_dir() else None
    if adapter is None:
        args = {"pretrained": model_path, "dtype": dtype}
        if revision and not Path(model_path).exists():
            args["revision"] = revision
        return args, Path(model_path).exists(), None
    base = locate_model(adapter.base, adapter.revision)
    args = {"pretrained": base.source, "peft": adapter.path, "dtype": dtype}
    if adapter.has_tokenizer:
        args["tokenizer"] = adapter.path
    if not base.local_only and adapter.revision:
        args["revision"] = adapter.revision
    return args, base.local_only, {"base": adapter.base, "revision": adapter.revision}


def evaluate_model(model_path: str, langs: Sequence[str], work_dir: Path, *, revision: str | None = None,
                   source: str | None = None, fmt: str | None = None, limit: int | None = None,
                   batch_size: int | None = None, device: str | None = None, dtype: str | None = None,
                   seed: int | None = None, num_fewshot: int | None = None) -> dict:
    """Accuracy per language of one model with lm-eval; per-item correctness is kept (keyed
    by ``sample_id``) so a change after training can be paired per question. The settings are
    ``params.capability``'s; one left out (None) takes its default from the params schema."""
    from ..params import with_defaults

    given = {"source": source, "format": fmt, "limit": limit, "batch_size": batch_size, "dtype": dtype,
             "seed": seed, "num_fewshot": num_fewshot}
    cfg = with_defaults({k: v for k, v in given.items() if v is not None}, "capability")
    source, fmt, limit, batch_size, dtype, seed, num_fewshot = (
        cfg[k] for k in ("source", "format", "limit", "batch_size", "dtype", "seed", "num_fewshot"))
    questions, files, not_covered = {}, {}, []
    for lang in langs:
        f = dataset_file(source, lang)
        if f is None:
            not_covered.append(lang)
            continue
        qs = select(load_questions(f), limit, seed)
        if not qs:
            not_covered.append(lang)
            continue
        questions[lang] = qs
        files[lang] = f"builtin:{f.name}" if source == "builtin" else str(f)
    out = {"source": source, "format": fmt, "num_fewshot": num_fewshot, "limit": limit,
           "languages": {}, "not_covered": not_covered, "files": files}
    if not questions:
        log.warning("capability: no language is covered by %s", source)
        return out
    names = write_tasks(work_dir / "tasks", questions, fmt)
    args, local, adapter = model_args(model_path, dtype, revision)
    if adapter is not None:
        out["adapter_of"] = adapter
    with offline_env(local):
        import lm_eval
        import torch
        from lm_eval.tasks import TaskManager

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        tm = TaskManager(include_path=str(work_dir / "tasks"), include_defaults=False)
        res = lm_eval.simple_evaluate(
            model="hf", model_args=args,
            tasks=list(names.values()), task_manager=tm, num_fewshot=num_fewshot,
            batch_size=batch_size, device=device, bootstrap_iters=0, log_samples=True,
            random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
            fewshot_random_seed=seed)
    out["lm_eval_version"] = lm_eval.__version__
    for lang, name in names.items():
        samples = res["samples"][name]
        items = {}
        for s in samples:
            items[str(s["doc"]["sample_id"])] = int(round(float(s["acc"])))
        acc = res["results"][name]["acc,none"]
        out["languages"][lang] = {"task": name, "n": len(items), "acc": float(acc),
                                  "items": dict(sorted(items.items()))}
    return out
