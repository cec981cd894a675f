import pytest

from leanconv import convert, load_model
from leanconv.convert import save_converted
from leanconv.train.checkpoint import save_checkpoint
from leanconv.train.config import TrainConfig
from leanconv.train.evaluate import evaluate_checkpoint


def test_evaluate_a_hand_made_checkpoint(tmp_path):
    config = TrainConfig(data="synthetic", conv="hetconv:p=2")
    built = config.model_reference()
    model, _ = load_model(built["model"], **built["kwargs"])
    save_checkpoint(tmp_path / "best.pt", {"config": config.to_dict(), "built": built,
                                           "model": model.state_dict()})
    result = evaluate_checkpoint(str(tmp_path / "best.pt"), batch_size=100)
    assert result["images"] == 512 and set(result["per_class"]) >= {"Bag", "Ankle boot"}
    assert 0 <= result["acc"] <= 1 and result["loss"] > 0


def test_evaluate_refuses_what_does_not_fit(tmp_path):
    model, info = load_model("resnet20_cifar")  # 3 channels: not Fashion-MNIST's
    converted, report = convert(model, "dwsep", input_shape=None)
    save_converted(str(tmp_path / "c.pt"), converted, info, report)
    with pytest.raises(ValueError, match="3-channel input with 10 classes; the test data has "
                                         "1-channel images"):
        evaluate_checkpoint(str(tmp_path / "c.pt"), data="synthetic")
    with pytest.raises(ValueError, match="is a model name, not a saved model"):
        evaluate_checkpoint("resnet20_cifar")
    with pytest.raises(ValueError, match="batch_size=0"):
        evaluate_checkpoint(str(tmp_path / "c.pt"), batch_size=0)
