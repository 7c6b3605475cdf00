"""Which tensors CRoP regularises, prunes and mixes, decided in one place so the steps can never disagree.

The paper's code regularises the ``weight`` of every Conv and Linear module (the L1 term of steps 1 and 4) and
prunes the same tensors except the final classifier (steps 2 and 3). Biases and normalisation layers are never
touched: they are not in either set. Recurrent input/hidden matrices are prunable too, as in the paper's code,
so the plugin also works on a CNN-GRU if one is ever registered as a backbone.
"""

from __future__ import annotations

from torch import nn

WEIGHTED_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def classifier(model: nn.Module) -> nn.Linear:
    """The final classification layer: the backbone's ``head`` when it has one, else its last Linear module."""
    head = getattr(model, "head", None)
    if isinstance(head, nn.Linear):
        return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("CRoP needs a model that ends in a Linear classifier")
    return linears[-1]


def regularised_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """Weight tensors of every Conv and Linear layer, the classifier included, keyed by parameter name."""
    out: dict[str, nn.Parameter] = {}
    for name, module in model.named_modules():
        if isinstance(module, WEIGHTED_LAYERS):
            out[_join(name, "weight")] = module.weight
    return out


def prunable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The tensors ToleratedPrune may zero and mixing may restore: Conv/Linear/RNN weights, minus the classifier."""
    head = classifier(model)
    out: dict[str, nn.Parameter] = {}
    for name, module in model.named_modules():
        if module is head:
            continue
        if isinstance(module, WEIGHTED_LAYERS):
            out[_join(name, "weight")] = module.weight
        elif isinstance(module, nn.RNNBase):
            for pname, param in module.named_parameters(recurse=False):
                if pname.startswith("weight_"):
                    out[_join(name, pname)] = param
    return out


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The module owning each prunable tensor (ERK's per-layer amounts need its channel and kernel sizes)."""
    head = classifier(model)
    out: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if module is head:
            continue
        if isinstance(module, WEIGHTED_LAYERS):
            out[_join(name, "weight")] = module
        elif isinstance(module, nn.RNNBase):
            for pname, _ in module.named_parameters(recurse=False):
                if pname.startswith("weight_"):
                    out[_join(name, pname)] = module
    return out


def classifier_weight(model: nn.Module) -> nn.Parameter:
    """The classifier's weight: never pruned, but in the code's importance-score pool (``prune_utils.py``)."""
    return classifier(model).weight


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
