import pytest
from torch import nn

from leanconv.search.candidates import (
    KXK_CANDIDATES,
    POINTWISE_CANDIDATES,
    check_candidates,
    search_layers,
)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.wide = nn.Conv2d(8, 16, 3, 2, 1)
        self.depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pointwise = nn.Conv2d(16, 12, 1)
        self.odd = nn.Conv2d(12, 6, 3, padding=1)  # 6 = 2 x 3: p=4, 8 and g=4 do not divide
        self.unused = nn.Conv2d(6, 6, 3)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        x = self.odd(self.pointwise(self.depthwise(self.wide(self.stem(x)))))
        return self.head(x.mean((2, 3)))


def test_layers_skip_stem_grouped_and_unused_and_record_input_shapes():
    layers = search_layers(Net(), (2, 3, 16, 16))
    assert [layer.name for layer in layers] == ["wide", "pointwise", "odd"]
    assert [layer.input_shape for layer in layers] == [(2, 8, 16, 16), (2, 16, 8, 8),
                                                       (2, 12, 8, 8)]


def test_kxk_and_pointwise_layers_get_their_own_candidates():
    wide, pointwise, odd = search_layers(Net(), (1, 3, 16, 16))
    assert wide.specs == KXK_CANDIDATES
    assert pointwise.specs == POINTWISE_CANDIDATES
    assert odd.specs == ("keep", "hetconv:p=2", "dwsep", "group:g=2,shuffle=1")
    assert set(odd.refused) == {"hetconv:p=4", "hetconv:p=8", "group:g=4,shuffle=1"}


def test_a_layer_with_only_keep_is_no_choice():
    layers = search_layers(Net(), (1, 3, 16, 16), kxk=("keep", "hetconv:p=8"),
                           pointwise=("keep",))
    assert [layer.name for layer in layers] == ["wide"]


def test_check_candidates_puts_keep_first_and_drops_repeats():
    assert check_candidates("t", "c", ["dwsep", "keep", "dwsep"]) == ("keep", "dwsep")


@pytest.mark.parametrize("specs, message", [
    ([], "non-empty list"), ("dwsep", "non-empty list"), ([3], "expected a conv spec string"),
    (["standard"], "'standard'"), (["hetconv:q=4"], "hetconv"), (["nonsense"], "nonsense"),
])
def test_check_candidates_names_the_bad_entry(specs, message):
    with pytest.raises(ValueError, match="candidates") as error:
        check_candidates("shrink", "candidates", specs)
    assert message in str(error.value)


def test_an_input_the_model_cannot_take_is_a_clear_error():
    with pytest.raises(ValueError, match=r"fails on an input of shape \(1, 5, 16, 16\)"):
        search_layers(Net(), (1, 5, 16, 16))
