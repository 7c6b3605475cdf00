"""Reading commands import no torch (#23): ``--help``, ``runs``, ``list``, ``plugins``, ``report``, ``export`` and
``compare`` read the registry snapshot that a full registry load saved; a plugin with a summary hook, or a
snapshot that no longer matches the environment, loads the plugins as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from harbench import registry_snapshot
from harbench.cli import main
from harbench.plugins import Registry, allowed_from_env

from .test_report import make_run, standard_jobs

PROBE = textwrap.dedent("""
    import json, sys
    import click.formatting
    from harbench.cli import main
    click.formatting.FORCED_WIDTH = 80  # as click's CliRunner does
    seen = {}
    for args in json.loads(sys.argv[1]):
        try:
            main(args, prog_name="harbench", standalone_mode=False)
        except SystemExit:
            pass
        seen[" ".join(args)] = "torch" in sys.modules
    print("PROBE " + json.dumps(seen))
""")


def probe(commands: list[list[str]], env: dict[str, str]) -> tuple[dict[str, bool], str]:
    """Run the commands one after another in a fresh interpreter; after each, whether torch is imported."""
    res = subprocess.run([sys.executable, "-c", PROBE, json.dumps(commands)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    line = [x for x in res.stdout.splitlines() if x.startswith("PROBE ")][-1]
    return json.loads(line[len("PROBE "):]), res.stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A results store with one run (no plugin of its methods has a summary hook) and a saved snapshot of the
    registry this environment loads (the same load the command line does)."""
    root = tmp_path_factory.mktemp("reading")
    results, cache = root / "results", root / "cache"
    make_run(results, standard_jobs())
    env = {**os.environ, "HARBENCH_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}
    saved = os.environ.get("HARBENCH_CACHE_DIR")
    os.environ["HARBENCH_CACHE_DIR"] = str(cache)
    try:
        reg = Registry()
        reg.load_entry_points(allowed_from_env())
        reg.load_modules(os.environ.get("HARBENCH_PLUGINS", "").split(","))
        assert registry_snapshot.save(reg) is not None
        data = registry_snapshot.load_saved()
    finally:
        if saved is None:
            os.environ.pop("HARBENCH_CACHE_DIR")
        else:
            os.environ["HARBENCH_CACHE_DIR"] = saved
    return {"results": str(results), "root": root, "env": env, "registry": reg, "data": data}


def test_reading_commands_import_no_torch(world):
    r = world["results"]
    out = str(world["root"] / "export.json")
    commands = [["--help"], ["runs", "--results", r], ["list", "metrics"], ["list", "methods", "--format", "json"],
                ["list", "backbones"], ["plugins"], ["report", "latest", "--results", r],
                ["report", "latest", "--results", r, "--format", "json"], ["export", "latest", "--results", r, "-o", out],
                ["compare", "latest", "latest", "--results", r]]
    plugin_commands = [c["name"] for c in world["data"]["commands"]][:1]  # a plugin's command loads the plugins
    seen, stdout = probe(commands + [[name, "--help"] for name in plugin_commands], world["env"])
    assert seen == {**{" ".join(c): False for c in commands}, **{f"{n} --help": True for n in plugin_commands}}, seen
    assert "acc_seen" in stdout and "finetune-full" in stdout  # the commands did their work
    assert all(f"Usage: harbench {n}" in stdout for n in plugin_commands)
    assert len(json.loads(open(out).read())) == len(standard_jobs())


def test_snapshot_output_equals_the_full_registry_output(world, monkeypatch):
    """What --help, list and plugins print from the snapshot is what they print with every plugin loaded."""
    from harbench import plugins

    commands = [["--help"], ["list", "metrics"], ["list", "hardware", "--format", "json"], ["plugins"]]
    _, from_snapshot = probe(commands, world["env"])
    monkeypatch.setattr(plugins, "_registry", world["registry"])
    monkeypatch.setattr(main, "plugins_loaded", False)
    full = "".join(CliRunner().invoke(main, c, prog_name="harbench").output for c in commands)
    assert from_snapshot.rsplit("PROBE ", 1)[0] == full
    assert "tbft-steps" in full or not any(p.distribution == "harbench-tbft" for p in world["registry"].plugins)


def test_another_environment_does_not_use_the_snapshot(world):
    """Other plugin settings (like an edited plugin or another install) make another key: the registry loads."""
    env = {**world["env"], "HARBENCH_LOAD_PLUGINS": "" if world["env"].get("HARBENCH_LOAD_PLUGINS") else "none"}
    seen, _ = probe([["runs", "--results", world["results"]], ["list", "metrics"]], env)
    assert seen == {f"runs --results {world['results']}": False, "list metrics": True}  # runs needs no registry
    again, out = probe([["list", "metrics"]], env)  # ... and the full load saved this environment's snapshot
    assert again == {"list metrics": False} and "acc_seen" in out


def test_summary_hooks_load_the_plugins_only_for_rows_they_concern(monkeypatch):
    """Distribution ``a`` has a summary hook and registers method ``m1``; ``b`` registers ``m2`` and no hook."""
    def plugin(dist, hooks):
        return {"entry_point": dist, "distribution": dist, "version": "1", "status": "loaded", "reason": "",
                "hooks": hooks}

    def item(name, dist):
        return {"name": name, "distribution": dist, "version": "1", "description": "", "unit": None,
                "higher_is_better": None, "backbone": "resnet"}

    data = {"items": {"dataset": [item("d", "harbench")], "method": [item("m1", "a"), item("m2", "b")],
                      "hardware": [item("cpu", "harbench")], "metric": []},
            "plugins": [plugin("a", [registry_snapshot.SUMMARY_HOOK]), plugin("b", ["harbench_register_methods"])],
            "commands": [], "listings": {}}
    loads = []
    monkeypatch.setattr(registry_snapshot, "full_registry", lambda: loads.append(1) or pytest.fail("loaded"))
    snap = registry_snapshot.SnapshotRegistry(data)
    rows = [{"method": "m2", "dataset": "d", "hardware": "cpu"}]
    assert not snap.summary_needed(rows) and snap.hook.harbench_report_summary(rows=rows) == [] and not loads
    assert snap.summary_needed(rows + [{"method": "m1", "dataset": "d", "hardware": "cpu"}])
    data["plugins"].append(plugin("c", [registry_snapshot.SUMMARY_HOOK]))  # a summary-only plugin: always asked
    assert registry_snapshot.SnapshotRegistry(data).summary_needed(rows)


def test_summary_hooks_import_only_the_hook_modules_never_the_registration(monkeypatch, tmp_path):
    """A snapshot answers a summary with the plugin's entry-point module alone: its registration hook (which would
    import the method, hence torch) is never called. A module that no longer imports makes it load the full
    registry instead (which reports the plugin broken), so no summary is silently left out."""
    (tmp_path / "summary_only_probe.py").write_text(textwrap.dedent("""
        from harbench import hookimpl

        @hookimpl
        def harbench_register_methods(register):
            raise AssertionError("a summary must not register the methods")

        @hookimpl
        def harbench_report_summary(rows):
            return {"title": "probe", "headers": ["n"], "rows": [[len(rows)]]}
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    full_loads: list[int] = []
    full = type("Full", (), {"hook": type("Hook", (), {"harbench_report_summary": lambda self, rows: ["full"]})()})()
    monkeypatch.setattr(registry_snapshot, "full_registry", lambda: full_loads.append(1) or full)
    hooks = [registry_snapshot.SUMMARY_HOOK, "harbench_register_methods"]

    def snapshot(*modules: str) -> registry_snapshot.SnapshotRegistry:
        return registry_snapshot.SnapshotRegistry({
            "items": {"dataset": [], "method": [], "hardware": [], "metric": []}, "commands": [], "listings": {},
            "plugins": [{"entry_point": name, "distribution": name, "version": "0+local", "status": "loaded",
                         "reason": "", "hooks": hooks} for name in modules]})

    rows = [{"method": "m", "dataset": "d", "hardware": "cpu"}] * 3
    snap = snapshot("summary_only_probe")
    assert snap.hook.harbench_report_summary(rows=rows) == [{"title": "probe", "headers": ["n"], "rows": [[3]]}]
    assert [(p.entry_point, p.status) for p in snap._hooks.plugins] == [("summary_only_probe", "loaded")]
    assert not any(snap._hooks.items.values()) and not full_loads
    assert snapshot("summary_only_probe", "no_such_probe_module").hook.harbench_report_summary(rows=rows) == ["full"]
    assert full_loads == [1]


def test_a_plugin_whose_registration_fails_is_broken_not_half_registered(monkeypatch, tmp_path):
    """Paper plugins import their methods inside the registration hooks: an import failing there must leave the
    plugin wholly broken (as a failing module import did), with no hook and no item of it registered."""
    (tmp_path / "half_broken_probe.py").write_text(textwrap.dedent("""
        from harbench import hookimpl

        @hookimpl
        def harbench_register_methods(register):
            import no_such_dependency_of_the_probe  # noqa: F401

        @hookimpl
        def harbench_report_summary(rows):
            return {"title": "half"}
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry()
    reg.load_modules(["half_broken_probe"])
    assert [(p.entry_point, p.status) for p in reg.plugins] == [("half_broken_probe", "broken")]
    assert "no_such_dependency_of_the_probe" in reg.plugins[0].reason
    assert reg.hook.harbench_report_summary(rows=[]) == [] and "half_broken_probe" not in reg.versions()


def test_claims_from_a_registry_snapshot_import_no_torch_and_print_the_committed_page(tmp_path):
    """``harbench claims`` after any earlier command (which left the registry snapshot): the paper plugins' summary
    hooks load without their methods (lazy plugin packages), so torch is never imported, and the page printed is
    the committed one (the same summaries as with every plugin loaded)."""
    root = Path(__file__).resolve().parents[1]
    bundle, page = root / "published" / "drift", root / "docs" / "claims" / "drift.md"
    env = {k: v for k, v in os.environ.items() if k not in ("HARBENCH_PLUGINS", "HARBENCH_LOAD_PLUGINS")}
    env.update(HARBENCH_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    probe([["plugins"]], env)  # a first command: loads the full registry and saves its snapshot
    seen, stdout = probe([["claims", str(bundle)]], env)
    assert seen == {f"claims {bundle}": False}
    assert stdout.rsplit("PROBE ", 1)[0] == page.read_text(encoding="utf-8")
