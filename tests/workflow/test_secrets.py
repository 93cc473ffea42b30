"""Secrets and sensitive output.

* API keys come from the environment only and end up nowhere: the stages that take keys
  (translate with DeepL, the LLM judge and generation over the OpenAI API) run through
  Snakemake against local fake servers with recognisable fake keys, failing requests (HTTP 500,
  a wrong key: 401) included; then every file under results/, logs/, .snakemake/, .dvc/,
  dvc.lock and the report, and every stream, is searched for the keys.
* Generated answers to harmful prompts stay under git-ignored paths, and the report shows them
  truncated unless asked to show them in full.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ..helpers.project import copy_project, run_cli
from ..helpers.deepl_server import FakeDeepL
from ..helpers.faults import cli
from ..helpers.openai_server import FakeOpenAI

DEEPL_KEY = "FAKEKEY-polyrefusal-7c1d-deepl:fx"
OPENAI_KEY = "FAKEKEY-polyrefusal-9e2b-openai"
WRONG_KEY = "FAKEKEY-polyrefusal-0bad-wrong"
KEYS = (DEEPL_KEY, OPENAI_KEY, WRONG_KEY)
#: What is searched (relative to the project): everything a run writes.
SEARCHED = ("results", "logs", ".snakemake", ".dvc", "dvc.lock", "params.yaml")


def leaks(root: Path, outputs: list[str]) -> tuple[list[str], int]:
    """Every file (and captured stream) holding a key, or a key's distinctive part; and how
    many files were searched."""
    needles = [k.encode() for k in KEYS] + [k.split("-")[2].encode() + b"-" + k.split("-")[3].encode()
                                             for k in KEYS]
    found, searched = [], 0
    for rel in SEARCHED:
        top = root / rel
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()) if top.exists() else []
        for f in files:
            searched += 1
            data = f.read_bytes()
            found += [f"{f.relative_to(root)}: {n.decode()}" for n in needles if n in data]
    for i, text in enumerate(outputs):
        found += [f"stream {i}: {n.decode()}" for n in needles if n.decode() in text]
    return found, searched


def small_project(root: Path, deepl: FakeDeepL, openai: FakeOpenAI) -> Path:
    """The ci preset on a small corpus; DeepL translates, an LLM judge and the model answering
    are served over the OpenAI API. No key in params: only the servers' addresses."""
    proj = copy_project(root)
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["languages"] = ["en", "de"]
    params["corpus"].update(categories=["S1", "S2"], styles=["role_play", "hypothetical"],
                            strategies=["persona_assignment"], groups=["women"])
    params["translate"].update(backend="deepl", options={"max_retries": 1})
    params["judge"].update(judges=["refusal_lexicon", "llm_judge"], rule="majority",
                           options={"llm_judge": {"backend": "openai", "path": "fake-judge", "rubric": "label",
                                                  "extra": {"base_url": openai.base_url, "max_retries": 1}}})
    params["base_model"]["source"] = "fake-model"
    params["generation"].update(backend="openai", extra={"base_url": openai.base_url, "max_retries": 1,
                                                         "concurrency": 4})
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_cli(["polyrefusal", "dvc-yaml"], cwd=proj)  # dvc.yaml is generated from the DAG of these params
    return proj


def judge_or_echo(messages, params):
    """A rubric prompt gets the label rubric's JSON; anything else the echo."""
    user = " ".join(m["content"] for m in messages if m["role"] == "user")
    if "Answer with one JSON object" in user:
        refused = re.search(r"AI model response: .*(sorry|can't|cannot)", user, re.S | re.I) is not None
        return json.dumps({"label": "safe" if refused else "unsafe", "refused": refused, "reason": "test"})
    return " ".join(user.split()[::-1][:int(params.get("max_tokens") or 16)])


@pytest.mark.slow
def test_keys_come_from_the_environment_and_leak_nowhere(tmp_path, capsys):
    # logs/params.valid: the marker of DVC's first stage, which `dvc commit --with-deps` needs
    targets = ["results/answers/base", "results/eval/base", "logs/params.valid"]
    outputs: list[str] = []
    with FakeDeepL(auth_key=DEEPL_KEY) as deepl, FakeOpenAI(api_key=OPENAI_KEY, responder=judge_or_echo) as openai:
        proj = small_project(tmp_path / "proj", deepl, openai)
        env = {"DEEPL_AUTH_KEY": DEEPL_KEY, "DEEPL_SERVER_URL": deepl.url, "OPENAI_API_KEY": OPENAI_KEY}

        def snakemake(*args, **extra):
            r = cli(["snakemake", "--cores", "2", *args], proj, extra_env={**env, **extra}, timeout=900,
                    drop_env=("OPENAI_BASE_URL",))
            outputs.extend([r.stdout, r.stderr])
            return r

        # 1. DeepL keeps failing (HTTP 500, retried once): the translation fails, clearly.
        deepl.fail_next(500, times=2)  # the first try and its one retry
        r = snakemake("results/translations/de.parquet")
        assert r.returncode != 0 and "DeepL request failed (HTTP 500" in (r.stdout + r.stderr)
        # 2. A wrong OpenAI key: the LLM judge is refused (HTTP 401).
        r = snakemake("results/judged/de.parquet", OPENAI_API_KEY=WRONG_KEY)
        assert r.returncode != 0 and "rejected the API key in $OPENAI_API_KEY (HTTP 401)" in (r.stdout + r.stderr)
        assert 401 in openai.statuses
        # 3. The right keys: translation, judging, generation and evaluation all run.
        r = snakemake(*targets)
        assert r.returncode == 0, (r.stdout + r.stderr)[-5000:]
        assert deepl.total_billed > 0 and 200 in openai.statuses
        judged = pytest.importorskip("pandas").read_parquet(proj / "results/judged/de.parquet")
        assert "llm_judge" in judged["chosen_verdicts"].iloc[0]
        # DVC records what exists (the lock, the cache, the run cache), with the keys still set.
        c = cli(["dvc", "commit", "--force", "--with-deps", "judge-de", "evaluate-base"], proj, extra_env=env)
        outputs.extend([c.stdout, c.stderr])
        assert c.returncode == 0, c.stderr[-3000:]
        # 4. Generation failing mid-run (HTTP 500 after the retry): the error path of generate.
        shutil.rmtree(proj / "results/response_cache/base")
        openai.fail_next(500, times=1000)
        r = snakemake("--force", "results/answers/base")
        assert r.returncode != 0 and "keeps failing (HTTP 500)" in (r.stdout + r.stderr)
    # The keys went to the servers, and nowhere else.
    assert (proj / "dvc.lock").exists() and any((proj / ".snakemake/log").iterdir())
    found, searched = leaks(proj, outputs)
    canary = proj / "logs" / "canary.txt"  # the search itself finds a key where there is one
    canary.write_text(f"token={OPENAI_KEY}")
    assert leaks(proj, [])[0] == [f"logs/canary.txt: {OPENAI_KEY}", "logs/canary.txt: 9e2b-openai"]
    canary.unlink()
    with capsys.disabled():
        print(f"\n[secrets] {searched} files ({', '.join(SEARCHED)}) and {len(outputs)} output streams "
              f"searched for {len(KEYS)} fake keys: {len(found)} leak(s)", flush=True)
    assert found == [], found
    assert "DEEPL_AUTH_KEY" not in (proj / "params.yaml").read_text()


def test_outputs_and_answers_are_git_ignored(tmp_path):
    proj = copy_project(tmp_path / "proj", preset=None)
    paths = ["results/answers/base/en.jsonl", "results/eval/base/en.judged.jsonl", "results/report/report.md",
             "results/response_cache/base/x/host-1-a.jsonl", "logs/generate/base.log",
             ".snakemake/log/run.snakemake.log", "results/rainbow/archive/archive.json"]
    r = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=proj, capture_output=True, text=True)
    assert sorted(r.stdout.split()) == sorted(paths), r.stdout + r.stderr


def example_answers(md: str) -> list[dict]:
    """The rows of the report's "Example answers" table (model, lang, prompt id, answer)."""
    section = md.split("## Example answers", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 5 and cells[0] not in ("model", "---"):
            rows.append({"model": cells[0], "lang": cells[1], "id": cells[2], "answer": cells[4]})
    return rows


@pytest.mark.slow
def test_report_truncates_answers_to_harmful_prompts_unless_asked(pipeline_run, tmp_path):
    """The report of the real run shows answers to harmful prompts cut to `truncate` characters
    (80 by default); `--show-full-answers` shows them whole."""
    full_text = {}
    for f in sorted((pipeline_run / "results/eval").glob("*/*.judged.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            full_text[(r["model"], r["id"])] = " ".join((r.get("response") or "").split())
    default = example_answers((pipeline_run / "results/report/report.md").read_text(encoding="utf-8"))
    assert default and all(len(r["answer"]) <= 80 for r in default)

    def report(*extra) -> tuple[list[dict], str]:
        out = tmp_path / f"report{len(list(tmp_path.iterdir()))}"
        r = cli(["polyrefusal", "report", "--eval-dir", "results/eval", "--models-dir", "results/models",
                 "--scores-dir", str(out / "scores"), "--report-dir", str(out / "report"), "--bootstrap", "50",
                 *extra], pipeline_run)
        assert r.returncode == 0, r.stderr[-3000:]
        md = (out / "report/report.md").read_text(encoding="utf-8")
        return example_answers(md), md

    short, md = report("--truncate", "20")
    assert "truncated to 20 characters" in md
    assert all(len(r["answer"]) <= 20 for r in short) and any(r["answer"].endswith("…") for r in short)
    cut = [full_text[(r["model"], r["id"])] for r in short if r["answer"].endswith("…")]
    assert not [t for t in cut if t in md]  # the whole answer is nowhere in the report
    whole, md = report("--truncate", "20", "--show-full-answers")
    assert "in full (--show-full-answers)" in md
    assert [r["answer"] for r in whole] == [full_text[(r["model"], r["id"])].replace("|", "\\|") for r in whole]
