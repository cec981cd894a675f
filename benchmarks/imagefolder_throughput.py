"""Training throughput from an image folder vs the same images in memory (a benchmark, not a
test).

    .venv/bin/python benchmarks/imagefolder_throughput.py [--root DIR] [--threads 2]
        [--rounds 10] [--steps 3] [--warmup 1]

Writes an image folder of 64x64 RGB JPEGs (``--classes`` x ``--per-class`` training images
and a tenth as many validation images, in a temporary folder or ``--root``), then times
training steps of ``torchvision.models.resnet18(num_classes=10)`` (SGD, batch 64, the batch
through ``leanconv.data.prepare(..., augment=True)``) fed by

* ``memory``: the decoded images as one in-memory uint8 tensor (the reference);
* ``cached``: ``load_dataset("imagefolder:ROOT")`` (decoded once, read from its cache file);
* ``streamed-wN``: ``load_dataset(..., cache_mb=0, workers=N)``: decoded from the files by N
  worker processes as the steps run (N = 1 and 2).

Each round runs every variant once, in a rotating order (a warm-up step, then the timed
steps, each timed from asking for its batch to the optimizer step; the images in a new
shuffle each round), so that drifts of a shared machine hit all of them alike. Images/s is
the batch size over the median step time of all rounds (30 timed steps per variant by
default), and each variant is reported as a ratio to ``memory`` (and as the median of the
per-round ratios). On a machine shared with other work the step times swing several-fold;
then the fastest step of each variant (the least disturbed), the share of a step spent
waiting for the batch, the loader's own rate with no training, and the CPU time per image
(this process and its DataLoader workers) say more than the median.
Writes ``benchmarks/results/imagefolder_throughput.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

from leanconv.data import ImageSet, TensorImages, load_dataset, prepare
from leanconv.io import atomic_write_text
from leanconv.machine import machine_info

BATCH = 64
TARGET = 0.85  # an image folder should train at >= 85% of the in-memory speed


def write_folder(root: Path, classes: int, per_class: int, size: int = 64) -> int:
    """``root/train`` and ``root/val`` of smooth random JPEGs (they compress like photos);
    returns the number of files written (0 when the folder is already there)."""
    if (root / "train").is_dir() and (root / "val").is_dir():
        return 0
    rng = np.random.default_rng(0)
    written = 0
    for split, count in (("train", per_class), ("val", max(1, per_class // 10))):
        for c in range(classes):
            folder = root / split / f"class{c:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                small = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
                image = np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC))
                noise = rng.integers(-12, 13, image.shape)
                image = np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(image).save(folder / f"{i:04d}.jpg", quality=90)
                written += 1
    return written


def cpu_seconds() -> float:
    """CPU time (user + system) of this process (all its threads) and of its live child
    processes (the DataLoader workers), from /proc; this process's alone elsewhere."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for children in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        with contextlib.suppress(OSError):
            for pid in Path(children).read_text().split():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


class Variant:
    """One way of feeding the model: its images, normalisation, and its own model and SGD
    (same initial weights for every variant)."""

    def __init__(self, name: str, images: ImageSet, mean: tuple[float, ...],
                 std: tuple[float, ...], state: dict[str, torch.Tensor]) -> None:
        self.name, self.images, self.mean, self.std = name, images, mean, std
        self.model = torchvision.models.resnet18(num_classes=10)
        self.model.load_state_dict(state)
        self.model.train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.samples: list[float] = []  # images/s of each round
        self.step_times: list[float] = []
        self.cpu_per_image: list[float] = []  # CPU seconds per image of each round
        self.waits: list[float] = []  # seconds each timed step waited for its batch

    def run(self, order: torch.Tensor, warmup: int, steps: int) -> float:
        """Images/s of this round: the batch size over the median time of ``steps`` training
        steps (each from asking for its batch to the optimizer step) after ``warmup``
        untimed ones. The median keeps a burst of other work on the machine out."""
        generator = torch.Generator().manual_seed(0)
        batches = self.images.batches(order, BATCH, drop_last=True)
        times = []
        try:
            last, cpu_start = time.perf_counter(), 0.0
            for step, (raw, labels) in enumerate(batches):
                if step >= warmup:
                    self.waits.append(time.perf_counter() - last)
                x = prepare(raw, "cpu", augment=True, generator=generator, mean=self.mean,
                            std=self.std)
                loss = torch.nn.functional.cross_entropy(self.model(x), labels)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                now = time.perf_counter()
                if step >= warmup:
                    times.append(now - last)
                else:
                    cpu_start = cpu_seconds()
                last = now
                if step + 1 == warmup + steps:
                    self.cpu_per_image.append((cpu_seconds() - cpu_start) / (steps * BATCH))
                    break
        finally:
            batches.close()
        self.step_times += times
        rate = BATCH / statistics.median(times)
        self.samples.append(rate)
        return rate


def loader_rate(images: ImageSet, n: int) -> float:
    """Images/s the set serves with no training: ``n`` images in a shuffled order (after
    one warm-up batch)."""
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(7))
    order = order.repeat(-(-n // len(images)))[:n]
    batches = images.batches(order, BATCH, drop_last=True)
    next(batches)
    start, count = time.perf_counter(), 0
    for raw, _ in batches:
        count += len(raw)
    return count / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="image folder to write (kept); default: a temp folder")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/imagefolder_throughput.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="leanconv-imagefolder-") as temp:
        root = Path(args.root) if args.root else Path(temp)
        start = time.perf_counter()
        files = write_folder(root, args.classes, args.per_class)
        write_s = time.perf_counter() - start
        spec = f"imagefolder:{root}"

        start = time.perf_counter()
        built = load_dataset(spec)
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        cached = load_dataset(spec)
        cached_load_s = time.perf_counter() - start
        assert isinstance(cached.train, TensorImages) and "read from the cache" in cached.note
        memory = TensorImages(built.train.tensor.clone(), built.train.labels.clone())
        streamed = {}
        stream_load_s = {}
        for workers in (1, 2):
            start = time.perf_counter()
            streamed[workers] = load_dataset(spec, cache_mb=0, workers=workers)
            stream_load_s[workers] = time.perf_counter() - start

        torch.manual_seed(0)
        state = torchvision.models.resnet18(num_classes=10).state_dict()
        variants = [Variant("memory", memory, built.mean, built.std, state),
                    Variant("cached", cached.train, cached.mean, cached.std, state)]
        variants += [Variant(f"streamed-w{w}", data.train, data.mean, data.std, state)
                     for w, data in streamed.items()]
        needed = (args.warmup + args.steps) * BATCH
        n = len(memory)
        print(f"{n} training images {memory.image_shape}, {args.threads} threads, "
              f"{args.rounds} rounds x {args.steps} timed steps of {BATCH} per variant")
        for round_ in range(args.rounds):
            generator = torch.Generator().manual_seed(round_)
            order = torch.cat([torch.randperm(n, generator=generator)
                               for _ in range(-(-needed // n))])[:needed]
            turn = variants[round_ % len(variants):] + variants[:round_ % len(variants)]
            rates = [f"{v.name} {v.run(order, args.warmup, args.steps):.0f}" for v in turn]
            print(f"round {round_ + 1}: " + ", ".join(rates) + " images/s")
        loader_rates = {v.name: loader_rate(v.images, 4096) for v in variants}

    reference = BATCH / statistics.median(variants[0].step_times)
    results = {}
    for v in variants:
        rate = BATCH / statistics.median(v.step_times)
        per_round = [s / r for s, r in zip(v.samples, variants[0].samples, strict=True)]
        results[v.name] = {"images_per_s": round(rate, 1),
                           "ratio_to_memory": round(rate / reference, 3),
                           "median_round_ratio": round(statistics.median(per_round), 3),
                           "peak_images_per_s": round(BATCH / min(v.step_times), 1),
                           "peak_ratio_to_memory": round(min(variants[0].step_times)
                                                         / min(v.step_times), 3),
                           "median_wait_ms_per_step": round(
                               1e3 * statistics.median(v.waits), 2),
                           "wait_share_of_step": round(sum(v.waits) / sum(v.step_times), 4),
                           "loader_only_images_per_s": round(loader_rates[v.name]),
                           "cpu_ms_per_image": round(1e3 * sum(v.cpu_per_image)
                                                     / len(v.cpu_per_image), 3),
                           "cpu_ratio_to_memory": round(sum(variants[0].cpu_per_image)
                                                        / sum(v.cpu_per_image), 3),
                           "rounds_images_per_s": [round(s, 1) for s in v.samples]}
    worst = min(r["ratio_to_memory"] for name, r in results.items() if name != "memory")
    worst_peak = min(r["peak_ratio_to_memory"] for name, r in results.items()
                     if name != "memory")
    worst_cpu = min(r["cpu_ratio_to_memory"] for name, r in results.items()
                    if name != "memory")
    record = {
        "machine": machine_info(args.threads),
        "model": "torchvision resnet18(num_classes=10), SGD, prepare(augment=True)",
        "images": {"train": n, "test": len(built.test), "shape": list(memory.image_shape),
                   "format": "JPEG quality 90", "files_written": files},
        "batch_size": BATCH, "rounds": args.rounds, "steps": args.steps,
        "warmup_steps": args.warmup,
        "seconds": {"write_folder": round(write_s, 2), "build_cache": round(build_s, 3),
                    "load_cached": round(cached_load_s, 3),
                    **{f"setup_streamed_w{w}": round(s, 3) for w, s in stream_load_s.items()}},
        "results": results,
        "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()],
        "target_ratio": TARGET, "worst_ratio": worst, "meets_target": worst >= TARGET,
        "worst_peak_ratio": worst_peak, "meets_target_by_peak": worst_peak >= TARGET,
        "worst_cpu_ratio": worst_cpu, "meets_target_by_cpu": worst_cpu >= TARGET,
    }
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    for name, r in results.items():
        print(f"{name:12s} {r['images_per_s']:8.1f} images/s  {r['ratio_to_memory']:.3f} x memory "
              f"(median of the rounds' ratios {r['median_round_ratio']:.3f}); fastest step "
              f"{r['peak_images_per_s']:.1f} images/s, {r['peak_ratio_to_memory']:.3f} x; waits "
              f"{100 * r['wait_share_of_step']:.2f}% of a step; loader alone "
              f"{r['loader_only_images_per_s']} images/s; CPU "
              f"{r['cpu_ms_per_image']:.1f} ms/image, {r['cpu_ratio_to_memory']:.3f} x memory")
    print(f"cache built in {build_s:.2f} s, read in {cached_load_s * 1e3:.0f} ms; worst ratio "
          f"{worst:.3f} by median step, {worst_peak:.3f} by fastest step, {worst_cpu:.3f} by "
          f"CPU time (target {TARGET:.0%}); "
          f"load average {os.getloadavg()[0]:.1f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
