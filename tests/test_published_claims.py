"""The claim pages of the docs are what ``harbench claims`` prints from the committed bundles (#34), the way llm keeps
its docs with cog: a page edited by hand, or a bundle republished without regenerating its page, fails here.

Regenerate a page with ``harbench claims published/NAME > docs/claims/NAME.md``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from harbench.cli import main
from harbench.results.bundle import Bundle

ROOT = Path(__file__).resolve().parents[1]
BUNDLES = sorted(p.parent for p in (ROOT / "published").glob("*/manifest.json"))
PAGES = sorted((ROOT / "docs" / "claims").glob("*.md"))


def test_every_committed_bundle_has_a_claims_page_and_every_page_a_bundle():
    assert BUNDLES, "no bundle under published/"
    assert {b.name for b in BUNDLES} == {p.stem for p in PAGES if p.stem != "index"}


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_a_committed_claims_page_is_what_the_command_prints(bundle):
    Bundle(bundle)  # the committed bundle is intact (every file's digest)
    res = CliRunner().invoke(main, ["claims", str(bundle)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    page = ROOT / "docs" / "claims" / f"{bundle.name}.md"
    assert page.read_text(encoding="utf-8") == res.output, (
        f"{page.relative_to(ROOT)} differs from `harbench claims {bundle.relative_to(ROOT)}`: regenerate it with "
        f"harbench claims {bundle.relative_to(ROOT)} > {page.relative_to(ROOT)}")


def test_the_readmes_generated_blocks_are_what_their_commands_print():
    """The README's example (a report of the committed bundle) and the plugin READMEs' parameter listings."""
    import runpy

    sync = runpy.run_path(str(ROOT / "tools" / "docs_sync.py"))
    stale = [str(p.relative_to(ROOT)) for p in sync["FILES"] if not sync["sync"](p, write=False)]
    assert not stale, f"stale generated blocks in {stale}: run python tools/docs_sync.py"
