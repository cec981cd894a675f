"""Loading another implementation's weights into a zoo model.

The zoo registers its layers in the same order as torchvision (ResNet, MobileNet v2,
ShuffleNet v2, VGG-BN) and timm (MixNet), so the documented key mapping is positional: the
i-th tensor of the source state dict goes to the i-th tensor of ours, and every pair must
have the same shape. The first mismatch is reported with both names.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


def load_weights_by_order(model: nn.Module, source: nn.Module | Mapping[str, torch.Tensor]
                          ) -> dict[str, str]:
    """Copy ``source``'s tensors into ``model`` in registration order; return the key mapping
    (ours -> theirs). Raises ValueError on a count or shape mismatch, changing nothing."""
    theirs = source.state_dict() if isinstance(source, nn.Module) else dict(source)
    ours = model.state_dict()
    if len(theirs) != len(ours):
        raise ValueError(f"load_weights_by_order: the source has {len(theirs)} tensors, the "
                         f"model {len(ours)}; they are not the same architecture")
    mapping = {}
    for (our_key, our_value), (their_key, their_value) in zip(ours.items(), theirs.items(),
                                                              strict=True):
        if our_value.shape != their_value.shape:
            raise ValueError(f"load_weights_by_order: {their_key} {tuple(their_value.shape)} "
                             f"does not fit {our_key} {tuple(our_value.shape)}")
        mapping[our_key] = their_key
    model.load_state_dict({k: theirs[v] for k, v in mapping.items()})
    return mapping
