"""The distillation losses: stage (MSE + frequency attention), SMLDist's conditional logits loss, and Hinton KD.

All functions are pure over tensors so each mechanism can be tested on hand-made inputs. ``z`` arguments are what
the caller feeds: with ``logits_inputs='code'`` (the default) the student's training-mode **mixture probabilities**
and the teacher's eval-mode **memory-branch outputs**, as the authors' code does (see ``pipeline.distil_logits``).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

ATTENTIONS = ("teacher_spectrum", "uniform")
LOGITS_FORMS = ("paper", "clean")


def _magnitude(features: torch.Tensor) -> torch.Tensor:
    """|rFFT| over time, orthonormal so magnitudes stay on the features' scale (Parseval)."""
    return torch.fft.rfft(features, dim=-1, norm="ortho").abs()


def frequency_attention(teacher_features: torch.Tensor, attention: str = "teacher_spectrum") -> torch.Tensor:
    """Weights over frequency bins, one distribution per sample: shape (batch, bins), rows summing to one.

    ``teacher_spectrum`` is a softmax over the teacher's channel-averaged magnitude spectrum, divided by its mean
    first so the weights depend on the spectrum's shape and not on the stage's scale (our reading of the
    abstract's "frequency-related feature attention"; the paper's code has no such term). ``uniform`` weighs
    all bins equally.
    """
    with torch.no_grad():
        spectrum = _magnitude(teacher_features).mean(dim=1)  # (B, bins)
        if attention == "uniform":
            return torch.full_like(spectrum, 1.0 / spectrum.shape[-1])
        if attention == "teacher_spectrum":
            scaled = spectrum / spectrum.mean(dim=-1, keepdim=True).clamp_min(1e-8)
            return torch.softmax(scaled, dim=-1)
    raise ValueError(f"unknown attention {attention!r}; expected one of {ATTENTIONS}")


def frequency_attention_loss(
    student_features: torch.Tensor, teacher_features: torch.Tensor, attention: str = "teacher_spectrum"
) -> torch.Tensor:
    """sum_f a_f (|FFT(F_s)|_f - |FFT(F_t)|_f)^2, averaged over batch and channels; zero iff the spectra match."""
    weights = frequency_attention(teacher_features, attention)  # (B, bins)
    diff = (_magnitude(student_features) - _magnitude(teacher_features.detach())) ** 2  # (B, C, bins)
    return (diff * weights[:, None, :]).sum(dim=-1).mean()


def stage_loss(
    student_features: torch.Tensor,
    teacher_features: torch.Tensor,
    lambda_f: float = 1.0,
    attention: str = "teacher_spectrum",
) -> torch.Tensor:
    """MSE between (adapted) student and teacher stage outputs plus ``lambda_f`` times the frequency term."""
    loss = F.mse_loss(student_features, teacher_features.detach())
    if lambda_f:
        loss = loss + lambda_f * frequency_attention_loss(student_features, teacher_features, attention)
    return loss


def conditional_targets(
    teacher_probs: torch.Tensor, y: torch.Tensor, hardness: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """SMLDist's conditional rule: where the teacher's argmax is wrong, its target becomes ``hardness * one_hot(y)``.

    Returns the targets and the boolean mask of replaced samples; correct samples keep the teacher's row as is.
    """
    wrong = teacher_probs.argmax(dim=-1) != y
    one_hot = F.one_hot(y, teacher_probs.shape[-1]).to(teacher_probs.dtype) * hardness
    return torch.where(wrong[:, None], one_hot, teacher_probs), wrong


def _soft_cross_entropy(target: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
    return -(target * log_probs).sum(dim=-1).mean()


def smldist_logits_loss(
    z_student: torch.Tensor,
    z_teacher: torch.Tensor,
    y: torch.Tensor,
    *,
    form: str = "paper",
    conditional: bool = True,
    hardness: float = 1.0,
    ratio: float = 1.0,
    temperature: float = 4.0,
) -> torch.Tensor:
    """Hard-label CE plus ``ratio`` times CE against the (conditionally corrected) teacher distribution.

    ``paper`` follows the code's ``LogitsDistillingLoss``: L2-normalise the logits over classes, softmax, apply
    the conditional rule, then softmax both distributions a second time (which flattens them strongly) and use
    CE(one_hot(y), p_s) + ratio * CE(p_t, p_s). ``clean`` is the textbook form: a single softmax at
    ``temperature`` T, CE(y, z_s) + ratio * T^2 * CE(p_t, p_s^T), with wrong teacher rows replaced by one_hot(y).
    """
    teacher = z_teacher.detach()
    if form == "paper":
        p_s = torch.softmax(z_student / z_student.norm(dim=-1, keepdim=True).clamp_min(1e-8), dim=-1)
        p_t = torch.softmax(teacher / teacher.norm(dim=-1, keepdim=True).clamp_min(1e-8), dim=-1)
        if conditional:
            p_t, _ = conditional_targets(p_t, y, hardness)
        p_t = torch.softmax(p_t, dim=-1)
        log_p_s = torch.log_softmax(p_s, dim=-1)
        y_hard = F.one_hot(y, z_student.shape[-1]).to(z_student.dtype)
        return _soft_cross_entropy(y_hard, log_p_s) + ratio * _soft_cross_entropy(p_t, log_p_s)
    if form == "clean":
        p_t = torch.softmax(teacher / temperature, dim=-1)
        if conditional:
            p_t, _ = conditional_targets(p_t, y, 1.0)
        soft = _soft_cross_entropy(p_t, torch.log_softmax(z_student / temperature, dim=-1))
        return F.cross_entropy(z_student, y) + ratio * temperature**2 * soft
    raise ValueError(f"unknown logits form {form!r}; expected one of {LOGITS_FORMS}")


def hinton_loss(
    z_student: torch.Tensor, z_teacher: torch.Tensor, y: torch.Tensor, *, temperature: float = 1.0,
    ratio: float = 1.0, t_squared: bool = False,
) -> torch.Tensor:
    """KD without correction: ``CE(y, softmax(z_s)) + ratio [* T^2] * CE(softmax(z_t/T), softmax(z_s/T))``.

    The defaults are the code's ``HintonCrossEntropyLoss`` (T = 1, no T^2 factor); ``t_squared=True`` with T = 4
    is Hinton et al.'s form (the soft term's gradients scaled back up by T^2).
    """
    p_t = torch.softmax(z_teacher.detach() / temperature, dim=-1)
    soft = _soft_cross_entropy(p_t, torch.log_softmax(z_student / temperature, dim=-1))
    return F.cross_entropy(z_student, y) + ratio * (temperature**2 if t_squared else 1.0) * soft
