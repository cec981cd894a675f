import pytest
import torch
from torchvision.models import mobilenetv2, resnet, shufflenetv2

from leanconv.blocks import (
    BasicBlock,
    Bottleneck,
    ConvNormAct,
    InceptionBlock,
    InvertedResidual,
    ShuffleUnitV1,
    ShuffleUnitV2,
)
from leanconv.ops import HetConv2d, MixConv2d, StackedConv2d
from tests.helpers import count_params

SPATIAL = ["standard", "hetconv:p=4", "compconv:c0=16", "stacked", "dwsep"]


def test_parameter_counts_match_torchvision_blocks():
    down = torch.nn.Sequential(torch.nn.Conv2d(64, 256, 1, bias=False),
                               torch.nn.BatchNorm2d(256))
    assert count_params(Bottleneck(64, 256)) == count_params(resnet.Bottleneck(64, 64,
                                                                               downsample=down))
    assert count_params(BasicBlock(64, 64)) == count_params(resnet.BasicBlock(64, 64))
    assert count_params(InvertedResidual(32, 64, 2, expand_ratio=6)) == count_params(
        mobilenetv2.InvertedResidual(32, 64, 2, 6))
    assert count_params(InvertedResidual(16, 16, 1, expand_ratio=1)) == count_params(
        mobilenetv2.InvertedResidual(16, 16, 1, 1))
    for cin, cout, stride in [(24, 116, 2), (116, 116, 1)]:
        assert count_params(ShuffleUnitV2(cin, cout, stride)) == count_params(
            shufflenetv2.InvertedResidual(cin, cout, stride))
    # GoogLeNet inception (3a); torchvision's own uses 3x3 in its "5x5" branch, so count here:
    # conv weights + BN (2 per channel) per branch
    expected = (192 * 64 + 2 * 64) + (192 * 96 + 2 * 96 + 96 * 128 * 9 + 2 * 128) + (
        192 * 16 + 2 * 16 + 16 * 32 * 25 + 2 * 32) + (192 * 32 + 2 * 32)
    assert count_params(InceptionBlock(192, 64, 96, 128, 16, 32, 32)) == expected


@pytest.mark.parametrize("conv", SPATIAL)
@pytest.mark.parametrize("stride", [1, 2])
def test_bottleneck_and_basic_block_take_any_spatial_conv(conv, stride):
    for block in (Bottleneck(32, 64, stride, conv=conv), BasicBlock(32, 64, stride, conv=conv)):
        x = torch.randn(2, 32, 9, 9)
        y = block(x)
        assert y.shape == (2, 64, -(-9 // stride), -(-9 // stride))
        y.mean().backward()
    assert isinstance(Bottleneck(32, 64, conv="hetconv:p=4").conv2.conv, HetConv2d)


def test_residual_identity_shortcut():
    block = Bottleneck(64, 64).eval()
    for m in block.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.zeros_(m.weight)  # residual branch outputs zero
    x = torch.rand(1, 64, 5, 5)
    torch.testing.assert_close(block(x), x)


def test_inception_concatenates_branches_and_factorises_5x5():
    block = InceptionBlock(32, 8, 8, 16, 4, 8, 8, conv="stacked")
    assert block(torch.randn(1, 32, 7, 7)).shape == (1, 40, 7, 7)
    assert isinstance(block.branch5[1].conv, StackedConv2d)


@pytest.mark.parametrize("dw_conv", ["depthwise", "mixconv:k=3.5.7", "mixconv:k=3.5,split=exp"])
def test_inverted_residual(dw_conv):
    block = InvertedResidual(24, 24, 1, expand_ratio=6, dw_conv=dw_conv, se_ratio=0.25,
                             expand_groups=2, project_groups=2)
    x = torch.randn(2, 24, 8, 8)
    assert block.use_residual and block(x).shape == x.shape
    assert block.se.reduce.out_channels == 6
    if dw_conv.startswith("mixconv"):
        assert isinstance(block.dw.conv, MixConv2d)
    assert InvertedResidual(24, 32, 2, expand_ratio=6)(x).shape == (2, 32, 4, 4)


@pytest.mark.parametrize("groups,out", [(1, 144), (2, 200), (3, 240), (4, 272), (8, 384)])
def test_shuffle_unit_v1(groups, out):  # stage-2 widths of ShuffleNet v1 (1.0x)
    down = ShuffleUnitV1(24, out, 2, groups=groups, first_group_conv=False)
    x = down(torch.randn(2, 24, 16, 16))
    assert x.shape == (2, out, 8, 8)
    assert ShuffleUnitV1(out, out, 1, groups=groups)(x).shape == x.shape


def test_shuffle_unit_v2_keeps_half_and_shuffles():
    unit = ShuffleUnitV2(32, 32, 1).eval()
    x = torch.randn(1, 32, 6, 6)
    y = unit(x)
    # after the 2-group shuffle the untouched half sits on the even channels
    torch.testing.assert_close(y[:, 0::2], x[:, :16])
    assert ShuffleUnitV2(32, 64, 2)(x).shape == (1, 64, 3, 3)


@pytest.mark.parametrize("build,message", [
    (lambda: ShuffleUnitV2(32, 64, 1), "must equal out_channels=64 at stride 1"),
    (lambda: ShuffleUnitV2(32, 33, 2), "must be even"),
    (lambda: ShuffleUnitV1(24, 24, 2, groups=3), "must exceed in_channels=24 at stride 2"),
    (lambda: ShuffleUnitV1(24, 240, 3, groups=3), "stride=3"),
    (lambda: InvertedResidual(8, 8, expand_ratio=0.5), "expand_ratio=0.5"),
    (lambda: Bottleneck(8, 0), "out_channels=0"),
    (lambda: InceptionBlock(8, 8, 8, 8, 8, 8, -1), "pool_proj=-1"),
    (lambda: ConvNormAct(8, 8, 3, conv="nope"), "unknown kind 'nope'"),
])
def test_block_errors(build, message):
    with pytest.raises(ValueError, match=message):
        build()
