"""Masked dense least squares: the exact layer-wise fit of a single-linear-conv operator.

With the operator's dense form ``W`` (N, M, K_h, K_w) and mask (:mod:`.dense_form`), the
patches ``A`` (S, M K_h K_w) at the sampled positions (:mod:`.sampling`) and the original
layer's outputs there ``Y`` (S, N), each output channel ``o`` is an independent ridge
regression on the columns its mask row frees:

    w_o = argmin ||A_o w - Y[:, o]||^2 + lam ||w||^2,     A_o = A[:, mask_o]

(plus a column of ones when the operator has a bias). Output channels whose mask rows are
equal share one design matrix (a *pattern*: one for a dense conv, ``P`` for HetConv, ``g``
for a group conv, ``M`` for a depthwise conv). Per pattern the Gram ``G = A_p^T A_p`` and
``B = A_p^T Y_p`` are accumulated over chunks of positions (float32 products into float64
sums; float64 throughout for a float64 input), then

    (G + lam I) w = B,      lam = ridge * mean(diag(G))

is solved in float64 by Cholesky, patterns of equal size in one batched call. The solution
is the exact minimiser of the sampled objective; the fitted dense weight goes back into the
operator through :func:`.dense_form.load_dense`.

Layer-wise least-squares reconstruction of a layer's outputs from its actual inputs is the
classical data-aware compression step, e.g. X. Zhang, J. Zou, K. He, J. Sun, "Accelerating
Very Deep Convolutional Networks for Classification and Detection", TPAMI 2016,
arXiv:1505.06798, and Y. He, X. Zhang, J. Sun, "Channel Pruning for Accelerating Very Deep
Neural Networks", ICCV 2017, arXiv:1707.06168.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from leanconv.calibration.dense_form import dense_form, dense_mask, load_dense
from leanconv.calibration.reconstruction import reconstruct
from leanconv.calibration.rules import FitProblem, register_fit_rule
from leanconv.calibration.sampling import PatchSampler
from leanconv.ops.group_conv import GroupConv2d
from leanconv.ops.het_conv import HetConv2d
from leanconv.ops.mixed_conv import MixConv2d, MixedGroupConv

_BLOCK = 256  # column block of the symmetric Gram products


@dataclass(frozen=True)
class PatternClass:
    """Patterns with the same number of free columns, solved together.

    ``columns`` (P, c): the free columns of each pattern (the bias column, index
    ``M K_h K_w``, last when there is a bias); ``channels`` (P, n): its output channels,
    padded by repeating its first one (a repeated channel gets the same solution)."""

    columns: torch.Tensor
    channels: torch.Tensor


def pattern_classes(mask_rows: torch.Tensor, bias: bool) -> list[PatternClass]:
    """Group the output channels of a ``(N, D)`` bool mask by equal rows, then the patterns
    by their number of free columns."""
    patterns, inverse = torch.unique(mask_rows, dim=0, return_inverse=True)
    sizes = patterns.sum(1)
    classes = []
    for size in sizes.unique().tolist():
        if size == 0 and not bias:
            continue  # channels that read nothing stay zero
        ids = (sizes == size).nonzero()[:, 0]
        columns = patterns[ids].nonzero()[:, 1].view(len(ids), int(size))
        if bias:
            extra = torch.full((len(ids), 1), mask_rows.shape[1], dtype=torch.long)
            columns = torch.cat([columns, extra], 1)
        members = [(inverse == i).nonzero()[:, 0] for i in ids.tolist()]
        width = max(len(m) for m in members)
        channels = torch.stack([torch.cat([m, m[:1].expand(width - len(m))]) for m in members])
        classes.append(PatternClass(columns, channels))
    return classes


def symmetric_gram(at: torch.Tensor) -> torch.Tensor:
    """``at @ at^T`` for ``at`` (P, c, S), computing only the upper block triangle when ``c``
    is large (about half the multiplications of a full product)."""
    columns = at.shape[1]
    if columns < 2 * _BLOCK:
        return at @ at.transpose(1, 2)
    out = at.new_empty(at.shape[0], columns, columns)
    for start in range(0, columns, _BLOCK):
        stop = min(start + _BLOCK, columns)
        product = at[:, start:stop] @ at[:, start:].transpose(1, 2)
        out[:, start:stop, start:] = product
        out[:, stop:, start:stop] = product[:, :, stop - start:].transpose(1, 2)
    return out


def accumulate_grams(sampler: PatchSampler, target: torch.Tensor,
                     classes: list[PatternClass], bias: bool
                     ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per class, float64 ``G`` (P, c, c) and ``B`` (P, c, n), summed over chunks of
    positions (module docstring)."""
    sums = []
    full = sampler.columns + bias
    for cls in classes:
        p, c = cls.columns.shape
        sums.append((torch.zeros(p, c, c, dtype=torch.float64, device=target.device),
                     torch.zeros(p, c, cls.channels.shape[1], dtype=torch.float64,
                                 device=target.device)))
    target_t = target.T.to(sampler.dtype).contiguous()  # (N, S)
    indices = [(cls.columns.to(target.device), cls.channels.to(target.device))
               for cls in classes]
    for start, stop in sampler.chunks(bias):
        at = sampler.patches_t(start, stop, ones=bias)  # (D, S_chunk)
        yt = target_t[:, start:stop]
        for (columns, channels), (gram, right) in zip(indices, sums, strict=True):
            p, c = columns.shape
            # advanced indexing: one gather (index_select copies row by row)
            ap = at[None] if p == 1 and c == full else at[columns]  # (P, c, S_chunk)
            yp = yt[channels]  # (P, n, S_chunk)
            gram += symmetric_gram(ap)
            right += ap @ yp.transpose(1, 2)
    return sums


def ridge_solve(gram: torch.Tensor, right: torch.Tensor, ridge: float) -> torch.Tensor:
    """``(G + lam I)^-1 B`` per batch entry, ``lam = ridge * mean(diag(G))``, in float64:
    Cholesky, least squares (``gelsd``) for an entry that is not positive definite."""
    diagonal = gram.diagonal(dim1=-2, dim2=-1)
    lam = ridge * diagonal.mean(-1)
    system = gram + torch.diag_embed(lam[:, None].expand_as(diagonal))
    factor, info = torch.linalg.cholesky_ex(system)
    solution = torch.cholesky_solve(right, factor)
    bad = (info != 0).nonzero()[:, 0]
    if len(bad):
        solution[bad] = torch.linalg.lstsq(system[bad].cpu(), right[bad].cpu(),
                                           driver="gelsd").solution.to(solution)
    return solution


def masked_least_squares(sampler: PatchSampler, target: torch.Tensor, mask: torch.Tensor, *,
                         bias: bool, ridge: float
                         ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The ridge least-squares dense weight (N, M, K_h, K_w) with zeros off ``mask`` and the
    bias (N,) (None without), float64, fitting ``target`` (S, N) from ``sampler``'s patches
    (module docstring)."""
    n, columns = mask.shape[0], sampler.columns
    classes = pattern_classes(mask.reshape(n, -1).cpu(), bias)
    flat = torch.zeros(n, columns + bias, dtype=torch.float64, device=target.device)
    for cls, (gram, right) in zip(classes, accumulate_grams(sampler, target, classes, bias),
                                  strict=True):
        solution = ridge_solve(gram, right, ridge)  # (P, c, n)
        rows = cls.channels.to(flat.device)[:, :, None]
        cols = cls.columns.to(flat.device)[:, None, :]
        flat[rows, cols] = solution.transpose(1, 2)
    weight = flat[:, :columns].view(mask.shape)
    return weight, (flat[:, columns] if bias else None)


@register_fit_rule(nn.Conv2d, GroupConv2d, HetConv2d, MixConv2d, MixedGroupConv,
                   full_maps=lambda layer: dense_form(layer) is None)
def fit_least_squares(layer: nn.Module, problem: FitProblem) -> str:
    """The masked dense least-squares fit (module docstring); a conv without a dense form
    (padding mode other than zeros) falls back to :func:`.reconstruction.reconstruct`."""
    form = dense_form(layer)
    if form is None:
        return reconstruct(layer, problem)
    batch, _, height, width = problem.output_shape
    sampler = PatchSampler(problem.inputs, form.geometry, problem.positions,
                           (batch, height, width))
    weight, bias = masked_least_squares(sampler, problem.target, dense_mask(layer),
                                        bias=form.bias is not None, ridge=problem.ridge)
    load_dense(layer, form.geometry, weight, bias)
    return "least-squares"


@register_fit_rule(nn.Linear)
def fit_linear(layer: nn.Linear, problem: FitProblem) -> str:
    """A linear layer (a classifier head) is a 1x1 conv on its ``(B, C, 1, 1)`` inputs
    (:func:`leanconv.calibration.fit_converted` passes ``(B, C)`` tensors that way): the same
    least-squares fit."""
    conv = nn.Conv2d(layer.in_features, layer.out_features, 1, bias=layer.bias is not None)
    conv.to(layer.weight)
    method = fit_least_squares(conv, problem)
    with torch.no_grad():
        layer.weight.copy_(conv.weight[:, :, 0, 0])
        if layer.bias is not None:
            layer.bias.copy_(conv.bias)
    return method
