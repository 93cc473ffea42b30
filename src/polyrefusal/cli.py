"""`polyrefusal`: one console script, one subcommand per pipeline stage.

Snakemake rules, DVC stages and Slurm jobs all call these commands. Each stage module in
``polyrefusal.stages`` defines ``add_arguments(parser)`` and ``run(args)``; modules are imported
only for the command that runs, so `polyrefusal --help` stays fast and heavy libraries
(torch, vLLM) load only where needed.

A ``UserError`` (bad input, bad params, a backend that must be fixed by the user) is printed as
one line naming file, line and field, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from . import __version__
from .errors import UserError

#: command -> (stage module, one-line help), in pipeline order.
COMMANDS: dict[str, tuple[str, str]] = {
    "preset": ("preset", "apply presets (configs/presets/NAME.yaml) to params.yaml in place"),
    "validate": ("validate", "check params.yaml (every key, types, cross-field rules) before anything runs"),
    "corpus": ("corpus", "load, validate and write the source prompt corpus"),
    "rainbow": ("rainbow", "generate new attack prompts by Rainbow Teaming (quality-diversity search)"),
    "translate": ("translate", "translate records into one target language (memory-backed)"),
    "respond": ("respond", "attach a refusal (chosen) and a compliance (rejected) answer per prompt"),
    "judge": ("judge", "label answers with a judge or an ensemble of judges"),
    "pairs": ("pairs", "keep judged pairs and write TRL preference data for one language"),
    "export-dataset": ("export", "write the judged pairs as a dataset in a published layout (RefusEU's)"),
    "split": ("split", "assign (category, style) groups to train or test"),
    "manifest": ("manifest", "write the manifest (md5 per file) of a set of files: the test set, for DVC"),
    "base-model": ("base_model", "build the embedded base model, or resolve a real one"),
    "train": ("train", "DPO-train one training configuration"),
    "generate": ("generate", "answer test prompts with one model (response-cached)"),
    "evaluate": ("evaluate", "judge one model's answers in every language and score them"),
    "capability": ("capability", "multiple-choice capability per language (lm-evaluation-harness)"),
    "report": ("report", "aggregate scores into CSVs and the report"),
    "dvc-yaml": ("dvc_yaml", "write dvc.yaml from the Snakemake DAG (--check: fail if it is stale)"),
    "sync": ("sync", "after `dvc pull`: verify hashes against dvc.lock and mark Snakemake outputs up to date"),
}


#: DVC's default cache of file contents (DVC 3: files/md5/<first two hex digits>/<the rest>).
DVC_CACHE = os.path.join(".dvc", "cache", "files", "md5")


def restore_hint(argv: list[str], lock: str = "dvc.lock") -> str:
    """How to get back the previous outputs of a failed job, where that is true: Snakemake and
    DVC delete a job's outputs before they run it, but outputs that dvc.lock records (the
    end-of-run commit) and DVC's cache holds come back with `dvc checkout`. Empty otherwise."""
    if not os.path.exists(lock):
        return ""
    import yaml

    try:
        with open(lock, encoding="utf-8") as fh:
            stages = (yaml.safe_load(fh) or {}).get("stages") or {}
    except (OSError, yaml.YAMLError):
        return ""
    recorded = {out.get("path"): out.get("md5") for stage in stages.values() if isinstance(stage, dict)
                for out in stage.get("outs") or [] if isinstance(out, dict)}
    gone = [a for a in dict.fromkeys(argv) if recorded.get(a) and not os.path.exists(a)
            and os.path.exists(os.path.join(DVC_CACHE, recorded[a][:2], recorded[a][2:]))]
    if not gone:
        return ""
    it = "it" if len(gone) == 1 else "them"
    return f" (the previous {'output' if len(gone) == 1 else 'outputs'}: `dvc checkout {' '.join(gone)}` restores {it})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polyrefusal", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"polyrefusal {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Parse the global part, then hand the rest to the chosen stage's own parser.
    args, rest = parser.parse_known_args(argv)
    if not args.command:
        parser.print_help()
        return 1
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    module_name, help_text = COMMANDS[args.command]
    stage = importlib.import_module(f"polyrefusal.stages.{module_name}")
    stage_parser = argparse.ArgumentParser(prog=f"polyrefusal {args.command}", description=help_text)
    stage.add_arguments(stage_parser)
    stage_args = stage_parser.parse_args(rest)
    try:
        return stage.run(stage_args) or 0
    except UserError as exc:
        print(f"polyrefusal {args.command}: error: {exc.format()}{restore_hint(rest)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
