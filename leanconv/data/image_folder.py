"""An image folder of the user's own (torchvision's ``ImageFolder`` layout) as a
:class:`~leanconv.data.dataset.Dataset`: :func:`load_image_folder`.

Layout: ``ROOT/train/<class>/*`` and ``ROOT/val/<class>/*`` (``val`` is the test split; it
may lack some of train's classes), or class folders directly in ``ROOT``, split per class
(see :func:`scan_image_folder`). Images are decoded once, to ``in_chans`` channels at
``image_size`` x ``image_size`` (:func:`decode_image_file`), and either cached as one uint8
tensor per split (:mod:`leanconv.data.cache`) or, for a set larger than ``cache_mb``,
streamed from the files by :class:`FileImages` (a ``DataLoader`` with worker processes).

Decoding: JPEG and PNG with torchvision's libjpeg-turbo / libpng decoders, every other format
(and all of them where torchvision lacks its image extension) with Pillow. Measured on 64x64
RGB images, one thread, on a 2-core EPYC: from bytes in memory torchvision takes 34 us per
JPEG and 117 us per PNG, Pillow 108 and 163 us; through :func:`decode_image_file` (file read,
conversion, on a busy machine) 132 vs 288 us per JPEG and 288 vs 394 us per PNG.
"""

from __future__ import annotations

import io
import os
import re
import time
import warnings
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, default_collate
from torch.utils.data import Dataset as TorchDataset

from leanconv._validate import check_int
from leanconv.data import cache
from leanconv.data.dataset import Dataset, ImageSet, TensorImages, channel_stats, conform
from leanconv.data.sampling import batches as index_batches

try:  # torchvision's decoders (faster); without them Pillow decodes everything
    from torchvision.io import ImageReadMode, decode_jpeg, decode_png
except ImportError:  # pragma: no cover - torchvision built without its image extension
    decode_jpeg = decode_png = None

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SPLIT_SEED = 0  # per class, combined with a CRC of the class name
ORDER_SEED = 0  # the stored (pseudo-random) order of the training list
STATS_SAMPLE = 2000  # training images a streamed set's mean and std are estimated on
HEADER_SAMPLE = 64  # files whose headers decide the default in_chans and image_size
DECODE_BATCH = 64  # images per DataLoader task while building the cache
LAYOUTS = ("ROOT/train/<class>/<image> with ROOT/val/<class>/<image>, or ROOT/<class>/<image> "
           "(split by val_split)")
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_PNG_MAGIC, _JPEG_MAGIC = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"
_SKIP_HINT = "pass skip_bad_images=True (--skip-bad-images) to leave it out"


class BadImageError(ValueError):
    """An image file that cannot be read or decoded (the message names it)."""


# ---------------------------------------------------------------------------------- scanning

@dataclass(frozen=True)
class FolderListing:
    """The image files of a folder: ``classes`` (sorted folder names), and per split the
    file paths relative to ``root`` with their labels (indices into ``classes``). ``train``
    is in a fixed pseudo-random order, ``test`` sorted by class, then path."""

    root: Path
    layout: str  # "train/val", "class folders" or "unlabeled"
    classes: tuple[str, ...]
    train: tuple[str, ...]
    train_labels: tuple[int, ...]
    test: tuple[str, ...]
    test_labels: tuple[int, ...]

    @property
    def files(self) -> tuple[str, ...]:
        return self.train + self.test


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _class_folders(folder: Path) -> list[str]:
    """Sorted names of the non-hidden sub-folders (symlinks followed)."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def _class_images(root: Path, folder: Path, what: str = "class folder") -> list[str]:
    """Sorted paths (relative to ``root``, '/'-separated) of the images under ``folder``,
    recursively, symlinks followed (each real folder once), hidden files and folders left out;
    ValueError naming the folder (as ``what``) when it holds none."""
    found, others, seen = [], [], set()
    skip = len(os.fspath(root).rstrip(os.sep)) + 1  # dirpath[skip:]: relative to root
    for dirpath, dirnames, filenames in os.walk(os.fspath(folder), followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = dirpath[skip:].replace(os.sep, "/")
        for name in filenames:
            if _is_image(name):
                found.append(f"{rel}/{name}" if rel else name)
            elif not name.startswith("."):
                others.append(name)
    if not found:
        seen_else = (f"found {len(others)} other file(s): {', '.join(sorted(others)[:3])}"
                     f"{', ...' if len(others) > 3 else ''}" if others else "it is empty")
        raise ValueError(f"{what} {str(folder)!r} has no images ({seen_else}); accepted "
                         f"extensions (any case): {' '.join(IMAGE_EXTENSIONS)}")
    return sorted(found)


def _classes_of(folder: Path, where: str) -> list[str]:
    classes = _class_folders(folder)
    if not classes:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if not e.name.startswith(".")]
        images = sum(_is_image(n) for n in names)
        found = (f"{len(names)} file(s), {images} of them images, and no sub-folders"
                 if names else "nothing")
        raise ValueError(f"found no class folders in {where} {str(folder)!r} ({found}); "
                         f"expected one sub-folder per class holding its images, e.g. "
                         f"{folder}/<class>/0001.jpg ({LAYOUTS})")
    return classes


def _split_class(name: str, files: list[str], val_split: float) -> tuple[list[str], list[str]]:
    """(train, test) of one class: a permutation of the sorted ``files`` seeded by the class
    name; round(val_split * n) of them (at least 1, at most n - 1) to the test split."""
    if len(files) < 2:
        raise ValueError(f"class {name!r} has {len(files)} image; splitting a folder of class "
                         f"folders by val_split needs at least 2 per class (one for each "
                         f"split); add images or use ROOT/train and ROOT/val")
    n_test = min(len(files) - 1, max(1, round(val_split * len(files))))
    seed = SPLIT_SEED * 1_000_003 + zlib.crc32(name.encode("utf-8"))
    perm = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed)).tolist()
    test = sorted(files[i] for i in perm[:n_test])
    train = sorted(files[i] for i in perm[n_test:])
    return train, test


def _spread_order(labels: Sequence[int], num_classes: int) -> list[int]:
    """A fixed pseudo-random order of ``labels``' indices in which every class is spread
    evenly (systematic sampling): class c's j-th image (in a seeded shuffle of the class) is
    placed at ``(j + u_c) / n_c``, ``u_c`` a seeded offset per class, so that any first n
    hold close to each class's share of n (give or take about one image)."""
    generator = torch.Generator().manual_seed(ORDER_SEED)
    offsets = torch.rand(num_classes, generator=generator, dtype=torch.float64)
    label_of = torch.tensor(labels, dtype=torch.int64)
    keys = torch.empty(len(labels), dtype=torch.float64)
    for c in range(num_classes):
        members = (label_of == c).nonzero().flatten()
        shuffled = members[torch.randperm(len(members), generator=generator)]
        keys[shuffled] = (torch.arange(len(members), dtype=torch.float64) + offsets[c]) / max(
            1, len(members))
    return torch.sort(keys, stable=True).indices.tolist()


def scan_image_folder(root: str | os.PathLike[str], val_split: float = 0.1, *,
                      labeled: bool = True) -> FolderListing:
    """The :class:`FolderListing` of ``root``, validated (ValueError saying what was found
    and what is expected).

    ``labeled=False``: every image under ``root`` (recursively, whatever its folder), no
    classes (``classes == ()``, every label 0), split as one class is (layout
    ``"unlabeled"``): images for what needs no labels (calibration, sensitivity,
    distillation).

    ``root/train`` and ``root/val`` both present: those are the splits, their sub-folders
    the classes (val's a subset of train's). Otherwise the sub-folders of ``root`` are the
    classes, each split on its own: a permutation (seeded by the class name, so reproducible
    and unaffected by other classes) of its sorted file names, ``round(val_split * n)`` (at
    least one, and at least one left for training) to the test split. Images are found by
    extension (:data:`IMAGE_EXTENSIONS`, any case), recursively; hidden files and folders and
    other files are ignored, symlinks followed.
    """
    path = Path(root)
    expected = f"laid out as {LAYOUTS}" if labeled else "with images in it or below it"
    if not path.exists():
        raise ValueError(f"image folder {str(path)!r} does not exist; expected a folder "
                         f"{expected}")
    if not path.is_dir():
        raise ValueError(f"image folder {str(path)!r} is a file, not a folder; expected a "
                         f"folder {expected}")
    if not labeled:
        files = _class_images(path, path, "image folder")
        if len(files) < 2:
            raise ValueError(f"image folder {str(path)!r} has {len(files)} image; images:DIR "
                             f"needs at least 2 (one for each split)")
        train_files, test_files = _split_class("(unlabeled)", files, val_split)
        train_files = [train_files[i] for i in _spread_order([0] * len(train_files), 1)]
        return FolderListing(path, "unlabeled", (), tuple(train_files), (0,) * len(train_files),
                             tuple(test_files), (0,) * len(test_files))
    train_dir, val_dir = path / "train", path / "val"
    if train_dir.is_dir() != val_dir.is_dir():
        have, lack = ("train", "val") if train_dir.is_dir() else ("val", "train")
        raise ValueError(f"image folder {str(path)!r} has {have}/ but no {lack}/; expected both "
                         f"{path}/train/<class>/... and {path}/val/<class>/..., or class "
                         f"folders directly in it (split by val_split)")
    train: list[tuple[str, int]] = []
    test: list[tuple[str, int]] = []
    if train_dir.is_dir():
        layout = "train/val"
        classes = _classes_of(train_dir, "train folder")
        val_classes = _classes_of(val_dir, "val folder")
        for name in val_classes:
            if name not in classes:
                raise ValueError(f"{val_dir} has class folder {name!r} that {train_dir} does "
                                 f"not have; train's classes: {', '.join(classes)}")
        for label, name in enumerate(classes):
            train += [(f, label) for f in _class_images(path, train_dir / name)]
            if name in val_classes:
                test += [(f, label) for f in _class_images(path, val_dir / name)]
    else:
        layout = "class folders"
        classes = _classes_of(path, "image folder")
        for label, name in enumerate(classes):
            part_train, part_test = _split_class(name, _class_images(path, path / name),
                                                 val_split)
            train += [(f, label) for f in part_train]
            test += [(f, label) for f in part_test]
    if len(classes) < 2:
        raise ValueError(f"image folder {str(path)!r} has only one class ({classes[0]!r}); "
                         f"classification needs at least 2 class folders")
    train = [train[i] for i in _spread_order([label for _, label in train], len(classes))]
    return FolderListing(path, layout, tuple(classes), tuple(f for f, _ in train),
                         tuple(label for _, label in train), tuple(f for f, _ in test),
                         tuple(label for _, label in test))


# ---------------------------------------------------------------------------------- decoding

def _clean(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return re.sub(r"^.*\.cpp:\d+,\s*", "", text)[:200]  # torchvision's "decode_x, file.cpp:N, "


def _decode_torchvision(data: bytes, in_chans: int, png: bool) -> torch.Tensor:
    if png and data.rfind(b"IEND") < 0:  # libpng returns the pixels of a file cut before it
        raise ValueError("truncated: the PNG ends before its IEND chunk")
    buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    mode = ImageReadMode.GRAY if in_chans == 1 else ImageReadMode.RGB
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29 prefers TorchCodec
        image = decode_png(buffer, mode=mode) if png else decode_jpeg(buffer, mode=mode)
    if image.dtype != torch.uint8:  # a 16-bit PNG
        image = ((image.to(torch.int32) + 128) // 257).clamp_(0, 255).to(torch.uint8)
    return image


def _decode_pillow(data: bytes, in_chans: int) -> torch.Tensor:
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()  # raises on a truncated file (unless ImageFile.LOAD_TRUNCATED_IMAGES)
        image = opened
        if image.mode.startswith("I;16"):
            wide = np.asarray(image).astype(np.uint32)
            image = Image.fromarray(((wide + 128) // 257).clip(0, 255).astype(np.uint8))
        image = image.convert("L" if in_chans == 1 else "RGB")
        array = np.array(image)
    tensor = torch.from_numpy(array)
    return tensor[None] if in_chans == 1 else tensor.permute(2, 0, 1).contiguous()


def decode_image_file(path: str | os.PathLike[str], in_chans: int, image_size: int
                      ) -> torch.Tensor:
    """One image file as uint8 (``in_chans``, ``image_size``, ``image_size``): converted to
    grayscale (1) or RGB (3: alpha dropped, palette expanded), resized on its shorter side to
    ``image_size`` (bilinear, antialiased), centre-cropped
    (:func:`leanconv.data.dataset.conform`). EXIF orientation is not applied (as torchvision's
    ``ImageFolder``). :class:`BadImageError` naming the file when it cannot be read, is not an
    image, or is truncated: a JPEG cut anywhere (even only its end marker), a PNG cut anywhere
    (a file that ends before its IEND chunk too, which libpng would decode), other formats as
    Pillow's ``load()`` sees them (unless ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is set)."""
    try:
        data = Path(path).read_bytes()
        if decode_jpeg is not None and data.startswith((_PNG_MAGIC, _JPEG_MAGIC)):
            image = _decode_torchvision(data, in_chans, data.startswith(_PNG_MAGIC))
        else:
            image = _decode_pillow(data, in_chans)
    except Exception as error:  # every decoder has its own error types
        raise BadImageError(f"image {str(path)!r} is unreadable or truncated "
                            f"({_clean(error)})") from None
    if tuple(image.shape[1:]) != (image_size, image_size):
        image = conform(image[None], None, image_size)[0]
    return image


def _header(path: str) -> tuple[bool, int] | None:
    """(grayscale?, shorter side) from a file's header (nothing decoded); None if unreadable."""
    try:
        with Image.open(path) as image:
            return image.mode in _GRAY_MODES, min(image.size)
    except Exception:  # reported when it is decoded
        return None


def default_settings(paths: Sequence[str], image_size: int | None, in_chans: int | None
                     ) -> tuple[int, int]:
    """``(image_size, in_chans)``, each given or, when None, decided by the headers of up to
    :data:`HEADER_SAMPLE` files spread evenly over ``paths``: ``in_chans`` 1 if every one is
    grayscale (palette images count as colour), else 3; ``image_size`` the most common
    shorter side (ties: the larger)."""
    if image_size is not None and in_chans is not None:
        return image_size, in_chans
    count = min(HEADER_SAMPLE, len(paths))
    picks = sorted({round(i * (len(paths) - 1) / max(1, count - 1)) for i in range(count)})
    headers = [h for h in (_header(paths[i]) for i in picks) if h is not None]
    if not headers:
        raise ValueError(f"none of the {len(picks)} sampled images could be read (first: "
                         f"{paths[picks[0]]!r}), so image_size and in_chans have no default; "
                         f"check the files, or pass image_size and in_chans")
    if in_chans is None:
        in_chans = 1 if all(gray for gray, _ in headers) else 3
    if image_size is None:
        counts = Counter(side for _, side in headers)
        image_size = max(counts, key=lambda side: (counts[side], side))
    return image_size, in_chans


# ------------------------------------------------------------------------ parallel decoding

class _DecodeFiles(TorchDataset):
    """Map-style dataset of files: item ``i`` is ``(i, image or None, error message)``."""

    def __init__(self, paths: Sequence[str], in_chans: int, image_size: int) -> None:
        self.paths, self.in_chans, self.image_size = paths, in_chans, image_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str]:
        try:
            return index, decode_image_file(self.paths[index], self.in_chans,
                                            self.image_size), ""
        except BadImageError as error:
            return index, None, str(error)


def _collate(items: list[tuple[int, torch.Tensor | None, str]]
             ) -> tuple[torch.Tensor, torch.Tensor | None, list[tuple[int, str]]]:
    """(indices, stacked images (in shared memory in a worker), failures) of a batch."""
    good = [(i, x) for i, x, _ in items if x is not None]
    bad = [(i, message) for i, x, message in items if x is None]
    indices = torch.tensor([i for i, _ in good], dtype=torch.int64)
    images = default_collate([x for _, x in good]) if good else None
    return indices, images, bad


class _OrderBatches:
    """A batch sampler whose order can be changed between epochs (so that one DataLoader,
    with persistent workers, serves every epoch)."""

    def __init__(self) -> None:
        self.order, self.batch_size, self.drop_last = torch.empty(0, dtype=torch.int64), 1, False

    def __iter__(self) -> Iterator[list[int]]:
        for idx in index_batches(self.order, self.batch_size, self.drop_last):
            yield idx.tolist()

    def __len__(self) -> int:
        n = len(self.order)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def _loader(dataset: _DecodeFiles, sampler: _OrderBatches, workers: int, persistent: bool
            ) -> DataLoader:
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, collate_fn=_collate,
                      persistent_workers=persistent and workers > 0)


def _decode_many(paths: Sequence[str], in_chans: int, image_size: int, workers: int,
                 skip_bad: bool, bar: object | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, str]]]:
    """All ``paths`` decoded: (uint8 (N, C, S, S) of the readable ones, their indices,
    failures); ValueError at the first bad file unless ``skip_bad``."""
    out = torch.empty(len(paths), in_chans, image_size, image_size, dtype=torch.uint8)
    ok = torch.zeros(len(paths), dtype=torch.bool)
    failures: list[tuple[int, str]] = []
    sampler = _OrderBatches()
    sampler.order, sampler.batch_size = torch.arange(len(paths)), DECODE_BATCH
    workers = min(workers, len(sampler))
    for indices, images, bad in _loader(_DecodeFiles(paths, in_chans, image_size), sampler,
                                        workers, persistent=False):
        if bad and not skip_bad:
            raise ValueError(f"{bad[0][1]}; remove or replace it, or {_SKIP_HINT}")
        failures += bad
        if images is not None:
            out[indices], ok[indices] = images, True
        if bar is not None:
            bar.update(len(indices) + len(bad))
    kept = ok.nonzero().flatten()
    return (out if len(kept) == len(paths) else out[kept]), kept, sorted(failures)


class FileImages(ImageSet):
    """Images decoded from their files as they are served (a set too large to cache):
    ``batches`` runs a ``DataLoader`` whose ``workers`` processes decode
    (:func:`decode_image_file`) the index batches of ``order``; the loader and its worker
    processes are kept between calls (``persistent_workers``). A bad file met on the way:
    ValueError naming it, or, with ``skip_bad_images``, left out (that batch is shorter; a
    batch of only bad files is not served) and recorded in ``bad``."""

    def __init__(self, paths: Sequence[str], labels: torch.Tensor, in_chans: int,
                 image_size: int, *, workers: int = 2, skip_bad_images: bool = False) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"FileImages: {len(paths)} paths but {len(labels)} labels")
        self.paths, self.labels = tuple(map(str, paths)), labels
        self.in_chans, self.image_size = in_chans, image_size
        self.workers, self.skip_bad_images = workers, skip_bad_images
        self.bad: dict[int, str] = {}  # index -> why, for the bad files met (skip_bad_images)
        self._sampler: _OrderBatches | None = None
        self._loader: DataLoader | None = None
        self._busy = False

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.in_chans, self.image_size, self.image_size

    def __getstate__(self) -> dict[str, object]:  # a live DataLoader does not pickle
        return {**self.__dict__, "_sampler": None, "_loader": None, "_busy": False}

    def batches(self, order: torch.Tensor, batch_size: int, drop_last: bool = False
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        check_int("FileImages.batches", "batch_size", batch_size)
        sampler = _OrderBatches()
        sampler.order, sampler.batch_size, sampler.drop_last = order, batch_size, drop_last
        if self._busy:  # another iteration is in progress: a loader of its own
            loader = _loader(self._dataset(), sampler, self.workers, persistent=False)
            yield from self._serve(loader)
            return
        if self._loader is None:
            self._sampler = _OrderBatches()
            self._loader = _loader(self._dataset(), self._sampler, self.workers,
                                   persistent=True)
        self._sampler.order, self._sampler.batch_size = order, batch_size
        self._sampler.drop_last = drop_last
        self._busy = True
        try:
            yield from self._serve(self._loader)
        finally:
            self._busy = False

    def _dataset(self) -> _DecodeFiles:
        return _DecodeFiles(self.paths, self.in_chans, self.image_size)

    def _serve(self, loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for indices, images, bad in loader:
            if bad:
                if not self.skip_bad_images:
                    raise ValueError(f"{bad[0][1]}; remove or replace it, or {_SKIP_HINT}")
                self.bad.update(bad)
            if images is not None:
                yield images, self.labels[indices]

    def subset(self, n: int) -> FileImages:
        return FileImages(self.paths[:n], self.labels[:n], self.in_chans, self.image_size,
                          workers=self.workers, skip_bad_images=self.skip_bad_images)


# ---------------------------------------------------------------------------------- loading

def _check_args(image_size: object, in_chans: object, val_split: object, cache_mb: object,
                workers: object) -> None:
    owner = "load_image_folder"
    if image_size is not None:
        check_int(owner, "image_size", image_size)
    if in_chans is not None and (type(in_chans) is not int or in_chans not in (1, 3)):
        raise ValueError(f"{owner}: in_chans={in_chans!r} is invalid; valid: 1 (grayscale), 3 "
                         f"(RGB) or None (from the files)")
    if (isinstance(val_split, bool) or not isinstance(val_split, int | float)
            or not 0 < val_split < 1):
        raise ValueError(f"{owner}: val_split={val_split!r} is invalid; expected a fraction "
                         f"0 < val_split < 1 (the share of each class held out for testing)")
    if (isinstance(cache_mb, bool) or not isinstance(cache_mb, int | float)
            or not cache_mb >= 0):
        raise ValueError(f"{owner}: cache_mb={cache_mb!r} is invalid; expected a number >= 0 "
                         f"(MiB of decoded images to cache; 0 streams from the files)")
    if workers is not None:
        check_int(owner, "workers", workers, minimum=0)


def _skipped_note(names: Sequence[str]) -> str:
    if not names:
        return ""
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return f"; skipped {len(names)} unreadable image(s): {shown}"


def load_image_folder(root: str | os.PathLike[str], *, image_size: int | None = None,
                      in_chans: int | None = None, val_split: float = 0.1,
                      cache_mb: float = 4096, skip_bad_images: bool = False,
                      workers: int | None = None, progress: bool = False,
                      labeled: bool = True) -> Dataset:
    """The image folder at ``root`` as a :class:`Dataset` (``spec="imagefolder:ROOT"``; with
    ``labeled=False``, ``"images:ROOT"``: every image under it, no classes, see
    :func:`scan_image_folder`).

    Layout and split: :func:`scan_image_folder` (``val_split`` applies to a folder of class
    folders; ``0 < val_split < 1``). Class names are the sorted folder names, labels their
    indices; the training list is in a fixed pseudo-random order with every class spread
    evenly over it, so that its first ``n`` images (``Dataset.subset``, calibration) sample
    every class in proportion; the test list is sorted by class.

    Each image is decoded (:func:`decode_image_file`) to ``in_chans`` channels and
    ``image_size`` x ``image_size``. Defaults (:func:`default_settings`, from the headers of
    up to 64 files spread over the list): ``in_chans`` 1 if every sampled image is grayscale,
    else 3; ``image_size`` the most common shorter side among them.

    When the decoded set (N x C x S x S bytes) fits ``cache_mb`` MiB, every image is decoded
    once, by ``workers`` processes (default ``min(4, os.cpu_count())``; 0: in this process),
    into one uint8 tensor per split, saved to a cache file (:mod:`leanconv.data.cache`:
    ``ROOT/.leanconv-cache/``, or the user's cache folder when ``ROOT`` is read-only) keyed by
    every file's path, size and mtime and the settings; later loads read it (no decoding),
    and a changed file or a damaged cache means a rebuild (said in ``note``; the stale file
    of the same settings is then removed, those of other settings kept). Mean and std:
    per channel on the training images. A larger set streams from the files
    (:class:`FileImages`), and its mean and std are estimated on a seeded sample of up to
    2,000 training images.

    A file that cannot be decoded (unreadable, not an image, truncated) raises ValueError
    naming it; with ``skip_bad_images`` it is left out and counted in ``Dataset.skipped``
    (when streaming: those met in the statistics sample; the others are left out as they
    are met). ``progress``: a tqdm bar while the cache is built.
    """
    _check_args(image_size, in_chans, val_split, cache_mb, workers)
    workers = min(4, os.cpu_count() or 1) if workers is None else workers
    listing = scan_image_folder(root, val_split, labeled=labeled)
    path = listing.root
    absolute = [os.path.join(path, rel) for rel in listing.files]
    size, chans = default_settings(absolute, image_size, in_chans)
    spec = f"{'imagefolder' if labeled else 'images'}:{root}"
    train_labels = torch.tensor(listing.train_labels, dtype=torch.int64)
    test_labels = torch.tensor(listing.test_labels, dtype=torch.int64)
    n_train = len(listing.train)
    decoded_mb = len(absolute) * chans * size * size / 2**20
    if decoded_mb > cache_mb:
        train = FileImages(absolute[:n_train], train_labels, chans, size, workers=workers,
                           skip_bad_images=skip_bad_images)
        test = FileImages(absolute[n_train:], test_labels, chans, size, workers=workers,
                          skip_bad_images=skip_bad_images)
        sample = torch.randperm(n_train, generator=torch.Generator().manual_seed(ORDER_SEED))
        sample = sample[:STATS_SAMPLE].sort().values
        images, _, failures = _decode_many([absolute[i] for i in sample.tolist()], chans, size,
                                           workers, skip_bad_images)
        if not len(images):
            raise ValueError(f"none of the {len(sample)} sampled training images of "
                             f"{str(path)!r} could be decoded (first: {failures[0][1]})")
        train.bad.update((int(sample[i]), why) for i, why in failures)
        mean, std = channel_stats(images)
        skipped = [listing.train[int(sample[i])] for i, _ in failures]
        note = (f"streaming from the files: {decoded_mb:.3g} MiB decoded > cache_mb="
                f"{cache_mb:g}; mean/std estimated on {len(images)} sampled training "
                f"images{_skipped_note(skipped)}")
        return Dataset(train, test, listing.classes, mean, std, spec, len(skipped), note)
    return _load_cached(listing, absolute, size, chans, val_split, skip_bad_images, workers,
                        progress, train_labels, test_labels, spec)


def _load_cached(listing: FolderListing, absolute: list[str], size: int, chans: int,
                 val_split: float, skip_bad: bool, workers: int, progress: bool,
                 train_labels: torch.Tensor, test_labels: torch.Tensor, spec: str) -> Dataset:
    root = listing.root
    settings = {"image_size": size, "in_chans": chans, "val_split": float(val_split),
                "skip_bad_images": bool(skip_bad), "layout": listing.layout}
    key = cache.cache_key(cache.file_stats(root, listing.files), settings)
    prefix = cache.settings_tag(size, chans, val_split, skip_bad)
    name = f"{prefix}-{key[:32]}.pt"
    expected = cache.Expected(key, listing.classes, (chans, size, size), train_labels,
                              test_labels)
    problem = ""
    found = cache.find_cache(root, name)
    if found is not None:
        start = time.perf_counter()
        try:
            payload = cache.read_cache(found, expected)
        except cache.CacheError as error:
            problem = f"cache file {found} was {error}" if str(error).startswith(
                "unreadable") else f"cache file {found} was unusable: {error}"
        else:
            train = TensorImages(payload["train_images"], payload["train_labels"])
            test = TensorImages(payload["test_images"], payload["test_labels"])
            skipped = payload["skipped"]
            note = (f"read from the cache {found} ({len(train)} + {len(test)} images, "
                    f"{(time.perf_counter() - start) * 1e3:.0f} ms){_skipped_note(skipped)}")
            return Dataset(train, test, listing.classes, tuple(payload["mean"]),
                           tuple(payload["std"]), spec, len(skipped), note)
    from tqdm import tqdm

    start = time.perf_counter()
    n_train = len(listing.train)
    with tqdm(total=len(absolute), desc="decoding images", unit="img",
              disable=not progress) as bar:
        parts = [_decode_many(files, chans, size, workers, skip_bad, bar)
                 for files in (absolute[:n_train], absolute[n_train:])]
    (train_x, train_kept, train_bad), (test_x, test_kept, test_bad) = parts
    skipped = sorted([listing.train[i] for i, _ in train_bad]
                     + [listing.test[i] for i, _ in test_bad])
    if not len(train_x) or not len(test_x):
        which = "training" if not len(train_x) else "test"
        raise ValueError(f"every {which} image of {str(root)!r} is unreadable "
                         f"({_skipped_note(skipped)[2:]})")
    train = TensorImages(train_x, train_labels[train_kept])
    test = TensorImages(test_x, test_labels[test_kept])
    mean, std = channel_stats(train.tensor)
    payload = {"format": cache.FORMAT_VERSION, "key": key, "classes": list(listing.classes),
               "train_images": train.tensor, "train_labels": train.labels,
               "train_kept": train_kept, "test_images": test.tensor, "test_labels": test.labels,
               "test_kept": test_kept, "skipped": skipped, "mean": list(mean),
               "std": list(std)}
    try:
        written = f"cached to {cache.write_cache(root, name, prefix, payload)}"
    except OSError as error:
        written = f"not cached (no writable cache folder: {error})"
    note = (f"decoded {len(train)} + {len(test)} images in {time.perf_counter() - start:.1f} s, "
            f"{written}{_skipped_note(skipped)}")
    if problem:
        note = f"{problem}; rebuilt: {note}"
    return Dataset(train, test, listing.classes, mean, std, spec, len(skipped), note)
