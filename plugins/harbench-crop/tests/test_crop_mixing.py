"""Mixing puts the generic weights back exactly where the mask is 0 and changes nothing else."""

from __future__ import annotations

import copy

import pytest
import torch
from harbench_crop import apply_masks, magnitude_masks, mix_with_generic, prunable_weights

from harbench import build_backbone

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels


def _pair():
    torch.manual_seed(0)
    generic = build_backbone("resnet1d", 6, 6, width=8, depth=1)
    personal = copy.deepcopy(generic)
    with torch.no_grad():
        for p in personal.parameters():
            p.add_(torch.randn_like(p))  # every personalized value differs from the generic one
        for m in personal.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.add_(1.0)
                m.running_var.add_(0.5)
    return generic, personal


def test_mixed_weights_equal_generic_exactly_where_the_mask_is_zero():
    generic, personal = _pair()
    masks = magnitude_masks(personal, 0.6)  # the default (ERK) masks
    pruned = apply_masks(copy.deepcopy(personal), masks)
    generic_before, personal_before = copy.deepcopy(generic.state_dict()), copy.deepcopy(pruned.state_dict())

    mixed = mix_with_generic(pruned, generic, masks)

    g, p, m = generic.state_dict(), pruned.state_dict(), mixed.state_dict()
    for name, value in m.items():
        if name in masks:
            off, on = masks[name] == 0, masks[name] == 1
            assert off.any() and on.any()
            assert torch.equal(value[off], g[name][off])  # bit-exact generic weights
            assert torch.equal(value[on], p[name][on])  # personalized weights kept
        else:  # biases, BatchNorm (parameters and running statistics) and the classifier stay personalized
            assert torch.equal(value, p[name]), name
            if value.is_floating_point():
                assert not torch.equal(value, g[name]), name
    for name, value in generic.state_dict().items():  # inputs untouched
        assert torch.equal(value, generic_before[name])
    for name, value in pruned.state_dict().items():
        assert torch.equal(value, personal_before[name])


def test_all_ones_mask_makes_mixing_a_no_op():
    generic, personal = _pair()
    ones = {n: torch.ones_like(w) for n, w in prunable_weights(personal).items()}
    mixed = mix_with_generic(personal, generic, ones)
    for name, value in mixed.state_dict().items():
        assert torch.equal(value, personal.state_dict()[name])
