import json

import pytest
import torch

from harbench_duet.generator import GeneratorConfig, ParameterGenerator, run_head


def make(**kw) -> ParameterGenerator:
    torch.manual_seed(0)
    return ParameterGenerator(GeneratorConfig(feature_dim=12, classes=5, **kw)).eval()


@pytest.mark.parametrize("hidden, shapes", [(0, [(5, 12)]), (7, [(7, 12), (5, 7)])])
def test_generated_layers_have_the_head_shapes(hidden, shapes):
    gen = make(hidden=hidden)
    layers = gen(torch.randn(3, 9, 12))
    assert [tuple(w.shape[1:]) for w, _ in layers] == shapes
    assert [tuple(b.shape) for _, b in layers] == [(3, o) for o, _ in shapes]
    assert gen.cfg.head_numel == sum(o * i + o for o, i in shapes)
    assert run_head(torch.randn(3, 4, 12), layers).shape == (3, 4, 5)


@pytest.mark.parametrize("encoder", ["gru", "meanstd"])
@pytest.mark.parametrize("swa", [False, True])
def test_same_buffer_same_head_and_different_buffer_different_head(encoder, swa):
    gen = make(encoder=encoder, swa=swa)
    a, b = torch.randn(1, 8, 12), torch.randn(1, 8, 12) * 3 + 1
    with torch.no_grad():
        wa1, wa2, wb = gen(a)[0][0], gen(a.clone())[0][0], gen(b)[0][0]
    assert torch.equal(wa1, wa2)
    assert not torch.allclose(wa1, wb)


def test_residual_form_is_the_umn_head_plus_a_scaled_delta():
    gen = make(form="residual", hidden=0, delta_scale=0.5)
    for dec in [*gen.weight_decoders, *gen.bias_decoders]:
        torch.nn.init.zeros_(dec.weight)
    feats = torch.randn(2, 4, 12)
    with torch.no_grad():
        generated = run_head(feats, gen(torch.randn(2, 6, 12)))
        universal = gen.umn_logits(feats)
    assert torch.allclose(generated, universal, atol=1e-6)


def test_direct_form_does_not_depend_on_the_umn_head():
    gen = make(form="direct")
    buffer = torch.randn(1, 6, 12)
    with torch.no_grad():
        before = gen(buffer)[0][0].clone()
        for layer in gen.base:
            layer.weight.add_(10.0)
        after = gen(buffer)[0][0]
    assert torch.equal(before, after)


def test_config_round_trips_through_json_meta():
    cfg = GeneratorConfig(feature_dim=64, classes=6, hidden=16, encoder="meanstd", swa=True)
    assert GeneratorConfig.from_meta(json.loads(json.dumps(cfg.to_meta()))) == cfg


def test_unknown_encoder_is_refused():
    with pytest.raises(ValueError, match="encoder"):
        GeneratorConfig(feature_dim=4, classes=2, encoder="lstm")
