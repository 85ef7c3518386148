"""BC-ResNet: counts, shapes, a layer-by-layer reference forward, and SWR."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import swr_keras
from swr_keras.models import BC_RESNET_TAUS, BCResNet, SubSpectralNorm, feature_extractor
from swr_keras.reparametrize import reparametrizable_layers
from tests.models.backbone_checks import (
    assert_keras_round_trip,
    assert_merge_equals_reparametrized,
    assert_zero_delta_equals_base,
    run_swr_stages,
)

ONE_SECOND, CLIP_2_24_SECONDS = 101, 225


def reference_channels(tau):
    base = int(8 * tau)
    return [2 * base, base, int(1.5 * base), 2 * base, int(2.5 * base), 4 * base]


def reference_parameter_count(tau, num_classes):
    """Learnable parameters of the official BC-ResNet, counted from its layer list."""
    c = reference_channels(tau)
    total = 5 * 5 * c[0] + 2 * c[0]  # stem conv, BN
    width = c[0]
    for stage, num_blocks in enumerate((2, 2, 4, 4)):
        out = c[stage + 1]
        for _ in range(num_blocks):
            if width != out:
                total += width * out + 2 * out  # transition 1x1 conv, BN
            total += 3 * out + 2 * out * 5  # (3,1) depthwise, SubSpectralNorm(5)
            total += 3 * out + 2 * out + out * out  # (1,3) depthwise, BN, 1x1 conv
            width = out
    total += 25 * c[4] + c[4] * c[5] + 2 * c[5]  # head depthwise, 1x1 conv, BN
    return total + c[5] * num_classes + num_classes


def reference_multiplies(tau, frames, num_classes=12):
    """Multiplies of the official BC-ResNet on 40 x `frames` (strided as the reference)."""
    c = reference_channels(tau)
    total = 25 * c[0] * 20 * frames
    width, frequencies = c[0], 20
    for stage, num_blocks in enumerate((2, 2, 4, 4)):
        out = c[stage + 1]
        for block in range(num_blocks):
            if width != out:
                total += width * out * frequencies * frames
            if block == 0 and stage in (1, 2):
                frequencies //= 2
            total += 3 * out * frequencies * frames + 3 * out * frames + out * out * frames
            width = out
    return total + 25 * c[4] * frames + c[4] * c[5] * frames + c[5] * num_classes


def reference_forward(model, x, tau):
    """The official BC-ResNet forward in inference mode, in raw TensorFlow ops.

    Written from the reference's layer list, independently of the model's
    graph: explicit symmetric padding, the frequency stride done by a real
    strided (grouped) convolution, and sub-spectral normalisation through
    the reference's reshape to `C * S` channels.
    """
    layers = feature_extractor(model)
    get = layers.get_layer

    def bn(name, h):
        layer = get(name)
        scale = layer.gamma * tf.math.rsqrt(layer.moving_variance + 1e-5)
        return (h - layer.moving_mean) * scale + layer.beta

    def sub_spectral_norm(name, h):
        layer = get(name)
        stats = [
            np.stack([norm.weights[i].numpy() for norm in layer.band_norms])  # [S, C]
            for i in range(4)  # gamma, beta, moving mean, moving variance
        ]
        gamma, beta, mean, variance = (s[None, :, None, None, :] for s in stats)
        shape = tf.shape(h)
        bands = tf.reshape(h, (shape[0], 5, h.shape[1] // 5, shape[2], h.shape[3]))
        bands = (bands - mean) / np.sqrt(variance + 1e-5) * gamma + beta
        return tf.reshape(bands, shape)

    def conv(name, h, strides=1):
        return tf.nn.conv2d(h, get(name).kernel, strides, "VALID")

    def pad(h, frequency, time):
        return tf.pad(h, [[0, 0], [frequency, frequency], [time, time], [0, 0]])

    channels = reference_channels(tau)
    h = tf.nn.relu(bn("stem_bn", conv("stem_conv", pad(x, 2, 2), strides=(2, 1))))
    for stage, num_blocks in enumerate((2, 2, 4, 4)):
        for block in range(num_blocks):
            name = f"stage{stage}_block{block}"
            stride = 2 if block == 0 and stage in (1, 2) else 1
            transition = h.shape[-1] != channels[stage + 1]
            shortcut = h
            if transition:
                h = tf.nn.relu(bn(f"{name}_transition_bn", conv(f"{name}_transition_conv", h)))
            kernel = get(f"{name}_frequency_depthwise").kernel  # [3, 1, C, 1]
            grouped = tf.reshape(kernel, (3, 1, 1, kernel.shape[2]))  # groups = C
            h = tf.nn.conv2d(pad(h, 1, 0), grouped, (stride, 1), "VALID")
            h = sub_spectral_norm(f"{name}_sub_spectral_norm", h)
            frequency_features = h
            h = tf.reduce_mean(h, axis=1, keepdims=True)
            dilation = 2**stage
            h = tf.nn.depthwise_conv2d(
                pad(h, 0, dilation),
                get(f"{name}_temporal_depthwise").kernel,
                (1, 1, 1, 1),
                "VALID",
                dilations=(1, dilation),
            )
            h = tf.nn.silu(bn(f"{name}_temporal_bn", h))
            h = conv(f"{name}_temporal_pointwise", h) + frequency_features
            h = tf.nn.relu(h if transition else h + shortcut)
    h = tf.nn.depthwise_conv2d(pad(h, 0, 2), get("head_depthwise").kernel, (1, 1, 1, 1), "VALID")
    h = tf.nn.relu(bn("head_bn", conv("head_pointwise", h)))
    head = model.get_layer("classifier")
    return tf.reduce_mean(h, axis=(1, 2)) @ head.kernel + head.bias


def randomize_statistics(model, seed):
    rng = np.random.default_rng(seed)
    for norm in swr_keras.batch_norm_layers(model):
        for variable in (norm.gamma, norm.beta, norm.moving_mean):
            variable.assign(rng.normal(0, 0.3, variable.shape) + (variable is norm.gamma))
        norm.moving_variance.assign(rng.uniform(0.5, 2.0, norm.moving_variance.shape))


@pytest.fixture(scope="module")
def bc_resnet8():
    keras.utils.set_random_seed(0)
    return BCResNet(8, 12)


def log_mel(batch, frames, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, 40, frames, 1)).astype("float32")


def test_bc_resnet8_has_the_papers_parameter_and_layer_counts(bc_resnet8):
    assert swr_keras.cost.count_parameters(bc_resnet8) == 321_068
    assert sum(int(np.prod(w.shape)) for w in bc_resnet8.trainable_weights) == 321_068
    assert bc_resnet8.count_params() == 340_396  # + 19,328 BN moving statistics
    convolutions = reparametrizable_layers(bc_resnet8)
    assert len(convolutions) == 44 and convolutions[-1].name == "classifier"
    swr_model = swr_keras.reparametrize(bc_resnet8)
    assert len(swr_keras.reparam_layers(swr_model)) == 43


@pytest.mark.parametrize("tau", BC_RESNET_TAUS)
def test_every_width_counts_like_the_reference(tau):
    model = BCResNet(tau, 12)
    assert swr_keras.cost.count_parameters(model) == reference_parameter_count(tau, 12)
    assert len(swr_keras.reparam_layers(swr_keras.reparametrize(model))) == 43


def test_architecture_follows_the_reference(bc_resnet8):
    layers = feature_extractor(bc_resnet8).layers
    by_type = lambda kind: [layer for layer in layers if type(layer) is kind]  # noqa: E731
    convolutions = by_type(keras.layers.Conv2D) + by_type(keras.layers.DepthwiseConv2D)
    assert not any(layer.use_bias for layer in convolutions)
    assert bc_resnet8.get_layer("classifier").use_bias
    transitions = [layer.name for layer in layers if layer.name.endswith("transition_conv")]
    assert transitions == [f"stage{stage}_block0_transition_conv" for stage in range(4)]
    dilations = [
        layer.dilation_rate for layer in layers if layer.name.endswith("temporal_depthwise")
    ]
    assert dilations == [(1, 2**stage) for stage, n in enumerate((2, 2, 4, 4)) for _ in range(n)]
    dropouts = by_type(keras.layers.SpatialDropout2D)
    assert len(dropouts) == 12 and {layer.rate for layer in dropouts} == {0.1}
    norms = swr_keras.batch_norm_layers(bc_resnet8)
    assert {(norm.epsilon, norm.momentum) for norm in norms} == {(1e-5, 0.9)}
    sub_spectral = by_type(SubSpectralNorm)
    assert len(sub_spectral) == 12 and {layer.num_sub_bands for layer in sub_spectral} == {5}
    frequencies = [layer.output.shape[1] for layer in sub_spectral]
    assert frequencies == [20, 20, 10, 10, 5, 5, 5, 5, 5, 5, 5, 5]
    assert bc_resnet8.get_layer("feature_extractor").output.shape == (None, 256)


@pytest.mark.parametrize("frames", [ONE_SECOND, CLIP_2_24_SECONDS])
def test_output_shape_for_any_clip_length(bc_resnet8, frames):
    assert bc_resnet8(log_mel(2, frames)).shape == (2, 12)


def test_forward_equals_the_reference_computation(bc_resnet8):
    model = keras.models.clone_model(bc_resnet8)
    model.set_weights(bc_resnet8.get_weights())
    randomize_statistics(model, seed=1)
    x = log_mel(3, 37)
    np.testing.assert_allclose(
        model(x, training=False), reference_forward(model, x, 8), atol=1e-4, rtol=1e-4
    )


@pytest.mark.parametrize("tau", [1, 1.5])
def test_small_widths_equal_the_reference_computation(tau):
    model = BCResNet(tau, 5)
    randomize_statistics(model, seed=2)
    x = log_mel(2, 16)
    np.testing.assert_allclose(
        model(x, training=False), reference_forward(model, x, tau), atol=1e-4, rtol=1e-4
    )


def test_multiplies_are_the_references_plus_the_cpu_stride_workaround(bc_resnet8):
    counted = swr_keras.cost.count_multiplies(bc_resnet8, input_shape=(40, ONE_SECOND, 1))
    # The two frequency-strided depthwise convs also compute the rows the
    # stride drops: 3 x channels x dropped rows x frames.
    workaround = 3 * (96 * 10 + 128 * 5) * ONE_SECOND
    assert counted == reference_multiplies(8, ONE_SECOND) + workaround == 86_404_128


def test_keras_round_trip(bc_resnet8, tmp_path):
    x = log_mel(2, ONE_SECOND)
    assert_keras_round_trip(bc_resnet8, x, tmp_path / "bc_resnet8.keras")
    swr_model = swr_keras.reparametrize(bc_resnet8)
    loaded = assert_keras_round_trip(swr_model, x, tmp_path / "swr.keras")
    assert len(swr_keras.reparam_layers(loaded)) == 43


def test_zero_deltas_compute_the_backbone(bc_resnet8):
    assert_zero_delta_equals_base(bc_resnet8, log_mel(2, ONE_SECOND))


def test_merge_equals_reparametrized_model(bc_resnet8):
    assert_merge_equals_reparametrized(bc_resnet8, log_mel(2, ONE_SECOND))


def test_tau1_learns_a_tiny_task():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 64)
    x = rng.normal(0, 1, (64, 40, 24, 1)).astype("float32")
    x[labels == 0, :20] += 1.5  # class 0: energy in the low mel bins
    x[labels == 1, 20:] += 1.5
    model = BCResNet(1, 2)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(x, labels, batch_size=16, epochs=15, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    _, accuracy = model.evaluate(x, labels, verbose=0)
    assert accuracy >= 0.9


def test_four_swr_stages_run_and_change_only_what_they_may():
    keras.utils.set_random_seed(0)
    x = log_mel(8, 20)
    y = np.arange(8) % 3
    trainer = run_swr_stages(BCResNet(1, 3), x, y, batch_size=4)
    assert len(swr_keras.reparam_layers(trainer.model)) == 43


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"tau": 0}, "tau must be"),
        ({"tau": "8"}, "tau must be"),
        ({"num_frequencies": 64}, "multiple of 40"),
        ({"num_classes": 0}, "num_classes must be"),
        ({"dropout_rate": 1.0}, "dropout_rate"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BCResNet(**kwargs)
