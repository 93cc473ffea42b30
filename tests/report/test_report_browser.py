"""The HTML report in a real browser (headless Chromium): every embedded image decodes and every
table renders, and a screenshot shows a non-trivial page. Skipped when Chromium is not
installed (.ci/run installs it)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ..helpers.report import make_project, run_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = document.createElement('pre');
  out.id = 'polyrefusal-check';
  out.textContent = 'CHECK' + JSON.stringify({
    images: imgs.length,
    loaded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0 && i.naturalHeight > 0; }).length,
    widths: imgs.map(function (i) { return i.naturalWidth; }),
    tables: document.querySelectorAll('table').length,
    rows: document.querySelectorAll('tbody tr').length,
    sections: document.querySelectorAll('section h2').length,
    title: document.title
  }) + 'CHECK';
  document.body.appendChild(out);
});
</script>"""


def browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def run_browser(exe: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    make_project(root)
    run_report(root, bootstrap=50)
    return root / "results" / "report" / "report.html"


def test_images_and_tables_load_in_chromium(report_html, tmp_path):
    exe = browser()
    if exe is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    page = report_html.read_text(encoding="utf-8")
    n_img, n_tables = page.count("<img "), page.count("<table>")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", CHECK + "</body>"), encoding="utf-8")
    proc = run_browser(exe, tmp_path, "--virtual-time-budget=15000", "--dump-dom", probe.as_uri())
    m = re.search(r"CHECK(\{.*?\})CHECK", proc.stdout)
    assert m, f"no check marker in the DOM (rc {proc.returncode}):\n{proc.stderr[-2000:]}"
    got = json.loads(m.group(1))
    assert got["images"] == n_img >= 8
    assert got["loaded"] == got["images"], got
    assert min(got["widths"]) > 100, got
    assert got["tables"] == n_tables > 10
    assert got["rows"] > 50
    assert got["sections"] >= 12 and got["title"] == "polyrefusal report"


def test_screenshot_is_not_blank(report_html, tmp_path):
    exe = browser()
    if exe is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    shot = tmp_path / "report.png"
    proc = run_browser(exe, tmp_path, "--window-size=1280,2000", "--virtual-time-budget=10000",
                       f"--screenshot={shot}", report_html.as_uri())
    assert shot.exists(), proc.stderr[-2000:]
    import numpy as np
    from matplotlib.image import imread

    img = imread(shot)
    assert img.shape[0] >= 1900 and img.shape[1] >= 1200
    gray = img[..., :3].mean(axis=2)
    assert gray.std() > 0.05  # text, tables and plots, not an empty page
    assert (gray < 0.5).mean() > 0.005  # some dark pixels (text)
    assert len(np.unique((img[..., :3] * 255).astype(int).reshape(-1, 3), axis=0)) > 50  # colours of plots
