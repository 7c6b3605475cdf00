"""harbench device agent: one file, standard library plus the device's own inference runtime, Python >= 3.8.

Why a single file: Jetson AGX Xavier ends at JetPack 5 (Ubuntu 20.04, Python 3.8, CUDA torch only from NVIDIA's
wheels), so the harness core (Python 3.11) never runs on a device. The host copies this file and a job folder to
the device over SSH, runs ``python3 harbench_agent.py run job.json`` and reads one JSON object from stdout.
There is no daemon: an exclusive ``flock`` on a lock file (the *lease*) queues concurrent users of one device.

Job kinds:
  ``inference``  batch-1 latency samples (warm-up, minimum duration and count) and energy per window from
                 back-to-back inferences, idle power measured in the same session.
  ``adapt``      replays the adapt workload the method reported (optimizer steps, batch size, trainable set,
                 forward-only samples) on the same model, timing it and metering its energy.
  ``calibrate``  times reference models and micro-benchmarks (matmul peak, copy bandwidth) for the estimator.
  ``probe``      device state and the energy meters that are available (a set-up check).

Energy meters, best first (``energy.meter: auto`` picks the first that works): ``ina3221`` (Jetson power rails in
sysfs), ``pmic`` (Raspberry Pi 5 ``vcgencmd pmic_read_adc``), ``command`` (an external meter adapter: any program
that prints watts), ``utilisation`` (a linear power model of CPU utilisation, flagged as modelled). Every path and
program is configurable so the agent can run end to end against fabricated sensors.
"""

import argparse
import contextlib
import fcntl
import glob
import json
import math
import os
import platform
import random
import re
import subprocess
import sys
import threading
import time

AGENT_VERSION = "1"
PMIC_LINE = re.compile(r"([A-Z_0-9]+)_([VA])\s+(current|volt)\(\d+\)=([0-9.]+)")


def log(message):
    """Progress goes to stderr: stdout carries exactly one JSON document."""
    sys.stderr.write("[harbench-agent] %s\n" % message)
    sys.stderr.flush()


def run_command(argv, timeout=10.0):
    """Run a helper program; ``None`` when it is missing or fails (device state is best effort)."""
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace")


def read_text(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def read_number(path):
    text = read_text(path)
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------------------- lease


@contextlib.contextmanager
def device_lease(path, timeout_s):
    """Hold an exclusive ``flock`` on ``path`` for the whole job: concurrent jobs on the device wait in turn."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    handle = open(path, "a+")
    started = time.monotonic()
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - started > timeout_s:
                    raise RuntimeError("device lease %s still held by another job after %.0f s" % (path, timeout_s))
                time.sleep(0.05)
        waited = time.monotonic() - started
        handle.seek(0)
        handle.truncate()
        handle.write("pid=%d since=%.0f\n" % (os.getpid(), time.time()))
        handle.flush()
        yield {"path": path, "wait_s": waited}
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


# ------------------------------------------------------------------------------------------------ device state


class DeviceState(object):
    """Reads what changes a measurement: power mode, clocks, governor, temperatures and throttling."""

    def __init__(self, config):
        self.sysfs = config.get("sysfs_root", "/sys")
        self.nvpmodel = config.get("nvpmodel", "nvpmodel")
        self.vcgencmd = config.get("vcgencmd", "vcgencmd")

    def temperatures(self):
        temps = {}
        for zone in sorted(glob.glob(os.path.join(self.sysfs, "class/thermal/thermal_zone*"))):
            value = read_number(os.path.join(zone, "temp"))
            if value is None:
                continue
            name = read_text(os.path.join(zone, "type")) or os.path.basename(zone)
            temps[name] = value / 1000.0 if value > 1000 else value
        return temps

    def max_temperature(self):
        temps = self.temperatures()
        return max(temps.values()) if temps else None

    def cpus(self):
        cpus = {}
        for cpufreq in sorted(glob.glob(os.path.join(self.sysfs, "devices/system/cpu/cpu[0-9]*/cpufreq"))):
            cpu = os.path.basename(os.path.dirname(cpufreq))
            cpus[cpu] = {
                "governor": read_text(os.path.join(cpufreq, "scaling_governor")),
                "cur_khz": read_number(os.path.join(cpufreq, "scaling_cur_freq")),
                "min_khz": read_number(os.path.join(cpufreq, "scaling_min_freq")),
                "max_khz": read_number(os.path.join(cpufreq, "scaling_max_freq")),
            }
        return cpus

    def devfreq(self):
        """Accelerator and memory clocks (the Jetson GPU appears as ``*gv11b`` / ``*gpu*``)."""
        out = {}
        for node in sorted(glob.glob(os.path.join(self.sysfs, "class/devfreq/*"))):
            out[os.path.basename(node)] = {
                "governor": read_text(os.path.join(node, "governor")),
                "cur_hz": read_number(os.path.join(node, "cur_freq")),
                "min_hz": read_number(os.path.join(node, "min_freq")),
                "max_hz": read_number(os.path.join(node, "max_freq")),
            }
        return out

    def power_mode(self):
        text = run_command([self.nvpmodel, "-q"])
        if text is None:
            return None
        name = re.search(r"NV Power Mode:\s*(\S+)", text)
        ids = re.findall(r"^\s*(\d+)\s*$", text, re.MULTILINE)
        return {"name": name.group(1) if name else None, "id": int(ids[-1]) if ids else None}

    def throttled(self):
        text = run_command([self.vcgencmd, "get_throttled"])
        match = re.search(r"throttled=(0x[0-9a-fA-F]+)", text or "")
        if not match:
            return None
        flags = int(match.group(1), 16)
        return {"raw": match.group(1), "now": bool(flags & 0xF), "since_boot": bool(flags & 0xF0000)}

    def snapshot(self):
        cpus = self.cpus()
        clocks_pinned = bool(cpus) and all(
            c["min_khz"] is not None and c["min_khz"] == c["max_khz"] for c in cpus.values()
        )
        devfreq = self.devfreq()
        if devfreq:
            clocks_pinned = clocks_pinned and all(
                d["min_hz"] is not None and d["min_hz"] == d["max_hz"] for d in devfreq.values()
            )
        return {
            "time": time.time(),
            "temperatures_c": self.temperatures(),
            "cpus": cpus,
            "governors": sorted({c["governor"] for c in cpus.values() if c["governor"]}),
            "devfreq": devfreq,
            "power_mode": self.power_mode(),
            "clocks_pinned": clocks_pinned,  # what jetson_clocks does: min = max on every CPU and devfreq node
            "throttled": self.throttled(),
        }

    def settle(self, threshold_c, timeout_s, poll_s=1.0):
        """Wait until the hottest zone is below ``threshold_c`` instead of sleeping a fixed cool-down."""
        started = time.monotonic()
        temp = self.max_temperature()
        while temp is not None and temp > threshold_c and time.monotonic() - started < timeout_s:
            time.sleep(poll_s)
            temp = self.max_temperature()
        return {
            "threshold_c": threshold_c,
            "waited_s": time.monotonic() - started,
            "temp_c": temp,
            "settled": temp is None or temp <= threshold_c,
        }


# ------------------------------------------------------------------------------------------------------ meters


class Ina3221Meter(object):
    """Jetson INA3221 rails in sysfs; total = sum of the configured rails (AGX Xavier has no VDD_IN rail).

    JetPack 5 exposes ``hwmon*/in<N>_label``, ``in<N>_input`` (mV) and ``curr<N>_input`` (mA); JetPack 4 exposes
    ``iio:device*/rail_name_<N>`` and ``in_power<N>_input`` (mW). Both layouts are read.
    """

    name = "ina3221"
    kind = "measured"

    def __init__(self, roots, rails=None):
        self.channels = []  # (label, reader)
        wanted = None if not rails else set(r.upper() for r in rails)
        for root in roots:
            for hwmon in sorted(glob.glob(os.path.join(root, "*", "hwmon", "hwmon*"))):
                for label_file in sorted(glob.glob(os.path.join(hwmon, "in*_label"))):
                    index = re.search(r"in(\d+)_label$", label_file).group(1)
                    label = read_text(label_file) or ""
                    volt = os.path.join(hwmon, "in%s_input" % index)
                    curr = os.path.join(hwmon, "curr%s_input" % index)
                    if os.path.exists(volt) and os.path.exists(curr):
                        self._add(label, wanted, self._volt_curr_reader(volt, curr))
            for iio in sorted(glob.glob(os.path.join(root, "*", "iio*device*"))):
                for name_file in sorted(glob.glob(os.path.join(iio, "rail_name_*"))):
                    index = name_file.rsplit("_", 1)[1]
                    power = os.path.join(iio, "in_power%s_input" % index)
                    if os.path.exists(power):
                        self._add(read_text(name_file) or "", wanted, self._power_reader(power))

    def _add(self, label, wanted, reader):
        short = label.upper().replace("VDD_", "")
        if not label or "SUM" in label.upper():
            return
        if wanted is not None and label.upper() not in wanted and short not in wanted:
            return
        self.channels.append((label, reader))

    @staticmethod
    def _volt_curr_reader(volt, curr):
        def read():
            v, i = read_number(volt), read_number(curr)
            return None if v is None or i is None else v * i / 1e6  # mV * mA -> W

        return read

    @staticmethod
    def _power_reader(power):
        def read():
            p = read_number(power)
            return None if p is None else p / 1e3  # mW -> W

        return read

    def available(self):
        return bool(self.channels) and self.read_watts() is not None

    def read_watts(self):
        total = 0.0
        for _, reader in self.channels:
            value = reader()
            if value is None:
                return None
            total += value
        return total

    def describe(self):
        return {"rails": [label for label, _ in self.channels], "scope": "module rails"}


class PmicMeter(object):
    """Raspberry Pi 5 PMIC ADC: ``vcgencmd pmic_read_adc`` prints a current and a voltage per rail; P = sum V*I.

    There is no energy counter, so the sampler integrates. Rails with a voltage and no current (EXT5V) are skipped,
    so this is board-rail power behind the PMIC, not wall power.
    """

    name = "pmic"
    kind = "measured"

    def __init__(self, vcgencmd):
        self.argv = [vcgencmd, "pmic_read_adc"]
        self.rails = []

    def read_rails(self):
        text = run_command(self.argv, timeout=5.0)
        if text is None:
            return None
        volts, amps = {}, {}
        for rail, unit, _, value in PMIC_LINE.findall(text):
            (volts if unit == "V" else amps)[rail] = float(value)
        return {rail: volts[rail] * amps[rail] for rail in volts if rail in amps}

    def available(self):
        rails = self.read_rails()
        self.rails = sorted(rails) if rails else []
        return bool(rails)

    def read_watts(self):
        rails = self.read_rails()
        return sum(rails.values()) if rails else None

    def describe(self):
        return {"rails": self.rails, "scope": "PMIC board rails (excludes USB-C input conversion)"}


class CommandMeter(object):
    """External-meter adapter hook: any program that prints instantaneous watts (USB meter, INA219/INA260 reader)."""

    name = "command"
    kind = "measured"

    def __init__(self, argv):
        self.argv = list(argv)

    def available(self):
        return bool(self.argv) and self.read_watts() is not None

    def read_watts(self):
        text = run_command(self.argv, timeout=5.0)
        match = re.search(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?", text or "")
        return float(match.group(0)) if match else None

    def describe(self):
        return {"command": self.argv, "scope": "external meter"}


class UtilisationMeter(object):
    """A linear board-power model of system CPU utilisation, P = idle_w + slope_w * u (flagged as modelled)."""

    name = "utilisation-model"
    kind = "modelled"

    def __init__(self, model, proc_stat):
        self.idle_w = float(model["idle_w"])
        self.slope_w = float(model["slope_w"])
        self.source = model.get("source", "")
        self.proc_stat = proc_stat
        self.last = None

    def _times(self):
        text = read_text(self.proc_stat) or ""
        for line in text.splitlines():
            if line.startswith("cpu "):
                values = [float(v) for v in line.split()[1:]]
                idle = values[3] + (values[4] if len(values) > 4 else 0.0)
                return sum(values), idle
        return None

    def available(self):
        self.last = self._times()
        return self.last is not None

    def read_watts(self):
        now = self._times()
        if now is None:
            return None
        utilisation = 0.0
        if self.last is not None and now[0] > self.last[0]:
            busy = (now[0] - self.last[0]) - (now[1] - self.last[1])
            utilisation = min(1.0, max(0.0, busy / (now[0] - self.last[0])))
        self.last = now
        return self.idle_w + self.slope_w * utilisation

    def describe(self):
        return {"idle_w": self.idle_w, "slope_w": self.slope_w, "source": self.source, "scope": "board (model)"}


def choose_meter(config, state_config):
    """The best available meter for this device, or ``None``; ``meter`` forces one."""
    wanted = config.get("meter", "auto")
    candidates = []
    if wanted in ("auto", "ina3221"):
        candidates.append(Ina3221Meter(config.get("ina3221_roots", ["/sys/bus/i2c/drivers/ina3221",
                                                                     "/sys/bus/i2c/drivers/ina3221x"]),
                                       config.get("rails")))
    if wanted in ("auto", "pmic"):
        candidates.append(PmicMeter(state_config.get("vcgencmd", "vcgencmd")))
    if wanted in ("auto", "command") and config.get("command"):
        candidates.append(CommandMeter(config["command"]))
    if wanted in ("auto", "utilisation") and config.get("utilisation_model"):
        candidates.append(UtilisationMeter(config["utilisation_model"], config.get("proc_stat", "/proc/stat")))
    for meter in candidates:
        if meter.available():
            return meter
    if wanted not in ("auto", "none"):
        raise RuntimeError("energy meter %r is not available on this device" % wanted)
    return None


class PowerSampler(object):
    """Samples a meter in a background thread at ``hz`` and integrates power over the window (trapezoid)."""

    def __init__(self, meter, hz):
        self.meter = meter
        self.period = 1.0 / max(float(hz), 0.1)
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="harbench-power", daemon=True)

    def _loop(self):
        next_tick = time.perf_counter()
        while not self._stop.is_set():
            watts = self.meter.read_watts()
            if watts is not None:
                self.samples.append((time.perf_counter(), watts))
            next_tick += self.period
            self._stop.wait(max(0.0, next_tick - time.perf_counter()))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def mean_watts(self):
        if not self.samples:
            return None
        if len(self.samples) == 1:
            return self.samples[0][1]
        area = 0.0
        for (t0, w0), (t1, w1) in zip(self.samples, self.samples[1:]):
            area += (t1 - t0) * (w0 + w1) / 2.0
        span = self.samples[-1][0] - self.samples[0][0]
        return area / span if span > 0 else sum(w for _, w in self.samples) / len(self.samples)


def metered(meter, hz, action):
    """Run ``action()`` under the sampler; returns (action's result, seconds, mean watts, sample count)."""
    with PowerSampler(meter, hz) as sampler:
        started = time.perf_counter()
        result = action()
        seconds = time.perf_counter() - started
    return result, seconds, sampler.mean_watts(), len(sampler.samples)


# ---------------------------------------------------------------------------------------------------- runtimes


def import_torch(threads):
    import torch  # the device's own runtime, imported only for jobs that need it

    if threads:
        torch.set_num_threads(int(threads))
    return torch


class TorchRunner(object):
    """Batch-1 inference of a TorchScript model (CPU, or CUDA on Jetson with NVIDIA's torch wheel)."""

    def __init__(self, job, folder):
        torch = self.torch = import_torch(job.get("threads", 0))
        wanted = job.get("device", "cpu")
        if wanted == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but this torch has no CUDA (install NVIDIA's JetPack wheel)")
        self.device = torch.device(wanted)
        self.model = torch.jit.load(os.path.join(folder, job["model"]), map_location=self.device).eval()
        generator = torch.Generator().manual_seed(int(job.get("seed", 0)))
        self.example = torch.randn(*job["input_shape"], generator=generator).to(self.device)
        self.runtime = "torch %s (%s)" % (torch.__version__, wanted)

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def __call__(self):
        with self.torch.no_grad():
            self.model(self.example)
        self.sync()


class OnnxRunner(object):
    """Batch-1 inference through onnxruntime (the CPU wheel on a Pi; a Jetson Zoo build for CUDA/TensorRT)."""

    def __init__(self, job, folder):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if job.get("threads"):
            options.intra_op_num_threads = int(job["threads"])
        providers = job.get("providers") or ["CPUExecutionProvider"]
        self.session = onnxruntime.InferenceSession(os.path.join(folder, job["model"]), options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        rng = random.Random(int(job.get("seed", 0)))
        shape = job["input_shape"]
        flat = [rng.gauss(0.0, 1.0) for _ in range(int(math.prod(shape)))]
        import numpy

        self.example = numpy.asarray(flat, dtype=numpy.float32).reshape(shape)
        self.runtime = "onnxruntime %s %s" % (onnxruntime.__version__, providers)

    def sync(self):
        return None

    def __call__(self):
        self.session.run(None, {self.input_name: self.example})


def make_runner(job, folder):
    runtime = job.get("runtime", "torch")
    if runtime == "torch":
        return TorchRunner(job, folder)
    if runtime == "onnxruntime":
        return OnnxRunner(job, folder)
    raise ValueError("unknown runtime %r (expected 'torch' or 'onnxruntime')" % runtime)


# ------------------------------------------------------------------------------------------------- measurement


def repeat_for(step, min_seconds, min_count=1, max_count=None):
    """Call ``step`` back to back until both ``min_seconds`` and ``min_count`` are reached; returns the count."""
    count = 0
    started = time.perf_counter()
    while count < min_count or time.perf_counter() - started < min_seconds:
        step()
        count += 1
        if max_count is not None and count >= max_count:
            break
    return count


def latency_samples(call, timing):
    """The ``cpu`` target's protocol: warm up, then time single calls for a minimum duration and count.

    ``timing.clock: thread`` times with the calling thread's CPU time instead of wall time: on a shared host,
    single-threaded work measured by wall time mostly measures the scheduler (used by host calibration only).
    """
    clock = time.thread_time if timing.get("clock") == "thread" else time.perf_counter
    repeat_for(call, float(timing.get("warmup_s", 0.2)), int(timing.get("warmup_min", 5)))
    samples = []
    min_seconds = float(timing.get("min_duration_s", 1.0))
    min_count = int(timing.get("min_count", 20))
    max_samples = int(timing.get("max_samples", 5000))
    started = time.perf_counter()
    while len(samples) < min_count or time.perf_counter() - started < min_seconds:
        t0 = clock()
        call()
        samples.append(clock() - t0)
        if len(samples) >= max_samples:
            break
    return samples


def energy_per_unit(meter, energy, unit_call, unit_name):
    """Idle power, then ``unit_call`` back to back for >= ``min_s``: gross E/N and idle-subtracted (P-P_idle)T/N."""
    if meter is None:
        return {"method": "none", "reason": "no energy meter available on this device"}
    hz = float(energy.get("hz", 10.0))
    _, idle_s, idle_w, idle_n = metered(meter, hz, lambda: time.sleep(float(energy.get("idle_s", 3.0))))
    count, seconds, active_w, active_n = metered(
        meter, hz, lambda: repeat_for(unit_call, float(energy.get("min_s", 5.0)), int(energy.get("min_count", 1)))
    )
    result = {
        "method": meter.name,
        "kind": meter.kind,
        "meter": meter.describe(),
        "hz": hz,
        "idle_w": idle_w,
        "idle_s": idle_s,
        "idle_samples": idle_n,
        "active_w": active_w,
        "active_s": seconds,
        "active_samples": active_n,
        "units": count,
        "unit": unit_name,
    }
    if active_w is not None and count:
        result["joules_per_unit"] = active_w * seconds / count
        if idle_w is not None:
            result["joules_net_per_unit"] = (active_w - idle_w) * seconds / count
    return result


# ---------------------------------------------------------------------------------------------------- job kinds


def job_inference(job, folder, meter):
    runner = make_runner(job, folder)
    samples = latency_samples(runner, job.get("timing", {}))
    energy = energy_per_unit(meter, job.get("energy", {}), runner, "window")
    return {"runtime": runner.runtime, "latency_s": samples, "energy": energy}


class AdaptReplay(object):
    """Replays a reported adapt workload: the same model, trainable set, optimizer, batch size and step count.

    Inputs and labels are random (the personal data stays on the host): cost depends on shapes, not values.
    """

    def __init__(self, job, folder):
        torch = self.torch = import_torch(job.get("threads", 0))
        spec = self.spec = job["replay"]
        wanted = job.get("device", "cpu")
        if wanted == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but this torch has no CUDA (install NVIDIA's JetPack wheel)")
        self.device = torch.device(wanted)
        self.model = torch.jit.load(os.path.join(folder, job["train_model"]), map_location=self.device)
        trainable = set(spec["trainable"])
        names = [name for name, _ in self.model.named_parameters()]
        missing = sorted(trainable - set(names))
        if missing:
            raise ValueError("trainable parameters not in the exported model: %s" % ", ".join(missing[:5]))
        params = []
        for name, param in self.model.named_parameters():
            param.requires_grad_(name in trainable)
            if name in trainable:
                params.append(param)
        self.params = params
        lr = float(spec.get("lr", 1e-3))
        self.optimizer = (torch.optim.SGD(params, lr=lr, momentum=0.9) if spec.get("optimizer") == "sgd"
                          else torch.optim.Adam(params, lr=lr)) if params else None
        generator = torch.Generator().manual_seed(int(job.get("seed", 0)))
        channels, window = job["input_shape"][1], job["input_shape"][2]
        batch = max(1, int(spec["batch_size"]))
        self.x = torch.randn(batch, channels, window, generator=generator).to(self.device)
        self.y = torch.randint(0, int(spec["num_classes"]), (batch,), generator=generator).to(self.device)
        eval_batch = max(1, int(spec.get("eval_batch", batch)))
        self.x_eval = torch.randn(eval_batch, channels, window, generator=generator).to(self.device)
        self.eval_calls = int(math.ceil(int(spec.get("forward_only_samples", 0)) / float(eval_batch)))

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def __call__(self):
        torch = self.torch
        for _ in range(int(self.spec["optimizer_steps"])):
            if self.optimizer is not None:
                self.optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(self.model(self.x), self.y)
            if self.params:
                loss.backward()
                self.optimizer.step()
        with torch.no_grad():
            for _ in range(self.eval_calls):
                self.model(self.x_eval)
        self.sync()


def job_adapt(job, folder, meter):
    replay = AdaptReplay(job, folder)
    timing = job.get("timing", {})
    repeat_for(replay, 0.0, int(timing.get("warmup_replays", 1)))
    durations = []
    min_seconds = float(timing.get("min_duration_s", 1.0))
    started = time.perf_counter()
    while len(durations) < int(timing.get("min_replays", 3)) or time.perf_counter() - started < min_seconds:
        t0 = time.perf_counter()
        replay()
        durations.append(time.perf_counter() - t0)
        if len(durations) >= int(timing.get("max_replays", 1000)):
            break
    energy = energy_per_unit(meter, job.get("energy", {}), replay, "replay")
    return {
        "runtime": "torch %s (%s)" % (replay.torch.__version__, replay.device.type),
        "replay_s": durations,
        "replayed": {
            "optimizer_steps": int(replay.spec["optimizer_steps"]),
            "batch_size": int(replay.spec["batch_size"]),
            "trainable_tensors": len(replay.params),
            "trainable_params": int(sum(p.numel() for p in replay.params)),
            "eval_calls": replay.eval_calls,
        },
        "energy": energy,
    }


def job_calibrate(job, folder, meter):
    """Median times of reference workloads plus matmul peak and copy bandwidth, for ``harbench calibrate``."""
    torch = import_torch(job.get("threads", 0))
    device = torch.device(job.get("device", "cpu"))
    timing = job.get("timing", {})

    def best_time(call):
        """Best of N, as ``timeit`` advises: the contention-free cost (other processes only ever add time)."""
        samples = sorted(latency_samples(call, timing))
        return samples[0], samples[len(samples) // 2]

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    items = []
    generator = torch.Generator().manual_seed(int(job.get("seed", 0)))
    for item in job["calibrate"]["items"]:
        model = torch.jit.load(os.path.join(folder, item["model"]), map_location=device)
        x = torch.randn(*item["input_shape"], generator=generator).to(device)
        if item["phase"] == "forward":
            model.eval()

            def call(model=model, x=x):
                with torch.no_grad():
                    model(x)
                sync()
        else:
            model.train()
            params = [p for p in model.parameters()]
            for p in params:
                p.requires_grad_(True)
            optimizer = torch.optim.Adam(params, lr=1e-4)
            y = torch.randint(0, int(item["num_classes"]), (item["input_shape"][0],), generator=generator).to(device)

            def call(model=model, x=x, y=y, optimizer=optimizer):
                optimizer.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
                sync()
        best, median = best_time(call)
        items.append({"name": item["name"], "seconds": best, "median_s": median})
    n = int(job["calibrate"].get("matmul_n", 512))
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    matmul_s = best_time(lambda: (torch.mm(a, b), sync()))[0]
    copy_elems = int(job["calibrate"].get("copy_mb", 64)) * 2 ** 20 // 4
    src = torch.randn(copy_elems, device=device)
    dst = torch.empty_like(src)
    copy_s = best_time(lambda: (dst.copy_(src), sync()))[0]
    return {
        "runtime": "torch %s (%s)" % (torch.__version__, device.type),
        "threads": torch.get_num_threads(),
        "items": items,
        "peak_flops": 2.0 * n ** 3 / matmul_s,
        "bandwidth_bytes_s": 2.0 * copy_elems * 4 / copy_s,  # read + write
    }


def job_probe(job, folder, meter):
    return {"meter": None if meter is None else {"method": meter.name, "kind": meter.kind, **meter.describe()}}


JOBS = {"inference": job_inference, "adapt": job_adapt, "calibrate": job_calibrate, "probe": job_probe}


def run_job(path):
    """Run one job file under the device lease and return the result document."""
    with open(path) as handle:
        job = json.load(handle)
    folder = os.path.dirname(os.path.abspath(path))
    kind = job.get("kind")
    if kind not in JOBS:
        raise ValueError("unknown job kind %r; expected one of %s" % (kind, ", ".join(sorted(JOBS))))
    state_config = job.get("state", {})
    lease_config = job.get("lease", {})
    lease_path = os.path.expanduser(lease_config.get("path", "/tmp/harbench-agent.lock"))
    result = {
        "agent_version": AGENT_VERSION,
        "kind": kind,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "node": platform.node(),
    }
    with device_lease(lease_path, float(lease_config.get("timeout_s", 3600))) as lease:
        result["lease"] = lease
        state = DeviceState(state_config)
        meter = choose_meter(job.get("energy", {}), state_config)
        result["state_start"] = state.snapshot()
        threshold = state_config.get("temp_threshold_c")
        if threshold is not None and kind != "probe":
            result["settle"] = state.settle(float(threshold), float(state_config.get("settle_timeout_s", 120)),
                                            float(state_config.get("settle_poll_s", 1.0)))
        log("running %s job" % kind)
        result.update(JOBS[kind](job, folder, meter))
        result["state_end"] = state.snapshot()
    result["ok"] = True
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog="harbench_agent", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run a job file and print its JSON result")
    run.add_argument("job")
    sub.add_parser("version", help="print the agent version")
    args = parser.parse_args(argv)
    if args.command == "version":
        print(json.dumps({"agent_version": AGENT_VERSION, "python": platform.python_version()}))
        return 0
    if args.command != "run":
        parser.print_help(sys.stderr)
        return 2
    try:
        result = run_job(args.job)
    except Exception as exc:  # report any failure as JSON so the host can show the device's reason
        result = {"ok": False, "agent_version": AGENT_VERSION, "error": "%s: %s" % (type(exc).__name__, exc)}
    sys.stdout.write(json.dumps(result) + "\n")
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
