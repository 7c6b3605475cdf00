"""Generated blocks of the README, the plugin READMEs and the docs pages, kept equal to what their commands print
(as llm keeps its docs with cog): ``python tools/docs_sync.py`` rewrites them, ``--check`` lists the stale ones and
exits 1.

A block is the fenced code block right after a marker line::

    <!-- generated: harbench list methods --distribution harbench-crop -->
    <!-- generated: harbench report --results published/paper-memory --no-ci --columns adapt_peak_mb -->
    <!-- example: harbench report --results published/drift (first 19 lines; ...) -->

    <!-- generated: python plugins/harbench-duet/benchmarks/first_vs_steady.py --from plugins/harbench-duet/benchmarks/first_vs_steady.json -->

``generated`` blocks hold the plugins' parameter listings (``harbench list KIND``, the entries of one
distribution), the whole output of a ``harbench`` command that reads a committed bundle (the docs' tables of
published runs), or a benchmark script's table of a committed record (``python SCRIPT --from RECORD.json``: the
script prints what it stored, measuring nothing); the ``example`` block holds the first lines of a report of a
committed bundle. The claim pages
(docs/claims/*.md) are whole command outputs, checked by tests/test_published_claims.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- (generated|example): (.*?) -->$")
FILES = [ROOT / "README.md", *sorted((ROOT / "plugins").glob("*/README.md")),
         *sorted(p for p in (ROOT / "docs").rglob("*.md") if "claims" not in p.parts)]


def parameters(kind: str, distribution: str) -> str:
    """``harbench list KIND`` restricted to the entries ``distribution`` registers (plain text, no styling)."""
    from harbench.plugins import get_registry
    from harbench.registry_snapshot import listing, listing_lines

    entries = [e for e in listing(get_registry(), kind) if e.get("distribution") == distribution]
    return "\n".join(click.unstyle(line) for line in listing_lines(entries, kind, "text"))


def output(args: str) -> str:
    """What ``harbench ARGS`` prints (paths that exist in the repository made absolute); a failing command fails
    the sync rather than writing its error into the docs."""
    from harbench.cli import main

    argv = [str(ROOT / a) if not a.startswith("-") and (ROOT / a).exists() else a for a in args.split()]
    res = CliRunner().invoke(main, argv, catch_exceptions=False)
    if res.exit_code:
        raise RuntimeError(f"harbench {args}: exit {res.exit_code}: {res.output.strip()[-500:]}")
    return res.output.rstrip("\n")


def example(command: str) -> str:
    """The first lines of a ``harbench`` command: ``harbench report --results published/drift (first 19 lines...``."""
    hit = re.match(r"harbench (.*?) \(first (\d+) lines", command)
    if not hit:
        raise ValueError(f"example marker {command!r}: expected 'harbench ARGS (first N lines ...)'")
    return "\n".join(output(hit.group(1)).splitlines()[: int(hit.group(2))])


def expected(kind: str, spec: str) -> str:
    if kind == "example":
        return example(spec)
    hit = re.match(r"harbench list (\w+?)s? --distribution (\S+)$", spec)
    if hit:
        return parameters(hit.group(1), hit.group(2))
    if spec.startswith("harbench ") and "--results published/" in spec:
        return output(spec.removeprefix("harbench "))
    hit = re.match(r"python (\S+\.py) --from (\S+\.json)$", spec)
    if hit:
        return record(hit.group(1), hit.group(2))
    raise ValueError(f"generated marker {spec!r}: expected 'harbench list KIND --distribution NAME', a harbench "
                     "command that reads a committed bundle (--results published/NAME) or 'python SCRIPT --from "
                     "RECORD.json' (a benchmark's committed record)")


def record(script: str, stored: str) -> str:
    """What a benchmark script prints of a committed record (``--from``: it measures nothing)."""
    for path in (script, stored):
        if not (ROOT / path).is_file():
            raise RuntimeError(f"generated marker: {path} is not a file of the repository")
    res = subprocess.run([sys.executable, str(ROOT / script), "--from", str(ROOT / stored)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    if res.returncode:
        raise RuntimeError(f"python {script} --from {stored}: exit {res.returncode}: {res.stderr.strip()[-500:]}")
    return res.stdout.rstrip("\n")


def sync(path: Path, write: bool) -> bool:
    """Whether ``path``'s blocks were current (rewriting them when ``write``)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    out, i, current, fence = [], 0, True, ""
    while i < len(lines):
        out.append(lines[i])
        ticks = re.match(r"^(`{3,})", lines[i])
        if ticks and not fence:
            fence = ticks.group(1)  # a marker shown inside a code block (as the docs explain them) is not one
        elif ticks and lines[i].strip() == fence:
            fence = ""
        hit = None if fence else MARKER.match(lines[i])
        if hit and i + 1 < len(lines) and lines[i + 1].startswith("```"):
            end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
            body = expected(*hit.groups())
            current = current and "\n".join(lines[i + 2:end]) == body
            out += [lines[i + 1], *body.split("\n"), lines[end]]
            i = end
        i += 1
    if write and not current:
        path.write_text("\n".join(out), encoding="utf-8")
    return current


def main(argv: list[str]) -> int:
    os.chdir(ROOT)  # the markers' commands name paths relative to the repository
    stale = [p for p in FILES if not sync(p, write="--check" not in argv)]
    for p in stale:
        print(f"{p.relative_to(ROOT)}: generated block(s) differ from their command"
              + ("" if "--check" not in argv else " (run python tools/docs_sync.py)"))
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
