"""The mechanisms the issue asks to prove: anchors, memory copy, conditional rule, frequency term, head search."""

from __future__ import annotations

import pytest
import torch

from harbench import Windows
from harbench_smldist import (
    NetworkConfig,
    SMLNet,
    StageAdapters,
    conditional_targets,
    frequency_attention_loss,
    hinton_loss,
    smldist_logits_loss,
    stage_loss,
)
from harbench_smldist.losses import frequency_attention
from harbench_smldist.pipeline import HeadScore, choose_head, copy_memory, evaluate_heads

TEACHER = NetworkConfig(channels=6, classes=6, width=2.0)
STUDENT = NetworkConfig(channels=6, classes=6, width=0.75)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: the tests are tiny, and on a shared 2-core host extra threads only spin."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _nets(seed: int = 0) -> tuple[SMLNet, SMLNet]:
    torch.manual_seed(seed)
    return SMLNet(TEACHER), SMLNet(STUDENT)


def test_stage_anchors_match_in_shape_after_adapters():
    teacher, student = _nets()
    teacher.eval(), student.eval()
    x = torch.randn(3, 6, 128)
    adapters = StageAdapters(student.anchor_channels, teacher.anchor_channels)
    t_out, s_out = teacher.stage_outputs(x), student.stage_outputs(x)
    assert len(t_out) == len(s_out) == 4
    for i, (t, s) in enumerate(zip(t_out, s_out)):
        assert s.shape[-1] == t.shape[-1]  # equal length at every anchor
        assert adapters(s, i).shape == t.shape
        assert torch.allclose(student.anchor(x, i), s)  # the truncated forward is the same network
    # the neck is equally wide, so its adapter is the identity and the head can be copied
    assert isinstance(adapters.maps[3], torch.nn.Identity)
    assert student.anchor_channels[:3] != teacher.anchor_channels[:3]


def test_student_is_much_smaller_than_teacher():
    teacher, student = _nets()
    t = sum(p.numel() for p in teacher.parameters())
    s = sum(p.numel() for p in student.parameters())
    assert 500_000 <= t <= 1_500_000
    assert 50_000 <= s <= 150_000
    assert t / s >= 4


def test_memory_distillation_copies_the_head_exactly():
    teacher, student = _nets()
    before = {k: v.clone() for k, v in student.head.state_dict().items()}
    copy_memory(student, teacher)
    t_state, s_state = teacher.head.state_dict(), student.head.state_dict()
    assert t_state.keys() == s_state.keys()
    assert all(torch.equal(t_state[k], s_state[k]) for k in t_state)
    assert any(not torch.equal(before[k], s_state[k]) for k in before)  # it really changed
    feats = torch.randn(5, TEACHER.neck)
    assert torch.allclose(teacher.head(feats), student.head(feats))


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
    # with a correct teacher the clean conditional form reduces to Hinton KD
    assert torch.allclose(smldist_logits_loss(z_s, right, y, form="clean"), hinton_loss(z_s, right, y))


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
    feats = torch.randn(4, STUDENT.neck)
    with torch.no_grad():
        head.mix.copy_(torch.tensor([0.3, -0.2]))
    w = torch.softmax(head.mix, 0)
    expected = w[0] * torch.softmax(head.memory(feats), -1) + w[1] * torch.softmax(head.intuition(feats), -1)
    assert torch.allclose(head(feats).exp(), expected, atol=1e-6)
