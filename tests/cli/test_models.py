from leanconv.cli import main


def test_models_table(capsys):
    assert main(["models", "--pattern", "resnet*"]) == 0
    out = capsys.readouterr().out
    assert "resnet50" in out and "25,557,032" in out and "4089.2" in out
    assert "resnet20_cifar" in out and "32x32" in out
    assert main(["models", "--pattern", "vgg16_cifar", "--conv", "hetconv:p=4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("zoo models with conv='hetconv:p=4'") and "114.5" in out


def test_models_bad_pattern_and_spec(capsys):
    assert main(["models", "--pattern", "nothing*"]) == 2
    assert "no model matches pattern='nothing*'" in capsys.readouterr().err
    assert main(["models", "--pattern", "resnet18", "--conv", "bogus"]) == 2
    assert "unknown kind 'bogus'" in capsys.readouterr().err
