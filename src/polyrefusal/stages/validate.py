"""Stage `validate`: check params.yaml (every key, types, ranges, cross-field rules), write a
marker file, params.yaml split by key (``--slices``) and every rule's input digest (``--inputs``).

DVC deletes a stage's outputs before it runs the stage's command, so a params file that a stage
would refuse would already have cost that stage's previous outputs. `validate` is DVC's first
stage (every other stage depends on its marker, which is declared `persist` so DVC never
deletes it): a bad params file fails here, in one line, and `dvc repro` stops before any other
stage. The marker's bytes do not depend on the params, so a valid change of params reruns only
the stages that read the changed keys.

The split (``polyrefusal.params.slices``: one small JSON file per section and per entry of a
section) is what DVC's other stages depend on in place of ``params:`` keys: DVC parses a
params file whole for every stage that names it, which at 2,000 stages is most of a no-op
`dvc status`. Snakemake keeps its own params rerun triggers on the same keys.

The digests (``polyrefusal.stage_inputs``: per rule, the md5 of each code file it reads and its
params values) are what DVC's stages depend on in place of their code and of the keys every job
of the rule shares.
"""

from __future__ import annotations

from ..io import write_text
from ..params import load_params, write_slices
from ..stage_inputs import write_digests

MARKER = "params validated: see polyrefusal validate --help\n"


def add_arguments(p):
    p.add_argument("--params", default="params.yaml", help="the params file to check (default: params.yaml)")
    p.add_argument("marker", nargs="?", default=None,
                   help="file written when the params are valid (DVC's dependency of every stage)")
    p.add_argument("--slices", default=None, metavar="DIR",
                   help="also write params.yaml split by key into DIR: one JSON file per section and per "
                        "entry of a section (what DVC's stages depend on)")
    p.add_argument("--inputs", default=None, metavar="DIR",
                   help="also write each rule's input digest into DIR: the md5 of the code files it reads "
                        "and its params values (what DVC's stages depend on)")


def run(args):
    params = load_params(args.params, training=True)  # the dpo: block through TRL too (before any stage)
    if args.slices:
        write_slices(params, args.slices)
    if args.inputs:
        write_digests(params, args.inputs)
    if args.marker:
        write_text(args.marker, MARKER)
    print(f"{args.params}: valid")
