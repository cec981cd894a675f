"""A file given as a model or a checkpoint that is not a leanconv file is named for what it
is (leanconv.io.sniff_file, describe_file, describe_payload), through load_model, the
training checkpoint reader and `leanconv eval`, without PyTorch's internals."""

import json
import pickle

import pytest
import torch
from torch import nn

from leanconv import load_model
from leanconv.checkpoint import load_checkpoint
from leanconv.cli import main
from leanconv.io import sniff_file

INTERNALS = ("weights_only", "Unpickling", "KeyError", "Traceback")


class Thing:
    """A custom class, pickled as a whole."""


def _onnx(path):
    """A one-node ONNX model (a Relu), written by the onnx package."""
    onnx = pytest.importorskip("onnx")
    helper = onnx.helper
    value = helper.make_tensor_value_info
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                              [value("x", onnx.TensorProto.FLOAT, [1, 4])],
                              [value("y", onnx.TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph), str(path))


def _openvino(path):
    path.write_text('<?xml version="1.0"?>\n<net name="model" version="11">\n<layers/>\n</net>\n')


def _openvino_bin(path):
    _openvino(path.with_suffix(".xml"))
    path.write_bytes(bytes(range(64)))


def _json(path):
    path.write_text(json.dumps({"layer1.0.conv1": "hetconv:p=4"}))


def _pickle(path):
    with open(path, "wb") as file:
        pickle.dump(Thing(), file)


def _module(path):
    torch.save(nn.Conv2d(1, 2, 3), path)


def _legacy_module(path):
    torch.save(nn.Conv2d(1, 2, 3), path, _use_new_zipfile_serialization=False)


def _state_dict(path):
    torch.save(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).state_dict(), path)


def _tensor(path):
    torch.save(torch.zeros(3), path)


def _empty(path):
    path.write_bytes(b"")


# (file name, how it is written, what sniff_file says, what the message must say)
CASES = [
    ("model.onnx", _onnx, "onnx", "is an ONNX model; leanconv loads training checkpoints and "
                                  "`leanconv convert --out` files (give the PyTorch model it "
                                  "was exported from)"),
    ("exported.pt", _onnx, "onnx", "is an ONNX model"),
    ("model.xml", _openvino, "openvino", "is an OpenVINO IR model"),
    ("model.bin", _openvino_bin, "openvino-weights", "is the weights of an OpenVINO IR model"),
    ("plan.pt", _json, "text", "is corrupt or not a torch file: it is plain text, starting "
                               "'{\"layer1.0.conv1\": \"hetconv:p=4\"}'"),
    ("thing.pt", _pickle, "pickle", f"is a Python pickle of a {__name__}.Thing, not a "
                                    f"PyTorch file"),
    ("module.pt", _module, "torch", "holds a pickled torch.nn.modules.conv.Conv2d (a whole "
                                    "Python object saved by torch.save)"),
    ("legacy.pt", _legacy_module, "torch", "holds a pickled torch.nn.modules.conv.Conv2d"),
    ("weights.pt", _state_dict, "torch", "found a state_dict of 7 tensors, a dict without a "
                                         "format tag (to use it, build its model and call "
                                         "model.load_state_dict(torch.load(file)))"),
    ("tensor.pt", _tensor, "torch", "found a tensor of shape (3,), not a model"),
    ("empty.pt", _empty, "empty", "is empty"),
]
IDS = [case[0] for case in CASES]


def _written(tmp_path, name, write):
    path = tmp_path / name
    write(path)
    return path


def _clean(message):
    assert "\n" not in message
    for internal in INTERNALS:
        assert internal not in message, message


@pytest.mark.parametrize(("name", "write", "kind", "says"), CASES, ids=IDS)
def test_load_model_names_the_kind_of_file(tmp_path, name, write, kind, says):
    path = _written(tmp_path, name, write)
    assert sniff_file(path) == kind
    with pytest.raises(ValueError) as caught:
        load_model(str(path))
    message = str(caught.value)
    assert message.startswith("load_model: ") and repr(str(path)) in message
    assert says in message
    _clean(message)


@pytest.mark.parametrize(("name", "write", "kind", "says"), CASES, ids=IDS)
def test_the_checkpoint_reader_names_the_kind_of_file(tmp_path, name, write, kind, says):
    path = _written(tmp_path, name, write)
    with pytest.raises(ValueError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(f"checkpoint {str(path)!r} ")
    assert says.split(";")[0] in message
    _clean(message)


@pytest.mark.parametrize(("name", "write", "kind", "says"), CASES, ids=IDS)
def test_leanconv_eval_names_the_kind_of_file(tmp_path, capsys, name, write, kind, says):
    path = _written(tmp_path, name, write)
    assert main(["eval", "--checkpoint", str(path)]) == 2
    captured = capsys.readouterr()
    if path.suffix in (".onnx", ".xml"):  # a runtime artifact: eval runs it (docs/deploy.md)
        says = {".onnx": "takes input of shape (1, 4); leanconv evaluates image models, "
                         "(N, C, H, W)",
                ".xml": "has no weights file"}[path.suffix]
        assert captured.err.startswith("leanconv eval: error: load_artifact: ")
    else:
        assert captured.err.startswith("leanconv eval: error: load_model: ")
    assert says in captured.err and captured.err.count("\n") == 1
    _clean(captured.err.rstrip("\n"))


def test_an_onnx_file_with_another_name_is_recognised_by_its_content(tmp_path):
    path = tmp_path / "model"
    _onnx(path)
    assert sniff_file(path) == "onnx"
    path.write_bytes(b"\x08" + bytes(range(1, 40)))  # a leading 0x08, but no ONNX graph
    assert sniff_file(path) != "onnx"


def test_a_pickle_of_plain_values_and_a_foreign_zip_are_not_torch_files(tmp_path):
    import zipfile

    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps({"format": "leanconv-checkpoint/1"}))
    with pytest.raises(ValueError, match=r"is a Python pickle, not a PyTorch file"):
        load_model(str(plain))
    archive = tmp_path / "archive.pt"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("readme.txt", "hello")
    assert sniff_file(archive) == "zip"
    with pytest.raises(ValueError, match=r"is corrupt or not a torch file \(a zip archive "
                                         r"without PyTorch's data\.pkl\)"):
        load_model(str(archive))
