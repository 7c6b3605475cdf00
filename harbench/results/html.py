"""One self-contained HTML file per run: tables, paper summaries and inline SVG figures, no external assets.

A run can then be shared as a single file (mail, CI artifact) and opened anywhere, offline.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from importlib.resources import files
from typing import Any, Sequence

STYLE = files(__package__).joinpath("templates", "report.css").read_text()  # the report's one style sheet


def _cell(value: Any, compact: bool) -> str:
    """A cell; ``compact`` shows a ``mean ± std [CI]`` figure as its mean, the rest in a tooltip (one line high)."""
    text = "" if value is None else str(value)
    est = text.endswith("(est.)")
    title = "modelled by an estimated target, not measured" if est else ""
    if compact and " ± " in text:
        mean, rest = text.split(" ± ", 1)
        title = f"{mean} ± {rest}"
        text = mean + (" (est.)" if est else "")
    body = html.escape(text)
    if est:
        body = f'<span class="est">{body}</span>'
    return f'<td title="{html.escape(title)}">{body}</td>' if title else f"<td>{body}</td>"


def _header(text: Any) -> str:
    return html.escape(str(text)).replace("_", "_<wbr>")  # long metric names may break after an underscore


def table_html(headers: Sequence[str], rows: Sequence[Sequence[Any]], compact: bool = False,
               cls: str = "") -> str:
    head = "".join(f"<th>{_header(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v, compact) for v in row) + "</tr>" for row in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def compact_main(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[list[str], list[list[Any]]]:
    """The main table made to fit a laptop screen: method and variant as one label, no column that is empty (or
    all zero failures) in every row, no mode column (estimated cells say "(est.)" and the targets' cards say
    how each target was measured)."""
    rows = [list(r) for r in rows]
    headers = list(headers)
    if "method" in headers and "variant" in headers:
        m, v = headers.index("method"), headers.index("variant")
        for r in rows:
            r[m] = f"{r[m]}[{str(r[v]).replace(' ', ',')}]" if r[v] else r[m]
        headers.pop(v)
        for r in rows:
            r.pop(v)

    def empty(i: int) -> bool:
        name = headers[i]
        return name == "mode" or all(str(r[i]) in ("—", "", "None") or (name == "failed" and r[i] == 0)
                                     for r in rows)

    keep = [i for i in range(len(headers)) if not empty(i)]
    return [headers[i] for i in keep], [[r[i] for i in keep] for r in rows]


def decision_html(view: Any) -> str:
    """The decision view: accuracy once per method, then a card per target (table, budget, verdict), legend."""
    from .decision import accuracy_table, budget_line, target_table, target_title

    parts = ['<section id="decision"><h2>Which method on which device</h2>',
             '<div class="cards"><div class="card"><h3>Accuracy (once per method configuration)</h3>',
             table_html(*accuracy_table(view)), "</div>"]
    for t in view.targets:
        badge = f'<span class="badge {html.escape(t.honesty)}">{html.escape(t.honesty)}</span>'
        parts += [f'<div class="card target" id="target-{html.escape(t.hardware)}"><h3>{badge} '
                  f"{html.escape(target_title(t))}</h3>", table_html(*target_table(t))]
        line = budget_line(t, view.budgets)
        if line:
            parts.append(f'<p class="budget">{html.escape(line)}</p>')
        parts.append(f'<p class="verdict">{html.escape(t.verdict)}</p></div>')
    parts.append("</div>")
    parts.append('<ul class="legend">' + "".join(f"<li>{html.escape(x)}</li>" for x in view.legend) + "</ul>")
    parts.append("</section>")
    return "".join(parts)


def _note(text: str | None) -> str:
    if not text:
        return ""
    return "".join(f'<p class="note">{html.escape(line)}</p>' for line in text.splitlines() if line.strip())


def render_html(*, run: dict[str, Any], summary: tuple[list[str], list[list[Any]]],
                user_level: tuple[list[str], list[list[Any]]], user_level_note: str,
                summaries: Sequence[dict[str, Any]], figures: dict[str, str], notes: Sequence[str] = (),
                figures_missing: str | None = None, decision: Any = None, downloads: str = "",
                drilldown: str = "") -> str:
    """Assemble the page. ``figures`` maps a figure name to inline SVG text (trusted: matplotlib's own output);
    ``downloads`` and ``drilldown`` are the sections of :mod:`.html_extras` (HTML, escaped there)."""
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
    if decision is not None:
        parts.append(decision_html(decision))
    parts.append(downloads)  # after the decision view: the answer comes first
    parts.append('<section id="figures"><h2>Figures</h2>')
    if figures_missing:
        parts.append(_note(figures_missing))
    for name, svg in figures.items():
        parts.append(f'<figure id="fig-{html.escape(name)}">{svg}<figcaption>{html.escape(name)}</figcaption></figure>')
    parts.append("</section>")
    parts.append("<h2>Full table (mean over users and seeds; hover a cell for ± std [95 % CI])</h2>")
    parts.append(table_html(*compact_main(*summary), compact=True, cls="main"))
    parts += [_note(n) for n in notes]
    parts.append("<h2>Per user</h2>")
    parts.append('<div class="scroll">' + table_html(*user_level) + "</div>")
    parts.append(_note(user_level_note))
    parts.append(drilldown)
    for s in summaries:
        parts.append(f"<h2>{html.escape(str(s.get('title', 'summary')))}</h2>")
        parts.append('<div class="scroll">' + table_html(s.get("headers", []), s.get("rows", [])) + "</div>")
        parts.append(_note(s.get("note")))
    parts.append("</body></html>")
    return "\n".join(parts)
