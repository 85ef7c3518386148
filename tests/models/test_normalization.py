"""FusedBatchNormalization and SubSpectralNorm against what they must compute."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import swr_keras
from swr_keras.models import SubSpectralNorm
from swr_keras.models.batch_norm import FusedBatchNormalization


def inputs(shape, seed=0):
    return np.random.default_rng(seed).normal(1.0, 2.0, shape).astype("float32")


def twin_layers(shape, seed=0, **kwargs):
    """A fused and a Keras BN with the same random weights and statistics."""
    rng = np.random.default_rng(seed)
    fused = FusedBatchNormalization(**kwargs)
    plain = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, **kwargs)
    fused.build(shape)
    plain.build(shape)
    # gamma, beta (when present), moving mean, moving variance (> 0)
    values = [rng.normal(0, 0.5, w.shape) for w in plain.weights]
    values[-1] = rng.uniform(0.5, 2.0, values[-1].shape)
    plain.set_weights(values)
    fused.set_weights(values)
    return fused, plain


@pytest.mark.parametrize("training", [False, True])
def test_fused_output_and_gradients_equal_keras_batch_norm(training):
    x = tf.constant(inputs((6, 5, 7, 4)))
    fused, plain = twin_layers(x.shape)
    results = []
    for layer in (fused, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
            loss = tf.reduce_sum(y * tf.range(1.0, 5.0))
        results.append((y, tape.gradient(loss, [x, layer.gamma, layer.beta])))
    (y_fused, g_fused), (y_plain, g_plain) = results
    np.testing.assert_allclose(y_fused, y_plain, atol=1e-4)
    for a, b in zip(g_fused, g_plain):
        np.testing.assert_allclose(a, b, atol=1e-3, rtol=1e-4)


def test_moving_statistics_follow_pytorch_momentum_and_unbiased_variance():
    x = inputs((6, 5, 7, 4))
    layer = FusedBatchNormalization()
    layer.build(x.shape)
    layer(x, training=True)
    flat = x.reshape(-1, 4)
    np.testing.assert_allclose(layer.moving_mean, 0.1 * flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance, 0.9 + 0.1 * flat.var(0, ddof=1), rtol=1e-5)


def test_frozen_layer_uses_moving_statistics_even_in_training():
    x = inputs((6, 5, 7, 4))
    fused, plain = twin_layers(x.shape)
    fused.trainable = plain.trainable = False
    before = fused.moving_mean.numpy()
    np.testing.assert_allclose(fused(x, training=True), plain(x, training=True), atol=1e-5)
    np.testing.assert_array_equal(fused.moving_mean.numpy(), before)


@pytest.mark.parametrize("kwargs", [{"center": False, "scale": False}, {"axis": 1}])
def test_variants_without_affine_or_on_other_axes_match_keras(kwargs):
    x = inputs((6, 5, 7, 4))
    fused, plain = twin_layers(x.shape, **kwargs)
    for training in (False, True):
        np.testing.assert_allclose(
            fused(x, training=training), plain(x, training=training), atol=1e-4
        )


def test_fused_batch_norm_runs_under_mixed_bfloat16():
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        layer = FusedBatchNormalization()
        y = layer(tf.constant(inputs((2, 3, 4, 5)), tf.bfloat16), training=True)
        assert y.dtype == tf.bfloat16 and layer.moving_mean.dtype == "float32"
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_fused_batch_norm_is_a_batch_norm_for_the_library():
    layer = FusedBatchNormalization(center=False)
    assert isinstance(layer, keras.layers.BatchNormalization)
    clone = FusedBatchNormalization.from_config(layer.get_config())
    assert (clone.epsilon, clone.momentum, clone.center) == (1e-5, 0.9, False)


def reference_sub_spectral_norm(x, layer):
    """The reference: view [B, C, F, T] as [B, C*S, F/S, T] and batch-normalise (training)."""
    batch, frequencies, frames, channels = x.shape
    bands = layer.num_sub_bands
    gamma = np.stack([norm.gamma.numpy() for norm in layer.band_norms])  # [S, C]
    beta = np.stack([norm.beta.numpy() for norm in layer.band_norms])
    nchw = x.transpose(0, 3, 1, 2).reshape(batch, channels * bands, frequencies // bands, frames)
    mean = nchw.mean(axis=(0, 2, 3), keepdims=True)
    variance = nchw.var(axis=(0, 2, 3), keepdims=True)
    scale = gamma.T.reshape(1, -1, 1, 1)  # feature c * S + s
    offset = beta.T.reshape(1, -1, 1, 1)
    out = (nchw - mean) / np.sqrt(variance + 1e-5) * scale + offset
    statistics = (mean.reshape(channels, bands).T, variance.reshape(channels, bands).T)
    unbiased = nchw.var(axis=(0, 2, 3), ddof=1).reshape(channels, bands).T
    return (
        out.reshape(batch, channels, frequencies, frames).transpose(0, 2, 3, 1),
        statistics,
        unbiased,
    )


def test_sub_spectral_norm_normalises_each_band_and_channel_like_the_reference():
    x = inputs((4, 10, 6, 3))
    layer = SubSpectralNorm(5)
    layer.build(x.shape)
    rng = np.random.default_rng(1)
    for norm in layer.band_norms:
        norm.gamma.assign(rng.normal(1, 0.2, 3))
        norm.beta.assign(rng.normal(0, 0.2, 3))
    expected, (mean, _), unbiased = reference_sub_spectral_norm(x, layer)
    np.testing.assert_allclose(layer(x, training=True), expected, atol=1e-4)
    moving_mean = np.stack([norm.moving_mean.numpy() for norm in layer.band_norms])
    moving_variance = np.stack([norm.moving_variance.numpy() for norm in layer.band_norms])
    np.testing.assert_allclose(moving_mean, 0.1 * mean, atol=1e-5)
    np.testing.assert_allclose(moving_variance, 0.9 + 0.1 * unbiased, rtol=1e-5)


def test_sub_spectral_norm_in_inference_uses_each_bands_moving_statistics():
    x = inputs((2, 10, 6, 3))
    layer = SubSpectralNorm(5)
    layer.build(x.shape)
    for band, norm in enumerate(layer.band_norms):
        norm.moving_mean.assign(np.full(3, float(band)))
    y = keras.ops.convert_to_numpy(layer(x, training=False))
    for band in range(5):
        rows = slice(2 * band, 2 * band + 2)
        np.testing.assert_allclose(y[:, rows], (x[:, rows] - band) / np.sqrt(1 + 1e-5), atol=1e-5)


def test_sub_spectral_norm_weights_and_config():
    layer = SubSpectralNorm(5)
    layer.build((None, 20, None, 64))
    assert sum(int(np.prod(w.shape)) for w in layer.trainable_weights) == 2 * 64 * 5
    assert sum(int(np.prod(w.shape)) for w in layer.non_trainable_weights) == 2 * 64 * 5
    assert len(swr_keras.batch_norm_layers(layer)) == 5
    clone = SubSpectralNorm.from_config(layer.get_config())
    assert (clone.num_sub_bands, clone.epsilon, clone.momentum) == (5, 1e-5, 0.9)


def test_sub_spectral_norm_rejects_frequencies_not_divisible_by_the_bands():
    with pytest.raises(ValueError, match="12 frequency bins into 5"):
        SubSpectralNorm(5)(keras.Input((12, 7, 3)))
    with pytest.raises(ValueError, match="num_sub_bands must be"):
        SubSpectralNorm(0)


def test_reparametrize_freezes_sub_band_affine_but_keeps_statistics_learning():
    inputs_ = keras.Input((10, 6, 1))
    x = keras.layers.Conv2D(3, 3, padding="same", use_bias=False)(inputs_)
    x = SubSpectralNorm(5)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs_, keras.layers.Dense(2)(x))
    swr_model = swr_keras.reparametrize(model)
    norms = swr_keras.batch_norm_layers(swr_model)
    assert len(norms) == 5
    assert all(n.trainable and not n.gamma.trainable and not n.beta.trainable for n in norms)
    before = [n.moving_mean.numpy() for n in norms]
    swr_model.compile(optimizer="adam", loss="mse")
    swr_model.fit(inputs((8, 10, 6, 1)), np.zeros((8, 2)), verbose=0)
    assert all(np.any(n.moving_mean.numpy() != b) for n, b in zip(norms, before))
