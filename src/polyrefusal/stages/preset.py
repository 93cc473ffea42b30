"""Command `preset`: apply presets (configs/presets/NAME.yaml) to params.yaml in place.

    polyrefusal preset ci            # the shipped values, then the ci preset's
    polyrefusal preset ci rainbow    # presets compose, in order
    polyrefusal preset default       # back to the shipped values

See ``polyrefusal.presets``.
"""

from __future__ import annotations


def add_arguments(p):
    p.add_argument("names", nargs="+", metavar="NAME",
                   help="preset name(s): the files configs/presets/NAME.yaml beside the params file")
    p.add_argument("--params", default="params.yaml", help="the params file to rewrite (default: params.yaml)")


def run(args):
    from ..presets import apply_preset

    apply_preset(args.params, *args.names)
    print(f"params: preset {'+'.join(args.names)!r} applied to {args.params}")
    from ..dvc_yaml import write_beside  # dvc.yaml has one stage per job of the new DAG

    write_beside(args.params)
