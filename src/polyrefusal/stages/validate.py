"""Stage `validate`: check params.yaml (every key, types, ranges, cross-field rules) and write a
marker file.

DVC deletes a stage's outputs before it runs the stage's command, so a params file that a stage
would refuse would already have cost that stage's previous outputs. `validate` is DVC's first
stage (every other stage depends on its marker, which is declared `persist` so DVC never
deletes it): a bad params file fails here, in one line, and `dvc repro` stops before any other
stage. The marker's bytes do not depend on the params, so a valid change of params reruns only
the stages that read the changed keys.
"""

from __future__ import annotations

from ..io import write_text
from ..params import load_params

MARKER = "params validated: see polyrefusal validate --help\n"


def add_arguments(p):
    p.add_argument("--params", default="params.yaml", help="the params file to check (default: params.yaml)")
    p.add_argument("marker", nargs="?", default=None,
                   help="file written when the params are valid (DVC's dependency of every stage)")


def run(args):
    load_params(args.params, training=True)  # the dpo: block through TRL too (before any stage)
    if args.marker:
        write_text(args.marker, MARKER)
    print(f"{args.params}: valid")
