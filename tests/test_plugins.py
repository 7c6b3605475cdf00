import importlib.metadata as md
import types

import pytest

from harbench import AdaptResult, Method, hookimpl
from harbench.plugins import PluginError, Registry

from .conftest import plugin_module


class Echo(Method):
    name = "echo"

    def adapt(self, generic, state, user, ctx):
        return AdaptResult(generic)


def test_builtins_are_discovered_through_entry_points(registry):
    eps = {ep.name for ep in md.entry_points(group="harbench") if ep.dist and ep.dist.name == "harbench"}
    assert {"synthetic-drift", "baselines", "cpu", "core-metrics"} <= eps
    assert {"generic", "finetune-full", "finetune-last"} <= set(registry.names("method"))
    assert registry.names("dataset") == ["synthetic-drift"]
    assert "cpu" in registry.names("hardware")
    assert {"acc_seen", "latency_ms_p99", "infer_mj"} <= set(registry.names("metric"))
    assert all(registry.items["method"][n].distribution == "harbench" for n in ("generic", "finetune-full"))


def test_a_third_party_plugin_registers_like_a_builtin(registry):
    module = plugin_module("third", harbench_register_methods=lambda register: register(Echo))
    registry.add_plugin(module, "harbench-echo", "1.2.3")
    r = registry.get("method", "echo")
    assert (r.cls, r.distribution, r.version) == (Echo, "harbench-echo", "1.2.3")


def test_name_collision_names_both_distributions(registry):
    class Clash(Echo):
        name = "generic"

    module = plugin_module("clash", harbench_register_methods=lambda register: register(Clash))
    with pytest.raises(PluginError, match=r"'harbench'.*'harbench-clash'"):
        registry.add_plugin(module, "harbench-clash", "0.1")


def test_misspelt_hook_is_an_error_not_silence():
    reg = Registry()
    module = types.ModuleType("typo")
    module.harbench_register_methodz = hookimpl(lambda register: None)
    with pytest.raises(Exception, match="harbench_register_methodz"):
        reg.add_plugin(module, "harbench-typo", "0.1")


def test_broken_entry_point_is_reported_and_others_still_load(monkeypatch):
    class FakeDist:
        name, version = "harbench-broken", "0.0.1"

    class BrokenEP:
        name, group, dist = "broken", "harbench", FakeDist()

        def load(self):
            raise ImportError("No module named 'missing_dependency'")

    real = md.entry_points(group="harbench")
    monkeypatch.setattr(md, "entry_points", lambda group: [*real, BrokenEP()])
    reg = Registry()
    reg.load_entry_points(allowed=None)
    broken = [p for p in reg.plugins if p.status == "broken"]
    assert [(p.distribution, "missing_dependency" in p.reason) for p in broken] == [("harbench-broken", True)]
    assert "generic" in reg.names("method")


def test_load_plugins_env_pins_third_party_plugins(monkeypatch):
    class FakeDist:
        name, version = "harbench-extra", "0.1"

    class EP:
        name, group, dist = "extra", "harbench", FakeDist()

        def load(self):
            return plugin_module("extra", harbench_register_methods=lambda register: register(Echo))

    real = md.entry_points(group="harbench")
    monkeypatch.setattr(md, "entry_points", lambda group: [*real, EP()])
    pinned = Registry()
    pinned.load_entry_points(allowed=[""])
    assert "echo" not in pinned.names("method") and "generic" in pinned.names("method")
    chosen = Registry()
    chosen.load_entry_points(allowed=["harbench-extra"])
    assert "echo" in chosen.names("method")


def test_registering_something_that_is_not_a_method_is_rejected(registry):
    module = plugin_module("bad", harbench_register_methods=lambda register: register(int))
    with pytest.raises(PluginError, match="not a harbench.Method"):
        registry.add_plugin(module, "harbench-bad", "0.1")


def test_plugins_command_lists_broken_and_loaded(registry):
    from click.testing import CliRunner

    from harbench.cli import main

    out = CliRunner().invoke(main, ["plugins"]).output
    assert "finetune-full" in out and "synthetic-drift" in out and "loaded" in out


def test_one_misspelt_hook_breaks_only_its_own_plugin_which_is_unregistered(monkeypatch):
    class FakeDist:
        def __init__(self, name):
            self.name, self.version = name, "0.1"

    class EP:
        group = "harbench"

        def __init__(self, name, module):
            self.name, self.module, self.dist = name, module, FakeDist(f"harbench-{name}")

        def load(self):
            return self.module

    typo = types.ModuleType("typo")
    typo.harbench_register_methodz = hookimpl(lambda register: None)
    typo.harbench_register_metrics = hookimpl(lambda register: None)

    class Good(Echo):
        name = "good-after-typo"

    good = plugin_module("good", harbench_register_methods=lambda register: register(Good))
    real = md.entry_points(group="harbench")
    monkeypatch.setattr(md, "entry_points", lambda group: [*real, EP("a-typo", typo), EP("b-good", good)])
    reg = Registry()
    reg.load_entry_points(allowed=None)
    status = {p.distribution: p.status for p in reg.plugins if p.distribution.startswith("harbench-a") or
              p.distribution.startswith("harbench-b")}
    assert status == {"harbench-a-typo": "broken", "harbench-b-good": "loaded"}
    assert "good-after-typo" in reg.names("method")
    assert not reg.pm.is_registered(typo)
    reason = next(p.reason for p in reg.plugins if p.distribution == "harbench-a-typo")
    assert "harbench_register_methodz" in reason
