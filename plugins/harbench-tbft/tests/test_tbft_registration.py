"""The plugin is found through the ``harbench`` entry-point group and declares what the suite relies on."""

from __future__ import annotations

import pytest

from harbench import ParamError
from harbench.plugins import get_registry
from harbench_tbft import BLOCK_CHOICES, TBFT


def test_registered_from_its_own_distribution():
    registry = get_registry(refresh=True)
    entry = registry.get("method", "tbft")
    assert entry.cls is TBFT and entry.distribution == "harbench-tbft"
    plugin = next(p for p in registry.plugins if p.distribution == "harbench-tbft")
    assert plugin.status == "loaded"
    assert {"harbench_register_methods", "harbench_report_summary"} <= set(plugin.hooks)


def test_defaults_are_the_papers_recipe():
    p = TBFT().params
    assert (p.block, p.optimizer, p.momentum, p.weight_decay, p.lr, p.lr_fc, p.epochs, p.patience) == (
        "auto", "sgd", 0.9, 5e-4, 1e-3, 1e-2, 10, 5)
    assert set(TBFT.parameters["block"].choices) == set(BLOCK_CHOICES) == {"front", "stage2", "stage3", "fc", "all", "auto"}


def test_rejects_an_unknown_block():
    with pytest.raises(ParamError, match="block"):
        TBFT(block="stage4")
