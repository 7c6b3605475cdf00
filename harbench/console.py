"""How the command line shows a warning: one line, ``warning: <message>``.

A plugin's ``warnings.warn`` (a dataset that dropped windows, skipped malformed records, followed a link) is meant
for the person running harbench; Python's default display adds the class, the file and the source line of the
``warn`` call (``.../sp_sw_har.py:212: UserWarning: ...`` and the code), which reads like a crash. The CLI and its
worker processes install :func:`one_line_warnings`; a library user keeps Python's default.
"""

from __future__ import annotations

import sys
import warnings
from typing import TextIO


def _show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: TextIO | None = None,
          line: str | None = None) -> None:
    text = " ".join(str(message).split())  # one line, whatever the plugin wrote
    try:
        (file or sys.stderr).write(f"warning: {text}\n")
    except OSError:  # stderr gone (a detached worker): a warning must never fail a job
        pass


def one_line_warnings() -> None:
    """Show every warning as one ``warning: ...`` line on stderr (once per message and place, Python's default)."""
    warnings.showwarning = _show
