"""The mechanisms the issue asks to prove: anchors, memory copy, conditional rule, frequency term, head search."""

from __future__ import annotations

import pytest
import torch
from harbench_smldist import (
    NetworkConfig,
    StageAdapters,
    build_network,
    conditional_targets,
    frequency_attention_loss,
    hinton_loss,
    smldist_logits_loss,
    stage_loss,
)
from harbench_smldist.losses import frequency_attention
from harbench_smldist.pipeline import (
    HeadScore,
    Recipe,
    choose_head,
    copy_memory,
    distil_stages,
    evaluate_heads,
    indexed,
    student_inputs,
    teacher_targets,
    train_supervised,
)
from torch.nn import functional as F

from harbench import Windows, split_train_val
from harbench.testing import synthetic_drift

pytestmark = pytest.mark.kernel  # trains models: `make test` runs it again under other torch SIMD kernels

# the plugin's earlier form (harbench's width-scaled MobileNet1d, associative memory): an option
TEACHER = NetworkConfig(channels=6, classes=6, role="teacher", architecture="harbench", width=2.0,
                        memory_form="associative")
STUDENT = NetworkConfig(channels=6, classes=6, role="student", architecture="harbench", width=0.75,
                        memory_form="associative")
# the default: the code's layer tables (channels / 16 here, to keep the tests small)
CODE_TEACHER = NetworkConfig(channels=6, classes=6, role="teacher", channel_divisor=16)
CODE_STUDENT = NetworkConfig(channels=6, classes=6, role="student", channel_divisor=16)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: the tests are tiny, and on a shared 2-core host extra threads only spin."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _nets(seed: int = 0, teacher=TEACHER, student=STUDENT):
    torch.manual_seed(seed)
    return build_network(teacher), build_network(student)


def _n(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_code_architecture_distils_two_equal_width_anchors_without_adapters():
    teacher, student = _nets(teacher=CODE_TEACHER, student=CODE_STUDENT)
    teacher.eval(), student.eval()
    x = torch.randn(3, 6, 128)
    t_out, s_out = teacher.anchors(x), student.anchors(x)
    assert teacher.num_anchors == student.num_anchors == 2  # the code: num_stages = #anchors - 1, neck not distilled
    assert teacher.anchor_channels == student.anchor_channels
    for i, (t, s) in enumerate(zip(t_out, s_out)):
        assert s.shape == t.shape  # equal width and length: MSE applies directly
        assert torch.allclose(student.anchor(x, i), s) and torch.allclose(teacher.anchor(x, i), t)
    adapters = StageAdapters(student.anchor_channels, teacher.anchor_channels)
    assert all(isinstance(m, torch.nn.Identity) for m in adapters.maps) and not adapters.trainable
    # the teacher is deeper than the student (15 vs 10 bottlenecks), the neck equally wide
    assert len(teacher.bottlenecks) == 15 and len(student.bottlenecks) == 10
    assert teacher.neck[1].num_features == student.neck[1].num_features
    assert _n(teacher) > _n(student)
    # distill_neck adds the (equally wide) neck output as a third anchor
    neck_t = build_network(NetworkConfig(6, 6, role="teacher", channel_divisor=16, distill_neck=True))
    assert neck_t.num_anchors == 3 and neck_t.anchor(x, 2).shape == (3, neck_t.neck[1].num_features, 2)


def test_harbench_architecture_bridges_unequal_stage_widths_with_adapters():
    teacher, student = _nets()
    teacher.eval(), student.eval()
    x = torch.randn(3, 6, 128)
    adapters = StageAdapters(student.anchor_channels, teacher.anchor_channels)
    t_out, s_out = teacher.anchors(x), student.anchors(x)
    assert len(t_out) == len(s_out) == 3
    for i, (t, s) in enumerate(zip(t_out, s_out)):
        assert s.shape[-1] == t.shape[-1]  # equal length at every anchor
        assert s.shape[1] != t.shape[1] and adapters(s, i).shape == t.shape
        assert torch.allclose(student.anchor(x, i), s)  # the truncated forward is the same network
    with_neck = [build_network(NetworkConfig(**{**c.to_meta(), "distill_neck": True})) for c in (TEACHER, STUDENT)]
    neck_adapters = StageAdapters(with_neck[1].anchor_channels, with_neck[0].anchor_channels)
    assert len(neck_adapters.maps) == 4 and isinstance(neck_adapters.maps[3], torch.nn.Identity)
    assert _n(teacher) / _n(student) >= 4


def test_memory_distillation_copies_the_head_exactly():
    teacher, student = _nets()
    before = {k: v.clone() for k, v in student.head.state_dict().items()}
    copy_memory(student, teacher)
    t_state, s_state = teacher.head.state_dict(), student.head.state_dict()
    assert t_state.keys() == s_state.keys()
    assert all(torch.equal(t_state[k], s_state[k]) for k in t_state)
    assert any(not torch.equal(before[k], s_state[k]) for k in before)  # it really changed
    feats = torch.randn(5, TEACHER.neck)
    teacher.eval(), student.eval()
    assert torch.allclose(teacher.head(feats), student.head(feats))


def test_code_memory_branch_is_a_layer_normed_two_layer_head_and_the_eval_output():
    teacher, _ = _nets(teacher=CODE_TEACHER, student=CODE_STUDENT)
    head = teacher.head
    feats = torch.randn(7, teacher.neck[1].num_features) * 3 + 1
    mem = head.memory
    expected = F.linear(F.linear(F.layer_norm(feats, (feats.shape[-1],), mem.norm.weight, mem.norm.bias),
                                 mem.value.weight, mem.value.bias), mem.output.weight, mem.output.bias)
    head.eval()
    assert head.mode == "memory"  # the code's default eval_mode='M'
    assert torch.allclose(head(feats), expected, atol=1e-6)
    # eval output does not depend on the intuition branch or the mixing weights; training output does
    with torch.no_grad():
        head.intuition.weight.add_(1.0)
        head.mix.copy_(torch.tensor([0.0, 5.0]))
    assert torch.allclose(head(feats), expected, atol=1e-6)
    head.train()
    assert torch.allclose(head(feats), head.mixture_log_probs(feats))
    assert not torch.allclose(head(feats), torch.log_softmax(expected, -1), atol=1e-3)


def test_conditional_rule_replaces_exactly_the_wrong_rows():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.2, 0.5, 0.3]])
    y = torch.tensor([0, 2, 2, 0])  # teacher right, wrong, right, wrong
    targets, wrong = conditional_targets(probs, y, hardness=2.0)
    assert wrong.tolist() == [False, True, False, True]
    assert torch.equal(targets[0], probs[0]) and torch.equal(targets[2], probs[2])
    assert targets[1].tolist() == [0.0, 0.0, 2.0] and targets[3].tolist() == [2.0, 0.0, 0.0]


def test_conditional_rule_changes_the_logits_loss_only_when_the_teacher_errs():
    torch.manual_seed(0)
    z_s, y = torch.randn(4, 6), torch.tensor([0, 1, 2, 3])
    right = torch.nn.functional.one_hot(y, 6).float() * 5
    wrong = torch.nn.functional.one_hot((y + 1) % 6, 6).float() * 5
    for form in ("paper", "clean"):
        same_on = smldist_logits_loss(z_s, right, y, form=form, conditional=True)
        same_off = smldist_logits_loss(z_s, right, y, form=form, conditional=False)
        assert torch.allclose(same_on, same_off)
        fixed = smldist_logits_loss(z_s, wrong, y, form=form, conditional=True)
        kept = smldist_logits_loss(z_s, wrong, y, form=form, conditional=False)
        assert not torch.allclose(fixed, kept)
    # with a correct teacher the clean conditional form reduces to Hinton KD at T = 4 with T^2
    assert torch.allclose(smldist_logits_loss(z_s, right, y, form="clean"),
                          hinton_loss(z_s, right, y, temperature=4.0, t_squared=True))


def _code_logits_distilling_loss(y_pred, y_soft, y, hardness=1.0, temperature=1.0, ratio=1.0):
    """The authors' LogitsDistillingLoss.forward, transcribed step by step (teacher output given)."""
    num_classes = y_pred.shape[-1]
    y_pred = (y_pred / y_pred.norm(dim=-1, keepdim=True)).softmax(-1)
    y_hard = F.one_hot(y, num_classes).type(torch.float32)
    y_soft = (y_soft / y_soft.norm(dim=-1, keepdim=True)).softmax(-1)
    wrong = y_soft.argmax(dim=-1) != y
    y_soft[wrong] = y_hard[wrong] * hardness
    y_soft = y_soft.softmax(dim=-1)
    y_pred = y_pred.softmax(dim=-1)
    y_hard[y_hard > 0.5] = 1.0 / temperature
    y_hard[y_hard < 0.5] = 1.0 - 1.0 / temperature
    ce = lambda t, p: (-(t * p.log()).sum(-1)).mean()  # noqa: E731
    return ce(y_hard, y_pred) + ratio * ce(y_soft, y_pred)


def test_logits_loss_fed_the_codes_inputs_equals_the_codes_loss():
    torch.manual_seed(1)
    head_out = torch.log_softmax(torch.randn(16, 6), -1)  # the student's training-mode log-mixture
    teacher_memory = torch.randn(16, 6) * 4  # the teacher's raw eval-mode memory output
    y = torch.randint(0, 6, (16,))
    p_mix = student_inputs(head_out, "code")
    assert torch.allclose(p_mix.sum(-1), torch.ones(16)) and (p_mix >= 0).all()  # probabilities, as the code's y_f
    ours = smldist_logits_loss(p_mix, teacher_memory, y, form="paper", hardness=1.0)
    assert torch.allclose(ours, _code_logits_distilling_loss(p_mix, teacher_memory.clone(), y), atol=1e-6)
    # and the fused-log-prob inputs (the earlier form) give a different loss
    assert not torch.allclose(ours, smldist_logits_loss(head_out, teacher_memory, y, form="paper"), atol=1e-4)


def test_hinton_baseline_code_form_and_t4_form():
    torch.manual_seed(2)
    z_s, z_t, y = torch.randn(8, 6), torch.randn(8, 6) * 3, torch.randint(0, 6, (8,))
    hard = F.cross_entropy(z_s, y)
    soft1 = -(torch.softmax(z_t, -1) * torch.log_softmax(z_s, -1)).sum(-1).mean()
    assert torch.allclose(hinton_loss(z_s, z_t, y), hard + soft1)  # the code's: T = 1, no T^2
    soft4 = -(torch.softmax(z_t / 4, -1) * torch.log_softmax(z_s / 4, -1)).sum(-1).mean()
    assert torch.allclose(hinton_loss(z_s, z_t, y, temperature=4.0, t_squared=True), hard + 16 * soft4)
    assert torch.allclose(hinton_loss(z_s, z_t, y, temperature=4.0), hard + soft4)


def test_stage_distillation_lowers_the_anchors_mse():
    """Each anchor's validation MSE to the teacher falls well below the untrained student's, measured on the network
    stage distillation trains (BatchNorm on the windows' own statistics). The eval-mode MSE (running statistics,
    the code's diagnostic) is recorded too but not asserted: after a few epochs the running statistics lag."""
    pop = synthetic_drift(users=4, windows=12, k=3, sessions=2, contexts=["home", "sensor"]).load(0, ["u00"]).population
    train, val = split_train_val(pop, 0.25)
    torch.manual_seed(0)
    teacher = build_network(NetworkConfig(6, 6, role="teacher", channel_divisor=32))
    student = build_network(NetworkConfig(6, 6, role="student", channel_divisor=32))
    recipe = Recipe(batch_size=16, stage_epochs=6, stage_lr=3e-3)
    train_supervised(teacher, train, val, recipe, 6, torch.Generator().manual_seed(0))
    targets = teacher_targets(teacher, Windows.concat([train, val]), with_anchors=True)
    mse = distil_stages(student, teacher.anchor_channels, targets, indexed(train), indexed(val, len(train)),
                        recipe, torch.Generator().manual_seed(1))
    assert len(mse["before_batch"]) == len(mse["after_batch"]) == len(mse["after"]) == 2
    for before, after in zip(mse["before_batch"], mse["after_batch"]):
        assert after < 0.75 * before, mse


def test_frequency_term_is_zero_for_identical_features_and_grows_with_spectral_difference():
    t = torch.arange(32.0)
    base = torch.sin(2 * torch.pi * 2 * t / 32).expand(2, 3, 32).clone()
    assert float(frequency_attention_loss(base, base)) == 0.0
    assert float(stage_loss(base, base)) == 0.0
    losses = []
    for amp in (0.1, 0.5, 1.0):
        other = base + amp * torch.sin(2 * torch.pi * 7 * t / 32)
        losses.append(float(frequency_attention_loss(other, base)))
    assert 0 < losses[0] < losses[1] < losses[2]
    # magnitudes only: a pure time shift leaves the spectrum (and the term) unchanged while MSE sees it
    shifted = torch.roll(base, 3, dims=-1)
    assert float(frequency_attention_loss(shifted, base)) < 1e-10
    assert float(torch.nn.functional.mse_loss(shifted, base)) > 0.1


def test_teacher_spectrum_attention_favours_the_teachers_strong_bins():
    t = torch.arange(64.0)
    teacher = (3 * torch.sin(2 * torch.pi * 5 * t / 64)).expand(1, 4, 64)
    weights = frequency_attention(teacher, "teacher_spectrum")
    assert torch.allclose(weights.sum(-1), torch.ones(1))
    assert int(weights.argmax()) == 5
    uniform = frequency_attention(teacher, "uniform")
    assert torch.allclose(uniform, torch.full_like(uniform, 1 / 33))
    # an error at the teacher's dominant bin costs more under teacher attention than an equal error elsewhere
    at_peak = teacher + torch.sin(2 * torch.pi * 5 * t / 64)
    off_peak = teacher + torch.sin(2 * torch.pi * 20 * t / 64)
    assert frequency_attention_loss(at_peak, teacher) > frequency_attention_loss(off_peak, teacher)


def test_frequency_term_has_finite_gradients_at_zero_difference():
    base = torch.randn(2, 3, 16)
    student = base.clone().requires_grad_(True)
    stage_loss(student, base).backward()
    assert torch.isfinite(student.grad).all()


def test_head_search_returns_the_branch_with_the_best_validation_score():
    torch.manual_seed(0)
    _, student = _nets()
    student.eval()
    x = torch.randn(60, 6, 128)
    feats = student.features(x).detach()
    # make the intuition branch right by construction and the memory branch always say the rarest class
    head = student.head
    with torch.no_grad():
        y = head.intuition(feats).argmax(-1)
        rarest = int(torch.bincount(y, minlength=6).argmin())
        head.memory.output.weight.zero_()
        head.memory.output.bias.copy_(torch.nn.functional.one_hot(torch.tensor(rarest), 6).float() * 10)
        head.mix.copy_(torch.tensor([3.0, 0.0]))  # the fused head leans on the bad memory
    head.set_mode("fused")
    val = Windows(x=x, y=y, recording=torch.zeros(60, dtype=torch.long), start=torch.arange(60),
                  user=torch.zeros(60, dtype=torch.long), context=torch.zeros(60, dtype=torch.long))
    scores = evaluate_heads(student, val)
    assert scores["intuition"].accuracy == 1.0
    assert scores["memory"].accuracy < 1.0 and scores["fused"].accuracy < 1.0
    assert choose_head(scores) == "intuition"
    assert head.mode == "fused"  # evaluation restores the mode it found


def test_choose_head_breaks_ties_by_f1_then_the_trained_head():
    scores = {"memory": HeadScore(0.8, 0.7), "intuition": HeadScore(0.8, 0.75), "fused": HeadScore(0.7, 0.9)}
    assert choose_head(scores) == "intuition"
    tied = {m: HeadScore(0.8, 0.7) for m in ("memory", "intuition", "fused")}
    assert choose_head(tied) == "fused"
    assert choose_head({"memory": HeadScore(0.8, 0.7), "intuition": HeadScore(0.8, 0.7), "fused": HeadScore(0.7, 0.7)}) == "memory"


def test_compress_keeps_the_chosen_branch_and_its_outputs():
    _, student = _nets()
    student.eval()
    feats = torch.randn(4, STUDENT.neck)
    for mode, dropped in (("memory", "intuition"), ("intuition", "memory")):
        _, s = _nets()
        s.eval()
        s.head.set_mode(mode)
        before = s.head(feats)
        n_before = sum(p.numel() for p in s.parameters())
        s.head.compress()
        assert getattr(s.head, dropped) is None and s.head.mix is None
        assert torch.allclose(s.head(feats), before)
        assert sum(p.numel() for p in s.parameters()) < n_before
        try:
            s.head.set_mode("fused")
        except ValueError:
            pass
        else:
            raise AssertionError("a compressed head must refuse a mode whose branch was dropped")


def test_fused_head_is_the_log_of_the_softmax_mixture():
    _, student = _nets()
    head = student.head
    head.train()
    feats = torch.randn(4, STUDENT.neck)
    with torch.no_grad():
        head.mix.copy_(torch.tensor([0.3, -0.2]))
    w = torch.softmax(head.mix, 0)
    expected = w[0] * torch.softmax(head.memory(feats), -1) + w[1] * torch.softmax(head.intuition(feats), -1)
    assert torch.allclose(head(feats).exp(), expected, atol=1e-6)  # training mode: the code's y_f
    head.eval()
    head.set_mode("fused")
    assert torch.allclose(head(feats).exp(), expected, atol=1e-6)
