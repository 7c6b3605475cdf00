"""The four method plugins' paper summaries over several runs pooled together (issue #33, item 3).

The fidelity suites rotate the population over folds (``--set target_users=[...]``) so that every sp-sw-har subject
is a target once; each fold is its own run. Every summary is a pure function of export rows and keys users by
(dataset, dataset parameters, user), so the folds' rows can simply be concatenated: a user is a target in exactly
one fold. Usage::

    harbench export RUN -o fold1.json --results R      # once per run
    python scripts/pooled_summaries.py fold1.json fold2.json fold3.json [--format github|json]

Prints each plugin's table (the same ``harbench_report_summary`` answers ``harbench report`` shows for one run).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SUMMARIES = (
    ("harbench_crop", "crop_summary"),
    ("harbench_duet.summary", "duet_summary"),
    ("harbench_tbft.summary", "summarize"),
    ("harbench_smldist.summary", "summarize"),
)


def load_rows(paths: list[str]) -> list[dict]:
    rows: list[dict] = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise SystemExit(f"{path}: not a harbench JSON export ({err})") from None
        if not isinstance(data, list):
            raise SystemExit(f"{path}: expected a JSON list of job rows (harbench export RUN -o FILE)")
        rows += data
    return rows


def summaries(rows: list[dict]) -> list[dict]:
    import importlib

    out = []
    for module, name in SUMMARIES:
        answer = getattr(importlib.import_module(module), name)(rows)
        if answer:
            out.append(answer)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exports", nargs="+", help="JSON exports of the runs to pool")
    parser.add_argument("--format", choices=("github", "json"), default="github")
    args = parser.parse_args(argv)
    answers = summaries(load_rows(args.exports))
    if args.format == "json":
        json.dump(answers, sys.stdout, indent=1, default=str)
        return 0
    from tabulate import tabulate

    for answer in answers:
        print(f"## {answer['title']}\n")
        print(tabulate(answer["rows"], headers=answer["headers"], tablefmt="github"))
        if answer.get("note"):
            print(f"\n{answer['note']}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
