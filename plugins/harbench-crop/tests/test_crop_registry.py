"""The plugin is found through the ``harbench`` entry-point group like any third party's."""

from __future__ import annotations

import pytest
from harbench_crop import CRoP

from harbench.testing import registry as get_registry

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels


def test_registered_through_its_entry_point():
    registry = get_registry(refresh=True)
    entry = registry.get("method", "crop")
    assert entry.cls is CRoP and entry.distribution == "harbench-crop" and entry.version == "0.1.0"
    plugin = next(p for p in registry.plugins if p.distribution == "harbench-crop")
    assert plugin.status == "loaded"
    assert {"harbench_register_methods", "harbench_report_summary"} <= set(plugin.hooks)


def test_declares_every_parameter_with_help():
    assert CRoP.backbone == "resnet1d" and not CRoP.label_free
    for name, param in CRoP.parameters.items():
        assert param.help, name
