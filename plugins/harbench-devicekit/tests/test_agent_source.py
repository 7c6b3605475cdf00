"""The agent must run on a Jetson's Python 3.8 with nothing but the standard library and the device's runtime."""

import ast
import subprocess
import sys

from harbench_devicekit.transport import AGENT_FILE

STDLIB_OK = set(sys.stdlib_module_names)
RUNTIMES = {"torch", "onnxruntime", "numpy"}


def test_agent_parses_as_python_38():
    ast.parse(AGENT_FILE.read_text(), feature_version=(3, 8))


def test_agent_rejects_newer_syntax_check_is_real():
    # the same check fails on 3.10 syntax, so the test above can fail
    try:
        ast.parse("match x:\n    case 1: pass\n", feature_version=(3, 8))
    except SyntaxError:
        return
    raise AssertionError("feature_version=(3, 8) accepted a match statement")


def test_agent_imports_only_stdlib_at_top_and_runtimes_lazily():
    tree = ast.parse(AGENT_FILE.read_text())
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            top.add(node.module.split(".")[0])
    assert top <= STDLIB_OK, top - STDLIB_OK
    lazy = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            lazy |= {a.name.split(".")[0] for a in node.names}
    assert lazy - STDLIB_OK <= RUNTIMES


def test_agent_runs_standalone():
    out = subprocess.run([sys.executable, str(AGENT_FILE), "version"], capture_output=True, text=True, check=True)
    assert '"agent_version"' in out.stdout
