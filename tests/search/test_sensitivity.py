import torch
from torch import nn

from leanconv.search.candidates import search_layers
from leanconv.search.sensitivity import kl_divergence, measure_sensitivity


def net_with_block_diagonal_layer():
    """Layer ``2`` is a 2-group conv in dense clothing: group:g=2 fits it exactly."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    with torch.no_grad():
        model[2].weight[:4, 4:] = 0
        model[2].weight[4:, :4] = 0
        model[6].weight.mul_(30)  # confident predictions: a changed feature shows in the KL
    return model.eval()


def test_an_exactly_representable_candidate_costs_nothing_and_others_do():
    model = net_with_block_diagonal_layer()
    layers = search_layers(model, (1, 3, 12, 12),
                           kxk=("keep", "group:g=2", "group:g=4", "dwsep"))
    images = torch.randn(96, 3, 12, 12)
    result, seconds = measure_sensitivity(model, layers, images[:64], images[64:])
    row = result["2"]
    assert row["keep"] == 0.0
    assert row["group:g=2"] < 1e-6
    assert row["group:g=4"] > 1e-4 and row["dwsep"] > 1e-4
    assert seconds > 0


def test_kl_divergence_is_zero_for_equal_and_positive_for_different_predictions():
    p = torch.log_softmax(torch.randn(8, 5), dim=1)
    q = torch.log_softmax(torch.randn(8, 5), dim=1)
    assert abs(kl_divergence(p, p)) < 1e-7
    assert kl_divergence(p, q) > 0
    manual = (p.exp() * (p - q)).sum(1).mean().item()
    assert abs(kl_divergence(p, q) - manual) < 1e-6


def test_progress_reports_each_layer():
    model = net_with_block_diagonal_layer()
    layers = search_layers(model, (1, 3, 12, 12), kxk=("keep", "dwsep"))
    lines = []
    measure_sensitivity(model, layers, torch.randn(16, 3, 12, 12), torch.randn(8, 3, 12, 12),
                        progress=lines.append)
    assert lines == [lines[0]] and lines[0].startswith("sensitivity 1/1 2: ")
