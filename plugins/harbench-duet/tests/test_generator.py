import json

import pytest
import torch
from harbench_duet.generator import GeneratorConfig, ParameterGenerator, run_head

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels


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


@pytest.mark.parametrize("encoder", ["gru", "meanstd"])
def test_per_sample_encoding_equals_encoding_buffer_plus_that_sample(encoder):
    """The per-sample shortcut (buffer state + one step per sample) is the encoder run on buffer + sample."""
    gen = make(encoder=encoder, granularity="sample", hidden=7)
    buffer, samples = torch.randn(2, 6, 12), torch.randn(2, 3, 12)
    with torch.no_grad():
        fast = gen.encoder.per_sample(gen.encoder.state(buffer), samples)
        for b in range(2):
            for q in range(3):
                slow = gen.encoder(torch.cat([buffer[b], samples[b, q : q + 1]]).unsqueeze(0))[0]
                assert torch.allclose(fast[b, q], slow, atol=1e-5)


def test_per_sample_heads_differ_between_samples_and_follow_the_buffer():
    gen = make(granularity="sample", hidden=0)
    buffer, samples = torch.randn(1, 6, 12), torch.randn(1, 4, 12)
    with torch.no_grad():
        heads = gen.per_sample_heads(gen.encoder.state(buffer), samples)
        other = gen.per_sample_heads(gen.encoder.state(buffer * 3 + 1), samples)
    w = heads[0][0]
    assert w.shape == (4, 5, 12) and not torch.allclose(w[0], w[1])
    assert not torch.allclose(w, other[0][0])


@pytest.mark.parametrize("activation, fn", [("tanh", torch.tanh), ("relu", torch.relu)])
def test_activation_between_generated_layers(activation, fn):
    gen = make(hidden=7, activation=activation)
    feats, buffer = torch.randn(1, 4, 12), torch.randn(1, 6, 12)
    with torch.no_grad():
        (w1, b1), (w2, b2) = gen(buffer)
        expected = fn(feats @ w1.transpose(1, 2) + b1[:, None]) @ w2.transpose(1, 2) + b2[:, None]
        assert torch.allclose(run_head(feats, gen(buffer), activation), expected, atol=1e-5)
        hidden = fn(gen.base[0](feats))
        assert torch.allclose(gen.umn_logits(feats), gen.base[1](hidden), atol=1e-6)


def test_default_activation_is_tanh_as_in_the_paper():
    assert GeneratorConfig(feature_dim=4, classes=2).activation == "tanh"


def test_frozen_decoders_are_not_trainable_and_trained_ones_are():
    frozen, trained = make(decoders="frozen"), make()
    assert all(not p.requires_grad for d in frozen.weight_decoders for p in d.parameters())
    assert all(p.requires_grad for d in trained.weight_decoders for p in d.parameters())
    assert all(p.requires_grad for p in frozen.encoder.parameters())


def test_swa_with_per_sample_generation_is_refused():
    with pytest.raises(ValueError, match="swa"):
        GeneratorConfig(feature_dim=4, classes=2, swa=True, granularity="sample")
