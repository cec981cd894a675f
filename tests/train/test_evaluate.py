import pytest

from leanconv import convert, load_model
from leanconv.converter import save_converted
from leanconv.train.evaluate import evaluate_checkpoint
from tests.helpers import hand_made_checkpoint


def test_evaluate_a_hand_made_checkpoint(tmp_path):
    hand_made_checkpoint(tmp_path / "best.pt", conv="hetconv:p=2")
    result = evaluate_checkpoint(str(tmp_path / "best.pt"), batch_size=100)
    assert result["images"] == 512 and set(result["per_class"]) == {f"class{i}"
                                                                     for i in range(10)}
    assert 0 <= result["acc"] <= 1 and result["loss"] > 0 and result["data"] == "synthetic"


def test_evaluate_refuses_what_does_not_fit(tmp_path):
    model, info = load_model("resnet20_cifar", num_classes=4)
    converted, report = convert(model, "dwsep")
    save_converted(str(tmp_path / "c.pt"), converted, info, report)
    with pytest.raises(ValueError, match="has 4 outputs; data='synthetic' has 10 classes"):
        evaluate_checkpoint(str(tmp_path / "c.pt"), data="synthetic")
    with pytest.raises(ValueError, match="is a model name, not a saved model"):
        evaluate_checkpoint("resnet20_cifar")
    with pytest.raises(ValueError, match="batch_size=0"):
        evaluate_checkpoint(str(tmp_path / "c.pt"), batch_size=0)
