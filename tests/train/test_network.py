import pytest
import torch

from leanconv import HetConv2d, load_model
from leanconv.data.synthetic import synthetic_dataset
from leanconv.loading import rebuild
from leanconv.train import TrainConfig
from leanconv.train.network import build_network, load_teacher
from leanconv.train.optim import warmup_steps
from tests.helpers import hand_made_checkpoint

DATA = synthetic_dataset(32, 8, image_shape=(1, 28, 28), num_classes=4)


def _same(a, b, shape=(2, 1, 28, 28)):
    a.eval()
    b.eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_torchvision_model_is_fitted_to_the_data_and_rebuilds(tmp_path):
    model, built, log = build_network(TrainConfig(model="torchvision:resnet18"), DATA)
    assert model.fc.out_features == 4 and model.conv1.in_channels == 1
    assert built["kwargs"] == {"num_classes": 4}
    assert built["adapt"] == {"stem": "conv1", "in_chans": 1} and "conv1" in log[0]
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 4)


def test_file_model_is_fresh_and_init_keeps_the_weights(tmp_path):
    trained = hand_made_checkpoint(tmp_path / "best.pt")  # 10 classes, 1x28x28
    fresh, built, log = build_network(TrainConfig(model=str(tmp_path / "best.pt")), DATA)
    assert built["model"] == "resnet20_cifar" and built["adapt"] == {"head": "head.fc",
                                                                     "num_classes": 4}
    assert "10 -> 4 classes" in log[0]
    init, _, _ = build_network(TrainConfig(init=str(tmp_path / "best.pt")), DATA)
    kept = {k: v for k, v in trained.state_dict().items() if v.shape == init.state_dict()[k].shape}
    state = init.state_dict()
    assert all(torch.equal(state[k], v) for k, v in kept.items())  # all but the new head
    assert not all(torch.equal(fresh.state_dict()[k], v) for k, v in kept.items()
                   if v.is_floating_point() and v.dim() > 1)


def test_init_with_conv_converts_and_the_record_rebuilds(tmp_path):
    hand_made_checkpoint(tmp_path / "best.pt")
    data10 = synthetic_dataset(32, 8)
    model, built, log = build_network(TrainConfig(init=str(tmp_path / "best.pt"),
                                                  conv="hetconv:p=2"), data10)
    assert any(isinstance(m, HetConv2d) for m in model.modules())
    assert set(built["plan"].values()) == {"hetconv:p=2"} and built["conv"] == "hetconv:p=2"
    assert "converted" in log[-1]
    path = tmp_path / "tuned.pt"
    from leanconv.checkpoint import save_checkpoint

    save_checkpoint(path, {"config": TrainConfig(init=str(tmp_path / "best.pt")).to_dict(),
                           "built": built, "model": model.state_dict()})
    loaded, info = load_model(str(path))
    _same(model, loaded)
    assert info.plan == built["plan"] and info.conv == "hetconv:p=2"
    assert isinstance(rebuild(info), type(loaded))


def test_config_rules_for_init_and_teacher(tmp_path):
    hand_made_checkpoint(tmp_path / "best.pt")
    path = str(tmp_path / "best.pt")
    assert TrainConfig(init=path).model == path
    assert TrainConfig().model == "resnet20_cifar"
    with pytest.raises(ValueError, match=r"init=.* sets the network"):
        TrainConfig(init=path, model="resnet20_cifar")
    with pytest.raises(ValueError, match=r"init='resnet20_cifar' is invalid"):
        TrainConfig(init="resnet20_cifar")
    with pytest.raises(ValueError, match=r"not both"):
        TrainConfig(init=path, resume=True)
    with pytest.raises(ValueError, match=r"needs a teacher"):
        TrainConfig(distill_weight=0.5)
    with pytest.raises(ValueError, match=r"distill_weight=1.5 is invalid"):
        TrainConfig(teacher=path, distill_weight=1.5)
    assert TrainConfig(teacher=path).distill == 0.9 and TrainConfig().distill == 0.0
    with pytest.raises(ValueError, match=r"teacher=.* has 10 classes"):
        load_teacher(TrainConfig(teacher=path), DATA, "cpu")
    teacher, info, label_free = load_teacher(TrainConfig(teacher=path, channels_last=True),
                                             synthetic_dataset(8, 8), "cpu")
    assert label_free is None and info.num_classes == 10
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


@pytest.mark.parametrize("epochs,warmup,expected", [(1, 1.0, 10), (15, 1.0, 100),
                                                    (10, 0.0, 0), (2, 0.05, 5)])
def test_warmup_is_at_most_a_tenth_of_the_run(epochs, warmup, expected):
    assert warmup_steps(TrainConfig(epochs=epochs, warmup_epochs=warmup), 100) == expected
