"""What each stage reads besides its data inputs, declared once, and the digests DVC depends on.

``CODE`` names the source files and data (under ``src/polyrefusal/``; a directory means its
files) each rule's command reads, ``PARAMS`` the params.yaml keys it reads, ``PERSIST`` the
state it keeps across reruns. The rules (rules/common.smk) read these tables: Snakemake takes
each code file as an input and each key as a params rerun trigger. ``polyrefusal dvc-yaml``
writes dvc.yaml from the same jobs.

DVC gets them through one small file per rule, its *input digest* (``logs/inputs/RULE.json``,
written by stage ``validate``): the md5 of every code file the rule reads and the value of
every params key it reads that is the same for all its jobs. A key that varies by job
(``config_defs.{config}``) stays a file of params.yaml split by key (``logs/params/KEY.json``,
``polyrefusal.params.slices``). A change to a rule's code or keys changes the bytes of its
digest only, so DVC reruns exactly the stages that read what changed, as it would with the code
and keys as dependencies; but a no-op ``dvc status`` hashes each code directory once (in stage
validate, which depends on all of them) instead of once per stage that reads it, and checks one
dependency per stage instead of one per code entry and key: at 2,000 stages, 40% of its time
(measured with ``scripts/bench_dag.py``; DVC rebuilds a directory dependency's tree every time
a stage names it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .io import file_md5

#: Where CODE's entries are, relative to the project root.
PACKAGE = "src/polyrefusal"
#: Where `polyrefusal validate --inputs` writes the rules' input digests (rules/validate.smk).
INPUTS_DIR = "logs/inputs"
#: The rule that writes the digests (and params.yaml split by key): it reads every rule's code.
DIGEST_RULE = "validate"

#: Source files and data (under src/polyrefusal/; a directory means its files) each rule's
#: command reads: an input of the rule, so editing one reruns the stage in both tools.
#: (validate's own; it also hashes every other rule's: see ``code_entries``.)
CODE = {
    "validate": ["stages/validate.py", "params.py", "schemas/params.schema.yaml", "stage_inputs.py"],
    "corpus": ["stages/corpus.py", "corpus", "io.py", "hub.py", "seed.py", "data/seed"],
    "rainbow": ["stages/rainbow.py", "rainbow.py", "generate", "judges", "data/lexicon", "training/models.py"],
    "translate": ["stages/translate.py", "translate"],
    "respond": ["stages/respond.py", "generate", "chat_format.py"],
    "judge": ["stages/judge.py", "judges", "data/lexicon"],
    "split": ["stages/split.py", "protocol.py"],
    "pairs": ["stages/pairs.py", "protocol.py"],
    "test_set": ["stages/manifest.py", "io.py"],
    "base_model": ["stages/base_model.py", "training/embedded.py", "training/models.py", "chat_format.py",
                   "data/seed"],
    "audit_model": ["stages/base_model.py", "training/models.py"],
    "train": ["stages/train.py", "training/dpo.py", "training/ref_logps.py", "training/curves.py",
              "training/models.py", "chat_format.py"],
    "generate": ["stages/generate.py", "generate", "training/models.py", "chat_format.py"],
    "evaluate": ["stages/evaluate.py", "stages/judge.py", "judges", "data/lexicon", "scoring/langid.py",
                 "scoring/metrics.py", "scoring/stats.py"],
    "capability": ["stages/capability.py", "scoring/capability.py", "training/models.py", "data/capability"],
    "report": ["stages/report.py", "report", "scoring", "training/curves.py"],
}

#: params.yaml keys (dotted; {wildcard} filled per job) each rule's command reads. Snakemake:
#: rule params that are there only so that a changed value reruns the job (its `params` rerun
#: trigger); no command reads them as arguments. DVC: a key without a wildcard is in the rule's
#: input digest, a key with one is a dependency on the key's file of params.yaml split by key.
#: A key absent from params.yaml is left out on both sides.
PARAMS = {
    "validate": [],  # reads params.yaml whole: the file is its input
    "corpus": ["corpus", "source_language"],
    "rainbow": ["rainbow", "corpus", "source_language"],
    "translate": ["translate", "source_language"],
    "respond": ["respond"],
    "judge": ["judge", "pairs.unsafe_prompts_only"],
    "split": ["split"],
    "pairs": ["pairs"],
    "test_set": [],
    "base_model": ["base_model", "languages"],
    "audit_model": ["audit_models.{audit}"],
    "train": ["dpo", "config_defs.{config}"],
    "generate": ["generation", "languages"],
    "evaluate": ["evaluate", "judge.options", "languages"],
    "capability": ["capability", "languages"],
    "report": ["report", "languages", "train_configs", "audit_models"],
}

#: Outputs DVC declares beyond Snakemake's: state that survives reruns (the translation
#: memory, the response cache, the rainbow archive), named by the rule param holding the path.
#: Snakemake does not declare them, so that it never deletes them before a rerun; DVC keeps
#: them with `persist: true`.
PERSIST = {"translate": "memory", "generate": "cache", "rainbow": "archive"}


def code_entries(rule: str) -> list[str]:
    """CODE's entries for `rule`, relative to the project root. The digest rule's are every
    rule's (it hashes them all), entries inside a listed directory left out."""
    entries = CODE[rule]
    if rule == DIGEST_RULE:
        every = sorted({e for es in CODE.values() for e in es})
        entries = [e for e in every if not any(e.startswith(d + "/") for d in every)]
    return [f"{PACKAGE}/{e}" for e in entries]


def code_files(rule: str, root: Path = Path(".")) -> list[str]:
    """The files of `rule`'s code entries (directories expanded, byte code left out as
    .dvcignore does for DVC), relative to `root`: Snakemake dates a directory input by the
    directory's own mtime, which editing a file inside does not change."""
    files = []
    for entry in code_entries(rule):
        path = root / entry
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        files += [str(p.relative_to(root)) for p in found if p.suffix != ".pyc" and "__pycache__" not in p.parts]
    return files


def lookup(params: dict, key: str) -> Any:
    """The value of dotted `key` in params, None where absent."""
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def digest_keys(rule: str, params: dict) -> list[str]:
    """The keys of `rule` its digest holds: those without a wildcard, present in params."""
    return [k for k in PARAMS[rule] if "{" not in k and lookup(params, k) is not None]


def job_keys(rule: str, wildcards: dict, params: dict) -> list[str]:
    """The keys of `rule` that vary by job, filled with the job's wildcards, present in params."""
    keys = [k.format(**wildcards) for k in PARAMS[rule] if "{" in k]
    return [k for k in keys if lookup(params, k) is not None]


def digest_path(rule: str, directory: str = INPUTS_DIR) -> str:
    return f"{directory}/{rule}.json"


def digest_rule(path: str, directory: str = INPUTS_DIR) -> str | None:
    """The rule whose digest `path` is (``digest_path``'s inverse), None for any other path."""
    prefix, suffix = directory + "/", ".json"
    if path.startswith(prefix) and path.endswith(suffix) and path[len(prefix):-len(suffix)] in CODE:
        return path[len(prefix):-len(suffix)]
    return None


def digest(rule: str, params: dict, root: Path = Path(".")) -> dict:
    """What `rule`'s commands read besides their data: {code: {file: md5}, params: {key: value}}."""
    return {"code": {f: file_md5(root / f) for f in code_files(rule, root)},
            "params": {k: lookup(params, k) for k in digest_keys(rule, params)}}


def digest_text(value: dict) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=1, default=str) + "\n"


def digests(params: dict, root: Path = Path(".")) -> dict[str, str]:
    """Every rule's digest as canonical JSON text, by rule (the digest rule has none)."""
    return {rule: digest_text(digest(rule, params, root)) for rule in CODE if rule != DIGEST_RULE}


def write_digests(params: dict, directory: str | Path = INPUTS_DIR, root: Path = Path(".")) -> int:
    """Write every rule's digest under `directory`, each file only where its bytes change (an
    unchanged rule's keeps its date), and remove the files of rules no longer declared."""
    from .io import sync_json_files

    wanted = {f"{rule}.json": text for rule, text in digests(params, root).items()}
    sync_json_files(directory, wanted)
    return len(wanted)


def changed_code(old_text: str | None, new: dict) -> list[str] | None:
    """The code files whose md5 differs between a digest's old text and `new` (added files
    included), None if the old text is unknown or unreadable."""
    if old_text is None:
        return None
    try:
        old = json.loads(old_text).get("code", {})
    except (ValueError, AttributeError):
        return None
    return sorted(f for f, md5 in new["code"].items() if old.get(f) != md5)
