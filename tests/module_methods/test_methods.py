"""The Adapter, SpotTune and Rep-Net methods on the method interface."""

import keras
import numpy as np
import pytest

from swr_keras import methods
from swr_keras.losses import SparseLabelSmoothingCrossentropy
from swr_keras.methods.stored_task import StoredTask
from swr_keras.module_methods import module_state
from tests.module_methods import helpers

# Tiny models trained for a few steps: tracing graphs would dominate (tests/conftest.py).
RUN_FUNCTIONS_EAGERLY = True

# A non-default option each, so that restoring must read the options back.
CASES = [
    ("adapter", {"adapter_depthwise": "pointwise"}),
    ("spottune", {"spottune_agent_width": 4}),
    ("repnet", {"repnet_kernel_size": 3}),
]


@pytest.mark.parametrize("name, values", CASES)
def test_registered_and_restored_from_the_stored_file(name, values, backbones, data, tmp_path):
    x, y = data
    method = methods.get(name)
    assert not method.deploys_merged and method.help
    options = method.options(values)
    _, backbone = backbones[0]
    model = method.build(backbone, None, options)
    helpers.assert_close(model(x, training=False), backbone(x, training=False))
    helpers.train_one_step(model, x, y)

    stored = method.task_state(model)
    assert stored.num_parameters == module_state.count_task_parameters(model)
    path = tmp_path / f"{name}.npz"
    assert stored.save(path) == path.stat().st_size
    restored = method.restore(backbone, StoredTask.load(path))
    deployed = method.deploy(model)
    helpers.assert_close(restored(x, training=False), deployed(x, training=False))


@pytest.mark.parametrize(
    "name, values, message",
    [
        ("adapter", {"adapter_depthwise": "full"}, "adapter_depthwise='full'"),
        ("spottune", {"spottune_temperature": 0.0}, "spottune_temperature=0.0"),
        ("spottune", {"spottune_agent_width": 0}, "spottune_agent_width=0"),
        ("repnet", {"repnet_kernel_size": 4}, "repnet_kernel_size=4"),
        ("repnet", {"repnet_label_smoothing": 1.0}, "repnet_label_smoothing=1.0"),
    ],
)
def test_bad_options_name_the_value(name, values, message):
    with pytest.raises(ValueError, match=message):
        methods.get(name).options(values)


def test_label_smoothing_loss_matches_the_definition():
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]], "float32")
    labels = np.array([0, 2])
    smoothing = 0.3
    targets = np.full((2, 3), smoothing / 3) + (1 - smoothing) * np.eye(3)[labels]
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -(targets * log_softmax).sum(axis=1).mean()
    loss = SparseLabelSmoothingCrossentropy(smoothing)(labels, logits)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss), expected, rtol=1e-6)
    assert methods.get("repnet").loss(methods.get("repnet").options()).label_smoothing == 0.1
