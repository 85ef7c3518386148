"""`merge` and task states: folding and moving what a task adds."""

import keras
import numpy as np
import pytest

import swr_keras
from swr_keras.layers import ReparamLayer
from swr_keras.model_walk import batch_norm_layers, iter_layers
from tests.conftest import build_conv_net


@pytest.fixture
def trained_like(conv_net, rng):
    """A reparametrised model with random deltas, BN statistics and classifier."""
    swr_model = swr_keras.reparametrize(conv_net)
    for layer in swr_keras.reparam_layers(swr_model):
        layer.kernel_delta.assign(rng.normal(0, 0.2, layer.kernel_delta.shape))
    for norm in batch_norm_layers(swr_model):
        norm.moving_mean.assign(rng.normal(0, 0.5, norm.moving_mean.shape))
    classifier = swr_model.get_layer("classifier")
    classifier.set_weights([rng.normal(size=w.shape) for w in classifier.get_weights()])
    return swr_model


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merge_equals_reparametrized_model_for_random_gates(trained_like, images, seed):
    gates = np.random.default_rng(seed).integers(0, 2, 5).astype("float32")
    for layer, gate in zip(swr_keras.reparam_layers(trained_like), gates):
        layer.gate.assign(gate)
    merged = swr_keras.merge(trained_like)
    assert not any(isinstance(layer, ReparamLayer) for layer in iter_layers(merged))
    for training in (False, True):
        np.testing.assert_allclose(
            merged(images, training=training), trained_like(images, training=training), atol=1e-5
        )


def test_merge_with_explicit_gates_uses_them_instead_of_stored_ones(conv_net, trained_like):
    merged = swr_keras.merge(trained_like, gates=[0, 1, 0, 0, 0])
    merged_layers = {layer.name: layer for layer in iter_layers(merged)}
    for index, layer in enumerate(swr_keras.reparam_layers(trained_like)):
        expected = layer.base_kernel.numpy() + (index == 1) * layer.kernel_delta.numpy()
        np.testing.assert_allclose(merged_layers[layer.name].kernel.numpy(), expected)


def test_merged_model_has_backbone_architecture(conv_net, trained_like):
    merged = swr_keras.merge(trained_like)
    assert [type(l).__name__ for l in iter_layers(merged)] == [
        type(l).__name__ for l in iter_layers(conv_net)
    ]
    assert merged.count_params() == conv_net.count_params()


@pytest.mark.parametrize(
    "gates, message",
    [([1, 0, 1], "one value per reparametrised layer"), ([1, 0, 1, 0.5, 1], "must be 0 or 1")],
)
def test_bad_gates_raise(trained_like, gates, message):
    with pytest.raises(ValueError, match=message):
        swr_keras.merge(trained_like, gates=gates)


def test_task_state_holds_only_gated_deltas_statistics_and_classifier(trained_like):
    gates = [1, 0, 0, 1, 0]
    state = swr_keras.extract_task_state(trained_like, gates=gates)
    layers = swr_keras.reparam_layers(trained_like)
    expected = sum(int(np.prod(layers[i].kernel_delta.shape)) for i in (0, 3))
    expected += sum(2 * int(n.moving_mean.shape[0]) for n in batch_norm_layers(trained_like))
    expected += sum(int(np.prod(w.shape)) for w in trained_like.get_layer("classifier").weights)
    assert state.num_parameters == expected
    assert len(state.deltas) == 2 and len(state.batch_norm) == 3 and len(state.head) == 1


def test_task_state_applied_to_fresh_backbone_equals_merge(
    conv_net, trained_like, images, tmp_path
):
    gates = [0, 1, 1, 0, 1]
    path = tmp_path / "task.npz"
    swr_keras.extract_task_state(trained_like, gates=gates).save(path)
    rebuilt = swr_keras.apply_task_state(conv_net, path)
    merged = swr_keras.merge(trained_like, gates=gates)
    np.testing.assert_allclose(rebuilt(images), merged(images), atol=1e-5)
    assert not any(isinstance(layer, ReparamLayer) for layer in iter_layers(rebuilt))


def test_task_state_rejects_other_architectures(trained_like):
    state = swr_keras.extract_task_state(trained_like)
    with pytest.raises(ValueError, match="number of classes"):
        swr_keras.apply_task_state(build_conv_net(num_classes=7), state)
    shallow = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="layers with weights"):
        swr_keras.apply_task_state(shallow, state)
    with pytest.raises(ValueError, match="plain pre-trained backbone"):
        swr_keras.apply_task_state(trained_like, state)


def test_task_state_save_is_atomic(trained_like, tmp_path, monkeypatch):
    path = tmp_path / "task.npz"
    state = swr_keras.extract_task_state(trained_like)
    state.save(path)
    original = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError):
        state.save(path)
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["task.npz"]
