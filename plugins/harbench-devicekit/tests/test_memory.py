"""The adapt and inference memory model: what each term holds, the backward cut, and the device's usable memory."""

import pytest
import torch
from harbench_devicekit.memory import MB, adapt_memory, inference_memory, optimizer_copies
from harbench_devicekit.plugin import ProfiledDevice

from harbench import AdaptFacts, AdaptResult, build_backbone

B, C, T, CLASSES = 16, 6, 64, 5


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_backbone("resnet1d", C, CLASSES).eval()


def names_of(model, blocks):
    parts = model.blocks()
    return [f"{b}.{n}" for b in blocks for n, _ in parts[b].named_parameters()]


def test_full_needs_more_than_last_which_needs_more_than_nothing(model):
    x = torch.zeros(B, C, T)
    full = adapt_memory(model, x, CLASSES, None, "adam")
    last = adapt_memory(model, x, CLASSES, names_of(model, ["fc"]), "adam")
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    assert full.weights_mb == last.weights_mb == pytest.approx(weights / MB)
    assert full.gradients_mb == pytest.approx(sum(p.numel() * 4 for p in model.parameters()) / MB)
    assert full.optimizer_mb == pytest.approx(2 * full.gradients_mb)  # Adam: two moments per parameter
    assert last.gradients_mb == pytest.approx(sum(p.numel() * 4 for p in model.fc.parameters()) / MB)
    assert full.saved_mb > 20 * last.saved_mb > 0
    assert full.total_mb > last.total_mb + 2 * full.gradients_mb
    assert last.total_mb > last.weights_mb + last.batch_mb  # generic adds nothing: see the target test below


def test_tbft_fc_keeps_no_activations_below_the_head(model):
    """Training only the classifier keeps its input and the loss's log-probabilities, nothing of the layers below."""
    x = torch.zeros(B, C, T)
    fc = adapt_memory(model, x, CLASSES, names_of(model, ["fc"]), "sgd", momentum=0.9)
    assert fc.saved_mb * MB == pytest.approx(B * (model.fc.in_features + CLASSES) * 4, rel=0.05)
    stage3 = adapt_memory(model, x, CLASSES, names_of(model, ["stage3"]), "sgd", momentum=0.9)
    front = adapt_memory(model, x, CLASSES, names_of(model, ["front"]), "sgd", momentum=0.9)
    assert fc.saved_mb * 10 < stage3.saved_mb < front.saved_mb  # the cut moves down: more is kept for backward
    assert fc.optimizer_mb == pytest.approx(fc.gradients_mb)  # SGD with momentum: one copy
    assert optimizer_copies("sgd", 0.0)[0] == 0 and optimizer_copies("adamw")[0] == 2


def test_inference_memory_is_weights_input_and_the_largest_live_set():
    lin = torch.nn.Sequential(torch.nn.Linear(100, 300), torch.nn.ReLU(), torch.nn.Linear(300, 7))
    x = torch.zeros(2, 100)
    mem = inference_memory(lin, x)
    assert mem["weights_mb"] * MB == (100 * 300 + 300 + 300 * 7 + 7) * 4
    assert mem["activations_mb"] * MB == 2 * (2 * 300 * 4)  # the first layer's output and the ReLU's, both alive


def profile_yaml(usable_mb):
    return f"""
name: tiny-board
processor: {{value: test board, source: test}}
memory_gb: {{value: 1, source: test}}
usable_memory_mb: {{value: {usable_mb}, source: "test: a board too small for full fine-tuning"}}
units:
  cpu:
    peak_flops: {{value: 1.0e+10, source: test}}
    bandwidth_bytes_s: {{value: 1.0e+9, source: test}}
    cores: {{value: 1, source: test}}
power:
  idle_w: {{value: 1.0, source: test}}
  load_w: {{value: 2.0, source: test}}
calibration:
  status: uncalibrated
  cpu: {{t_call_s: 0.0, t_op_s: 1.0e-6, eta_c: 0.5, eta_m: 0.5, source: test}}
"""


def test_profile_usable_memory_reaches_the_target_and_adapt_is_costed(tmp_path, monkeypatch, model):
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "tiny-board.yaml").write_text(profile_yaml(2.5))
    monkeypatch.setenv("HARBENCH_PROFILE_DIR", str(folder))
    target = ProfiledDevice(profile="tiny-board")
    assert target.describe().usable_memory_mb == 2.5
    assert ProfiledDevice(profile="tiny-board", usable_memory_mb=64.0).describe().usable_memory_mb == 64.0
    x = torch.zeros(B, C, T)

    def adapt(facts):
        def run():
            model(x[:1])  # the harness's shape probe
            return AdaptResult(model, facts)
        return target.run_adapt(run)[1]

    nothing = adapt(AdaptFacts())
    full = adapt(AdaptFacts(optimizer_steps=2, backward_samples=2 * B, batch_size=B,
                            trainable=[n for n, _ in model.named_parameters()]))
    assert nothing.peak_mb == 0.0
    assert full.peak_mb == pytest.approx(full.extra["memory"]["total_mb"]) and full.peak_mb > 2.5
    assert full.extra["memory"]["kind"] == "estimated"
    inference = target.run_inference(model, x[:1])
    assert 0 < inference.peak_mb < full.peak_mb
