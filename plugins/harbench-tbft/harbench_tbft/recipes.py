"""The authors' fine-tuning recipe for each drift type, read from their code (yushan-huang/AdaptivePersonalization).

* ``input`` — ``main_exp/Cifar10/exp_cifar10c.py`` (CIFAR-10-C): SGD, momentum 0.9, weight decay 5e-4, lr 1e-3 for a
  residual block or the whole network and 1e-2 for the classifier, up to 10 epochs, early stopping with patience 5
  on the validation loss, and the best-validation checkpoint restored before testing.
* ``output`` — ``main_exp/Cifar10/exp_cifar10flip.py`` (CIFAR-Flip): the same recipe.
* ``feature`` — ``main_exp/Living17/Living17_ResNet26_finetune.py`` at the repository's newest commit
  (``fc3140a``; the file last changed in ``f8402bc``): ``part_finetune_optimizer`` gives Adam (default betas, no
  weight decay) at lr 1e-3 for a residual block or the whole network and **1e-2** for the classifier
  (``elif finetune_part == 'fc': ... LR = 0.01``); ``train_model`` runs 10 epochs and keeps the model with the
  **lowest validation loss** (``if val_loss < best_val_loss: best_model = copy.deepcopy(model)``, since commit
  ``7bb8a39``), the validation set being a 15 % split (``split_dataset(..., train_ratio=0.7, val_ratio=0.15)``);
  no early stopping. Here 15 % of the adapt windows are held out for that selection.
* ``feature-3d1a8e3`` — the same file at the January 2024 commit ``3d1a8e3`` that harbench followed before:
  classifier at 5e-3 and the **last** epoch kept, nothing held out. A named option, not the authors' current code.

Every field can still be overridden by the method's parameter of the same name; ``None`` there means "the
recipe's value".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

RECIPE_CHOICES: tuple[str, ...] = ("auto", "input", "feature", "output", "feature-3d1a8e3")
FALLBACK_RECIPE = "input"
"""``recipe: auto`` on a context that declares no drift type: the CIFAR recipe, the one most of the code uses."""


@dataclass(frozen=True)
class Recipe:
    name: str
    source: str  # the authors' file it comes from
    optimizer: str
    lr: float  # a residual block, or the whole network ("all")
    lr_fc: float  # the classifier alone
    momentum: float
    weight_decay: float
    epochs: int
    patience: int | None  # early stopping on validation loss; None: none
    val_fraction: float  # share of the adapt windows held out for checkpoint selection; 0: keep the last epoch

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_CIFAR = dict(optimizer="sgd", lr=1e-3, lr_fc=1e-2, momentum=0.9, weight_decay=5e-4, epochs=10, patience=5,
              val_fraction=0.25)

RECIPES: dict[str, Recipe] = {
    "input": Recipe("input", "main_exp/Cifar10/exp_cifar10c.py", **_CIFAR),
    "output": Recipe("output", "main_exp/Cifar10/exp_cifar10flip.py", **_CIFAR),
    "feature": Recipe("feature", "main_exp/Living17/Living17_ResNet26_finetune.py@fc3140a", optimizer="adam",
                      lr=1e-3, lr_fc=1e-2, momentum=0.0, weight_decay=0.0, epochs=10, patience=None,
                      val_fraction=0.15),
    "feature-3d1a8e3": Recipe("feature-3d1a8e3", "main_exp/Living17/Living17_ResNet26_finetune.py@3d1a8e3",
                              optimizer="adam", lr=1e-3, lr_fc=5e-3, momentum=0.0, weight_decay=0.0, epochs=10,
                              patience=None, val_fraction=0.0),
}
RECIPE_DRIFT = {"input": "input", "output": "output", "feature": "feature", "feature-3d1a8e3": "feature"}
"""The drift type each recipe was written for (the two CIFAR recipes are the same recipe)."""


def recipe_fits(recipe: str | None, drift: str | None) -> bool:
    """Whether a row trained with ``recipe`` may be judged under ``drift``: the CIFAR recipe for input- and
    output-level drift, a Living17 recipe for feature-level drift. Rows that name no recipe are not refused."""
    if recipe is None or drift is None or recipe not in RECIPE_DRIFT:
        return True
    cifar = {"input", "output"}
    made_for = RECIPE_DRIFT[recipe]
    return made_for == drift or (made_for in cifar and drift in cifar)

OVERRIDABLE: tuple[str, ...] = ("optimizer", "lr", "lr_fc", "momentum", "weight_decay", "epochs", "patience",
                                "val_fraction")


def resolve_recipe(requested: str, drift: str | None, overrides: dict[str, Any]) -> tuple[Recipe, str]:
    """The recipe an adapt run uses and why (``fixed``, ``declared-drift`` or ``fallback``), with the parameters
    the suite set explicitly (not ``None``) applied on top."""
    if requested != "auto":
        base, source = RECIPES[requested], "fixed"
    elif drift in RECIPES:
        base, source = RECIPES[drift], "declared-drift"
    else:
        base, source = RECIPES[FALLBACK_RECIPE], "fallback"
    fields = base.to_json()
    for key in OVERRIDABLE:
        if overrides.get(key) is not None:
            fields[key] = overrides[key]
    return Recipe(**fields), source
