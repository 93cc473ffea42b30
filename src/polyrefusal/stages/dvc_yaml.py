"""Command `dvc-yaml`: write dvc.yaml from the Snakemake DAG (see polyrefusal.dvc_yaml).

    polyrefusal dvc-yaml            # regenerate dvc.yaml for the active params.yaml
    polyrefusal dvc-yaml --check    # fail (exit 2) if dvc.yaml is stale or DVC reads it differently
"""

from __future__ import annotations

from pathlib import Path


def add_arguments(p):
    p.add_argument("--check", action="store_true",
                   help="write nothing; fail if dvc.yaml differs from what the DAG gives, or if DVC "
                        "reads its commands, dependencies, params or outputs differently")
    p.add_argument("--snakefile", default="Snakefile", help="the workflow whose DAG dvc.yaml is written from (default: Snakefile)")
    p.add_argument("-d", "--directory", default=".", help="project root (default: .)")


def run(args):
    from .. import dvc_yaml

    root = Path(args.directory).resolve()
    if args.check:
        n = dvc_yaml.check(root, args.snakefile)
        print(f"dvc-yaml: dvc.yaml matches the Snakemake DAG ({n} stages)")
    else:
        n = dvc_yaml.write(root, args.snakefile)
        print(f"dvc-yaml: wrote dvc.yaml ({n} stages)")
    return 0
