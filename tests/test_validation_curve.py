"""The validation curve: scored after every epoch, written to TensorBoard, training untouched."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import swr_keras
from swr_keras.validation_curve import ValidationCurve


def _data(seed, size=24):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, 12, 12, 3)).astype("float32")
    y = rng.integers(0, 5, size)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


def _train(conv_net, stage, callbacks):
    trainer = swr_keras.SWRTrainer(
        swr_keras.reparametrize(conv_net), binarization="threshold", seed=0
    )
    history = swr_keras.fit_stage(
        trainer,
        stage,
        _data(1),
        epochs=2,
        learning_rate=1e-2,
        target_cost=0.5,
        verbose=0,
        callbacks=callbacks,
    )
    return trainer, history


@pytest.mark.parametrize("stage", ["supernet", "policy"])
def test_the_curve_is_the_validation_score_and_training_is_unchanged(conv_net, stage, tmp_path):
    valid = _data(2)
    plain, _ = _train(conv_net, stage, [])
    scored, history = _train(
        conv_net,
        stage,
        [ValidationCurve(valid), keras.callbacks.TensorBoard(str(tmp_path), write_graph=False)],
    )
    for got, want in zip(scored.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(got, want)
    # The last epoch's entry is the trained model's own score on the split.
    expected = scored.evaluate(valid, verbose=0, return_dict=True)
    assert len(history.history["val_accuracy"]) == 2
    assert history.history["val_accuracy"][-1] == pytest.approx(expected["accuracy"])
    assert history.history["val_loss"][-1] == pytest.approx(expected["loss"], rel=1e-5)
    assert os.listdir(tmp_path / "validation")  # TensorBoard's validation run
