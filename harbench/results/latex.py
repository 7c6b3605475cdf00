"""``harbench report --format latex``: every table and note, escaped so that it compiles with a standard preamble
(``\\documentclass{article}`` with ``inputenc`` utf8, ``fontenc`` T1, ``booktabs`` and ``graphicx``).

Each table is a ``table`` float with booktabs rules (``\\toprule``/``\\midrule``/``\\bottomrule``), a caption, and
scaled to the text width when it has more columns than fit a page (the full table has 20+).

tabulate's ``latex`` format escapes ASCII specials but leaves Unicode (Δ, Σ, −, ±, ↑, →, ≥, …) that pdflatex
rejects outside math; :func:`escape` maps those to math-mode commands and ASCII specials to their escapes.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Sequence

from tabulate import tabulate

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
            ">": r"\textgreater{}", "|": r"\textbar{}"}
_UNICODE = {"Δ": r"$\Delta$", "Σ": r"$\Sigma$", "σ": r"$\sigma$", "μ": r"$\mu$", "α": r"$\alpha$", "η": r"$\eta$",
            "−": "$-$", "±": r"$\pm$", "×": r"$\times$", "·": r"$\cdot$", "≥": r"$\geq$", "≤": r"$\leq$",
            "≈": r"$\approx$", "→": r"$\rightarrow$", "←": r"$\leftarrow$", "↔": r"$\leftrightarrow$",
            "↑": r"$\uparrow$", "↓": r"$\downarrow$", "∞": r"$\infty$", "√": r"$\surd$", "—": "---", "–": "--",
            "…": r"\ldots{}", "÷": r"$\div$", "≠": r"$\neq$", "∈": r"$\in$", "⇒": r"$\Rightarrow$",
            "✓": r"$\surd$", "✗": "x", "★": r"$\star$", "•": r"\textbullet{}", "°": r"\textdegree{}", "²": r"\textsuperscript{2}", "³": r"\textsuperscript{3}",
            "‘": "`", "’": "'", "“": "``", "”": "''", "\u00a0": "~", "\u2009": r"\,", "\u202f": r"\,"}


def escape(text: Any) -> str:
    """One cell or note as LaTeX text: ASCII specials escaped, known Unicode as math, accents kept (T1 has them),
    anything else replaced by its ASCII decomposition or '?' (never a character pdflatex cannot typeset)."""
    out = []
    for ch in "" if text is None else str(text):
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch in _UNICODE:
            out.append(_UNICODE[ch])
        elif ord(ch) < 128 or unicodedata.category(ch).startswith("L") and unicodedata.normalize("NFD", ch)[0].isascii():
            out.append(ch)
        else:
            ascii_ = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(escape(ascii_) if ascii_ else "?")
    return "".join(out)


WIDE = 8  # tables with more columns than this are scaled to the text width


def table(headers: Sequence[Any], rows: Sequence[Sequence[Any]], caption: Any = None) -> str:
    """A booktabs ``table`` float: tabulate's raw tabular (cells escaped here) with its three ``\\hline`` rules
    turned into ``\\toprule``, ``\\midrule`` and ``\\bottomrule``."""
    body = tabulate([[escape(v) for v in row] for row in rows], headers=[escape(h) for h in headers],
                    tablefmt="latex_raw", disable_numparse=True).split("\n")
    rules = [i for i, line in enumerate(body) if line.strip() == r"\hline"]
    for i, rule in zip(rules, (r"\toprule", r"\midrule", r"\bottomrule") if len(rules) == 3 else ()):
        body[i] = rule
    tabular = "\n".join(body)
    if len(headers) > WIDE:
        tabular = "\\resizebox{\\linewidth}{!}{%\n" + tabular + "}"
    head = ["\\begin{table}[htbp]", "\\centering"] + ([f"\\caption{{{escape(caption)}}}"] if caption else [])
    return "\n".join([*head, tabular, "\\end{table}"])


def paragraph(text: Any) -> str:
    return "\n".join(escape(line) + r"\par" for line in str(text or "").splitlines() if line.strip())


def latex_report(report: Any) -> str:
    """Decision view, main table, notes, per-user table and plugin summaries, as a LaTeX fragment."""
    from .decision import accuracy_table, budget_line, target_table, target_title

    parts: list[str] = []
    view = report.decision
    if view is not None:
        parts += [table(*accuracy_table(view), caption="Accuracy (once per method configuration)")]
        for t in view.targets:
            parts += [table(*target_table(t), caption=target_title(t)),
                      paragraph(budget_line(t, view.budgets) or ""), paragraph(t.verdict)]
        parts += [paragraph(line) for line in view.legend]
    parts += [table(*report.summary, caption="Full table (mean ± std [95 % CI] over users and seeds)")]
    parts += [paragraph(n) for n in report.notes]
    parts += [table(*report.user_level, caption=f"Per user ({report.options.metric})"),
              paragraph(report.user_level_note)]
    for s in report.summaries:
        parts += [table(s.get("headers", []), s.get("rows", []), caption=s.get("title", "summary")),
                  paragraph(s.get("note"))]
    return "\n\n".join(p for p in parts if p)
