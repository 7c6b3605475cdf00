"""The core's layout stays enterable: no import cycle (not even one hidden inside a function), no module over
~400 lines, and plugin tests that use only the public API (``harbench`` and ``harbench.testing``)."""

from __future__ import annotations

import ast
from pathlib import Path

import harbench

ROOT = Path(harbench.__file__).parent
PLUGINS = ROOT.parent / "plugins"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p) for p in ROOT.rglob("*.py")}


def _imports(path: Path, name: str) -> tuple[set[str], set[str]]:
    """harbench modules imported at module level, and inside functions."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]

    def resolve(node: ast.ImportFrom) -> list[str]:
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            mod = ".".join(base + ([node.module] if node.module else []))
        else:
            mod = node.module or ""
        subs = [f"{mod}.{a.name}" for a in node.names]  # `from . import hookspecs` needs hookspecs, not `.`
        modules = [m for m in subs if m in MODULES]
        return modules if len(modules) == len(subs) else [mod] + modules

    top, inner = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names = resolve(node)
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        (top if node in tree.body else inner).update(n for n in names if n.startswith("harbench"))
    return top, inner


def _graph(with_inner: bool) -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        top, inner = _imports(path, name)
        graph[name] = {d for d in (top | inner if with_inner else top) if d in paths and d != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = 2
        path.pop()
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_no_import_cycle_even_through_function_level_imports():
    assert _cycle(_graph(with_inner=False)) is None
    # a function-level import is for laziness only (torch-free reading commands, optional extras): made
    # module-level it must not close a cycle either
    assert _cycle(_graph(with_inner=True)) is None


def test_the_cycle_check_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_core_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT.parent)): n for p in ROOT.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these modules by what they do: {long}"


def test_plugin_tests_use_only_the_public_api():
    reaching = []
    for path in PLUGINS.glob("*/tests/**/*.py"):
        if "/tests/data/" in str(path):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for n in names:
                if n.startswith("harbench.") and n != "harbench.testing":
                    reaching.append(f"{path.relative_to(PLUGINS)}:{node.lineno} imports {n}")
    assert not reaching, "plugin tests reach into core internals:\n" + "\n".join(reaching)


def test_every_test_of_a_method_plugin_runs_under_the_kernel_matrix():
    """The four method plugins' tests train models and assert on their numbers: each file carries the ``kernel``
    marker, so ``make test`` reruns it under ATEN_CPU_CAPABILITY=default and =avx2 (a new file without it would
    only ever run under this machine's kernel)."""
    root = Path(__file__).resolve().parents[1] / "plugins"
    files = [f for p in ("crop", "duet", "smldist", "tbft") for f in (root / f"harbench-{p}" / "tests").glob("test_*.py")]
    unmarked = [str(f.relative_to(root)) for f in files if "pytestmark = pytest.mark.kernel" not in f.read_text()]
    assert files and not unmarked, unmarked
