"""NAS-Bench-201 architecture strings and the network each one describes, for checking the estimator against
measured boards (``harbench estimator-check``). Not part of harbench's public API: it lives with the check.

The network follows Dong & Yang (ICLR 2020) and the README of the shared measurements: a 3x3 stem to 16 channels
with BatchNorm; three stages of 5 cells (16, 32, 64 channels) joined by residual reduction blocks; BN + ReLU,
global average pooling and a 10-class linear layer, on 3 x 32 x 32 inputs.

Why the cell is pruned: a deployment compiler (HW-NAS-Bench measured compiled models) removes what cannot change
the output. An edge ``none`` contributes nothing; a node whose every incoming edge is dead is zero, so the edges
leaving it are dead too; an edge whose target never reaches the cell's output is dead code. What is left is the
work a board does. A cell with no live path to its output outputs zeros, so the rest of the network up to that cell
is dead as well: the builder keeps only what follows the last such cell (those are the rows that measure < 1 ms).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn

from .trace import OpTrace, trace_forward

CHANNELS, CELLS, CLASSES, SIDE = 16, 5, 10, 32

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
DEAD_CODE_RULES = ("zero-sums", "reachable", "constant-zero")
DEFAULT_RULE = "zero-sums"
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to node, from node), in the string's order


class ArchError(ValueError):
    """An architecture string that is not of NAS-Bench-201's form; the message names the problem."""


@dataclass(frozen=True)
class Genotype:
    """The six edge operations of a cell, in the string's order (node1<-0, node2<-0, node2<-1, node3<-0..2)."""

    ops: tuple[str, ...]

    @staticmethod
    def parse(arch: str) -> "Genotype":
        nodes = arch.strip().split("+")
        if len(nodes) != 3:
            raise ArchError(f"expected 3 nodes separated by '+', got {len(nodes)}")
        ops: list[str] = []
        for j, node in enumerate(nodes, start=1):
            parts = [p for p in node.strip().strip("|").split("|")]
            if len(parts) != j:
                raise ArchError(f"node {j} needs {j} edges, got {len(parts)} in {node!r}")
            for i, part in enumerate(parts):
                op, sep, src = part.partition("~")
                if op not in OPS:
                    raise ArchError(f"unknown operation {op!r} (known: {', '.join(OPS)})")
                if not sep or src != str(i):
                    raise ArchError(f"edge {part!r} of node {j} must read {op}~{i}")
                ops.append(op)
        return Genotype(tuple(ops))

    def live_edges(self, rule: str = DEFAULT_RULE) -> tuple[bool, ...]:
        """Which edges a compiler keeps under dead-code rule ``rule``.

        ``reachable``: drop ``none`` edges and every edge into a node that has no path of non-``none`` edges to the
        output; an identity of a node that is all zeros is folded away too (adding zeros is free), while a
        convolution or pooling of such a node is still computed (a compiler does not know its input is zero).
        ``zero-sums`` (the default): as ``reachable``, except that an intermediate node which sums a zero term (a
        ``none`` edge, or an identity of an all-zero node) with live inputs is computed even when nothing reads it:
        the measured Raspberry Pi 4 latencies show such dead branches being paid for, while pure sums of live
        inputs that nothing reads are not. ``constant-zero``: also fold every operation of an all-zero node
        (constant propagation). The default was chosen among these three by ``harbench estimator-check`` on the
        shared measurements (see docs/devices.md); it is a rule about the graph, the same for every architecture.
        """
        if rule not in DEAD_CODE_RULES:
            raise ArchError(f"unknown dead-code rule {rule!r} (known: {', '.join(DEAD_CODE_RULES)})")
        folds = {"skip_connect"} if rule != "constant-zero" else {"skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                                                              "avg_pool_3x3"}
        zero = {0: False}
        for j in (1, 2, 3):
            zero[j] = all(op == "none" or (zero[i] and op in folds) for (to, i), op in zip(EDGES, self.ops) if to == j)

        def computed(src: int, op: str) -> bool:
            return op != "none" and not (zero[src] and op in folds)

        needed = {3} if not zero[3] else set()
        if rule == "zero-sums" and needed:  # a node summing a zero with live inputs is computed though unread
            for j in (1, 2):
                ins = [(i, op) for (to, i), op in zip(EDGES, self.ops) if to == j]
                if not zero[j] and any(not computed(i, op) for i, op in ins):
                    needed.add(j)
        for i in (2, 1, 0):
            if any(src == i and to in needed and computed(src, op) for (to, src), op in zip(EDGES, self.ops)):
                needed.add(i)
        return tuple(to in needed and computed(src, op) for (to, src), op in zip(EDGES, self.ops))

    def passes_input(self, rule: str = DEFAULT_RULE) -> bool:
        """Whether the cell's output depends on its input at all (else it is a constant zero)."""
        return any(self.live_edges(rule))


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out))


def _edge(op: str, c: int) -> nn.Module:
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1, 1)
    if op == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3, 1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    raise ArchError(f"no module for operation {op!r}")


class Cell(nn.Module):
    """A 4-node cell with only its live edges (see the module docstring)."""

    def __init__(self, genotype: Genotype, c: int, side: int, rule: str = DEFAULT_RULE) -> None:
        super().__init__()
        # an all-zero node that a kept convolution or pooling reads: a constant the compiler cannot see through
        self.register_buffer("zero", torch.zeros(1, c, side, side), persistent=False)
        live = genotype.live_edges(rule)
        self.edges = nn.ModuleList()
        self.wiring: list[tuple[int, int]] = []
        for (to, src), op, keep in zip(EDGES, genotype.ops, live):
            if keep:
                self.edges.append(_edge(op, c))
                self.wiring.append((to, src))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: dict[int, torch.Tensor] = {0: x}
        for j in (1, 2, 3):
            inputs = [edge(nodes[src]) for edge, (to, src) in zip(self.edges, self.wiring) if to == j]
            if inputs:
                total = inputs[0]
                for other in inputs[1:]:
                    total = total + other
                nodes[j] = total
            else:
                nodes[j] = self.zero.expand(x.shape[0], -1, -1, -1)
        return nodes[3]


class Reduction(nn.Module):
    """ResNet basic block, stride 2: ReLU-Conv-BN 3x3/2, ReLU-Conv-BN 3x3, plus 2x2 average pool + 1x1 conv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class ConstantLogits(nn.Module):
    """What is left of a network whose every path is cut: the classifier's bias (a constant)."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(x.shape[0], -1)


def build(arch: str | Genotype, rule: str = DEFAULT_RULE, channels: int = CHANNELS, cells: int = CELLS,
          classes: int = CLASSES) -> nn.Module:
    """The network ``arch`` describes, without the dead code a compiler removes (``rule``: see
    :meth:`Genotype.live_edges`)."""
    genotype = arch if isinstance(arch, Genotype) else Genotype.parse(arch)
    if not genotype.passes_input(rule):
        return ConstantLogits(classes)
    layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels)]
    c, side = channels, SIDE
    for stage in range(3):
        if stage:
            layers.append(Reduction(c, 2 * c))
            c, side = c * 2, side // 2
        layers += [Cell(genotype, c, side, rule) for _ in range(cells)]
    layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes)]
    return nn.Sequential(*layers)


def example_input() -> torch.Tensor:
    return torch.zeros(1, 3, SIDE, SIDE)


# ------------------------------------------------------------------------------------------ composed traces
@functools.lru_cache(maxsize=None)
def _module_trace(kind: str, c: int, side: int) -> OpTrace:
    """The trace of one building block at ``c`` channels and ``side`` x ``side`` pixels (on the CPU: the meta
    device reports other sizes for BatchNorm's saved statistics)."""
    if True:
        if kind == "stem":
            module: nn.Module = nn.Sequential(nn.Conv2d(3, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))
            x = torch.zeros(1, 3, side, side)
        elif kind == "reduction":
            module, x = Reduction(c // 2, c), torch.zeros(1, c // 2, side * 2, side * 2)
        elif kind == "head":
            module = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                   nn.Linear(c, CLASSES))
            x = torch.zeros(1, c, side, side)
        elif kind == "add":
            module, x = _Add(c, side), torch.zeros(1, c, side, side)
        else:
            module, x = _edge(kind, c), torch.zeros(1, c, side, side)
        return trace_forward(module, x)


class _Add(nn.Module):
    """One node sum of two distinct tensors (``x + x`` would count its input once)."""

    def __init__(self, c: int, side: int) -> None:
        super().__init__()
        self.register_buffer("other", torch.zeros(1, c, side, side))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.other


def network_trace(arch: str | Genotype, rule: str = DEFAULT_RULE) -> OpTrace:
    """The operator trace of ``build(arch, rule)`` on :func:`example_input`, composed from cached traces of its
    blocks instead of tracing the whole network (thousands of architectures share a few dozen blocks; the test
    suite checks that the two traces are identical)."""
    genotype = arch if isinstance(arch, Genotype) else Genotype.parse(arch)
    if not genotype.passes_input(rule):
        return OpTrace()
    live = genotype.live_edges(rule)
    ops = list(_module_trace("stem", CHANNELS, SIDE).ops)
    c, side = CHANNELS, SIDE
    for stage in range(3):
        if stage:
            c, side = c * 2, side // 2
            ops += _module_trace("reduction", c, side).ops
        cell: list = []
        for j in (1, 2, 3):
            inputs = [op for (to, _), op, keep in zip(EDGES, genotype.ops, live) if keep and to == j]
            for op in inputs:
                cell += _module_trace(op, c, side).ops
            cell += _module_trace("add", c, side).ops * max(len(inputs) - 1, 0)
        ops += cell * CELLS
    ops += _module_trace("head", c, side).ops
    return OpTrace(ops)
