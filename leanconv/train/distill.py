"""Knowledge distillation: the student learns the teacher's softened outputs.

G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network", NIPS 2014
Deep Learning Workshop, arXiv:1503.02531::

    loss = (1 - a) * CE(student, labels)
           + a * T^2 * KL(softmax(teacher / T) || softmax(student / T))

``T^2`` keeps the soft term's gradients on the scale of the hard term's as ``T`` changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, hard_loss: torch.Tensor,
                      weight: float, temperature: float) -> torch.Tensor:
    """The loss above for logits ``student`` and ``teacher`` (B, classes), with ``hard_loss``
    the cross-entropy already computed on the labels, ``weight`` = a, ``temperature`` = T."""
    soft = F.kl_div(F.log_softmax(student / temperature, dim=1),
                    F.log_softmax(teacher / temperature, dim=1), reduction="batchmean",
                    log_target=True)
    return (1 - weight) * hard_loss + weight * temperature ** 2 * soft
