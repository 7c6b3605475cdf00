"""Tracing, the roofline, profiles and the calibration fit."""

from pathlib import Path

import pytest
import torch
from harbench_devicekit.calibrate import CalibrationPoint, fit
from harbench_devicekit.profiles import Calibration, ComputeUnit, PowerModel, load_profile, unsourced_figures
from harbench_devicekit.roofline import estimate, roofline_seconds
from harbench_devicekit.trace import OpCost, OpTrace, trace_forward, trace_train_step
from harbench_devicekit.workload import AdaptWorkload, InputShapes

from harbench import AdaptFacts, build_backbone, flops_per_window


def unit(**cal):
    base = {"t_call_s": 10e-6, "t_op_s": 2e-6, "eta_c": 0.5, "eta_m": 0.25}
    return ComputeUnit("cpu", 100e9, 10e9, 4, 4, Calibration(**{**base, **cal}))


def test_trace_flops_agree_with_harbench_and_views_are_free(tiny_model):
    x = torch.randn(1, 6, 32)
    trace = trace_forward(tiny_model, x)
    assert trace.flops == pytest.approx(flops_per_window(tiny_model, x))
    names = {op.op for op in trace.ops}
    assert "convolution" in names and not names & {"view", "t", "detach", "transpose"}
    assert trace.bytes > sum(p.numel() * 4 for p in tiny_model.parameters())  # weights plus activations


def test_train_step_trace_counts_backward_and_only_trainable_updates(tiny_model):
    x = torch.randn(4, 6, 32)
    full = trace_train_step(tiny_model, x, 4)
    head = trace_train_step(tiny_model, x, 4, trainable=["fc.weight", "fc.bias"])
    assert full.flops > 2.5 * trace_forward(tiny_model, x).flops  # forward + backward of weights and inputs
    assert head.flops < full.flops
    assert 0 < head.count("optimizer") < full.count("optimizer")
    assert any(op.op == "convolution_backward" for op in full.ops)
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    assert all(torch.equal(before[k], v) for k, v in tiny_model.state_dict().items())  # tracing copies the model


def test_roofline_takes_the_slower_bound_per_operator_plus_overheads():
    trace = OpTrace([OpCost("mm", 1e9, 1e3), OpCost("add", 0.0, 1e8), OpCost("adam", 0.0, 0.0, "optimizer")])
    u = unit(t_op_optimizer_s=5e-6)
    compute, memory, overhead = roofline_seconds(trace, u)
    assert compute == pytest.approx(1e9 / 50e9)
    assert memory == pytest.approx(1e8 / 2.5e9)
    assert overhead == pytest.approx(10e-6 + 2 * 2e-6 + 5e-6)
    assert sum(roofline_seconds(trace, u, calls=3)) == pytest.approx(3 * (compute + memory + overhead))


def test_energy_is_idle_plus_utilisation_share_of_dynamic_power():
    trace = OpTrace([OpCost("mm", 4e9, 0.0)])
    est = estimate(trace, unit(t_call_s=0.0, t_op_s=0.0), PowerModel(idle_w=2.0, load_w=6.0))
    assert est.utilisation == pytest.approx(1.0)  # 4 threads on 4 cores, compute-bound
    assert est.joules == pytest.approx(6.0 * est.seconds)
    assert est.joules_net == pytest.approx(4.0 * est.seconds)
    overhead_only = estimate(OpTrace([OpCost("add", 0.0, 0.0)]), unit(), PowerModel(2.0, 6.0))
    assert overhead_only.utilisation == pytest.approx(0.25)  # dispatch keeps one of four cores busy


def test_fit_recovers_a_known_calibration():
    truth = unit(t_call_s=30e-6, t_op_s=3e-6, eta_c=0.2, eta_m=0.4, t_op_optimizer_s=12e-6)
    points = []
    for backbone, width in (("resnet1d", 4), ("mobilenet1d", 0.5)):
        model = build_backbone(backbone, 6, 4, width=width)
        for batch in (1, 8):
            x = torch.randn(batch, 6, 32)
            for phase, trace in (("forward", trace_forward(model, x)), ("train", trace_train_step(model, x, 4))):
                if phase == "train" and batch == 1:
                    continue
                p = CalibrationPoint(f"{backbone}{width} b{batch} {phase}", f"{backbone}{width}", phase, batch, trace)
                p.measured_s = sum(roofline_seconds(trace, truth))
                points.append(p)
    fitted = fit(points, truth.peak_flops, truth.bandwidth_bytes_s, 4, 4)
    assert fitted.mape < 5.0 and 0.0 <= fitted.mape_cv < 50.0  # one model per fold: held-out error is larger
    assert fitted.calibration.t_op_optimizer_s == pytest.approx(12e-6, rel=0.2)


def test_workload_from_facts_derives_batch_and_validation_calls(tiny_model):
    facts = AdaptFacts(optimizer_steps=6, forward_samples=80, backward_samples=45, batch_size=8, epochs=3,
                       trainable=["fc.weight", "fc.bias"])
    w = AdaptWorkload.from_facts(facts, tiny_model, 4)
    assert (w.optimizer_steps, w.batch_size, w.forward_only_samples) == (6, 8, 35)
    assert w.eval_batch == 12 and w.eval_calls == 3 and not w.empty
    derived = AdaptWorkload.from_facts(AdaptFacts(backward_samples=32, batch_size=16), tiny_model, 4)
    assert derived.optimizer_steps == 2 and len(derived.trainable) == len(list(tiny_model.parameters()))
    assert derived.notes
    assert AdaptWorkload.from_facts(AdaptFacts(), tiny_model, 4).empty


def test_input_shapes_are_read_from_the_adapted_models_own_calls(tiny_model):
    shapes = InputShapes()
    other = build_backbone("resnet1d", 3, 4, width=4, depth=1)
    with shapes.recording():
        other(torch.randn(2, 3, 16))
        tiny_model(torch.randn(2, 6, 32))
    assert shapes.window_of(tiny_model) == (6, 32) and shapes.window_of(other) == (3, 16)
    with shapes.recording():
        pass
    assert shapes.window_of(tiny_model) is None  # each adapt starts afresh


def test_user_profile_folder_overrides_and_unsourced_figures_are_found(tmp_path, monkeypatch):
    monkeypatch.setenv("HARBENCH_PROFILE_DIR", str(tmp_path))
    (tmp_path / "board.yaml").write_text(
        "name: board\nprocessor: {value: X, source: s}\nmemory_gb: {value: 1, source: s}\n"
        "units: {cpu: {peak_flops: {value: 1.0e9, source: s}, bandwidth_bytes_s: 2.0e9, cores: {value: 2, source: s}}}\n"
        "power: {idle_w: {value: 1, source: s}, load_w: {value: 2, source: s}}\n"
        "calibration: {date: 2026-01-01, cpu: {t_call_s: 0, t_op_s: 1.0e-6, eta_c: 0.5, eta_m: 0.5, source: fit}}\n")
    profile = load_profile("board")
    assert profile.unit().peak_flops == 1e9 and profile.calibration_date == "2026-01-01"
    assert unsourced_figures(profile.raw) == ["units.cpu.bandwidth_bytes_s"]
    with pytest.raises(FileNotFoundError):
        load_profile("no-such-board")


def test_generic_device_target_finds_board_profiles_and_needs_power_figures(tiny_model, tmp_path, monkeypatch):
    from harbench_devicekit import DeviceTarget
    from harbench_devicekit.plugin import ProfiledDevice

    class Board(DeviceTarget):  # a board plugin's target: registers its profile folder by existing
        name = "test-board-profiles"
        profile_name = "board"

    shipped = Path(__file__).parents[1] / "src/harbench_devicekit/profiles"
    (tmp_path / "board.yaml").write_text((shipped / "cpu.yaml").read_text().replace("name: cpu", "name: board")
                                         + "power: {idle_w: {value: 1.0, source: t}, load_w: {value: 3.0, source: t}}\n")
    monkeypatch.setattr(Board, "profile_dirs", [tmp_path])
    board = ProfiledDevice(profile="board")
    assert board.profile.path == str(tmp_path / "board.yaml") and board.describe().mode == "estimated"
    assert board.run_inference(tiny_model, torch.randn(1, 6, 32)).joules_per_window > 0
    with pytest.raises(ValueError, match="power"):
        ProfiledDevice(profile="cpu").run_inference(tiny_model, torch.randn(1, 6, 32))


def test_traces_are_shared_by_same_architecture_only():
    from harbench_devicekit.target import _traced

    a, b = build_backbone("resnet1d", 6, 6), build_backbone("resnet1d", 6, 6)
    with torch.no_grad():
        next(b.parameters()).add_(1.0)  # other weights, same architecture: the operators are the same
    x = torch.zeros(1, 6, 64)
    assert _traced(trace_forward, a, x) is _traced(trace_forward, b, x)
    assert _traced(trace_forward, a, x).flops == trace_forward(b, x).flops
    other = build_backbone("resnet1d", 6, 4)  # another head: a different trace
    assert _traced(trace_forward, other, x) is not _traced(trace_forward, a, x)
    assert _traced(trace_forward, a, torch.zeros(2, 6, 64)) is not _traced(trace_forward, a, x)
    step = _traced(trace_train_step, a, torch.zeros(4, 6, 64), 6, ["head.weight"], "sgd")
    assert step is not _traced(trace_train_step, a, torch.zeros(4, 6, 64), 6, None, "sgd")
