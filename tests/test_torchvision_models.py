"""Real torchvision architectures through convert, fold and ONNX export (issue 27): each
converts with ``hetconv:p=4`` and ``dwsep`` or keeps every layer with a stated reason, and
what converts exports with parity. ``benchmarks/torchvision_sweep.py`` runs all of them;
these are the representative ones (a multi-branch net with auxiliary heads, dense concats,
a ConvNeXt, two depthwise networks)."""

import warnings

import pytest
import torch

import leanconv
from leanconv import load_model
from leanconv.cli import main

MODELS = {  # name: (smallest input the sweep found, layers hetconv:p=4 and dwsep replace)
    "googlenet": (32, {"hetconv:p=4": 19, "dwsep": 19}),
    "densenet121": (32, {"hetconv:p=4": 58, "dwsep": 58}),
    "convnext_tiny": (32, {"hetconv:p=4": 0, "dwsep": 3}),  # 2x2 downsampling: no HetConv
    "mobilenet_v3_small": (32, {"hetconv:p=4": 0, "dwsep": 0}),
    "efficientnet_b0": (32, {"hetconv:p=4": 0, "dwsep": 0}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_converts_or_says_why_and_exports_with_parity(name, tmp_path):
    size, replaced = MODELS[name]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # googlenet's note on its init
        model, _ = load_model(f"torchvision:{name}")
    model.eval()
    shape = (1, 3, size, size)
    for spec, expected in replaced.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            converted, report = leanconv.convert(model, spec, input_shape=shape)
        assert report.replaced == expected
        assert all(row.replaced or row.reason for row in report.rows)  # every kept one: why
        said = [str(w.message) for w in caught if "nothing replaced" in str(w.message)]
        if not expected:
            assert said == [f"convert: {report.nothing_replaced()}"]
            assert "grouped/depthwise conv" in said[0]
            continue
        assert not said
        result = leanconv.export_onnx(converted, tmp_path / f"{name}.onnx", shape)
        assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-4


def test_googlenet_converts_from_the_command_line(tmp_path, capsys):
    """Issue 27's defect 2: `leanconv convert torchvision:googlenet --to hetconv:p=4 --input
    3x64x64 --out g.pt` failed with "Profile.module: no module named 'aux1.conv.conv'"."""
    out = tmp_path / "g.pt"
    assert main(["convert", "torchvision:googlenet", "--to", "hetconv:p=4", "--input",
                 "3x64x64", "--out", str(out)]) == 0
    assert "19 of 59 layers replaced with 'hetconv:p=4'" in capsys.readouterr().out
    assert load_model(str(out))[1].plan


def test_convs_that_never_run_are_kept_with_that_reason():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model, _ = load_model("torchvision:googlenet")
    _, report = leanconv.convert(model.eval(), "group:g=2,shuffle=1", pointwise=True,
                                 input_shape=(1, 3, 64, 64))
    never = {row.name for row in report.rows if "never runs" in row.reason}
    assert never == {"aux1.conv.conv", "aux2.conv.conv"}
    assert report.kept()["never runs in the forward"] == 2
    assert report.replaced > 40  # the 1x1 convs that run, with pointwise=True


def test_a_conversion_that_replaces_nothing_fails_on_the_command_line(tmp_path, capsys):
    """Issue 27's defect 5: on depthwise networks `convert` exited 0 and wrote an unchanged
    model with only "0 of N layers replaced"."""
    out = tmp_path / "m.pt"
    assert main(["convert", "torchvision:mobilenet_v3_small", "--to", "dwsep", "--input",
                 "3x64x64", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error == ("leanconv convert: error: convert: nothing replaced with 'dwsep': all 52 "
                     "convs were kept (40 1x1 conv, 11 grouped/depthwise conv, 1 stem); 1x1 convs "
                     "can become grouped convs with a channel shuffle (leanconv convert "
                     "--pointwise --to group:g=2,shuffle=1, or convert(..., pointwise=True) in "
                     "Python), or leanconv shrink chooses per layer (--pointwise-candidates)\n")
    assert not out.exists()
    assert main(["convert", "torchvision:mobilenet_v3_small", "--to", "group:g=2,shuffle=1",
                 "--pointwise", "--input", "3x64x64", "--out", str(out)]) == 0
    assert "40 of 52 layers replaced" in capsys.readouterr().out and out.exists()


def test_num_classes_for_a_model_built_from_a_name(capsys):
    assert main(["cost", "torchvision:resnet18", "--num-classes", "10", "--input", "3x32x32",
                 "--format", "json"]) == 0
    assert '"params": 11181642' in capsys.readouterr().out  # 512 * 10 + 10 in the head
    assert main(["convert", "resnet20_cifar", "--num-classes", "3", "--in-chans", "3",
                 "--to", "hetconv:p=4", "--input", "3x32x32"]) == 0
    with pytest.raises(SystemExit) as exit_:
        main(["cost", "torchvision:resnet18", "--num-classes", "0"])
    assert exit_.value.code == 2
    assert "argument --num-classes: '0' is not an int >= 1" in capsys.readouterr().err


def test_other_commands_refuse_a_spec_that_replaces_nothing(capsys):
    """cost --conv (as export --conv, train --conv) used to profile the unchanged model under
    the spec's name."""
    assert main(["cost", "torchvision:mobilenet_v2", "--conv", "hetconv:p=4", "--input",
                 "3x32x32"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("leanconv cost: error: convert: nothing replaced with "
                            "'hetconv:p=4': all 52 convs were kept (34 1x1 conv, 17 "
                            "grouped/depthwise conv, 1 stem)")
