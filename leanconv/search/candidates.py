"""Which layers a search may change, and to what: each one's candidate operators.

A layer is every ungrouped ``nn.Conv2d`` except the stem (the first conv, which sees the
image); grouped and depthwise convs are already cheap and are kept. A KxK conv's default
candidates are :data:`KXK_CANDIDATES`: keep it, HetConv with ``p = 2, 4, 8`` (P. Singh et al.,
"HetConv: Heterogeneous Kernel-Based Convolutions for Deep CNNs", CVPR 2019,
arXiv:1903.04120), depthwise-separable (A. G. Howard et al., "MobileNets", arXiv:1704.04861)
and group conv with 2 or 4 groups followed by a channel shuffle (X. Zhang et al.,
"ShuffleNet", CVPR 2018, arXiv:1707.01083). A 1x1 conv's are :data:`POINTWISE_CANDIDATES`:
keep it or ShuffleNet's pointwise group conv. A candidate a layer cannot take (channels not
divisible by the groups, say) is left out of that layer's list; a layer left with nothing but
``keep`` is not a choice at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn

from leanconv.converter import KEEP, check_layer_spec
from leanconv.deploy.autotune import layer_input_shapes
from leanconv.ops.create_conv import create_conv_like

KXK_CANDIDATES = (KEEP, "hetconv:p=2", "hetconv:p=4", "hetconv:p=8", "dwsep",
                  "group:g=2,shuffle=1", "group:g=4,shuffle=1")
POINTWISE_CANDIDATES = (KEEP, "group:g=2,shuffle=1", "group:g=4,shuffle=1")


def check_candidates(owner: str, name: str, specs: object) -> tuple[str, ...]:
    """``specs`` as a tuple of distinct conv specs with ``keep`` first (added when missing);
    ValueError naming ``name`` when it is not a non-empty list of specs that parse."""
    if isinstance(specs, str) or not isinstance(specs, Sequence) or not specs:
        raise ValueError(f"{owner}: {name}={specs!r} is invalid; expected a non-empty list of "
                         f"conv specs such as ['hetconv:p=4', 'dwsep'] ('keep' is always one)")
    checked = [KEEP]
    for spec in specs:
        check_layer_spec(owner, name, spec)
        if spec not in checked:
            checked.append(spec)
    return tuple(checked)


@dataclass(eq=False)
class Layer:
    """One layer a search chooses for: its name, the conv, the input it receives (batch
    first) and its candidate specs (``keep`` first); ``refused`` maps each spec it cannot
    take to the reason."""

    name: str
    conv: nn.Conv2d
    input_shape: tuple[int, ...]
    specs: tuple[str, ...]
    refused: dict[str, str] = field(default_factory=dict)


def _is_pointwise(conv: nn.Conv2d) -> bool:
    return tuple(conv.kernel_size) == (1, 1)


def _input_shapes(model: nn.Module, names: list[str], input_shape: tuple[int, ...]
                  ) -> dict[str, tuple[int, ...]]:
    """The input shape each named module receives, in forward order, from one eval-mode
    forward of ``input_shape``; ValueError when the model cannot take that input."""
    was_training = model.training
    try:
        return layer_input_shapes(model.eval(), names, input_shape, channels_last=False)
    except (RuntimeError, ValueError) as error:
        first_line = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise ValueError(f"the model fails on an input of shape {tuple(input_shape)} "
                         f"({first_line}); give the (C, H, W) it takes") from None
    finally:
        model.train(was_training)


def search_layers(model: nn.Module, input_shape: tuple[int, ...],
                  kxk: Sequence[str] = KXK_CANDIDATES,
                  pointwise: Sequence[str] = POINTWISE_CANDIDATES, *,
                  every_conv: bool = False) -> list[Layer]:
    """The layers of ``model`` a search chooses for (module docstring), in forward order,
    with the input shape each receives at ``input_shape`` and the candidates it can take.
    ``every_conv``: the stem, grouped convs and convs no candidate fits are layers too, with
    ``keep`` alone (a search over precisions gives each of them a choice of precision)."""
    convs = [(name, m) for name, m in model.named_modules() if type(m) is nn.Conv2d]
    chosen = [(name, conv) for i, (name, conv) in enumerate(convs)
              if every_conv or (i > 0 and conv.groups == 1)]
    shapes = _input_shapes(model, [name for name, _ in chosen], tuple(input_shape))
    layers = []
    for name, conv in chosen:
        if name not in shapes:  # not used in the forward
            continue
        layer = Layer(name, conv, shapes[name], (KEEP,))
        operators = (pointwise if _is_pointwise(conv) else kxk)[1:]
        for spec in operators if conv.groups == 1 and conv is not convs[0][1] else ():
            try:
                create_conv_like(spec, conv)
            except ValueError as error:
                layer.refused[spec] = str(error).split("\n")[0]
                continue
            layer.specs += (spec,)
        if len(layer.specs) > 1 or every_conv:
            layers.append(layer)
    order = {name: i for i, name in enumerate(shapes)}
    return sorted(layers, key=lambda layer: order[layer.name])
