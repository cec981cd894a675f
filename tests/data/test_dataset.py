import pytest
import torch

from leanconv.data import TensorImages, load_dataset, parse_data_spec
from leanconv.data.dataset import channel_stats, conform
from leanconv.data.load import dataset_for_model
from leanconv.data.synthetic import synthetic_dataset
from leanconv.loading import ModelInfo


def test_channel_stats_match_torch():
    images = torch.randint(0, 256, (50, 3, 7, 9), dtype=torch.uint8)
    mean, std = channel_stats(images, chunk=7)
    x = images.double() / 255
    torch.testing.assert_close(torch.tensor(mean, dtype=torch.float64), x.mean((0, 2, 3)),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.tensor(std, dtype=torch.float64),
                               x.std((0, 2, 3), correction=0), atol=1e-6, rtol=0)


def test_conform_channels_and_size():
    gray = torch.randint(0, 256, (4, 1, 10, 20), dtype=torch.uint8)
    rgb = conform(gray, 3, None)
    assert rgb.shape == (4, 3, 10, 20) and torch.equal(rgb[:, 1:2], gray)
    assert torch.equal(conform(rgb, 1, None), gray)  # equal channels: luma is the channel
    small = conform(gray, None, 5)  # shorter side to 5, then the centre 5x5
    assert small.shape == (4, 1, 5, 5) and small.dtype == torch.uint8
    flat = torch.full((2, 1, 10, 20), 77, dtype=torch.uint8)
    assert torch.equal(conform(flat, None, 6), torch.full((2, 1, 6, 6), 77, dtype=torch.uint8))
    assert conform(gray, None, None) is gray
    with pytest.raises(ValueError, match="in_chans=2 is invalid"):
        conform(gray, 2, None)


def test_tensor_images_serve_batches_in_order():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 1, 2, 2)
    data = TensorImages(images.contiguous(), torch.arange(10))
    order = torch.tensor([3, 1, 4, 1, 5, 9, 2])
    got = list(data.batches(order, 3, drop_last=True))
    assert [y.tolist() for _, y in got] == [[3, 1, 4], [1, 5, 9]]
    assert torch.equal(got[1][0][:, 0, 0, 0], torch.tensor([1, 5, 9], dtype=torch.uint8))
    assert data.take(4)[:, 0, 0, 0].tolist() == [0, 1, 2, 3] and len(data.subset(6)) == 6
    with pytest.raises(ValueError, match="expected uint8"):
        TensorImages(images.float(), torch.arange(10))


def test_dataset_subset_normalisation_and_record():
    data = synthetic_dataset(64, 16, image_shape=(3, 8, 8), num_classes=4)
    assert data.num_classes == 4 and data.image_shape == (3, 8, 8)
    assert len(data.subset(10).train) == 10 and len(data.subset(10).test) == 16
    assert data.subset(None) is data
    other = data.normalized_with((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert other.mean == (0.5, 0.5, 0.5) and other.train is data.train
    with pytest.raises(ValueError, match="has 1 value"):
        data.normalized_with((0.5,), (0.2,))
    record = data.describe()
    assert record["classes"] == ["class0", "class1", "class2", "class3"]
    assert record["image_shape"] == [3, 8, 8] and len(record["mean"]) == 3


@pytest.mark.parametrize("spec", ["mnist", "imagefolder:", "imagefolder", "images:", "", None,
                                  3])
def test_bad_data_spec_names_the_valid_forms(spec):
    with pytest.raises(ValueError, match="fashion-mnist, imagefolder:DIR, images:DIR, synthetic"):
        parse_data_spec(spec)


def test_load_dataset_resizes_and_converts_any_source():
    data = load_dataset("synthetic", image_size=16, in_chans=3)
    assert data.image_shape == (3, 16, 16) and data.test.image_shape == (3, 16, 16)
    assert len(data.mean) == 3
    with pytest.raises(ValueError, match="in_chans=2 is invalid"):
        load_dataset("synthetic", in_chans=2)
    with pytest.raises(ValueError, match="image_size=0 is invalid"):
        load_dataset("synthetic", image_size=0)


def test_dataset_for_model_uses_the_models_input_and_statistics():
    info = ModelInfo("m.pt", "checkpoint", "resnet20_cifar", 3, (12, 12), 10,
                     train_config={"data": "synthetic"},
                     data={"mean": [0.1, 0.2, 0.3], "std": [0.5, 0.5, 0.5]})
    data = dataset_for_model(info)
    assert data.spec == "synthetic" and data.image_shape == (3, 12, 12)
    assert data.mean == (0.1, 0.2, 0.3)
    wrong = ModelInfo("m.pt", "checkpoint", "resnet20_cifar", 1, (28, 28), 5)
    with pytest.raises(ValueError, match="has 5 outputs; data='synthetic' has 10 classes"):
        dataset_for_model(wrong, "synthetic")
