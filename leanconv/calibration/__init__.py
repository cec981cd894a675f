"""Data-aware weight inheritance: fit a converted model's replaced layers on images.

``convert(model, spec, calibration=images)`` replaces the convs and initialises them
data-free (:mod:`leanconv.inherit`), then :func:`fit_converted` fits each replaced layer to
the original layer's outputs on the calibration images, layer by layer in forward order
(:mod:`.fit`), and :func:`recalibrate_batchnorm` re-estimates the BatchNorm statistics.
The fit of a layer is a rule of its class (:data:`FIT_RULES`, :func:`register_fit_rule`):

* ``'least-squares'``: every operator that is one linear conv with a fixed sparsity pattern
  (``nn.Conv2d`` of any groups, group conv, HetConv, MixConv, MixedGroupConv): the exact
  masked dense least-squares fit (:mod:`.least_squares`, :mod:`.dense_form`);
* ``'alternating least-squares'``: a depthwise-separable conv (:mod:`.separable`);
* ``'reconstructed'``: everything else, by gradient descent on the layer's own parameters
  (:mod:`.reconstruction`).

Patches are gathered at sampled output positions only (:mod:`.sampling`).
"""

from leanconv.calibration import least_squares, reconstruction, separable  # noqa: F401 (rules)
from leanconv.calibration.batchnorm import recalibrate_batchnorm
from leanconv.calibration.fit import FitResult, fit_converted
from leanconv.calibration.rules import FIT_RULES, FitProblem, FitRule, register_fit_rule

__all__ = [
    "FIT_RULES",
    "FitProblem",
    "FitResult",
    "FitRule",
    "fit_converted",
    "recalibrate_batchnorm",
    "register_fit_rule",
]
