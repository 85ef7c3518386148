"""BC-ResNet (Kim et al., 2021): broadcasted residual learning for keyword spotting.

Layer for layer the official implementation (Qualcomm-AI-research/bcresnet),
in Keras' channels-last layout: the input is a log-mel spectrogram
`[batch, 40 frequency, time, 1]` where the reference reads `[batch, 1, 40, time]`.
"""

import keras

from swr_keras.models.batch_norm import FusedBatchNormalization
from swr_keras.models.causal_padding import CausalTimePadding
from swr_keras.models.frequency_mean import FrequencyMean
from swr_keras.models.sub_spectral_norm import SubSpectralNorm
from swr_keras.models.task_model import FEATURE_EXTRACTOR, build_task_model

# The widths the BC-ResNet paper evaluates; any tau with int(8 * tau) >= 1 builds.
BC_RESNET_TAUS = (1, 1.5, 2, 3, 6, 8)
BLOCKS_PER_STAGE = (2, 2, 4, 4)
STRIDED_STAGES = (1, 2)  # their first block halves the frequency axis
NUM_SUB_BANDS = 5
DROPOUT_RATE = 0.1
# 40 mel bins halve three times (stem, stages 1 and 2) to 5 = the head's
# kernel height; every SubSpectralNorm then sees a multiple of 5 bins.
FREQUENCY_MULTIPLE = 40


def bc_resnet_channels(tau):
    """The six channel widths of BC-ResNet-tau: stem, four stages, head."""
    base = int(8 * tau)
    return (2 * base, base, int(1.5 * base), 2 * base, int(2.5 * base), 4 * base)


def BCResNet(
    tau=8,
    num_classes=12,
    *,
    num_frequencies=40,
    dropout_rate=DROPOUT_RATE,
    classifier_activation=None,
    causal=False,
    name=None,
):
    """Builds BC-ResNet-tau as a task model: feature extractor + classifier.

    The stem (5x5 conv, stride 2 on frequency, BN, ReLU) is followed by four
    stages of BC-ResBlocks (2, 2, 4, 4 blocks; the first block of each stage
    is a transition block when the width changes, and stages 1 and 2 start
    with stride 2 on frequency) and the head (depthwise 5x5 conv valid on
    frequency, 1x1 conv, BN, ReLU, global average pooling). The classifier
    is a `Dense` with bias, equal to the reference's final 1x1 conv.

    A BC-ResBlock computes
    `relu(f1(mean_freq(f2(x))) + f2(x) [+ x])` with
    `f2 = depthwise (3,1) conv -> SubSpectralNorm(5)` (after a 1x1 conv, BN,
    ReLU in a transition block) and `f1 = depthwise (1,3) conv dilated
    2**stage -> BN -> SiLU -> 1x1 conv -> channel dropout`, the temporal
    output broadcast back over frequency. Every convolution has no bias; BN
    uses the reference's epsilon 1e-5 and momentum 0.1 (Keras 0.9).

    Where the reference pads symmetrically and strides, the model pads with
    `ZeroPadding2D` and convolves with `"valid"` (Keras' `"same"` would pad
    asymmetrically and shift the sampling grid). The frequency-strided (3,1)
    depthwise conv is computed at stride 1 and then subsampled by a
    `MaxPooling2D` of size 1, because TensorFlow's CPU depthwise kernel
    rejects unequal strides; the result is identical, at the cost of the
    multiplies of the dropped rows in those two layers (484,800 of
    86,404,128 for BC-ResNet-8 at 1 s). BN layers are
    `FusedBatchNormalization` (see there) and the sub-band normalisation is
    `SubSpectralNorm`.

    With `causal=True` every time padding goes on the past side
    (`CausalTimePadding`: 4 frames before the 5x5 stem and head convs,
    `2 * dilation` before each temporal (1,3) conv) and the frequency
    padding is unchanged, so the output of every layer at frame `t` depends
    on frames `<= t` only; `swr_keras.streaming` turns such a model into a
    streaming one. The weights, counts and multiplies are those of the
    symmetric model; only which frames each convolution sees changes.

    For tau=8 and 12 classes: 321,068 learnable parameters (Keras'
    `count_params()` adds 19,328 BN moving statistics) and 43 convolutions
    before the classifier.

    Args:
        tau: width multiplier; the paper's family is 1, 1.5, 2, 3, 6, 8.
        num_classes: outputs of the classifier.
        num_frequencies: mel bins of the input, a multiple of 40.
        dropout_rate: channel dropout at the end of each block's `f1`.
        classifier_activation: `None` for logits or e.g. `"softmax"`.
        causal: pad time on the past side only (streaming); default the
            reference's symmetric padding.
        name: model name; defaults to `"bc_resnet{tau}"`.

    Input shape: `[batch, num_frequencies, time, 1]`, any time length (101
    frames for 1 s). Output shape: `[batch, num_classes]`.

    Example:

    ```python
    model = swr_keras.models.BCResNet(tau=8, num_classes=12)
    model(keras.ops.zeros((2, 40, 101, 1))).shape  # (2, 12)
    ```
    """
    features = bc_resnet_feature_extractor(
        tau, num_frequencies=num_frequencies, dropout_rate=dropout_rate, causal=causal
    )
    default_name = f"bc_resnet{tau:g}".replace(".", "_")
    return build_task_model(
        features,
        num_classes,
        classifier_activation=classifier_activation,
        name=name or default_name,
    )


def bc_resnet_feature_extractor(
    tau=8, *, num_frequencies=40, dropout_rate=DROPOUT_RATE, causal=False
):
    """The feature extractor `f` of BC-ResNet-tau: log-mel -> pooled features."""
    _check_arguments(tau, num_frequencies, dropout_rate)
    if not isinstance(causal, bool):
        raise ValueError(f"causal must be True or False. Received: causal={causal!r}")
    channels = bc_resnet_channels(tau)
    inputs = keras.Input((num_frequencies, None, 1), name="log_mel")
    if causal:
        x = keras.layers.ZeroPadding2D(((2, 2), (0, 0)), name="stem_frequency_pad")(inputs)
        x = CausalTimePadding(4, name="stem_time_pad")(x)
    else:
        x = keras.layers.ZeroPadding2D(2, name="stem_pad")(inputs)
    x = keras.layers.Conv2D(channels[0], 5, strides=(2, 1), use_bias=False, name="stem_conv")(x)
    x = FusedBatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)

    for stage, num_blocks in enumerate(BLOCKS_PER_STAGE):
        for block in range(num_blocks):
            strided = block == 0 and stage in STRIDED_STAGES
            x = bc_res_block(
                x,
                channels[stage + 1],
                stage=stage,
                strided=strided,
                dropout_rate=dropout_rate,
                causal=causal,
                name=f"stage{stage}_block{block}",
            )

    if causal:
        x = CausalTimePadding(4, name="head_time_pad")(x)
    else:
        x = keras.layers.ZeroPadding2D(((0, 0), (2, 2)), name="head_pad")(x)
    x = keras.layers.DepthwiseConv2D((5, 5), use_bias=False, name="head_depthwise")(x)
    x = keras.layers.Conv2D(channels[5], 1, use_bias=False, name="head_pointwise")(x)
    x = FusedBatchNormalization(name="head_bn")(x)
    x = keras.layers.ReLU(name="head_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, x, name=FEATURE_EXTRACTOR)


def bc_res_block(x, filters, *, stage, strided, dropout_rate, name, causal=False):
    """One BC-ResBlock; a transition block when the width changes."""
    transition = x.shape[-1] != filters
    shortcut = x
    if transition:
        x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_transition_conv")(x)
        x = FusedBatchNormalization(name=f"{name}_transition_bn")(x)
        x = keras.layers.ReLU(name=f"{name}_transition_relu")(x)

    # f2: frequency-wise depthwise conv and sub-spectral normalisation.
    if strided:
        x = keras.layers.ZeroPadding2D(((1, 1), (0, 0)), name=f"{name}_frequency_pad")(x)
    x = keras.layers.DepthwiseConv2D(
        (3, 1),
        padding="valid" if strided else "same",
        use_bias=False,
        name=f"{name}_frequency_depthwise",
    )(x)
    if strided:
        x = keras.layers.MaxPooling2D(pool_size=1, strides=(2, 1), name=f"{name}_frequency_stride")(
            x
        )
    x = SubSpectralNorm(NUM_SUB_BANDS, name=f"{name}_sub_spectral_norm")(x)
    frequency_features = x

    # f1: temporal depthwise conv on the frequency average, broadcast back.
    x = FrequencyMean(name=f"{name}_frequency_mean")(x)
    dilation = 2**stage
    if causal:
        x = CausalTimePadding(2 * dilation, name=f"{name}_temporal_pad")(x)
    x = keras.layers.DepthwiseConv2D(
        (1, 3),
        padding="valid" if causal else "same",
        dilation_rate=(1, dilation),
        use_bias=False,
        name=f"{name}_temporal_depthwise",
    )(x)
    x = FusedBatchNormalization(name=f"{name}_temporal_bn")(x)
    x = keras.layers.Activation("silu", name=f"{name}_temporal_silu")(x)
    x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_temporal_pointwise")(x)
    x = keras.layers.SpatialDropout2D(dropout_rate, name=f"{name}_dropout")(x)

    residuals = [x, frequency_features] + ([] if transition else [shortcut])
    x = keras.layers.Add(name=f"{name}_add")(residuals)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _check_arguments(tau, num_frequencies, dropout_rate):
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not int(8 * tau) >= 1:
        raise ValueError(
            f"tau must be a number with int(8 * tau) >= 1; the paper's family is "
            f"{BC_RESNET_TAUS}. Received: tau={tau!r}"
        )
    if (
        isinstance(num_frequencies, bool)
        or not isinstance(num_frequencies, int)
        or num_frequencies < FREQUENCY_MULTIPLE
        or num_frequencies % FREQUENCY_MULTIPLE
    ):
        raise ValueError(
            f"num_frequencies must be a positive multiple of {FREQUENCY_MULTIPLE} (the "
            "frequency axis is halved three times and cut into 5 sub-bands). "
            f"Received: num_frequencies={num_frequencies!r}"
        )
    if not 0 <= dropout_rate < 1:
        raise ValueError(f"dropout_rate must be in [0, 1). Received: dropout_rate={dropout_rate!r}")
