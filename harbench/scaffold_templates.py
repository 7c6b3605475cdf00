"""Templates for ``harbench new``: one working, minimal plugin per kind (``string.Template``, ``$`` placeholders).

Placeholders: ``$name`` (registered name), ``$dist`` (distribution), ``$package`` (import package), ``$cls``
(class name), ``$kind``. Kept as Python strings so they ship inside the ``harbench`` package without package-data
configuration.
"""

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "$summary"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["harbench>=0.1"]

[project.optional-dependencies]
test = ["pytest>=8"]

# This line is what makes harbench find the plugin: the `harbench` entry-point group, name -> module.
[project.entry-points.harbench]
$name = "$package.plugin"

[tool.setuptools.packages.find]
include = ["$package*"]
'''

INIT = '''\
"""$summary"""

from .plugin import $cls

__all__ = ["$cls"]
'''

METHOD = '''\
"""$cls: a personalization method for harbench. Start here: edit ``adapt`` (and ``prepare`` if it needs the
population), keep the parameters declared, keep the conformance test passing."""

from __future__ import annotations

from harbench import AdaptFacts, AdaptResult, Method, Param, count_params, fit, frozen_copy, hookimpl, make_optimizer


class $cls(Method):
    name = "$name"
    description = "fine-tunes the classifier head on the user's labelled windows (a starting point: edit me)"
    parameters = {
        "epochs": Param(10, "training epochs", ge=1),
        "lr": Param(1e-2, "learning rate", ge=0.0),
        "batch_size": Param(16, "mini-batch size", ge=2),
    }

    def adapt(self, generic, state, user, ctx):
        p = self.params
        model = frozen_copy(generic)  # the generic model is shared across users: never modify it
        for param in model.parameters():
            param.requires_grad_(False)
        for param in model.head.parameters():
            param.requires_grad_(True)

        def train_mode(m):
            """The frozen backbone stays in eval mode, so its BatchNorm statistics stay frozen too."""
            m.eval()
            m.head.train()

        report = fit(model, user.adapt, epochs=p.epochs, batch_size=p.batch_size, generator=ctx.generator(),
                     optimizer=make_optimizer(model.head.parameters(), "adam", p.lr), train_mode=train_mode)
        return AdaptResult(model, AdaptFacts(
            params_trained=count_params(model, trainable_only=True), optimizer_steps=report.optimizer_steps,
            forward_samples=report.forward_samples, backward_samples=report.backward_samples,
            batch_size=p.batch_size, epochs=report.epochs_run,
            trainable=[n for n, q in model.named_parameters() if q.requires_grad],
        ))


@hookimpl
def harbench_register_methods(register):
    register($cls)
'''

DATASET = '''\
"""$cls: a dataset for harbench. This one synthesizes sine-wave "activities"; replace ``_recording`` with code
that reads your files (never download at run time), keep the split logic: time-ordered, non-overlapping windows."""

from __future__ import annotations

import math
from typing import Sequence

import torch

from harbench import ContextInfo, Dataset, DatasetInfo, Param, Splits, TargetSplit, Windows, hookimpl

CLASSES = ("still", "walk", "run")
CONTEXTS = (ContextInfo("home", None, "everyday conditions"),
            ContextInfo("outdoor", "input", "input-level drift: other sensor gain and more noise"))
CHANNELS, WINDOW, RATE_HZ = 3, 64, 32.0


class $cls(Dataset):
    name = "$name"
    description = "sine-wave activities with per-user traits and an outdoor context (a starting point: edit me)"
    parameters = {
        "users": Param(8, "number of users (targets + population)", ge=2),
        "windows": Param(12, "windows per user, context and class", ge=3),
        "k": Param(4, "adapt windows per class (the user's personal labelled data)", ge=1),
    }

    def describe(self) -> DatasetInfo:
        if self.params.k >= self.params.windows:
            raise ValueError(f"k ({self.params.k}) must be below windows ({self.params.windows})")
        return DatasetInfo(name=self.name, channels=CHANNELS, window=WINDOW, rate_hz=RATE_HZ, classes=CLASSES,
                           users=tuple(f"u{i:02d}" for i in range(self.params.users)), contexts=CONTEXTS)

    def _recording(self, gen: torch.Generator, user: int, context: int, label: int) -> torch.Tensor:
        """One continuous recording (channels, samples): the class sets the frequency, the user a gain and phase."""
        n = self.params.windows * WINDOW
        t = torch.arange(n) / RATE_HZ
        user_gen = torch.Generator().manual_seed(1000 + user)
        gain = 0.7 + 0.6 * torch.rand(CHANNELS, 1, generator=user_gen)
        phase = 2 * math.pi * torch.rand(CHANNELS, 1, generator=user_gen)
        signal = gain * torch.sin(2 * math.pi * (0.5 + label) * t + phase) * (0.2 + label)
        if context == 1:  # outdoor: another gain and more noise
            signal = 1.4 * signal + 0.3
        return signal + (0.1 + 0.2 * context) * torch.randn(CHANNELS, n, generator=gen)

    def _windows(self, seed: int, user: int, context: int) -> Windows:
        parts = []
        for label in range(len(CLASSES)):
            gen = torch.Generator().manual_seed(seed * 100_003 + user * 101 + context * 7 + label)
            rec = self._recording(gen, user, context, label)
            x = rec.unfold(1, WINDOW, WINDOW).permute(1, 0, 2).contiguous()  # non-overlapping windows, in order
            m = x.shape[0]
            recording = (user * len(CONTEXTS) + context) * len(CLASSES) + label
            parts.append(Windows(x=x.float(), y=torch.full((m,), label), recording=torch.full((m,), recording),
                                 start=torch.arange(m) * WINDOW, user=torch.full((m,), user),
                                 context=torch.full((m,), context)))
        return Windows.concat(parts)

    def load(self, seed: int, targets: Sequence[str]) -> Splits:
        info = self.describe()
        index = {u: i for i, u in enumerate(info.users)}
        population = Windows.concat([self._windows(seed, i, c) for u, i in index.items() if u not in targets
                                     for c in range(len(CONTEXTS))])
        splits = {}
        for user in targets:
            home, outdoor = self._windows(seed, index[user], 0), self._windows(seed, index[user], 1)
            first = (home.start // WINDOW) < self.params.k  # the first k windows of each recording adapt
            splits[user] = TargetSplit(user=user, adapt_context="home", unseen_contexts=("outdoor",),
                                       adapt=home.subset(first.nonzero().flatten()),
                                       test_seen=home.subset((~first).nonzero().flatten()), test_unseen=outdoor)
        return Splits(info=info, population=population, targets=splits)


@hookimpl
def harbench_register_datasets(register):
    register($cls)
'''

HARDWARE = '''\
"""$cls: a hardware target for harbench. This one times on the host and models energy as a constant power ×
time; replace the timing and ``_joules`` with your board's runner and power meter (say so in energy_method)."""

from __future__ import annotations

import platform
import time

import torch

from harbench import Hardware, HardwareInfo, InferenceCost, Param, PhaseCost, hookimpl

ENERGY_METHOD = "constant-power-model"


class $cls(Hardware):
    name = "$name"
    description = "wall-clock time on this host, energy modelled as constant power × time (a starting point: edit me)"
    parameters = {
        "power_w": Param(5.0, "modelled power draw while busy (W)", ge=0.0),
        "runs": Param(50, "timed batch-1 inferences", ge=1),
        "warmup": Param(5, "untimed warm-up inferences", ge=0),
    }

    def describe(self) -> HardwareInfo:
        return HardwareInfo(name=self.name, processor=platform.processor() or platform.machine(), memory_gb=0.0,
                            mode="measured", power={"load_w": self.params.power_w},
                            extra={"energy_method": ENERGY_METHOD})

    def _joules(self, seconds: float) -> float:
        return self.params.power_w * seconds

    def run_adapt(self, adapt):
        t0 = time.perf_counter()
        result = adapt()
        seconds = time.perf_counter() - t0
        return result, PhaseCost(seconds, self._joules(seconds), None, ENERGY_METHOD)

    def run_inference(self, model, example):
        samples = []
        with torch.no_grad():
            for i in range(self.params.warmup + self.params.runs):
                t0 = time.perf_counter()
                model(example)
                if i >= self.params.warmup:
                    samples.append(time.perf_counter() - t0)
        mean = sum(samples) / len(samples)
        return InferenceCost(samples, self._joules(mean), None, ENERGY_METHOD)


@hookimpl
def harbench_register_hardware(register):
    register($cls)
'''

METRIC = '''\
"""$cls: a metric for harbench, computed from each finished job's outputs and stored as the column ``$name``."""

from __future__ import annotations

from harbench import Metric, hookimpl


class $cls(Metric):
    name = "$name"
    description = "balanced accuracy (mean per-class recall) on the adapt context's test windows (edit me)"
    unit = ""
    higher_is_better = True

    def compute(self, out):
        recalls = []
        for c in range(out.info.num_classes):
            mask = out.y_seen == c
            if bool(mask.any()):
                recalls.append(float((out.pred_seen[mask] == c).float().mean()))
        return sum(recalls) / len(recalls) if recalls else None


@hookimpl
def harbench_register_metrics(register):
    register($cls)
'''

TESTS = {
    "method": '''\
from harbench.testing import check_method

from $package import $cls


def test_conformance():
    """Interface, parameters, determinism, forbidden data, serialisable state and a tiny run (cheap params)."""
    check_method($cls, {"epochs": 1})


def test_parameters_are_validated():
    import pytest
    from harbench import ParamError

    with pytest.raises(ParamError):
        $cls(epochs=0)
''',
    "dataset": '''\
from harbench.testing import check_dataset

from $package import $cls


def test_conformance():
    """Interface, describe/load, leakage checks, determinism and a tiny run through the runner."""
    check_dataset($cls, {"users": 4, "windows": 6, "k": 2})
''',
    "hardware": '''\
from harbench.testing import check_hardware

from $package import $cls


def test_conformance():
    """Interface, run_adapt/run_inference contracts, costs and a tiny run through the runner."""
    check_hardware($cls, {"runs": 5, "warmup": 1})
''',
    "metric": '''\
from harbench.testing import check_metric, tiny_outputs

from $package import $cls


def test_conformance():
    check_metric($cls)


def test_perfect_predictions_score_one():
    out = tiny_outputs()
    out.pred_seen = out.y_seen.clone()
    assert $cls().compute(out) == 1.0
''',
}

_TINY = "{users: 6, windows: 8, sessions: 2, k: 3, unseen_windows: 3}"
_CPU = "{name: cpu, params: {min_duration_s: 0.0, min_count: 20, energy_min_s: 0.0, warmup: 2}}"
SUITES = {
    "method": f'''\
name: $name-example
description: $name against the baselines on a small synthetic dataset (about a minute on a laptop)
datasets: [{{name: synthetic-drift, params: {_TINY}}}]
methods: [generic, {{name: finetune-last, params: {{epochs: 5}}}}, {{name: $name, params: {{epochs: 5}}}}]
hardware: [{_CPU}]
seeds: [0]
target_users: 2
generic: {{epochs: 2}}
''',
    "dataset": f'''\
name: $name-example
description: the baselines on $name
datasets: [{{name: $name, params: {{users: 6, windows: 8, k: 3}}}}]
methods: [generic, {{name: finetune-last, params: {{epochs: 5}}}}]
hardware: [{_CPU}]
seeds: [0]
target_users: 2
generic: {{epochs: 2}}
''',
    "hardware": f'''\
name: $name-example
description: the baselines on the $name target
datasets: [{{name: synthetic-drift, params: {_TINY}}}]
methods: [generic, {{name: finetune-last, params: {{epochs: 5}}}}]
hardware: [{{name: $name, params: {{runs: 20}}}}]
seeds: [0]
target_users: 2
generic: {{epochs: 2}}
''',
    "metric": f'''\
name: $name-example
description: the baselines, with the $name metric computed for every job
datasets: [{{name: synthetic-drift, params: {_TINY}}}]
methods: [generic, {{name: finetune-last, params: {{epochs: 5}}}}]
hardware: [{_CPU}]
seeds: [0]
target_users: 2
generic: {{epochs: 2}}
''',
}

README = '''\
# $dist

A harbench $kind plugin: registers the $kind `$name` ($cls in `$package/plugin.py`).

## Develop

```bash
pip install -e .                    # registers the entry point: `harbench plugins` lists $name
pytest tests                        # the harbench conformance suite (harbench.testing.check_$kind)
harbench run suite.yaml             # a small example suite using $name
harbench report --html report.html  # tables and figures in one file
```

`tests/test_conformance.py` calls `harbench.testing.check_$kind`, which checks the interface, the declared
parameters, a short run on tiny data, determinism, $extra_checks and finally runs one tiny suite through the
harbench runner. Keep it passing as you replace the starting-point implementation.

## How harbench finds it

`pyproject.toml` declares the entry point

```toml
[project.entry-points.harbench]
$name = "$package.plugin"
```

and `$package/plugin.py` implements the `harbench_register_$hook` hook. Pin which plugins load with
`HARBENCH_LOAD_PLUGINS=$dist` (empty: built-ins only).

## Guard against regressions

```bash
harbench run suite.yaml --results base            # on the main branch
harbench run suite.yaml --results new             # on your branch
harbench compare latest latest --base-results base --results new \\
    --fail-on "acc_seen:-0.01,adapt_j:+10%,latency_ms_p50:+10%"
```

## Publish

```bash
python -m build && twine upload dist/*             # then: pip install $dist
```
'''

EXTRA_CHECKS = {
    "method": "that it never modifies its inputs or uses data it must not see (other contexts, labels when "
              "label-free), that its prepared state survives the safetensors cache,",
    "dataset": "the leakage checks (no target user in the population, no time overlap between splits),",
    "hardware": "the cost contracts (named energy method, finite non-negative figures, one adapt call),",
    "metric": "that compute() returns a finite number, a label or None without modifying the outputs,",
}
