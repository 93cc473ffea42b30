"""Stage `test_set`: the manifest of a set of files (each one's md5), one file that stands for
them all.

DVC's stages that read a whole set depend on its manifest in place of the files
(``polyrefusal.dvc_yaml``): every model's `generate` reads the test pairs of all languages, and
one dependency per model costs DVC a twelfth of twelve. The same files give the same bytes, so
a rerun that writes the same test set reruns no model's generation under DVC.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import UserError
from ..io import write_manifest

log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument("--out", required=True, help="the manifest to write (JSON: md5 per file, by path)")
    p.add_argument("files", nargs="+", help="the files it stands for")


def run(args):
    files = {f: Path(f) for f in args.files}
    for name, path in files.items():
        if not path.is_file():
            raise UserError("file not found (an input of the manifest)", file=name)
    write_manifest(args.out, files)
    log.info("manifest: %d file(s) -> %s", len(files), args.out)
