import importlib
import subprocess
import sys

import pytest
import torch
from torch import nn

import leanconv
from leanconv import HetConv2d, ModelInfo, convert, load_model
from leanconv.converter import load_with_conv, save_converted
from leanconv.loading import CONVERTED_FORMAT, reference_kind
from leanconv.train.config import TrainConfig
from leanconv.train.network import build_network
from leanconv.train.trainer import load_data
from tests.helpers import hand_made_checkpoint


def _same_outputs(a, b, shape):
    a.eval()
    b.eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def _rebuilt(info, state_dict):
    """The network ``info`` describes, rebuilt from its record, with ``state_dict``."""
    model, again = load_model(info.model, **info.kwargs)
    model.load_state_dict(state_dict)
    return model, again


def test_zoo_model_and_its_info():
    model, info = load_model("resnet20_cifar", conv="hetconv:p=4", num_classes=5)
    assert (info.kind, info.source, info.model, info.conv) == ("zoo", "resnet20_cifar",
                                                               "resnet20_cifar", "hetconv:p=4")
    assert (info.in_chans, info.input_size, info.num_classes) == (3, (32, 32), 5)
    assert info.input_shape(8) == (8, 3, 32, 32) and info.plan == {} and info.base is None
    assert any(isinstance(m, HetConv2d) for m in model.modules())
    assert model(torch.randn(2, *info.input_shape()[1:])).shape == (2, 5)
    rebuilt, again = _rebuilt(info, model.state_dict())
    assert again == info
    _same_outputs(model, rebuilt, info.input_shape(2))
    _, small = load_model("resnet18", in_chans=1, small_input=True)
    assert (small.in_chans, small.input_size, small.num_classes) == (1, (224, 224), 1000)
    with pytest.raises(ValueError, match="input_shape: batch=0"):
        info.input_shape(0)


def test_torchvision_model():
    model, info = load_model("torchvision:resnet18", num_classes=7)
    assert (info.kind, info.model, info.in_chans, info.input_size, info.num_classes) == (
        "torchvision", "torchvision:resnet18", 3, (224, 224), 7)
    assert model.fc.out_features == 7
    rebuilt, _ = _rebuilt(info, model.state_dict())
    _same_outputs(model, rebuilt, (1, 3, 64, 64))


def test_timm_model():
    pytest.importorskip("timm", reason="timm is in the 'compare' extra (make test installs it)")
    model, info = load_model("timm:resnet18", in_chans=1, num_classes=4)
    assert (info.kind, info.in_chans, info.num_classes, info.input_size) == ("timm", 1, 4,
                                                                            (224, 224))
    rebuilt, _ = _rebuilt(info, model.state_dict())
    _same_outputs(model, rebuilt, (1, 1, 64, 64))


def _checkpoint(path, legacy=False, conv="hetconv:p=2"):
    return hand_made_checkpoint(path, legacy, model="resnet20_cifar", conv=conv)


@pytest.mark.parametrize("legacy", [False, True])
def test_training_checkpoint(tmp_path, legacy):
    path = tmp_path / "best.pt"
    trained = _checkpoint(path, legacy)
    model, info = load_model(str(path))
    assert (info.kind, info.source, info.model, info.conv) == ("checkpoint", str(path),
                                                               "resnet20_cifar", "hetconv:p=2")
    assert info.input_shape(4) == (4, 1, 28, 28) and info.num_classes == 10
    assert info.kwargs == {"num_classes": 10, "in_chans": 1, "conv": "hetconv:p=2"}
    assert info.train_config["data"] == "synthetic"
    _same_outputs(trained, model, info.input_shape(2))
    assert load_model(path)[1].source == str(path)  # a Path works too
    with pytest.raises(ValueError, match=r"num_classes=5 contradicts .* num_classes=10"):
        load_model(str(path), num_classes=5)
    with pytest.raises(ValueError, match=r"in_chans=3 contradicts .* in_chans=1"):
        load_model(str(path), in_chans=3)
    assert load_model(str(path), in_chans=1, num_classes=10)[1] == info
    with pytest.raises(ValueError, match=r"keyword arguments \['conv'\] apply only"):
        load_model(str(path), conv="dwsep")


@pytest.mark.parametrize("size,small", [(28, True), (64, True), (96, False)])
def test_small_input_stem_is_recorded(size, small):
    config = TrainConfig(model="resnet18", data="synthetic", image_size=size)
    kwargs = build_network(config, load_data(config))[1]["kwargs"]
    assert kwargs == {"num_classes": 10, "in_chans": 1, **({"small_input": True} if small
                                                           else {})}


def test_converted_zoo_model_round_trips(tmp_path):
    model, info = load_model("resnet20_cifar")
    converted, report = convert(model, "hetconv:p=4", exclude=["stages.2.*"])
    save_converted(str(tmp_path / "c.pt"), converted, info, report)
    payload = torch.load(tmp_path / "c.pt", weights_only=True)
    assert payload["format"] == CONVERTED_FORMAT and payload["base"] == "resnet20_cifar"
    assert payload["plan"] == {r.name: "hetconv:p=4" for r in report.rows if r.replaced}
    assert len(payload["plan"]) == report.replaced == 12
    loaded, loaded_info = load_model(str(tmp_path / "c.pt"))
    assert (loaded_info.kind, loaded_info.model, loaded_info.base, loaded_info.conv) == (
        "converted", "resnet20_cifar", "resnet20_cifar", "hetconv:p=4")
    assert loaded_info.input_shape() == (1, 3, 32, 32) and loaded_info.plan == payload["plan"]
    assert sum(isinstance(m, HetConv2d) for m in loaded.modules()) == 12
    _same_outputs(converted, loaded, (2, 3, 32, 32))
    # converted again (back to dense): the plan grows, the file still rebuilds exactly
    dense, report = convert(loaded, "standard")
    save_converted(str(tmp_path / "d.pt"), dense, loaded_info, report)
    again, again_info = load_model(str(tmp_path / "d.pt"))
    assert not any(isinstance(m, HetConv2d) for m in again.modules())
    assert set(again_info.plan.values()) == {"standard"} and again_info.base == str(
        tmp_path / "c.pt")
    _same_outputs(dense, again, (2, 3, 32, 32))


def test_converted_checkpoint_round_trips(tmp_path):
    _checkpoint(tmp_path / "best.pt", conv=None)
    model, info = load_model(str(tmp_path / "best.pt"))
    converted, report = convert(model, "hetconv:p=2", input_shape=info.input_shape())
    save_converted(str(tmp_path / "het.pt"), converted, info, report)
    (tmp_path / "best.pt").unlink()  # the converted file does not need the checkpoint
    loaded, loaded_info = load_model(str(tmp_path / "het.pt"))
    assert (loaded_info.kind, loaded_info.model, loaded_info.conv) == ("converted",
                                                                       "resnet20_cifar",
                                                                       "hetconv:p=2")
    assert loaded_info.base == str(tmp_path / "best.pt")
    assert loaded_info.input_shape() == (1, 1, 28, 28)
    assert loaded_info.train_config["data"] == "synthetic"
    _same_outputs(converted, loaded, (2, 1, 28, 28))


def test_converted_file_rebuilds_without_the_converter(tmp_path, monkeypatch):
    model, info = load_model("resnet20_cifar")
    converted, report = convert(model, "dwsep")
    save_converted(str(tmp_path / "c.pt"), converted, info, report)

    def refuse(*args, **kwargs):
        raise AssertionError("load_model called the converter")

    monkeypatch.setattr(sys.modules["leanconv.converter"], "convert", refuse)
    monkeypatch.setattr(sys.modules["leanconv.inherit"], "inherit_weights", refuse)
    loaded, _ = load_model(str(tmp_path / "c.pt"))
    _same_outputs(converted, loaded, (1, 3, 32, 32))


def test_save_converted_refuses_what_it_cannot_reload(tmp_path):
    model, _ = load_model("resnet20_cifar")
    converted, report = convert(model, "hetconv:p=4")
    odd = ModelInfo("x", "zoo", "resnet20_cifar", 3, (32, 32), 10, kwargs={"act": nn.ReLU})
    with pytest.raises(ValueError, match="only plain values"):
        save_converted(str(tmp_path / "c.pt"), converted, odd, report)
    with pytest.raises(ValueError, match="info must be the ModelInfo"):
        save_converted(str(tmp_path / "c.pt"), converted, "resnet20_cifar", report)
    assert not (tmp_path / "c.pt").exists()


def test_load_with_conv():
    model, info = load_with_conv("resnet20_cifar", "hetconv:p=4")
    assert info.kind == "zoo" and info.kwargs == {"conv": "hetconv:p=4"} and info.plan == {}
    model, info = load_with_conv("torchvision:resnet18", "hetconv:p=4")
    assert info.conv == "hetconv:p=4" and len(info.plan) == 16
    assert isinstance(model.get_submodule("layer1.0.conv1"), HetConv2d)
    _, plain = load_with_conv("torchvision:resnet18", "standard")
    assert plain.plan == {} and plain.conv is None
    with pytest.raises(ValueError, match="unknown kind 'hexconv'"):
        load_with_conv("torchvision:resnet18", "hexconv")


def test_reference_kinds(tmp_path):
    assert reference_kind("resnet18") == "zoo"
    assert reference_kind("torchvision:resnet18") == "torchvision"
    assert reference_kind("timm:mixnet_s") == "timm"
    assert reference_kind("runs/x/best.pt") == reference_kind(tmp_path) == "file"


def test_bad_references(tmp_path):
    with pytest.raises(ValueError, match=r"unknown model 'resnet2'; close matches: .*resnet20"):
        load_model("resnet2")
    with pytest.raises(ValueError, match="the prefix must be 'torchvision:' or 'timm:'"):
        load_model("keras:resnet18")
    with pytest.raises(ValueError, match="ref='' is invalid"):
        load_model("")
    with pytest.raises(ValueError, match=r"torchvision has no model 'resnet19'.*resnet18"):
        load_model("torchvision:resnet19")
    with pytest.raises(ValueError, match="in_chans=1 is invalid for 'torchvision:resnet18'"):
        load_model("torchvision:resnet18", in_chans=1)
    with pytest.raises(ValueError, match=r"does not take the keyword arguments \['conv'\]"):
        load_model("torchvision:resnet18", conv="hetconv:p=4")
    with pytest.raises(ValueError, match="num_classes=0 is invalid"):
        load_model("resnet18", num_classes=0)
    with pytest.raises(ValueError, match=r"file '.*missing\.pt' does not exist"):
        load_model(str(tmp_path / "missing.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="is corrupt or not a torch file"):
        load_model(str(tmp_path / "junk.pt"))
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match=r"is not a leanconv file.*a dict without a format tag"):
        load_model(str(tmp_path / "plain.pt"))
    torch.save({"format": "leanconv-converted/1", "model": "resnet20_cifar"},
               tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"older `leanconv convert` .*re-run `leanconv "
                                         r"convert"):
        load_model(str(tmp_path / "old.pt"))


def test_corrupt_leanconv_files(tmp_path):
    path = tmp_path / "c.pt"
    model, info = load_model("resnet20_cifar")
    converted, report = convert(model, "hetconv:p=4")
    save_converted(str(path), converted, info, report)
    payload = torch.load(path, weights_only=True)
    for change, message in [({"plan": {"nowhere.conv": "hetconv:p=4"}}, "plans layer "
                                                                          "'nowhere.conv'"),
                            ({"base": str(path)}, "refers to the file"),
                            ({"base_kwargs": None}, "'base_kwargs' is None"),
                            ({"state_dict": {}}, "do not fit the model")]:
        torch.save({**payload, **change}, tmp_path / "bad.pt")
        with pytest.raises(ValueError, match=message):
            load_model(str(tmp_path / "bad.pt"))


IMPORT_CHECK = """
import sys
import leanconv
heavy = ["torch", "torchvision", "leanconv.train.trainer", "leanconv.train.compare", "tqdm",
         "onnx", "onnxscript", "onnxruntime", "matplotlib", "timm"]
loaded = [m for m in heavy if m in sys.modules]
leanconv.create_conv  # the public names import on first use
leanconv.load_model  # (torch, and torch.hub imports tqdm itself when it is installed)
print(loaded, [m for m in heavy[2:] if m in sys.modules and m != "tqdm"])
"""


def test_import_leanconv_stays_light():
    run = subprocess.run([sys.executable, "-c", IMPORT_CHECK], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "[] []"


def test_every_public_name_resolves():
    assert set(leanconv.__all__) == {"__version__", *leanconv._EXPORTS}
    for name, module in leanconv._EXPORTS.items():  # the TYPE_CHECKING block's imports
        assert getattr(leanconv, name) is getattr(importlib.import_module(module), name)
    assert set(dir(leanconv)) >= set(leanconv.__all__)
    assert {"load_model", "ModelInfo"} <= set(leanconv.__all__)
