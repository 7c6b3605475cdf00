"""The method end to end on a tiny synthetic population: every variant prepares, caches and adapts."""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import load_file, save_file

from harbench import MethodContext, MethodState, UserData, build_backbone, predict
from harbench.builtin.datasets import SyntheticDrift
from harbench_smldist import VARIANTS, SMLDist
from harbench_smldist import method as method_module

TINY = dict(teacher_width=1.0, student_width=0.5, neck=64, memory_slots=8, memory_dim=16, teacher_epochs=1,
            stage_epochs=1, logits_epochs=1, adapt_epochs=2, batch_size=64)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: the tests are tiny, and on a shared 2-core host extra threads only spin."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def splits():
    return SyntheticDrift(users=4, windows=10, k=3, sessions=2, contexts=["home", "sensor"]).load(0, ["u00"])


@pytest.fixture(scope="module")
def ctx(splits):
    return MethodContext(seed=0, info=splits.info)


@pytest.fixture(scope="module")
def user(splits):
    t = splits.targets["u00"]
    return UserData("u00", splits.info.context(t.adapt_context), t.adapt)


@pytest.fixture(scope="module")
def states(splits, ctx):
    method_module._TEACHER_CACHE.clear()
    return {v: SMLDist(variant=v, **TINY).prepare(None, splits.population, ctx) for v in VARIANTS}


def _roundtrip(state: MethodState, tmp_path) -> MethodState:
    path = tmp_path / "state.safetensors"
    save_file(state.tensors, str(path))
    return MethodState(tensors=load_file(str(path)), meta=copy.deepcopy(state.meta))


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_prepares_and_adapts_after_a_safetensors_roundtrip(variant, states, splits, ctx, user, tmp_path):
    state = _roundtrip(states[variant], tmp_path)
    method = SMLDist(variant=variant, **TINY)
    generic = build_backbone(SMLDist.backbone, splits.info.channels, splits.info.num_classes)
    before = copy.deepcopy(generic.state_dict())
    result = method.adapt(generic, state, user, ctx)
    assert all(torch.equal(before[k], v) for k, v in generic.state_dict().items())  # generic untouched
    facts = result.facts
    assert facts.extra["variant"] == variant and facts.extra["head"] == state.meta["head"]
    assert facts.optimizer_steps > 0 and facts.backward_samples > 0
    assert facts.trainable and all(name.startswith("classifier.") for name in facts.trainable)  # head scope
    pred = predict(result.model, splits.targets["u00"].test_seen.x)
    assert pred.shape == (len(splits.targets["u00"].test_seen),)
    deployed = state.meta["deployed"]
    assert deployed == ("teacher" if variant == "teacher" else "student")
    assert any(k.startswith(deployed + ".") for k in state.tensors)
    assert ("teacher.stem.0.weight" in state.tensors) == (variant != "student-scratch")


def test_variants_record_what_their_pipeline_did(states):
    assert len(states["smldist"].meta["stage_val_loss"]) == 4
    assert "stage_val_loss" in states["smldist-no-conditional"].meta
    for v in ("smldist-no-stage", "student-hinton", "student-scratch", "teacher"):
        assert "stage_val_loss" not in states[v].meta
    assert 0.0 <= states["smldist"].meta["teacher_wrong_train"] <= 1.0
    meta = states["smldist"].meta
    assert meta["teacher_params"] > meta["student_params"] and meta["teacher_flops"] > meta["student_flops"]
    assert set(meta["head_scores"]) == {"memory", "intuition", "fused"}


def test_the_teacher_is_trained_once_and_shared_by_variants(states):
    assert states["teacher"].meta["teacher_cached"] is False
    for v in ("student-hinton", "smldist", "smldist-no-memory"):
        assert states[v].meta["teacher_cached"] is True
        assert torch.equal(states[v].tensors["teacher.stem.0.weight"], states["teacher"].tensors["teacher.stem.0.weight"])


def test_prepare_is_deterministic_per_seed(splits, ctx):
    method_module._TEACHER_CACHE.clear()
    a = SMLDist(variant="student-scratch", **TINY).prepare(None, splits.population, ctx)
    b = SMLDist(variant="student-scratch", **TINY).prepare(None, splits.population, ctx)
    assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)


def test_deployed_model_is_compressed_to_the_searched_head(states):
    state = copy.deepcopy(states["smldist"])
    for mode, present in (("memory", ("memory",)), ("intuition", ("intuition",)), ("fused", ("memory", "intuition"))):
        state.meta["head"] = mode
        head = SMLDist(variant="smldist", **TINY).deployed_model(state).head
        assert head.mode == mode
        assert {b for b in ("memory", "intuition") if getattr(head, b) is not None} == set(present)
    uncompressed = SMLDist(variant="smldist", compress=False, **TINY).deployed_model(state).head
    assert uncompressed.memory is not None and uncompressed.intuition is not None


def test_full_and_none_adapt_scopes(states, ctx, user):
    full = SMLDist(variant="smldist", adapt_scope="full", **TINY).adapt(None, states["smldist"], user, ctx)
    assert any(n.startswith("stem.") for n in full.facts.trainable)
    none = SMLDist(variant="smldist", adapt_scope="none", **TINY).adapt(None, states["smldist"], user, ctx)
    assert none.facts.optimizer_steps == 0 and none.facts.trainable == []


def test_plugin_is_registered_through_the_entry_point(monkeypatch):
    from harbench.plugins import get_registry

    monkeypatch.setenv("HARBENCH_LOAD_PLUGINS", "harbench-smldist")
    registry = get_registry(refresh=True)
    try:
        entry = registry.get("method", "smldist")
        assert entry.cls is SMLDist and entry.distribution == "harbench-smldist"
        assert any(p.distribution == "harbench-smldist" and "harbench_report_summary" in p.hooks for p in registry.plugins)
    finally:
        monkeypatch.delenv("HARBENCH_LOAD_PLUGINS")
        get_registry(refresh=True)
