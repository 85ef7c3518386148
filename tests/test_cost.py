"""Tests of `swr_keras.cost`: hand-computed parameter and multiply counts."""

import keras
import numpy as np
import pytest

from swr_keras.cost import (
    added_parameter_ratio,
    count_multiplies,
    count_parameters,
    layer_multiplies,
    multi_task_parameter_ratio,
    multiply_ratio,
)
from swr_keras.model_walk import reparam_layers
from swr_keras.reparametrize import reparametrize

# Hand counts of `_mixed_model()`, layer by layer (channels_last):
#   conv_s2_g2   3x3, 4->6, stride 2, groups 2, valid, bias: out 5x4x6
#                params 3*3*(4/2)*6 + 6 = 114, mults 5*4*6 * 3*3*2 = 2160
#   bn           6 channels: gamma/beta 12 (+12 moving statistics),
#                mults (only with include_batch_norm) 5*4*6 = 120
#   conv_dil2    3x2, 6->8, dilation 2, same, no bias: out 5x4x8
#                params 3*2*6*8 = 288, mults 5*4*8 * 3*2*6 = 5760
#   depthwise    3x3, depth_multiplier 2, valid, bias: out 3x2x16
#                params 3*3*8*2 + 16 = 160, mults 3*2*16 * 3*3 = 864
#   reshape      -> 6x16
#   dense_rank3  16->5 on a rank-3 input: out 6x5
#                params 16*5 + 5 = 85, mults 6*5 * 16 = 480
#   classifier   30->3: params 30*3 + 3 = 93, mults 3 * 30 = 90
MIXED_PARAMETERS = 114 + 12 + 288 + 160 + 85 + 93  # 752
MIXED_MOVING_STATISTICS = 12
MIXED_MULTIPLIES = {
    "conv_s2_g2": 2160,
    "conv_dil2": 5760,
    "depthwise": 864,
    "dense_rank3": 480,
    "classifier": 90,
}
MIXED_BN_MULTIPLIES = 120
# Kernel sizes N(w_l) of the five reparametrisable layers, in graph order.
MIXED_KERNEL_SIZES = [108, 288, 144, 80, 90]


def _mixed_model():
    inputs = keras.Input((12, 10, 4))
    x = keras.layers.Conv2D(6, 3, strides=2, groups=2, name="conv_s2_g2")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Conv2D(
        8, (3, 2), dilation_rate=2, padding="same", use_bias=False, name="conv_dil2"
    )(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise")(x)
    x = keras.layers.Reshape((6, 16))(x)
    x = keras.layers.Dense(5, name="dense_rank3")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, name="classifier")(x)
    return keras.Model(inputs, outputs, name="mixed")


@keras.saving.register_keras_serializable(package="test_cost")
class _ConvNormBlock(keras.layers.Layer):
    """A custom layer holding a 1x1 convolution and a BN (in a list)."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv = keras.layers.Conv2D(filters, 1, use_bias=False)
        self.norms = [keras.layers.BatchNormalization()]

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.norms[0].build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        return self.norms[0](self.conv(inputs), training=training)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def _nested_model():
    """Outer model: nested model with a custom block, then a shared Dense.

    conv 1x1 3->4 on 6x6: params 12, mults 6*6*4*3 = 432; BN: params 8
    (+8 statistics), BN mults 6*6*4 = 144; shared Dense 4->2 called twice:
    params 4*2 + 2 = 10, mults 2 * (2*4) = 16.
    """
    inner_inputs = keras.Input((6, 6, 3))
    inner = keras.Model(inner_inputs, _ConvNormBlock(4, name="block")(inner_inputs), name="inner")
    inputs = keras.Input((6, 6, 3))
    features = inner(inputs)
    shared = keras.layers.Dense(2, name="shared")
    average = shared(keras.layers.GlobalAveragePooling2D()(features))
    maximum = shared(keras.layers.GlobalMaxPooling2D()(features))
    return keras.Model(inputs, keras.layers.Add()([average, maximum]), name="outer")


def _variable_length_model():
    inputs = keras.Input((40, None, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="classifier")(x))


def _all_weight_sizes(model):
    return sum(int(np.prod(variable.shape)) for variable in model.weights)


# -- count_parameters ---------------------------------------------------------


def test_count_parameters_hand_value_excludes_bn_statistics():
    model = _mixed_model()
    assert count_parameters(model) == MIXED_PARAMETERS == 752
    assert model.count_params() == MIXED_PARAMETERS + MIXED_MOVING_STATISTICS
    assert count_parameters(model) == _all_weight_sizes(model) - MIXED_MOVING_STATISTICS


def test_count_parameters_nested_model_and_custom_layer():
    model = _nested_model()
    assert count_parameters(model) == 12 + 8 + 10
    assert _all_weight_sizes(model) == 12 + 8 + 8 + 10


def test_reparametrised_model_counts_like_its_source():
    model = _mixed_model()
    swr_model = reparametrize(model, exclude=())
    assert len(reparam_layers(swr_model)) == 5
    # The deltas and gates exist but are not parameters of the paper's count.
    assert _all_weight_sizes(swr_model) > _all_weight_sizes(model)
    assert count_parameters(swr_model) == MIXED_PARAMETERS
    assert count_parameters(reparametrize(model)) == MIXED_PARAMETERS


def test_count_parameters_rejects_unbuilt_model():
    model = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="not built"):
        count_parameters(model)


# -- layer_multiplies / count_multiplies -------------------------------------------


def test_layer_multiplies_hand_values():
    records = layer_multiplies(_mixed_model())
    assert [record.name for record in records] == list(MIXED_MULTIPLIES)
    assert {record.name: record.multiplies for record in records} == MIXED_MULTIPLIES
    assert records[2].class_name == "DepthwiseConv2D"
    assert records[2].output_shape == (3, 2, 16)
    assert records[3].output_shape == (6, 5)


def test_count_multiplies_with_and_without_batch_norm():
    model = _mixed_model()
    assert count_multiplies(model) == 9354
    assert count_multiplies(model, include_batch_norm=True) == 9354 + MIXED_BN_MULTIPLIES
    names = [record.name for record in layer_multiplies(model, include_batch_norm=True)]
    assert names[1] == "bn"


def test_strided_same_padding_and_channels_first():
    # "same" with stride 2: ceil(9/2) x ceil(7/2) = 5x4 outputs.
    # conv: 5x4x6 outputs * 3*3*4 = 4320; depthwise 2x2, stride 2, dm 3, valid
    # on 5x4x6 (channels first): 2x2x18 outputs * 4 = 288.
    inputs = keras.Input((4, 9, 7))
    x = keras.layers.Conv2D(
        6, 3, strides=2, padding="same", data_format="channels_first", name="conv"
    )(inputs)
    x = keras.layers.DepthwiseConv2D(
        2, strides=2, depth_multiplier=3, data_format="channels_first", name="depthwise"
    )(x)
    model = keras.Model(inputs, x)
    records = layer_multiplies(model)
    assert [record.output_shape for record in records] == [(6, 5, 4), (18, 2, 2)]
    assert [record.multiplies for record in records] == [4320, 288]


def test_nested_custom_and_shared_layers_count_every_call():
    model = _nested_model()
    records = layer_multiplies(model)
    assert [record.multiplies for record in records] == [432, 8, 8]
    assert [record.name for record in records][1:] == ["shared", "shared"]
    assert count_multiplies(model, include_batch_norm=True) == 432 + 144 + 16


def test_reparametrised_model_has_same_multiplies():
    model = _mixed_model()
    swr_model = reparametrize(model, exclude=())
    records = layer_multiplies(swr_model)
    assert [record.class_name for record in records] == [
        "ReparamConv2D",
        "ReparamConv2D",
        "ReparamDepthwiseConv2D",
        "ReparamDense",
        "ReparamDense",
    ]
    assert [record.multiplies for record in records] == list(MIXED_MULTIPLIES.values())
    assert multiply_ratio(swr_model, model) == 1.0


def test_counting_leaves_the_model_unchanged():
    model = _mixed_model()
    x = np.random.default_rng(0).normal(size=(2, 12, 10, 4)).astype("float32")
    before = model(x)
    layer_multiplies(model, include_batch_norm=True)
    assert all("call" not in vars(layer) for layer in model.layers)
    np.testing.assert_allclose(model(x), before)
    assert count_multiplies(model) == 9354


def test_variable_length_input_needs_input_shape():
    model = _variable_length_model()
    with pytest.raises(ValueError, match="input_shape"):
        count_multiplies(model)
    # conv: 40 * T * 4 outputs * 3*3*1; classifier: 2 * 4.
    assert count_multiplies(model, input_shape=(40, 101, 1)) == 40 * 101 * 4 * 9 + 8
    assert count_multiplies(model, input_shape=(40, 50, 1)) == 40 * 50 * 4 * 9 + 8


@pytest.mark.parametrize(
    "input_shape",
    [(20, 101, 1), (40, 101), (40, None, 1), (40, 0, 1), "40x101", 40],
)
def test_bad_input_shape_raises(input_shape):
    with pytest.raises(ValueError, match="input_shape"):
        count_multiplies(_variable_length_model(), input_shape=input_shape)


def test_subclassed_model_needs_input_shape():
    class TwoDense(keras.Model):
        def __init__(self):
            super().__init__()
            self.first = keras.layers.Dense(4)
            self.second = keras.layers.Dense(2)

        def call(self, inputs):
            return self.second(self.first(inputs))

    model = TwoDense()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="input_shape"):
        count_multiplies(model)
    assert count_multiplies(model, input_shape=(3,)) == 4 * 3 + 2 * 4


def test_multi_input_model():
    left = keras.Input((4,))
    right = keras.Input((3,))
    branches = [keras.layers.Dense(2)(left), keras.layers.Dense(5)(right)]
    outputs = keras.layers.Concatenate()(branches)
    model = keras.Model([left, right], outputs)
    assert count_multiplies(model) == 2 * 4 + 5 * 3
    assert count_multiplies(model, input_shape=[(4,), (3,)]) == 23
    with pytest.raises(ValueError, match="2 inputs"):
        count_multiplies(model, input_shape=(4,))


def test_multiply_ratio_against_a_larger_model():
    small_inputs = keras.Input((12, 10, 4))
    small = keras.Model(small_inputs, keras.layers.Conv2D(6, 3, strides=2, groups=2)(small_inputs))
    assert multiply_ratio(small, _mixed_model()) == pytest.approx(2160 / 9354)
    assert multiply_ratio(_mixed_model(), small) == pytest.approx(9354 / 2160)


# -- added_parameter_ratio ----------------------------------------------------------


def test_added_parameter_ratio_hand_values():
    swr_model = reparametrize(_mixed_model(), exclude=())
    total = sum(MIXED_KERNEL_SIZES)  # 710
    assert added_parameter_ratio(swr_model, gates=[1, 0, 1, 0, 0]) == pytest.approx(
        (108 + 144) / total
    )
    assert added_parameter_ratio(swr_model, gates=np.array([0, 1, 0, 0, 1])) == pytest.approx(
        (288 + 90) / total
    )
    assert added_parameter_ratio(swr_model, gates=[False] * 5) == 0.0


def test_added_parameter_ratio_defaults_to_stored_gates():
    swr_model = reparametrize(_mixed_model(), exclude=())
    assert added_parameter_ratio(swr_model) == 1.0
    reparam_layers(swr_model)[1].gate.assign(0.0)
    assert added_parameter_ratio(swr_model) == pytest.approx((710 - 288) / 710)


@pytest.mark.parametrize(
    "gates, message",
    [
        ([1, 0, 1], "shape \\(5,\\)"),
        ([[1, 0, 1, 0, 0]], "shape \\(5,\\)"),
        ([1, 0, 0.5, 0, 0], "0.5"),
        ([1, 0, 2, 0, 0], "2.0"),
        ([1, 0, float("nan"), 0, 0], "nan"),
    ],
)
def test_added_parameter_ratio_rejects_bad_gates(gates, message):
    swr_model = reparametrize(_mixed_model(), exclude=())
    with pytest.raises(ValueError, match=message):
        added_parameter_ratio(swr_model, gates=gates)


def test_added_parameter_ratio_needs_reparametrised_layers():
    with pytest.raises(ValueError, match="reparametrize"):
        added_parameter_ratio(_mixed_model())


# -- multi_task_parameter_ratio -------------------------------------------------------


def test_multi_task_parameter_ratio():
    backbone = 321_068
    # Fine-tune All over 2 tasks stores two full copies: 3x.
    assert multi_task_parameter_ratio(backbone, [backbone, backbone]) == 3.0
    assert multi_task_parameter_ratio(backbone_parameters=1000, task_parameters=[45, 45]) == 1.09
    assert multi_task_parameter_ratio(1000, []) == 1.0


@pytest.mark.parametrize(
    "backbone, tasks, message",
    [
        ([100, 100], 100, "backbone_parameters"),
        (0, [10], "backbone_parameters"),
        (100, 10, "task_parameters"),
        (100, [10, -1], "-1"),
        (100, [10, "many"], "many"),
    ],
)
def test_multi_task_parameter_ratio_rejects_bad_values(backbone, tasks, message):
    with pytest.raises(ValueError, match=message):
        multi_task_parameter_ratio(backbone, tasks)
