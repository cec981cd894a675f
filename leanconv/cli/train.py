"""``leanconv train``: train one model (a zoo name, torchvision:NAME, timm:NAME, a checkpoint
or a converted file) with one operator on Fashion-MNIST, an image folder or synthetic data,
optionally from a file's weights (``--init``) and distilled from a teacher (``--teacher``),
in this process or in ``--nproc`` processes (DDP through torchrun). The training flags,
shared with ``leanconv compare``, map one to one onto :class:`leanconv.train.TrainConfig`
fields."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leanconv.cli._args import (
    DATA_FLAGS,
    DATA_SWITCHES,
    MODEL_HELP,
    add_flags,
    given_options,
    positive_float,
    positive_int,
)

if TYPE_CHECKING:
    from leanconv.train.config import TrainConfig

TRAIN_FLAGS = {  # flag: (TrainConfig field, type, help)
    "--model": ("model", str, MODEL_HELP + " (a file: its network, freshly initialised; "
                "default resnet20_cifar, or --init's network)"),
    "--conv": ("conv", str, "conv spec for the spatial convs (default: standard)"),
    "--init": ("init", str, "start from this checkpoint's or converted file's weights (a new "
               "run: new optimiser and schedule)"),
    "--teacher": ("teacher", str, "distil from this model (a checkpoint or converted file)"),
    "--distill-weight": ("distill_weight", float, "weight a of the distillation term "
                         "(default 0.9 with --teacher)"),
    "--distill-temperature": ("distill_temperature", positive_float,
                              "distillation temperature T (default 4)"),
    "--epochs": ("epochs", positive_int, "epochs"),
    "--batch-size": ("batch_size", positive_int, "batch size per process"),
    "--lr": ("lr", float, "peak learning rate"),
    "--seed": ("seed", int, "random seed"),
    "--schedule": ("schedule", str, "cosine or onecycle"),
    "--warmup-epochs": ("warmup_epochs", float, "linear warm-up length in epochs"),
    "--weight-decay": ("weight_decay", float, "weight decay (not on norms and biases)"),
    "--label-smoothing": ("label_smoothing", float, "label smoothing"),
    "--device": ("device", str, "cpu or cuda"),
    "--threads": ("threads", positive_int, "CPU threads"),
    "--max-minutes": ("max_minutes", float, "stop training after this many minutes"),
    "--subset": ("subset", positive_int, "train on the first N images only"),
    **DATA_FLAGS,
}
TRAIN_SWITCHES = {"--amp": "amp", "--channels-last": "channels_last", "--ema": "ema",
                  "--deterministic": "deterministic", **DATA_SWITCHES}


def add_train_options(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """The training flags (all but ``skip``), each defaulting to the config's own default."""
    add_flags(parser, TRAIN_FLAGS, TRAIN_SWITCHES, skip)


def train_config(args: argparse.Namespace, **base: Any) -> TrainConfig:
    """The :class:`~leanconv.train.TrainConfig` of ``base`` overridden by the flags given."""
    from leanconv.train.config import TrainConfig

    return TrainConfig(**{**base, **given_options(args, TRAIN_FLAGS, TRAIN_SWITCHES)})


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train", help="train or fine-tune any model on Fashion-MNIST, an image folder or "
                      "synthetic data, optionally distilled; DDP with --nproc",
        description="Train one model (a zoo name, torchvision:NAME, timm:NAME, a checkpoint or "
                    "a converted file), optionally with its convs as one operator (--conv), "
                    "from a file's weights (--init) and distilled from a teacher (--teacher), "
                    "in this process or in --nproc processes (DDP through torchrun). Writes "
                    "config.json, metrics.csv, summary.json, last.pt and best.pt to the run "
                    "folder.")
    add_train_options(parser)
    parser.add_argument("--out", help="run folder (default runs/MODEL-CONV)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--nproc", type=positive_int, help="launch N processes with torchrun")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def _without_nproc(argv: list[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N``: torchrun sets the world size."""
    forwarded, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--nproc="):
            skip = False
            continue
        skip = arg == "--nproc"
        if not skip:
            forwarded.append(arg)
    return forwarded


def run(args: argparse.Namespace) -> str:
    if args.nproc and args.nproc > 1:
        from leanconv.train.distributed import launch

        code = launch(args.nproc, _without_nproc(args.argv))
        if code:
            raise ValueError(f"the distributed run failed (torchrun exit code {code})")
        return "distributed run finished"
    from leanconv.loading import reference_kind
    from leanconv.train.config import TrainConfig
    from leanconv.train.trainer import train

    config = train_config(args, progress=not args.no_progress, resume=args.resume)
    name = Path(config.model).stem if reference_kind(config.model) == "file" else config.model
    conv = config.conv or "standard"
    out = args.out or f"runs/{name}-{conv}".replace(":", "_")
    summary = train(TrainConfig.from_dict({**config.to_dict(), "out": out}))
    return json.dumps({k: v for k, v in summary.items() if k not in ("per_class_acc", "classes")},
                      indent=2)
