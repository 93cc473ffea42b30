"""A small document model rendered to Markdown and to self-contained HTML, so both report
formats carry exactly the same content (findings, tables, plots, notes)."""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union


@dataclass
class Para:
    text: str  # inline Markdown: **bold**, `code`, [text](url)


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Note:
    text: str  # shown as a blockquote / callout


@dataclass
class Table:
    df: "object"  # pandas DataFrame
    caption: str = ""
    index: bool = True
    floatfmt: str = ".3f"
    #: per-column format overrides, e.g. {"delta": "+.3f"}
    formats: dict = field(default_factory=dict)


@dataclass
class Image:
    path: Path  # the PNG on disk
    caption: str
    rel: str  # the path relative to report.md


@dataclass
class Code:
    text: str


Block = Union[Para, Bullets, Note, Table, Image, Code]


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)
    anchor: str = ""

    def add(self, *blocks: Block) -> "Section":
        self.blocks.extend(blocks)
        return self


@dataclass
class Document:
    title: str
    intro: list = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        s = Section(title, anchor=slug(title))
        self.sections.append(s)
        return s


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# --- cell formatting -----------------------------------------------------------------------------

def fmt_cell(v, fmt: str) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return str(v)
    try:
        import numpy as np
        if isinstance(v, np.integer):
            return str(int(v))
        if isinstance(v, np.bool_):
            return "yes" if v else "no"
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return format(v, fmt)
    return str(v)


def table_rows(t: Table) -> tuple[list[str], list[list[str]]]:
    df = t.df
    head = ([df.index.name or ""] if t.index else []) + [str(c) for c in df.columns]
    rows = []
    for idx, row in zip(df.index, df.itertuples(index=False, name=None)):
        cells = [fmt_cell(v, t.formats.get(str(c), t.floatfmt)) for c, v in zip(df.columns, row)]
        rows.append(([str(idx)] if t.index else []) + cells)
    return head, rows


# --- Markdown ------------------------------------------------------------------------------------

def _md_escape_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def md_table(t: Table) -> str:
    head, rows = table_rows(t)
    out = ["| " + " | ".join(_md_escape_cell(h) for h in head) + " |",
           "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(_md_escape_cell(c) for c in r) + " |" for r in rows]
    if t.caption:
        out = [f"*{t.caption}*", ""] + out
    return "\n".join(out)


def render_markdown(doc: Document) -> str:
    out = [f"# {doc.title}", ""]
    for b in doc.intro:
        out += [_md_block(b), ""]
    out += ["## Contents", ""]
    out += [f"- [{s.title}](#{s.anchor})" for s in doc.sections]
    out.append("")
    for s in doc.sections:
        out += [f"## {s.title}", ""]
        for b in s.blocks:
            out += [_md_block(b), ""]
    return "\n".join(out).rstrip() + "\n"


def _md_block(b: Block) -> str:
    if isinstance(b, Para):
        return b.text
    if isinstance(b, Bullets):
        return "\n".join(f"- {i}" for i in b.items)
    if isinstance(b, Note):
        return "\n".join(f"> {line}" for line in b.text.splitlines())
    if isinstance(b, Table):
        return md_table(b)
    if isinstance(b, Image):
        return f"![{b.caption}]({b.rel})\n\n*{b.caption}*"
    if isinstance(b, Code):
        return "```\n" + b.text + "\n```"
    raise TypeError(type(b))


# --- HTML ------------------------------------------------------------------------------------------

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:0 auto;
padding:1.5em;color:#1b1b1b;line-height:1.45}
h1{border-bottom:2px solid #333;padding-bottom:.2em}
h2{border-bottom:1px solid #ccc;padding-bottom:.15em;margin-top:2em}
nav ul{columns:2}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.85em;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:right;white-space:nowrap}
th{background:#f0f0f0;position:sticky;top:0}
td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fafafa}
caption{caption-side:top;text-align:left;font-style:italic;padding:.2em 0}
figure{margin:1em 0}
figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-style:italic;font-size:.9em;color:#444}
blockquote{border-left:4px solid #d9a400;background:#fff8e1;margin:1em 0;padding:.4em .8em}
code{background:#f2f2f2;padding:0 .2em;border-radius:3px}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto}
"""


def _inline(text: str) -> str:
    """Inline Markdown subset -> HTML (escaped first)."""
    s = html.escape(text, quote=False)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    s = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)
    s = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"<em>\1</em>", s)
    s = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', s)
    return s


def html_table(t: Table) -> str:
    head, rows = table_rows(t)
    cap = f"<caption>{_inline(t.caption)}</caption>" if t.caption else ""
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>{cap}<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _html_block(b: Block) -> str:
    if isinstance(b, Para):
        return f"<p>{_inline(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Note):
        return "<blockquote>" + "<br>".join(_inline(line) for line in b.text.splitlines()) + "</blockquote>"
    if isinstance(b, Table):
        return html_table(b)
    if isinstance(b, Image):
        alt = html.escape(b.caption, quote=True)
        return (f'<figure><img src="{data_uri(b.path)}" alt="{alt}">'
                f"<figcaption>{_inline(b.caption)}</figcaption></figure>")
    if isinstance(b, Code):
        return f"<pre>{html.escape(b.text)}</pre>"
    raise TypeError(type(b))


def render_html(doc: Document) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(doc.title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(doc.title)}</h1>"]
    parts += [_html_block(b) for b in doc.intro]
    parts.append("<nav><h2>Contents</h2><ul>" + "".join(
        f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in doc.sections) + "</ul></nav>")
    for s in doc.sections:
        parts.append(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>')
        parts += [_html_block(b) for b in s.blocks]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
