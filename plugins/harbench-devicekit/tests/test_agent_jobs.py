"""The agent's jobs against fabricated sensors: once as a subprocess exactly as on a device, the rest in-process
(the same code, without paying torch's import per test)."""

import fcntl
import importlib.util
import io
import tarfile
import threading
import time

import pytest
import torch
from harbench_devicekit import testing
from harbench_devicekit.export import torchscript_bytes
from harbench_devicekit.transport import AGENT_FILE, AgentError, JobFiles, LocalTransport

spec = importlib.util.spec_from_file_location("harbench_agent_jobs_under_test", AGENT_FILE)
agent = importlib.util.module_from_spec(spec)
spec.loader.exec_module(agent)


def run_in_process(job, folder):
    """Unpack the job like the device does and run it in this process."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(job.tar_bytes())) as tar:
        tar.extractall(folder, filter="data")
    return agent.run_job(str(folder / "job.json"))

FAST_ENERGY = {"hz": 20.0, "min_s": 0.3, "idle_s": 0.2}


def settings(tree, lease, meter="auto", **energy):
    return {
        "device": "cpu", "threads": 1,
        "energy": {"meter": meter, "ina3221_roots": [str(tree["ina"])], **FAST_ENERGY, **energy},
        "state": {"sysfs_root": str(tree["sysfs"]), "vcgencmd": str(tree["bin"] / "vcgencmd"),
                  "nvpmodel": str(tree["bin"] / "nvpmodel"), "temp_threshold_c": 60.0, "settle_timeout_s": 5},
        "lease": {"path": str(lease), "timeout_s": 30},
    }


def inference_job(tree, model, lease, **kw):
    example = torch.randn(1, 6, 32)
    job = {**settings(tree, lease, **kw), "kind": "inference", "model": "model.pt", "input_shape": [1, 6, 32],
           "timing": {"warmup_s": 0.0, "warmup_min": 2, "min_duration_s": 0.0, "min_count": 15}}
    return JobFiles(job, {"model.pt": torchscript_bytes(model, example)})


def test_inference_job_measures_latency_energy_and_state(device_tree, tiny_model, tmp_path):
    result = LocalTransport().run(inference_job(device_tree, tiny_model, tmp_path / "lease"))
    assert len(result["latency_s"]) >= 15 and all(s > 0 for s in result["latency_s"])
    energy = result["energy"]
    assert energy["method"] == "ina3221" and energy["kind"] == "measured"
    watts = testing.xavier_watts()  # the fabricated rails are constant
    assert energy["idle_w"] == pytest.approx(watts) and energy["active_w"] == pytest.approx(watts)
    assert energy["joules_per_unit"] == pytest.approx(watts * energy["active_s"] / energy["units"])
    assert energy["joules_net_per_unit"] == pytest.approx(0.0, abs=1e-9)
    assert energy["active_s"] >= 0.3 and energy["active_samples"] >= 3
    assert result["state_start"]["power_mode"]["name"] == "MAXN"
    assert result["settle"]["settled"] and result["state_end"]["temperatures_c"]
    assert result["lease"]["wait_s"] < 5


def test_inference_job_uses_pmic_when_no_rails(device_tree, tiny_model, tmp_path):
    job = inference_job(device_tree, tiny_model, tmp_path / "lease", ina3221_roots=[str(tmp_path / "none")])
    energy = run_in_process(job, tmp_path / "job")["energy"]
    assert energy["method"] == "pmic"
    assert energy["active_w"] == pytest.approx(testing.pmic_watts())


def test_adapt_replay_reproduces_the_reported_workload(device_tree, tiny_model, tmp_path):
    trainable = [n for n, _ in tiny_model.named_parameters() if n.startswith("fc.")]
    replay = {"optimizer_steps": 3, "batch_size": 4, "trainable": trainable, "forward_only_samples": 10,
              "eval_batch": 5, "num_classes": 4, "optimizer": "adam", "lr": 1e-3}
    job = {**settings(device_tree, tmp_path / "lease"), "kind": "adapt", "train_model": "train.pt",
           "input_shape": [1, 6, 32], "replay": replay, "timing": {"min_duration_s": 0.0, "min_replays": 2}}
    files = {"train.pt": torchscript_bytes(tiny_model, torch.randn(4, 6, 32), train=True)}
    result = run_in_process(JobFiles(job, files), tmp_path / "job")
    assert result["replayed"] == {"optimizer_steps": 3, "batch_size": 4, "trainable_tensors": 2,
                                  "trainable_params": 4 * 16 + 4, "eval_calls": 2}
    assert len(result["replay_s"]) >= 2 and result["energy"]["unit"] == "replay"


def test_replay_rejects_unknown_trainable_names(device_tree, tiny_model, tmp_path):
    replay = {"optimizer_steps": 1, "batch_size": 2, "trainable": ["nope.weight"], "forward_only_samples": 0,
              "num_classes": 4}
    job = {**settings(device_tree, tmp_path / "lease"), "kind": "adapt", "train_model": "train.pt",
           "input_shape": [1, 6, 32], "replay": replay}
    files = {"train.pt": torchscript_bytes(tiny_model, torch.randn(2, 6, 32), train=True)}
    with pytest.raises(ValueError, match="nope.weight"):
        run_in_process(JobFiles(job, files), tmp_path / "job")


def test_lease_queues_a_second_job_until_the_first_releases(tmp_path):
    lease = str(tmp_path / "lease")
    hold_s = 0.5
    with open(lease, "a+") as handle:  # another job holds the device (a separate open file description)
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        threading.Timer(hold_s, lambda: fcntl.flock(handle.fileno(), fcntl.LOCK_UN)).start()
        started = time.monotonic()
        with agent.device_lease(lease, timeout_s=10) as held:
            acquired = time.monotonic() - started
    assert acquired >= hold_s * 0.9 and held["wait_s"] >= hold_s * 0.9


def test_lease_timeout_and_failure_reported_as_json(device_tree, tiny_model, tmp_path):
    lease = tmp_path / "lease"
    job = inference_job(device_tree, tiny_model, lease, meter="none")
    job.job["lease"]["timeout_s"] = 0.2
    with open(lease, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        with pytest.raises(RuntimeError, match="lease"):
            run_in_process(job, tmp_path / "job")


def test_transport_surfaces_the_agents_error(tmp_path):
    with pytest.raises(AgentError, match="unknown job kind"):
        LocalTransport().run(JobFiles({"kind": "bogus", "lease": {"path": str(tmp_path / "lease")}}))


def test_onnxruntime_runner_builds_a_session_with_threads_and_providers(tmp_path, monkeypatch):
    """The onnxruntime path against a stand-in module (onnxruntime is not a host dependency)."""
    import sys
    import types

    calls = {}

    class Options:
        intra_op_num_threads = 0

    class Session:
        def __init__(self, path, options, providers):
            calls.update(path=path, threads=options.intra_op_num_threads, providers=providers)

        def get_inputs(self):
            return [types.SimpleNamespace(name="x")]

        def run(self, outputs, feeds):
            calls["shape"] = feeds["x"].shape
            calls["runs"] = calls.get("runs", 0) + 1

    fake = types.SimpleNamespace(SessionOptions=Options, InferenceSession=Session, __version__="0-test")
    monkeypatch.setitem(sys.modules, "onnxruntime", fake)
    runner = agent.make_runner({"runtime": "onnxruntime", "model": "m.onnx", "input_shape": [1, 6, 8],
                                "threads": 2}, str(tmp_path))
    runner()
    assert calls == {"path": str(tmp_path / "m.onnx"), "threads": 2, "providers": ["CPUExecutionProvider"],
                     "shape": (1, 6, 8), "runs": 1}
    with pytest.raises(ValueError, match="runtime"):
        agent.make_runner({"runtime": "tflite"}, str(tmp_path))
