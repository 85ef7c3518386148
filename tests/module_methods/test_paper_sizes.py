"""The Table 1 baselines on BC-ResNet-8 are the paper's size (issue 26); counting only, no training.

#Param. (2 tasks) is (backbone + 2 x a task's learnable parameters) / backbone,
as Table 1 counts it; the bars are the paper's figures with the issue's
tolerance (Residual Adapter 1.43x +- 0.15, Rep-Net 2.26x +- 0.3).
"""

import pytest

from swr_keras import cost, methods
from swr_keras.models import BCResNet
from swr_keras.module_methods import count_task_parameters


@pytest.fixture(scope="module")
def bc_resnet8():
    backbone = BCResNet(tau=8, num_classes=12)
    return backbone, cost.count_parameters(backbone)


def task_parameters(name, backbone):
    method = methods.get(name)
    return count_task_parameters(method.build(backbone, None, method.options()))


def two_task_ratio(name, bc_resnet8):
    backbone, parameters = bc_resnet8
    return (parameters + 2 * task_parameters(name, backbone)) / parameters


def test_residual_adapter_is_the_papers_size(bc_resnet8):
    assert two_task_ratio("adapter", bc_resnet8) == pytest.approx(1.43, abs=0.15)


def test_rep_net_is_the_papers_size(bc_resnet8):
    assert two_task_ratio("repnet", bc_resnet8) == pytest.approx(2.26, abs=0.3)


def test_the_small_adapter_lacks_exactly_the_transition_adapters(bc_resnet8):
    backbone, _ = bc_resnet8
    # A 1x1 adapter beside each transition conv (in x out: 128x64, 64x96, 96x128, 128x160).
    transitions = 128 * 64 + 64 * 96 + 96 * 128 + 128 * 160
    difference = task_parameters("adapter", backbone) - task_parameters("adapter_small", backbone)
    assert difference == transitions


def side_modules(widths, expand):
    """Parameters of the side modules by hand: 5x5 conv (2 groups), 1x1 conv, two BNs."""
    total = 0
    for channels, out in widths:
        middle = max(8, int(channels * expand + 4) // 8 * 8)
        total += 25 * (channels // 2) * middle + middle * out + 2 * middle + 2 * out
    return total


def test_the_wide_rep_net_differs_by_its_side_modules_width_alone(bc_resnet8):
    backbone, _ = bc_resnet8
    # (stage input width, stage output width) of BC-ResNet-8's four stages.
    widths = [(128, 64), (64, 96), (96, 128), (128, 160)]
    expected = side_modules(widths, 1.0) - side_modules(widths, 0.25)
    difference = task_parameters("repnet_wide", backbone) - task_parameters("repnet", backbone)
    assert difference == expected == 467_952
