"""The plugin is found through the ``harbench`` entry-point group and declares what the suite relies on."""

from __future__ import annotations

import pytest
from harbench_tbft import BLOCK_CHOICES, TBFT, TBFTPreAct

from harbench import ParamError
from harbench.testing import registry as get_registry

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels


def test_registered_from_its_own_distribution():
    registry = get_registry(refresh=True)
    entry = registry.get("method", "tbft")
    assert entry.cls is TBFT and entry.distribution == "harbench-tbft"
    preact = registry.get("method", "tbft-preact")
    assert preact.cls is TBFTPreAct and preact.cls.backbone == "preact1d" and TBFT.backbone == "resnet1d"
    plugin = next(p for p in registry.plugins if p.distribution == "harbench-tbft")
    assert plugin.status == "loaded"
    assert {"harbench_register_methods", "harbench_report_summary"} <= set(plugin.hooks)


def test_defaults_take_the_authors_recipe_for_the_drift_type():
    p = TBFT().params
    assert (p.block, p.recipe, p.freeze_bn) == ("auto", "auto", False)
    overrides = ("optimizer", "lr", "lr_fc", "momentum", "weight_decay", "epochs", "patience", "val_fraction")
    assert all(p[k] is None for k in overrides)  # None: the recipe's value
    assert set(TBFT.parameters["block"].choices) == set(BLOCK_CHOICES) == {"front", "stage2", "stage3", "fc", "all", "auto"}


def test_rejects_an_unknown_block():
    with pytest.raises(ParamError, match="block"):
        TBFT(block="stage4")
