"""The reference pre-training scheme: linear warm-up, cosine decay, SGD or Adam with decay."""

import math

import keras
import numpy as np
import pytest

from swr_keras.kws import pretraining


def rates(schedule, steps):
    return np.array([float(schedule(step)) for step in range(steps)])


def test_warmup_is_linear_from_zero_then_cosine_to_zero():
    schedule = pretraining.warmup_cosine(0.1, total_steps=50, warmup_steps=10)
    lr = rates(schedule, 51)
    np.testing.assert_allclose(lr[:11], np.linspace(0.0, 0.1, 11), rtol=1e-5, atol=1e-7)
    expected = [0.05 * (1 + math.cos(math.pi * (s - 10) / 40)) for s in range(10, 51)]
    np.testing.assert_allclose(lr[10:], expected, rtol=1e-4, atol=1e-7)
    assert lr[50] == pytest.approx(0.0, abs=1e-7)


def test_without_warmup_it_starts_at_the_peak():
    lr = rates(pretraining.warmup_cosine(0.1, total_steps=20, warmup_steps=0), 21)
    assert lr[0] == pytest.approx(0.1)
    assert np.all(np.diff(lr) <= 0) and lr[20] == pytest.approx(0.0, abs=1e-7)


def test_a_warmup_as_long_as_training_still_ends_at_zero():
    lr = rates(pretraining.warmup_cosine(0.1, total_steps=5, warmup_steps=10), 6)
    assert lr[0] == 0.0 and lr.max() == pytest.approx(0.1) and lr[5] == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize(
    "name, kind", [("sgd", keras.optimizers.SGD), ("adam", keras.optimizers.Adam)]
)
def test_optimizers_carry_the_reference_settings(name, kind):
    optimizer = pretraining.reference_optimizer(name, 0.1, 100, 5, weight_decay=1e-3)
    assert isinstance(optimizer, kind)
    assert optimizer.weight_decay == pytest.approx(1e-3)
    if name == "sgd":
        assert optimizer.momentum == pytest.approx(0.9)
    assert pretraining.reference_optimizer(name, 0.1, 100, 5, weight_decay=0).weight_decay is None


def test_sgd_decay_is_decoupled_from_the_gradient():
    # A zero gradient still shrinks the weight by lr * wd (Keras' decoupled decay).
    weight = keras.Variable(np.ones(3, "float32"))
    optimizer = pretraining.reference_optimizer("sgd", 0.1, 10, 0, weight_decay=0.5, momentum=0.0)
    optimizer.apply_gradients([(np.zeros(3, "float32"), weight)])
    np.testing.assert_allclose(weight.numpy(), 1.0 - 0.1 * 0.5, rtol=1e-6)


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="Unknown optimizer 'rmsprop'. Choose 'sgd' or 'adam'."):
        pretraining.reference_optimizer("rmsprop", 0.1, 10, 0)
