import pytest
import torch
from torch import nn

from leanconv.adapt import adapt_model, apply_adaptation


def _net(in_chans=3, classes=10):
    return nn.Sequential(nn.Conv2d(in_chans, 8, 3, padding=1, bias=True), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 8), nn.ReLU(),
                         nn.Linear(8, classes))


def test_head_and_stem_change_and_the_record_replays():
    model = _net()
    record, log = adapt_model(model, classes=(10, 4), chans=(3, 1))
    assert record == {"head": "6", "num_classes": 4, "stem": "0", "in_chans": 1}
    assert "3 -> 1 input channels" in log[1] and "10 -> 4 classes" in log[0]
    assert model(torch.randn(2, 1, 9, 9)).shape == (2, 4)
    assert model[4].out_features == 8  # an inner Linear is not the head
    fresh = _net()
    apply_adaptation(fresh, record)
    fresh.load_state_dict(model.state_dict())  # the same shapes: weights load
    x = torch.randn(2, 1, 9, 9)
    torch.testing.assert_close(fresh(x), model(x))


def test_gray_stem_keeps_the_function_on_gray_images():
    model = _net()
    gray = torch.rand(2, 1, 9, 9)
    before = model[0](gray.expand(-1, 3, -1, -1))
    adapt_model(model, classes=(10, 10), chans=(3, 1))
    torch.testing.assert_close(model[0](gray), before)
    rgb_model = _net(in_chans=1)
    before = rgb_model[0](gray)
    adapt_model(rgb_model, classes=(10, 10), chans=(1, 3))
    torch.testing.assert_close(rgb_model[0](gray.expand(-1, 3, -1, -1)), before)


def test_nothing_to_change_is_an_empty_record():
    model = _net()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert adapt_model(model, classes=(10, 10), chans=(3, 3)) == ({}, [])
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_errors_name_what_was_found():
    with pytest.raises(ValueError, match=r"found no classifier head"):
        adapt_model(_net(), classes=(7, 4), chans=(3, 3))
    grouped = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.Flatten(), nn.LazyLinear(10))
    with pytest.raises(ValueError, match=r"only an ungrouped nn.Conv2d stem"):
        adapt_model(grouped, classes=(10, 10), chans=(4, 1))
    with pytest.raises(ValueError, match=r"classes=0 is invalid"):
        adapt_model(_net(), classes=(10, 0), chans=(3, 3))
    with pytest.raises(ValueError, match=r"has no layer 'fc'"):
        apply_adaptation(_net(), {"head": "fc", "num_classes": 3})
    with pytest.raises(ValueError, match=r"record=.* is invalid"):
        apply_adaptation(_net(), {"heads": "6"})
