"""The claim pages of the docs are what ``harbench claims`` prints from the committed bundles (#34), the way llm keeps
its docs with cog: a page edited by hand, or a bundle republished without regenerating its page, fails here.

Regenerate a page with ``harbench claims published/NAME > docs/claims/NAME.md``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    res = _run("harbench", "claims", str(bundle))  # a fresh process: the environment's plugins, as a reader has
    assert res.returncode == 0, res.stderr[-3000:]
    page = ROOT / "docs" / "claims" / f"{bundle.name}.md"
    assert page.read_text(encoding="utf-8") == res.stdout, (
        f"{page.relative_to(ROOT)} differs from `harbench claims {bundle.relative_to(ROOT)}`: regenerate it with "
        f"harbench claims {bundle.relative_to(ROOT)} > {page.relative_to(ROOT)}")


def test_the_readmes_generated_blocks_are_what_their_commands_print():
    """The README's example (a report of the committed bundle) and the plugin READMEs' parameter listings."""
    res = _run("python", str(ROOT / "tools" / "docs_sync.py"), "--check")
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]


def _run(program: str, *args: str) -> subprocess.CompletedProcess:
    exe = sys.executable if program == "python" else str(Path(sys.executable).with_name(program))
    env = {k: v for k, v in os.environ.items() if k not in ("HARBENCH_PLUGINS", "HARBENCH_LOAD_PLUGINS")}
    return subprocess.run([exe, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
