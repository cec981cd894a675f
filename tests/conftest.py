import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def receptive_mask(module: torch.nn.Module, x: torch.Tensor, out_channel: int, out_y: int,
                   out_x: int) -> torch.Tensor:
    """Bool (C_in, H, W): which input elements output (0, out_channel, out_y, out_x) depends on,
    probed with autograd (random weights make accidental zeros vanishingly unlikely)."""
    x = x.clone().requires_grad_(True)
    module(x)[0, out_channel, out_y, out_x].backward()
    return x.grad[0] != 0
