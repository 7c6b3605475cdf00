from __future__ import annotations

import types

import pytest

from harbench import plugins
from harbench.plugins import Registry

TINY_DATA = "{users: 5, windows: 8, sessions: 2, k: 3, unseen_windows: 3}"
FAST_CPU = "{name: cpu, params: {min_duration_s: 0.0, min_count: 5, energy_min_s: 0.0, warmup: 1, energy: false}}"


def tiny_suite(methods: str = "[generic, {name: finetune-last, params: {epochs: 2}}]", seeds: str = "[0]",
               extra: str = "") -> str:
    return f"""
name: tiny
datasets: [{{name: synthetic-drift, params: {TINY_DATA}}}]
methods: {methods}
hardware: [{FAST_CPU}]
seeds: {seeds}
target_users: 2
generic: {{epochs: 1}}
{extra}
"""


@pytest.fixture
def registry(monkeypatch):
    """A registry with the core's built-ins only (third-party plugins pinned out), installed as the global one."""
    reg = Registry()
    reg.load_entry_points(allowed=[])
    monkeypatch.setattr(plugins, "_registry", reg)
    return reg


def plugin_module(name: str, **hooks) -> types.ModuleType:
    """A plugin module built in a test, with the given hook implementations."""
    module = types.ModuleType(name)
    for hook, fn in hooks.items():
        setattr(module, hook, plugins.hookspecs.hookimpl(fn))
    return module


@pytest.fixture
def write_suite(tmp_path):
    def write(text: str, name: str = "suite.yaml"):
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and shared CI machines punish oversubscription."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
