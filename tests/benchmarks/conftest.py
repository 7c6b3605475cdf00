"""Benchmarks of adaptation and inference of every installed method, through harbench's pytest plugin.

Plugin (seed) methods are benchmarked when this folder is named on the command line
(``pytest tests/benchmarks ...``); a plain ``pytest`` run of the whole project only exercises the built-ins, once
each, so the core test suite stays fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent.resolve()


def benchmarks_requested(config: pytest.Config) -> bool:
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


@pytest.fixture
def full_benchmark(request) -> bool:
    return benchmarks_requested(request.config)
