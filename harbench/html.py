"""One self-contained HTML file per run: tables, paper summaries and inline SVG figures, no external assets.

A run can then be shared as a single file (mail, CI artifact) and opened anywhere, offline.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from typing import Any, Sequence

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}th,td{border:1px solid #ddd;padding:.25rem .5rem}
th{background:#f4f4f4;text-align:left}td{text-align:right}td:first-child,td:nth-child(2){text-align:left}
.note{color:#8a5a00;background:#fff7e0;padding:.4rem .6rem;border-left:3px solid #e0a000;font-size:.85rem}
.est{color:#8a5a00}.meta{font-size:.8rem;color:#555}figure{margin:1rem 0}svg{max-width:100%;height:auto}
"""


def table_html(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for v in row:
            text = html.escape("" if v is None else str(v))
            if "(est.)" in text:
                text = f'<span class="est" title="modelled by an estimated target, not measured">{text}</span>'
            cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _note(text: str | None) -> str:
    if not text:
        return ""
    return "".join(f'<p class="note">{html.escape(line)}</p>' for line in text.splitlines() if line.strip())


def render_html(*, run: dict[str, Any], summary: tuple[list[str], list[list[Any]]],
                user_level: tuple[list[str], list[list[Any]]], user_level_note: str,
                summaries: Sequence[dict[str, Any]], figures: dict[str, str], notes: Sequence[str] = (),
                figures_missing: str | None = None) -> str:
    """Assemble the page. ``figures`` maps a figure name to inline SVG text (trusted: matplotlib's own output)."""
    title = f"harbench run {run.get('id')} — {run.get('suite')}"
    env = run.get("env")
    env = json.loads(env) if isinstance(env, str) and env else (env or {})
    started = run.get("started")
    when = _dt.datetime.fromtimestamp(started).isoformat(timespec="seconds") if started else "—"
    meta = (f"suite <b>{html.escape(str(run.get('suite')))}</b> · started {when} · status "
            f"{html.escape(str(run.get('status')))} · host {html.escape(str(env.get('host', '—')))} · "
            f"harbench {html.escape(str(env.get('harbench', '—')))} · torch {html.escape(str(env.get('torch', '—')))}"
            f" · git {html.escape(str(env.get('git_commit') or '—'))}")
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1><p class=meta>{meta}</p>"]
    parts.append("<h2>Results (mean ± std [95 % CI] over users and seeds)</h2>")
    parts.append(table_html(*summary))
    parts += [_note(n) for n in notes]
    parts.append("<h2>Per user</h2>")
    parts.append(table_html(*user_level))
    parts.append(_note(user_level_note))
    for s in summaries:
        parts.append(f"<h2>{html.escape(str(s.get('title', 'summary')))}</h2>")
        parts.append(table_html(s.get("headers", []), s.get("rows", [])))
        parts.append(_note(s.get("note")))
    parts.append("<h2>Figures</h2>")
    if figures_missing:
        parts.append(_note(figures_missing))
    for name, svg in figures.items():
        parts.append(f'<figure id="fig-{html.escape(name)}">{svg}<figcaption>{html.escape(name)}</figcaption></figure>')
    parts.append("</body></html>")
    return "\n".join(parts)
