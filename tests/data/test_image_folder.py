import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from leanconv.data import cache, image_folder, load_dataset, prepare
from leanconv.data.dataset import TensorImages, channel_stats, conform
from leanconv.data.image_folder import (
    IMAGE_EXTENSIONS,
    BadImageError,
    FileImages,
    decode_image_file,
    load_image_folder,
    scan_image_folder,
)

SIZES = [(40, 30), (32, 32), (48, 32)]  # (width, height): shorter sides 30, 32, 32


@pytest.fixture(autouse=True)
def _private_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def write_image(path, size=(32, 32), mode="RGB", seed=0):
    """A smooth random image (compresses like a photo) of ``size`` (w, h), saved by suffix."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize(size, Image.BILINEAR)
    if mode != "RGB":
        image = image.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=90) if path.suffix.lower() in (".jpg", ".jpeg") else image.save(path)
    return path


def make_classes(folder, counts, mode="RGB", seed=0):
    """``counts`` {class: n} images, PNG and JPEG alternating, mixed sizes."""
    paths = []
    for c, (name, n) in enumerate(counts.items()):
        for i in range(n):
            suffix = ".png" if i % 2 else ".jpg"
            paths.append(write_image(folder / name / f"img{i:02d}{suffix}", SIZES[i % 3], mode,
                                     seed=seed + 100 * c + i))
    return paths


def stack(images):
    """Every image of an ImageSet, in its order."""
    return torch.cat([x for x, _ in images.batches(torch.arange(len(images)), 5)])


def load(root, **kwargs):
    kwargs.setdefault("workers", 0)
    return load_image_folder(root, **kwargs)


# ------------------------------------------------------------------------------- layout

def test_flat_layout_classes_labels_and_a_reproducible_split(tmp_path):
    counts = {"dog": 10, "cat": 5, "eel": 2}
    make_classes(tmp_path, counts)
    listing = scan_image_folder(tmp_path, val_split=0.2)
    assert listing.layout == "class folders"
    assert listing.classes == ("cat", "dog", "eel")
    assert scan_image_folder(tmp_path, val_split=0.2) == listing
    files = {(f, label) for f, label in zip(listing.train + listing.test,
                                            listing.train_labels + listing.test_labels,
                                            strict=True)}
    assert {f for f, _ in files} == {p.relative_to(tmp_path).as_posix()
                                     for p in tmp_path.rglob("*.*")}
    assert all(f.split("/")[0] == listing.classes[label] for f, label in files)
    assert not set(listing.train) & set(listing.test)
    test_per_class = [listing.test_labels.count(c) for c in range(3)]
    assert test_per_class == [1, 2, 1]  # round(0.2 * n), at least one, at least one left
    assert [listing.train_labels.count(c) for c in range(3)] == [4, 8, 1]
    # stored in a pseudo-random order, so that the first n sample every class
    assert list(listing.train_labels) != sorted(listing.train_labels)
    shares = torch.tensor([4, 8, 1]) / 13
    for n in range(1, 14):  # every first n holds each class's share to within one image
        counts = torch.bincount(torch.tensor(listing.train_labels[:n]), minlength=3)
        assert ((counts - n * shares).abs() < 1).all(), (n, counts)
    # a class's split depends on its own files only
    make_classes(tmp_path, {"fox": 3})
    again = scan_image_folder(tmp_path, val_split=0.2)
    assert {f for f in again.test if not f.startswith("fox")} == set(listing.test)


def test_train_val_layout_and_a_val_folder_with_fewer_classes(tmp_path):
    make_classes(tmp_path / "train", {"a": 3, "b": 3, "c": 2})
    make_classes(tmp_path / "val", {"a": 1, "c": 2})
    (tmp_path / "README.txt").write_text("ignored")
    listing = scan_image_folder(tmp_path, val_split=0.5)
    assert listing.layout == "train/val" and listing.classes == ("a", "b", "c")
    assert len(listing.train) == 8 and all(f.startswith("train/") for f in listing.train)
    assert listing.test == ("val/a/img00.jpg", "val/c/img00.jpg", "val/c/img01.png")
    assert listing.test_labels == (0, 2, 2)
    data = load(tmp_path)
    assert data.classes == ("a", "b", "c") and data.spec == f"imagefolder:{tmp_path}"
    assert data.test.labels.tolist() == [0, 2, 2] and len(data.train) == 8


def test_extensions_hidden_files_nested_folders_and_symlinks(tmp_path):
    write_image(tmp_path / "a" / "x.JPG")
    write_image(tmp_path / "a" / "y.jpeg")
    write_image(tmp_path / "a" / "deep" / "z.png")
    write_image(tmp_path / "a" / ".hidden.png")
    write_image(tmp_path / "a" / ".thumbs" / "t.png")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    for ext in IMAGE_EXTENSIONS:
        write_image(tmp_path / "b" / f"i{ext}")
    outside = write_image(tmp_path.parent / f"{tmp_path.name}-elsewhere" / "w.png")
    os.symlink(outside, tmp_path / "a" / "link.png")
    os.symlink(tmp_path / "b", tmp_path / "c")  # a class folder that is a symlink
    os.symlink(tmp_path / "a", tmp_path / "a" / "deep" / "loop")  # a loop is walked once
    listing = scan_image_folder(tmp_path, val_split=0.3)
    assert listing.classes == ("a", "b", "c")
    a = sorted(f for f in listing.files if f.startswith("a/"))
    assert a == ["a/deep/z.png", "a/link.png", "a/x.JPG", "a/y.jpeg"]
    assert sum(f.startswith("b/") for f in listing.files) == len(IMAGE_EXTENSIONS)
    data = load(tmp_path, image_size=16)
    assert len(data.train) + len(data.test) == 4 + 2 * len(IMAGE_EXTENSIONS)


# ------------------------------------------------------------------------------ decoding

def test_sizes_channels_and_their_defaults(tmp_path):
    make_classes(tmp_path / "color", {"p": 3, "q": 3})
    data = load(tmp_path / "color")
    assert data.image_shape == (3, 32, 32)  # most common shorter side of 30, 32, 32
    assert data.train.tensor.dtype == torch.uint8
    assert (data.mean, data.std) == channel_stats(data.train.tensor)
    gray = tmp_path / "gray"
    make_classes(gray, {"p": 3, "q": 3}, mode="L")
    assert load(gray).image_shape == (1, 32, 32)
    # one colour image makes the default 3 channels; a tie in sizes goes to the larger
    write_image(gray / "q" / "color.png", (30, 30))
    assert load(gray, val_split=0.4).image_shape == (3, 32, 32)
    as_gray = load(tmp_path / "color", in_chans=1, image_size=20)
    assert as_gray.image_shape == (1, 20, 20) and len(as_gray.mean) == 1
    rgb_of_gray = load(gray, in_chans=3, image_size=24).train.tensor
    assert rgb_of_gray.shape[1:] == (3, 24, 24)
    assert torch.equal(rgb_of_gray[:, 0], rgb_of_gray[:, 2])


def test_resize_on_the_shorter_side_then_centre_crop(tmp_path):
    array = np.zeros((30, 60, 3), dtype=np.uint8)  # h 30, w 60: left, middle, right thirds
    array[:, 20:40] = 255
    Image.fromarray(array).save(tmp_path / "wide.png")
    image = decode_image_file(tmp_path / "wide.png", 3, 15)
    expected = conform(torch.from_numpy(array).permute(2, 0, 1)[None], None, 15)[0]
    assert image.shape == (3, 15, 15) and torch.equal(image, expected)
    assert image[:, :, 7].min() == 255 and image[:, :, 0].max() < 128  # the white middle kept
    same = decode_image_file(tmp_path / "wide.png", 3, 30)
    assert torch.equal(same, torch.from_numpy(array[:, 15:45]).permute(2, 0, 1))


@pytest.mark.parametrize("mode,ext", [("RGBA", ".png"), ("LA", ".png"), ("P", ".png"),
                                      ("1", ".png"), ("I;16", ".png"), ("I;16", ".tif"),
                                      ("P", ".gif"), ("RGBA", ".webp")])
def test_alpha_palette_and_16_bit_images_are_converted(tmp_path, mode, ext):
    rgb = np.random.default_rng(0).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    if mode == "I;16":
        image = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
        reference = rgb[..., 0]
    else:
        image = Image.fromarray(rgb).convert(mode)
        reference = np.asarray(image.convert("L"))
    path = tmp_path / f"x{ext}"
    image.save(path, **({"lossless": True} if ext == ".webp" else {}))
    color, gray = decode_image_file(path, 3, 12), decode_image_file(path, 1, 12)
    assert color.shape == (3, 12, 12) and gray.shape == (1, 12, 12)
    assert (gray[0].int() - torch.from_numpy(reference.copy()).int()).abs().max() <= 1


def test_pillow_formats_decode_like_png(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (10, 14, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "x.png")
    png = decode_image_file(tmp_path / "x.png", 3, 10)
    for ext in (".bmp", ".tif", ".webp", ".gif"):
        path = tmp_path / f"x{ext}"
        Image.fromarray(rgb).save(path, **({"lossless": True} if ext == ".webp" else {}))
        image = decode_image_file(path, 3, 10)
        assert image.shape == (3, 10, 10)
        if ext != ".gif":  # GIF is palette-quantised
            assert torch.equal(image, png), ext


# ---------------------------------------------------------------------------------- errors

def _root_file(tmp_path):
    (tmp_path / "f").write_text("x")
    return tmp_path / "f", "is a file, not a folder"


def _train_only(tmp_path):
    make_classes(tmp_path / "train", {"a": 1, "b": 1})
    return tmp_path, "has train/ but no val/; expected both"


def _val_only(tmp_path):
    make_classes(tmp_path / "val", {"a": 1, "b": 1})
    return tmp_path, "has val/ but no train/"


def _no_classes(tmp_path):
    write_image(tmp_path / "loose.png")
    return tmp_path, r"found no class folders in image folder .*1 of them images.*<class>"


def _empty_class(tmp_path):
    make_classes(tmp_path, {"a": 2})
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("x")
    return tmp_path, r"class folder '.*empty' has no images \(found 1 other file\(s\): " \
                     r"readme.md\); accepted extensions \(any case\): .png .jpg .jpeg"


def _one_class(tmp_path):
    make_classes(tmp_path, {"only": 3})
    return tmp_path, r"has only one class \('only'\); classification needs at least 2"


def _val_class_not_in_train(tmp_path):
    make_classes(tmp_path / "train", {"a": 1, "b": 1})
    make_classes(tmp_path / "val", {"a": 1, "zebra": 1})
    return tmp_path, r"has class folder 'zebra' that .*train does not have; train's " \
                     r"classes: a, b"


def _class_of_one(tmp_path):
    make_classes(tmp_path, {"a": 3, "b": 1})
    return tmp_path, r"class 'b' has 1 image; .*at least 2 per class"


@pytest.mark.parametrize("make", [_root_file, _train_only, _val_only, _no_classes,
                                  _empty_class, _one_class, _val_class_not_in_train,
                                  _class_of_one])
def test_layout_errors_say_what_was_found_and_expected(tmp_path, make):
    root, message = make(tmp_path)
    with pytest.raises(ValueError, match=message):
        load(root)


def test_missing_root_and_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"'.*nowhere' does not exist; expected a folder laid "
                                         r"out as ROOT/train/<class>"):
        load(tmp_path / "nowhere")
    make_classes(tmp_path, {"a": 2, "b": 2})
    for kwargs, message in [({"val_split": 0}, "val_split=0 is invalid; expected a fraction"),
                            ({"val_split": 1.0}, "val_split=1.0 is invalid"),
                            ({"in_chans": 2}, "in_chans=2 is invalid; valid: 1"),
                            ({"image_size": 0}, "image_size=0 is invalid"),
                            ({"cache_mb": -1}, "cache_mb=-1 is invalid"),
                            ({"workers": -1}, "workers=-1 is invalid")]:
        with pytest.raises(ValueError, match=message):
            load(tmp_path, **kwargs)


def _truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep(len(data))])


@pytest.mark.parametrize("name,damage", [
    ("bad.jpg", lambda p: p.write_bytes(b"this is no image")),
    ("empty.png", lambda p: p.write_bytes(b"")),
    ("half.jpg", lambda p: _truncate(p, lambda n: n // 2)),
    ("no_eoi.jpg", lambda p: _truncate(p, lambda n: n - 2)),
    ("half.png", lambda p: _truncate(p, lambda n: n // 2)),
    ("no_iend.png", lambda p: _truncate(p, lambda n: n - 12)),  # pixels whole, end cut
    ("half.bmp", lambda p: _truncate(p, lambda n: n // 2)),
    ("half.webp", lambda p: _truncate(p, lambda n: n // 2)),
])
def test_a_corrupt_or_truncated_file_is_named(tmp_path, name, damage):
    path = write_image(tmp_path / name, (48, 48))
    damage(path)
    with pytest.raises(BadImageError, match=rf"image '.*{re.escape(name)}' is unreadable or "
                                            r"truncated"):
        decode_image_file(path, 3, 32)


def test_bad_images_raise_or_are_skipped(tmp_path):
    make_classes(tmp_path, {"a": 4, "b": 4})
    _truncate(tmp_path / "a" / "img02.jpg", lambda n: n // 2)
    (tmp_path / "b" / "img01.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"image '.*(img02.jpg|img01.png)' is unreadable or "
                                         r"truncated .*skip_bad_images=True"):
        load(tmp_path)
    data = load(tmp_path, skip_bad_images=True)
    assert data.skipped == 2 and len(data.train) + len(data.test) == 6
    assert "skipped 2 unreadable image(s): a/img02.jpg, b/img01.png" in data.note
    cached = load(tmp_path, skip_bad_images=True)  # the cache remembers what it skipped
    assert "read from the cache" in cached.note and cached.skipped == 2
    assert torch.equal(cached.train.tensor, data.train.tensor)
    assert torch.equal(cached.train.labels, data.train.labels)


# ----------------------------------------------------------------------------------- cache

def _no_decoding(monkeypatch):
    def refuse(*args):
        raise AssertionError("decoded although the cache is valid")
    monkeypatch.setattr(image_folder, "decode_image_file", refuse)


def test_cache_is_written_then_read_without_decoding(tmp_path, monkeypatch):
    make_classes(tmp_path, {"a": 4, "b": 3})
    first = load(tmp_path)
    files = list((tmp_path / ".leanconv-cache").glob("*.pt"))
    assert len(files) == 1 and files[0].name.startswith("32px-3ch-val0.1-strict-")
    assert isinstance(first.train, TensorImages) and "cached to" in first.note
    _no_decoding(monkeypatch)
    second = load(tmp_path)
    assert second.note.startswith(f"read from the cache {files[0]}")
    for split in ("train", "test"):
        assert torch.equal(getattr(second, split).tensor, getattr(first, split).tensor)
        assert torch.equal(getattr(second, split).labels, getattr(first, split).labels)
    assert (second.mean, second.std, second.classes) == (first.mean, first.std, first.classes)
    # other settings are another cache file; both kept
    monkeypatch.undo()
    load(tmp_path, image_size=16)
    assert len(list((tmp_path / ".leanconv-cache").glob("*.pt"))) == 2


def test_changed_added_or_removed_files_rebuild_the_cache(tmp_path, monkeypatch):
    make_classes(tmp_path, {"a": 4, "b": 3})
    before = load(tmp_path, image_size=16)
    target = tmp_path / "a" / "img01.png"
    write_image(target, (32, 32), seed=999)  # other pixels, same name
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    changed = load(tmp_path, image_size=16)
    assert changed.note.startswith("decoded")
    assert not torch.equal(changed.train.tensor, before.train.tensor) or not torch.equal(
        changed.test.tensor, before.test.tensor)
    cache_files = list((tmp_path / ".leanconv-cache").glob("*.pt"))
    assert len(cache_files) == 1  # the stale file of the same settings is removed
    write_image(tmp_path / "b" / "new.png")
    assert len(load(tmp_path, image_size=16).train) == 6
    (tmp_path / "a" / "img00.jpg").unlink()
    assert load(tmp_path, image_size=16).note.startswith("decoded")
    _no_decoding(monkeypatch)
    assert load(tmp_path, image_size=16).note.startswith("read from the cache")


def test_a_truncated_or_disagreeing_cache_is_detected_and_rebuilt(tmp_path):
    make_classes(tmp_path, {"a": 3, "b": 3})
    good = load(tmp_path)
    path = next((tmp_path / ".leanconv-cache").glob("*.pt"))
    _truncate(path, lambda n: n - 100)
    rebuilt = load(tmp_path)
    assert re.match(rf"cache file {re.escape(str(path))} was unreadable .*; rebuilt: decoded",
                    rebuilt.note)
    assert torch.equal(rebuilt.train.tensor, good.train.tensor)
    assert load(tmp_path).note.startswith("read from the cache")
    payload = torch.load(path, weights_only=True)
    for change, message in [({"key": "0" * 64}, "its stored key differs"),
                            ({"train_labels": payload["train_labels"].flip(0)},
                             "train labels disagree"),
                            ({"test_images": payload["test_images"][:, :1]},
                             r"test images are torch.uint8 \(2, 1, 32, 32\)"),
                            ({"mean": [0.5]}, r"mean \[0.5\] is not 3 float"),
                            ({"skipped": ["x.png"]}, "holds 6 images and 1 skipped")]:
        torch.save({**payload, **change}, path)
        note = load(tmp_path).note
        assert re.match(rf"cache file .* was unusable: {message}.*; rebuilt", note), note
    path.write_bytes(b"")
    assert "was unreadable" in load(tmp_path).note


def test_cache_falls_back_to_the_user_cache_folder(tmp_path, monkeypatch):
    root = tmp_path / "data"
    make_classes(root, {"a": 2, "b": 2})
    (root / ".leanconv-cache").write_text("a file where the cache folder would go")
    first = load(root)
    home = tmp_path / "xdg-cache" / "leanconv" / "imagefolder"
    files = list(home.glob("*/*.pt"))
    assert len(files) == 1 and f"cached to {files[0]}" in first.note
    _no_decoding(monkeypatch)
    assert load(root).note.startswith(f"read from the cache {files[0]}")


def test_progress_bar_while_building_the_cache(tmp_path, capsys):
    make_classes(tmp_path, {"a": 2, "b": 2})
    load(tmp_path, progress=True)
    assert "decoding images" in capsys.readouterr().err
    load(tmp_path, progress=True, image_size=8, cache_mb=0)  # streaming: no bar
    assert "decoding images" not in capsys.readouterr().err


# ------------------------------------------------------------------------------- streaming

def test_streaming_serves_the_cached_images_in_the_requested_order(tmp_path):
    make_classes(tmp_path, {"a": 5, "b": 4, "c": 3})
    cached = load(tmp_path, image_size=24)
    streamed = load(tmp_path, image_size=24, cache_mb=1e-6)
    assert isinstance(streamed.train, FileImages) and streamed.image_shape == (3, 24, 24)
    assert streamed.note.startswith("streaming from the files") and "sampled" in streamed.note
    assert streamed.mean == cached.mean and streamed.std == cached.std  # sample = the set here
    order = torch.randperm(len(cached.train), generator=torch.Generator().manual_seed(3))
    got = list(streamed.train.batches(order, 4, drop_last=True))
    assert [len(x) for x, _ in got] == [4] * (len(order) // 4)
    images, labels = torch.cat([x for x, _ in got]), torch.cat([y for _, y in got])
    kept = order[:len(images)]
    assert torch.equal(images, cached.train.tensor[kept])
    assert torch.equal(labels, cached.train.labels[kept])
    assert torch.equal(stack(streamed.test), cached.test.tensor)
    assert torch.equal(stack(streamed.subset(5).train), cached.train.tensor[:5])
    assert torch.equal(stack(load_dataset(f"imagefolder:{tmp_path}", image_size=24,
                                          cache_mb=0, workers=0).train), cached.train.tensor)


def test_streaming_with_worker_processes_across_epochs(tmp_path):
    make_classes(tmp_path, {"a": 6, "b": 6})
    cached = load(tmp_path, image_size=16)
    streamed = load(tmp_path, image_size=16, cache_mb=0, workers=2)
    train = streamed.train
    for epoch in range(3):  # one loader, persistent workers, a new order each epoch
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(epoch))
        got = torch.cat([x for x, _ in train.batches(order, 3)])
        assert torch.equal(got, cached.train.tensor[order])
        assert train._loader is not None and train._loader.persistent_workers
    batches = train.batches(torch.arange(len(train)), 2)
    next(batches)  # an epoch cut short, then a whole one, then two at once
    batches.close()
    assert torch.equal(stack(train), cached.train.tensor)
    outer = train.batches(torch.arange(4), 2)
    first = next(outer)[0]
    assert torch.equal(stack(train.subset(3)), cached.train.tensor[:3])
    assert torch.equal(torch.cat([first, *[x for x, _ in outer]]), cached.train.tensor[:4])
    inner_order = torch.arange(len(train)).flip(0)
    outer = train.batches(torch.arange(4), 2)
    next(outer)
    assert torch.equal(torch.cat([x for x, _ in train.batches(inner_order, 5)]),
                       cached.train.tensor[inner_order])
    # the cache is built by worker processes too
    built = load(tmp_path, image_size=12, workers=2)
    assert torch.equal(built.train.tensor, load(tmp_path, image_size=12, workers=0).train.tensor)


def test_a_bad_file_met_while_streaming(tmp_path):
    make_classes(tmp_path / "train", {"a": 3, "b": 3})
    make_classes(tmp_path / "val", {"a": 2, "b": 2})
    (tmp_path / "val" / "b" / "img00.jpg").write_bytes(b"broken")  # not in the stats sample
    data = load(tmp_path, image_size=16, cache_mb=0)
    assert data.skipped == 0
    with pytest.raises(ValueError, match=r"image '.*val/b/img00.jpg' is unreadable"):
        stack(data.test)
    data = load(tmp_path, image_size=16, cache_mb=0, skip_bad_images=True)
    sizes = [len(x) for x, _ in data.test.batches(torch.arange(4), 2)]
    assert sizes == [2, 1] and list(data.test.bad) == [2]
    (tmp_path / "train" / "a" / "img01.png").write_bytes(b"broken")  # in the sample
    with pytest.raises(ValueError, match=r"img01.png' is unreadable"):
        load(tmp_path, image_size=16, cache_mb=0)
    data = load(tmp_path, image_size=16, cache_mb=0, skip_bad_images=True)
    assert data.skipped == 1 and "train/a/img01.png" in data.note


# ---------------------------------------------------------------------------------- end to end

def test_load_dataset_image_folder_end_to_end(tmp_path):
    make_classes(tmp_path / "train", {"cat": 4, "dog": 4})
    make_classes(tmp_path / "val", {"cat": 2, "dog": 2})
    data = load_dataset(f"imagefolder:{tmp_path}", image_size=20, in_chans=1, workers=0)
    assert data.spec == f"imagefolder:{tmp_path}" and data.classes == ("cat", "dog")
    assert data.image_shape == (1, 20, 20) and data.num_classes == 2
    assert data.describe()["image_shape"] == [1, 20, 20]
    images, labels = next(data.train.batches(torch.arange(len(data.train)), 4))
    x = prepare(images, "cpu", augment=True, mean=data.mean, std=data.std)
    assert x.shape == (4, 1, 20, 20) and x.dtype == torch.float32
    assert labels.dtype == torch.int64 and len(data.subset(3).train) == 3
    assert cache.find_cache(tmp_path, "nothing.pt") is None
