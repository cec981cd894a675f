"""Named settings for ``leanconv compare``.

``quick`` (what ``make demo`` runs): one pass over 30,000 training images per operator,
batch 64, lr 0.05, channels_last; about a minute per operator on a 2-core CPU, and the
standard resnet20_cifar reaches about 86% on the full test set (measured: 86.4%).
``full``: 30 epochs over all 60,000 images (converged accuracy; hours on a CPU).
"""

from __future__ import annotations

from typing import Any

DEFAULT_CONVS = ("standard", "hetconv:p=4", "compconv:c0=32", "dwsep", "mixconv:k=3.5.7",
                 "group:g=4,shuffle=1")

PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"epochs": 1, "subset": 30000, "batch_size": 64, "lr": 0.05,
              "warmup_epochs": 0.1, "channels_last": True},
    "full": {"epochs": 30, "subset": None, "batch_size": 128, "lr": 0.1,
             "warmup_epochs": 1.0, "channels_last": True},
}
