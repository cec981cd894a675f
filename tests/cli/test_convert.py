import torch

from leanconv import HetConv2d, load_model
from leanconv.cli import main


def test_cli_convert_and_reload(capsys, tmp_path):
    out = tmp_path / "c.pt"
    assert main(["convert", "resnet20_cifar", "--to", "hetconv:p=4", "--exclude", "stages.2.*",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "12 of 19 layers replaced" in text and "excluded by glob" in text
    assert f"saved {out} (load it with leanconv.load_model)" in text
    model, info = load_model(str(out))
    assert sum(isinstance(m, HetConv2d) for m in model.modules()) == 12
    assert info.kind == "converted" and len(info.plan) == 12
    assert torch.load(out, weights_only=True)["format"] == "leanconv-converted/2"
    assert main(["convert", "torchvision:resnet18", "--to", "hetconv:p=4", "--input",
                 "3x64x64"]) == 0
    assert "16 of 20 layers replaced" in capsys.readouterr().out
    assert main(["convert", "torchvision:nonet", "--to", "hetconv"]) == 2
    assert "torchvision has no model 'nonet'" in capsys.readouterr().err


def test_cli_convert_a_converted_file_and_old_formats(capsys, tmp_path):
    het, dense = tmp_path / "het.pt", tmp_path / "dense.pt"
    assert main(["convert", "resnet20_cifar", "--to", "hetconv:p=4", "--out", str(het)]) == 0
    assert main(["convert", str(het), "--to", "standard", "--out", str(dense)]) == 0
    assert "18 of 18 layers replaced with 'standard'" in capsys.readouterr().out
    model, info = load_model(str(dense))
    assert not any(isinstance(m, HetConv2d) for m in model.modules())
    assert info.base == str(het) and set(info.plan.values()) == {"standard"}
    torch.save({"format": "leanconv-converted/1", "model": "resnet20_cifar"}, het)
    assert main(["convert", str(het), "--to", "dwsep"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("leanconv convert: error: ") and "re-run `leanconv convert" in err


def test_cli_convert_with_a_plan_round_trips(capsys, tmp_path):
    import json

    plan_file, out = tmp_path / "plan.json", tmp_path / "planned.pt"
    plan = {"stages.0.*": "dwsep", "stages.2.2.conv2.conv": "hetconv:p=2"}
    plan_file.write_text(json.dumps({"plan": plan, "predicted_ms": 1.0}))
    assert main(["convert", "resnet20_cifar", "--plan", str(plan_file), "--out", str(out)]) == 0
    assert "7 of 19 layers replaced by the plan (dwsep x6, hetconv:p=2 x1)" in \
        capsys.readouterr().out
    model, info = load_model(str(out))
    assert info.plan == {**{f"stages.0.{b}.conv{c}.conv": "dwsep" for b in range(3)
                            for c in (1, 2)}, "stages.2.2.conv2.conv": "hetconv:p=2"}
    assert isinstance(model.get_submodule("stages.2.2.conv2.conv"), HetConv2d)
    for bad, message in (([], "--include select layers for --to"),
                         (None, "is not JSON"), ({"a": 1}, "must hold a JSON object")):
        args = ["convert", "resnet20_cifar", "--plan", str(plan_file)]
        if bad == []:
            args += ["--include", "stages.*"]
        else:
            plan_file.write_text("{not json" if bad is None else json.dumps(bad))
        assert main(args) == 2
        assert message in capsys.readouterr().err
    assert main(["convert", "resnet20_cifar", "--plan", str(tmp_path / "none.json")]) == 2
    assert "cannot be read" in capsys.readouterr().err
