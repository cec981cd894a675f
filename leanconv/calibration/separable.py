"""Alternating least squares for a depthwise-separable conv (no norm or activation between).

``y = PW(DW(x)) + b`` is bilinear in the depthwise weight ``dw`` (M r taps, ``r`` the depth
multiplier) and the pointwise weight ``pw`` (N x M r): linear in each with the other fixed.
Everything is computed from the full patch Gram ``G = A^T A`` (M K^2 square, a ones column
appended with a bias) and ``C = A^T Y`` of the sampled positions (:mod:`.least_squares`), so
no step passes over the data again. With ``D`` the block-diagonal depthwise map
(``D[(i, t), (i, q)] = dw[i q, t]``; ``i`` input channel, ``t`` tap, ``q`` multiplier):

* PW step: ``[pw^T; b] = (D^T G D + lam I)^-1 D^T C`` (the depthwise features' Gram);
* DW step: with ``Q = pw^T pw`` (M r square), the normal equations of ``dw`` are
  ``H[(iq, t), (jp, s)] = Q[iq, jp] G[(i, t), (j, s)]`` (``Q`` expanded over the taps,
  Hadamard ``G``) and ``g[(iq, t)] = sum_o pw[o, iq] (C[(i, t), o] - G[(i, t), 1] b_o)``;
  solved exactly by Cholesky up to :data:`EXACT_LIMIT` unknowns, else by block-Jacobi
  preconditioned conjugate gradients started at the current ``dw`` (each iteration lowers
  the quadratic, so an inexact step still descends).

Each step is ridge-regularised with ``lam = ridge * mean(diag)`` of its own Gram. The
objective ``||[A D, 1] [pw^T; b] - Y||^2 = yy - 2 <P, D^T C> + <P, D^T G D P>`` is evaluated
after every step and a step that would raise it (possible only through the ridge) is
rejected, so it never increases. The start is the data-free SVD initialisation
(:mod:`leanconv.inherit`); iterations stop when an iteration lowers the objective by less
than :data:`TOLERANCE` (relative) or after :data:`MAX_ITERATIONS`.

Alternating least squares for a bilinear (rank-constrained) fit, e.g. G. H. Golub,
V. Pereyra, "The Differentiation of Pseudo-Inverses and Nonlinear Least Squares Problems
Whose Variables Separate", SIAM J. Numer. Anal. 10(2), 1973; applied to the factorisation
of a conv layer's weights into separable filters from its responses in X. Zhang, J. Zou,
K. He, J. Sun, "Accelerating Very Deep Convolutional Networks for Classification and
Detection", TPAMI 2016, arXiv:1505.06798.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from leanconv.calibration.least_squares import PatternClass, accumulate_grams, ridge_solve
from leanconv.calibration.reconstruction import reconstruct
from leanconv.calibration.rules import FitProblem, register_fit_rule
from leanconv.calibration.sampling import Geometry, PatchSampler
from leanconv.inherit import left_padding
from leanconv.ops.dwsep_conv import DepthwiseSeparableConv2d

MAX_ITERATIONS = 50
TOLERANCE = 1e-4
EXACT_LIMIT = 1536  # depthwise unknowns up to which the DW step is a Cholesky solve
CG_ITERATIONS = 25
CG_TOLERANCE = 1e-3  # relative to the starting residual


@dataclass
class SeparableGram:
    """``G`` and ``C`` split into their depthwise-tap and bias parts, float64."""

    g4: torch.Tensor  # (M, T, M, T)
    c4: torch.Tensor  # (M, T, N)
    yy: float  # ||Y||^2
    gb: torch.Tensor | None = None  # (M, T): sum of patches, the bias column of G
    count: float = 0.0  # number of positions, G's bias-bias entry
    cb: torch.Tensor | None = None  # (N,): sum of targets
    _g4j: torch.Tensor | None = field(default=None, repr=False)

    @property
    def g4j(self) -> torch.Tensor:
        """``G`` as (j, (i, t), s), for the conjugate-gradient products (made once)."""
        if self._g4j is None:
            m, t = self.g4.shape[:2]
            self._g4j = self.g4.permute(2, 0, 1, 3).reshape(m, m * t, t).contiguous()
        return self._g4j


@dataclass
class SeparableWeights:
    """Float64 ``dw`` (M, r, T), ``pw`` (N, M, r) and ``bias`` (N,) or None."""

    dw: torch.Tensor
    pw: torch.Tensor
    bias: torch.Tensor | None


def separable_gram(gram: torch.Tensor, right: torch.Tensor, yy: float, channels: int,
                   bias: bool) -> SeparableGram:
    """Split a full patch Gram ``gram`` and ``right = A^T Y`` (ones column last with a
    bias) for ``channels`` input channels."""
    d = gram.shape[0] - bias
    t = d // channels
    parts = SeparableGram(gram[:d, :d].reshape(channels, t, channels, t),
                          right[:d].reshape(channels, t, -1), yy)
    if bias:
        parts.gb, parts.count, parts.cb = gram[:d, d].reshape(channels, t), float(gram[d, d]), \
            right[d]
    return parts


def _features(gram: SeparableGram, dw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``D^T G D`` and ``D^T C`` for the depthwise weight ``dw`` (bias row/column last)."""
    m, r, _ = dw.shape
    gd = torch.einsum("itjs,jps->itjp", gram.g4, dw)
    gf = torch.einsum("iqt,itjp->iqjp", dw, gd).reshape(m * r, m * r)
    cf = torch.einsum("iqt,ito->iqo", dw, gram.c4).reshape(m * r, -1)
    if gram.gb is None:
        return gf, cf
    fb = torch.einsum("iqt,it->iq", dw, gram.gb).reshape(m * r, 1)
    corner = fb.new_full((1, 1), gram.count)
    gf = torch.cat([torch.cat([gf, fb], 1), torch.cat([fb.T, corner], 1)], 0)
    return gf, torch.cat([cf, gram.cb[None]], 0)


def _stacked(weights: SeparableWeights) -> torch.Tensor:
    """``[pw^T; b]`` (M r (+1), N)."""
    n = weights.pw.shape[0]
    p = weights.pw.reshape(n, -1).T
    return p if weights.bias is None else torch.cat([p, weights.bias[None]], 0)


def _objective(gram: SeparableGram, features: tuple[torch.Tensor, torch.Tensor],
               weights: SeparableWeights) -> float:
    gf, cf = features
    p = _stacked(weights)
    return gram.yy - 2 * float((p * cf).sum()) + float((p * (gf @ p)).sum())


def objective(gram: SeparableGram, weights: SeparableWeights) -> float:
    """``||A W - Y||^2`` on the sampled positions, from the Grams alone."""
    return _objective(gram, _features(gram, weights.dw), weights)


def _pointwise(features: tuple[torch.Tensor, torch.Tensor], weights: SeparableWeights,
               ridge: float) -> SeparableWeights:
    gf, cf = features
    m, r, _ = weights.dw.shape
    p = ridge_solve(gf[None], cf[None], ridge)[0]
    pw = p[:m * r].T.reshape(cf.shape[1], m, r)
    return SeparableWeights(weights.dw, pw, p[m * r] if weights.bias is not None else None)


def pointwise_step(gram: SeparableGram, weights: SeparableWeights, ridge: float
                   ) -> SeparableWeights:
    """The ridge least-squares ``pw`` (and bias) for the current ``dw``."""
    return _pointwise(_features(gram, weights.dw), weights, ridge)


def _depthwise_system(gram: SeparableGram, weights: SeparableWeights
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """``Q = pw^T pw`` (M, r, M, r) and the right side ``g`` (M, r, T) of the DW step."""
    pw = weights.pw
    q = torch.einsum("oiq,ojp->iqjp", pw, pw)
    rhs = torch.einsum("oiq,ito->iqt", pw, gram.c4)
    if weights.bias is not None:
        rhs = rhs - torch.einsum("oiq,o,it->iqt", pw, weights.bias, gram.gb)
    return q, rhs


def depthwise_step(gram: SeparableGram, weights: SeparableWeights, ridge: float
                   ) -> SeparableWeights:
    """The ridge least-squares ``dw`` for the current ``pw`` and bias (module docstring)."""
    m, r, t = weights.dw.shape
    q, rhs = _depthwise_system(gram, weights)
    size = m * r * t
    if size <= EXACT_LIMIT:
        h = torch.einsum("iqjp,itjs->iqtjps", q, gram.g4).reshape(size, size)
        dw = ridge_solve(h[None], rhs.reshape(1, size, 1), ridge)[0].reshape(m, r, t)
    else:
        dw = _conjugate_gradients(gram, q, rhs, weights.dw, ridge)
    return SeparableWeights(dw, weights.pw, weights.bias)


def _conjugate_gradients(gram: SeparableGram, q: torch.Tensor, rhs: torch.Tensor,
                         start: torch.Tensor, ridge: float) -> torch.Tensor:
    """``(H + lam I) dw = g`` by preconditioned CG from ``start``; ``H`` applied as
    ``Q`` times the ``G`` products, never formed; block-Jacobi preconditioner (the
    per-channel ``r T`` blocks of ``H``)."""
    m, r, t = start.shape
    g4j = gram.g4j  # (j, (i, t), s)
    channels = torch.arange(m)
    q_blocks, g_blocks = q[channels, :, channels], gram.g4[channels, :, channels]
    diagonal = (q_blocks.diagonal(dim1=1, dim2=2)[:, :, None]
                * g_blocks.diagonal(dim1=1, dim2=2)[:, None, :])
    lam = ridge * float(diagonal.mean())
    blocks = torch.einsum("iqp,its->iqtps", q_blocks, g_blocks)
    blocks = blocks.reshape(m, r * t, r * t) + lam * torch.eye(r * t, dtype=q.dtype)
    factor = torch.linalg.cholesky_ex(blocks)[0]

    def apply(v: torch.Tensor) -> torch.Tensor:
        z = torch.bmm(g4j, v.transpose(1, 2)).view(m, m, t, r)  # (j, i, t, p)
        return torch.einsum("iqjp,jitp->iqt", q, z) + lam * v

    def precondition(v: torch.Tensor) -> torch.Tensor:
        return torch.cholesky_solve(v.reshape(m, r * t, 1), factor).view(m, r, t)

    x = start.clone()
    residual = rhs - apply(x)
    limit = CG_TOLERANCE * float(residual.norm())
    z = precondition(residual)
    direction = z
    rz = float((residual * z).sum())
    for _ in range(CG_ITERATIONS):
        if float(residual.norm()) <= limit or rz == 0.0:
            break
        product = apply(direction)
        curvature = float((direction * product).sum())
        if curvature <= 0.0:
            break
        alpha = rz / curvature
        x = x + alpha * direction
        residual = residual - alpha * product
        z = precondition(residual)
        rz, previous = float((residual * z).sum()), rz
        direction = z + (rz / previous) * direction
    return x


def alternating_least_squares(gram: SeparableGram, weights: SeparableWeights, ridge: float,
                              *, max_iterations: int = MAX_ITERATIONS,
                              tolerance: float = TOLERANCE
                              ) -> tuple[SeparableWeights, list[float]]:
    """ALS from ``weights`` (module docstring). Returns the weights and the objective
    after the start and after every step (non-increasing)."""
    features = _features(gram, weights.dw)
    value = _objective(gram, features, weights)
    history = [value]
    for _ in range(max_iterations):
        before = value
        candidate = _pointwise(features, weights, ridge)
        candidate_value = _objective(gram, features, candidate)
        if candidate_value <= value:
            weights, value = candidate, candidate_value
        history.append(value)
        candidate = depthwise_step(gram, weights, ridge)
        candidate_features = _features(gram, candidate.dw)
        candidate_value = _objective(gram, candidate_features, candidate)
        if candidate_value <= value:
            weights, value, features = candidate, candidate_value, candidate_features
        history.append(value)
        if before - value <= tolerance * before:
            break
    return weights, history


def is_linear(layer: DepthwiseSeparableConv2d) -> bool:
    """No norm or activation between the two convs (the ``dwsep`` spec's default)."""
    return isinstance(layer.norm, nn.Identity) and isinstance(layer.act, nn.Identity)


@register_fit_rule(DepthwiseSeparableConv2d, full_maps=lambda layer: not is_linear(layer))
def fit_separable(layer: DepthwiseSeparableConv2d, problem: FitProblem) -> str:
    """ALS for a linear depthwise-separable conv; with a norm or activation between, the
    gradient reconstruction (:func:`.reconstruction.reconstruct`)."""
    if not is_linear(layer):
        return reconstruct(layer, problem)
    dw, pw = layer.depthwise, layer.pointwise
    geometry = Geometry(tuple(dw.kernel_size), tuple(dw.stride), left_padding(dw),
                        tuple(dw.dilation))
    batch, _, height, width = problem.output_shape
    sampler = PatchSampler(problem.inputs, geometry, problem.positions, (batch, height, width))
    bias = pw.bias is not None
    m, n = layer.in_channels, layer.out_channels
    r = dw.out_channels // m
    everything = PatternClass(torch.arange(sampler.columns + bias)[None],
                              torch.arange(n)[None])
    ((gram, right),) = accumulate_grams(sampler, problem.target, [everything], bias)
    yy = float(problem.target.double().square().sum())
    parts = separable_gram(gram[0], right[0], yy, m, bias)
    start = SeparableWeights(dw.weight.detach().double().reshape(m, r, -1),
                             pw.weight.detach().double().reshape(n, m, r),
                             pw.bias.detach().double() if bias else None)
    fitted, _ = alternating_least_squares(parts, start, problem.ridge)
    with torch.no_grad():
        dw.weight.copy_(fitted.dw.reshape(dw.weight.shape))
        pw.weight.copy_(fitted.pw.reshape(pw.weight.shape))
        if bias:
            pw.bias.copy_(fitted.bias)
    return "alternating least-squares"
