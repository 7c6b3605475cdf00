import pytest
from harbench_datasets.base import PARSE_CACHE


@pytest.fixture(autouse=True)
def fresh_parse_cache(monkeypatch):
    """Every test parses its own fabricated files, and none depends on the user's HARBENCH_DATA."""
    PARSE_CACHE.clear()
    monkeypatch.delenv("HARBENCH_DATA", raising=False)
    yield
    PARSE_CACHE.clear()
