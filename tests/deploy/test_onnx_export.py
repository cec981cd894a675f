"""export_onnx(): every zoo model, with and without HetConv, matches PyTorch in onnxruntime."""

import onnx
import pytest
import torch
import torchvision
from torch import nn

from leanconv import convert
from leanconv.cli import main
from leanconv.deploy import ExportError, export_onnx
from leanconv.deploy.onnx_export import onnxruntime_session
from leanconv.models import create_model, list_models, model_entry
from leanconv.ops import create_conv
from tests.helpers import randomize_batchnorms


def _operators(path):
    return {node.op_type for node in onnx.load(str(path)).graph.node}


# HetConv in each architecture of the zoo (its width variants export the same graph)
ONE_PER_ARCHITECTURE = ("mixnet_s", "mobilenet_v1_025", "mobilenet_v2_100", "resnet18",
                        "resnet20_cifar", "resnet50", "shufflenet_v1_g3",
                        "shufflenet_v2_x0_5", "vgg16_cifar")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "conv"), [
    *((name, None) for name in list_models()),
    *((name, "hetconv:p=4") for name in ONE_PER_ARCHITECTURE)])
def test_every_zoo_model_exports_with_parity(name, conv, tmp_path):
    model = randomize_batchnorms(create_model(name, conv=conv))
    # ImageNet models at 64x64 keep the suite short; the graph is the same at 224
    size = 32 if model_entry(name).input_size == 32 else 64
    result = export_onnx(model, tmp_path / "m.onnx", (1, 3, size, size))
    assert result.max_abs_diff < 1e-4
    assert "BatchNormalization" not in result.operators
    assert set(result.operators) == _operators(result.path)


@pytest.mark.slow
def test_converted_torchvision_resnet50_exports_with_parity(tmp_path):
    model = randomize_batchnorms(convert(torchvision.models.resnet50(), "hetconv:p=4")[0])
    result = export_onnx(model, tmp_path / "r50.onnx", (1, 3, 64, 64))
    assert result.max_abs_diff < 1e-4


def test_deform_conv_exports_to_onnx_deformconv(tmp_path):
    model = randomize_batchnorms(nn.Sequential(create_conv("deform:mod=1", 8, 8, 3),
                                               nn.BatchNorm2d(8), nn.ReLU()))
    nn.init.normal_(model[0].offset.weight, std=0.2)  # real offsets, not the zero init
    try:
        onnxruntime_session(_deform_only_model())
    except Exception as error:
        pytest.skip(f"the installed onnxruntime does not implement DeformConv: {error}")
    result = export_onnx(model, tmp_path / "d.onnx", (2, 8, 9, 9))
    assert "DeformConv" in result.operators
    assert result.max_abs_diff < 1e-4


def _deform_only_model():
    from onnx import TensorProto, helper
    node = helper.make_node("DeformConv", ["X", "W", "O"], ["Y"])
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
              for n, s in (("X", [1, 1, 3, 3]), ("W", [1, 1, 1, 1]), ("O", [1, 2, 3, 3]))]
    output = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 1, 3, 3])
    graph = helper.make_graph([node], "deform", inputs, [output])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]).SerializeToString()


def test_deform_conv_needs_opset_19(tmp_path):
    with pytest.raises(ValueError, match=r"opset=18 is invalid .* DeformConv2d"):
        export_onnx(create_conv("deform", 4, 4, 3), tmp_path / "d.onnx", (1, 4, 6, 6), opset=18)


@pytest.mark.slow
def test_dynamic_batch_runs_any_batch(tmp_path):
    model = randomize_batchnorms(create_model("shufflenet_v2_x0_5"))
    result = export_onnx(model, tmp_path / "s.onnx", (2, 3, 64, 64), dynamic_batch=True)
    session = onnxruntime_session(result.path.read_bytes())
    x = torch.randn(5, 3, 64, 64)
    y = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(y), model.eval()(x), atol=1e-4)
    assert "Transpose" in result.operators  # the shuffles that feed a channel split stay


def test_failed_parity_writes_nothing(tmp_path):
    class Noisy(nn.Module):
        def forward(self, x):
            return x + torch.rand_like(x)

    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_onnx(Noisy(), tmp_path / "n.onnx", (1, 1, 4, 4))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"model": "x"}, r"model must be an nn.Module, got str"),
    ({"path": 3}, r"path=3 is invalid"),
    ({"input_shape": (1, 3)}, r"input_shape=\(1, 3\) is invalid; expected \(N, C, H, W\)"),
    ({"opset": 12}, r"opset=12 is invalid; expected an int >= 18"),
    ({"atol": 0}, r"atol=0 is invalid"),
])
def test_bad_arguments_name_the_argument(kwargs, match, tmp_path):
    args = {"model": nn.Conv2d(3, 3, 1), "path": tmp_path / "a.onnx",
            "input_shape": (1, 3, 8, 8), **kwargs}
    with pytest.raises(ValueError, match=match):
        export_onnx(args.pop("model"), args.pop("path"), args.pop("input_shape"), **args)


def test_cli_export_prints_the_difference(tmp_path, capsys):
    out = tmp_path / "r.onnx"
    assert main(["export", "resnet20_cifar", "--conv", "hetconv:p=4", "--onnx", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "max |diff| = " in printed
    assert out.is_file()
    assert main(["export", "resnet20_cifar", "--onnx", str(tmp_path), "--opset", "19"]) == 2
    assert "is a directory" in capsys.readouterr().err
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint")
    assert main(["export", "resnet20_cifar", "--checkpoint", str(garbage), "--onnx",
                 str(tmp_path / "g.onnx")]) == 2
    assert "is corrupt or not a torch file" in capsys.readouterr().err
    assert not (tmp_path / "g.onnx").exists()


def test_cli_export_converted_torchvision(tmp_path, capsys):
    out = tmp_path / "r.onnx"
    assert main(["export", "torchvision:resnet18", "--conv", "hetconv:p=4", "--onnx", str(out),
                 "--input", "3x64x64"]) == 0
    assert "max |diff|" in capsys.readouterr().out


def test_cli_export_a_trained_checkpoint(tmp_path, capsys):
    from leanconv.train.config import TrainConfig
    from leanconv.train.trainer import train

    train(TrainConfig(model="resnet20_cifar", conv="hetconv:p=2", epochs=1, data="synthetic",
                      subset=64, batch_size=32, out=str(tmp_path / "run")))
    checkpoint, out = tmp_path / "run" / "best.pt", tmp_path / "t.onnx"
    assert main(["export", "resnet20_cifar", "--checkpoint", str(checkpoint),
                 "--onnx", str(out)]) == 0
    assert "input 1x1x28x28" in capsys.readouterr().out
    assert main(["export", "resnet56_cifar", "--checkpoint", str(checkpoint),
                 "--onnx", str(out)]) == 2
    assert "holds 'resnet20_cifar', not 'resnet56_cifar'" in capsys.readouterr().err
