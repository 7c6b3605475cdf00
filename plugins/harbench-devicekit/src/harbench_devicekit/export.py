"""Model files for the agent: TorchScript (runs with any torch >= 1.x on the device, no harbench classes needed)
and ONNX for an onnxruntime device.

Two TorchScript traces serve different jobs: an eval-mode trace for inference, and a train-mode trace for the
adapt replay, because tracing freezes BatchNorm's train/eval branch into the graph.
"""

from __future__ import annotations

import copy
import io
import warnings

import torch
from torch import nn


def torchscript_bytes(model: nn.Module, example: torch.Tensor, train: bool = False) -> bytes:
    clone = copy.deepcopy(model).train(train)
    for param in clone.parameters():
        param.requires_grad_(train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about deprecation and constant branches
        traced = torch.jit.trace(clone, example, check_trace=False)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    return buffer.getvalue()


def onnx_bytes(model: nn.Module, example: torch.Tensor) -> bytes:
    """ONNX export needs the ``onnx`` package on the host (torch's exporter serializes through it)."""
    try:
        import onnx  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("runtime 'onnxruntime' needs the `onnx` package on the host to export the model: "
                           "pip install onnx (or use runtime 'torch')") from exc
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(copy.deepcopy(model).eval(), (example,), buffer, dynamo=False, input_names=["x"])
    return buffer.getvalue()
