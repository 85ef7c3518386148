"""Parameter and multiply counts as the paper reports them (#Param., #Mult.).

Counting conventions:

- **Parameters** (`count_parameters`) are the learnable parameters of the
  model as the paper counts them: every kernel and bias, BN gamma and beta,
  and every other weight of the model, but neither the BN moving mean and
  variance (statistics, not learned by gradient) nor the SWR `kernel_delta`
  and `gate` variables. A reparametrised model therefore counts exactly like
  its source model: `w0` (the `base_kernel`) plus the bias. For a plain model
  the count is the size of all weights minus the BN moving statistics, which
  is what Keras' `count_params()` reports minus those statistics.
- **Multiplies** (`layer_multiplies`, `count_multiplies`) are those of one
  inference on one example: output elements x multiplies per output element
  for every call of a `Conv1D/2D/3D` (`prod(kernel_size) * in_channels /
  groups`), `DepthwiseConv1D/2D` (`prod(kernel_size)`), `Dense`
  (`in_features`, on inputs of any rank) and their `Reparam*` twins. Output
  shapes come from a symbolic trace of one inference on a batch of size 1
  (nothing is computed, nothing is updated), so strides, padding, dilation,
  groups, `depth_multiplier` and `data_format` are all respected, and a layer
  called several times counts once per call. Batch normalisation is excluded
  by default, because at deployment it folds into the preceding convolution;
  `include_batch_norm=True` counts 1 multiply per BN output element. Bias
  additions, activations, pooling and element-wise operations are not
  counted, nor are layer types not listed above (e.g. `SeparableConv2D`,
  `Conv2DTranspose`, attention).
- **Ratios** follow Table 1: #Param. is the stored parameters of the
  backbone plus all tasks relative to one backbone
  (`multi_task_parameter_ratio`); #Mult. is the multiplies of one single-task
  inference relative to the backbone (`multiply_ratio`).
"""

import contextlib
import math
from typing import NamedTuple

import keras
import numpy as np

from swr_keras.layers import ReparamConv2D, ReparamDense, ReparamDepthwiseConv2D, ReparamLayer
from swr_keras.model_walk import iter_layers, reparam_layers
from swr_keras.validation import check_built, resolve_gates, shape_fits

# Layers whose kernel multiplies are counted, by what one output element costs.
_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, ReparamConv2D)
_DEPTHWISE_CONVOLUTIONS = (
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    ReparamDepthwiseConv2D,
)
_DENSE = (keras.layers.Dense, ReparamDense)
_COUNTED = _CONVOLUTIONS + _DEPTHWISE_CONVOLUTIONS + _DENSE


class LayerMultiplies(NamedTuple):
    """The multiplies of one call of one layer.

    Attributes:
        name: the layer's name.
        class_name: the layer's class name, e.g. `"ReparamConv2D"`.
        output_shape: the call's output shape for one example (no batch axis).
        multiplies: multiplies of the call for one example.
    """

    name: str
    class_name: str
    output_shape: tuple
    multiplies: int


def count_parameters(model):
    """Counts the learnable parameters of `model` as the paper does.

    Kernels, biases, BN gamma/beta and every other weight count; BN moving
    statistics and the SWR `kernel_delta`/`gate` variables do not, so a
    reparametrised model counts like its source model. Nested models and
    custom layers (e.g. one holding a `BatchNormalization`) are included;
    a weight shared by several layers counts once.

    Args:
        model: a built Keras model (or layer), plain or reparametrised.

    Returns:
        The number of parameters, a Python `int`.

    Example:

    ```python
    count_parameters(pretrained) == count_parameters(reparametrize(pretrained))
    ```
    """
    check_built(model)
    not_parameters = set()
    for layer in _self_and_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            statistics = (
                getattr(layer, "moving_mean", None),
                getattr(layer, "moving_variance", None),
            )
            not_parameters.update(id(v) for v in statistics if v is not None)
        elif isinstance(layer, ReparamLayer):
            swr_state = (getattr(layer, "kernel_delta", None), getattr(layer, "gate", None))
            not_parameters.update(id(v) for v in swr_state if v is not None)
    counted = set()
    total = 0
    for variable in model.weights:
        if id(variable) in counted or id(variable) in not_parameters:
            continue
        counted.add(id(variable))
        total += math.prod(variable.shape)
    return int(total)


def layer_multiplies(model, input_shape=None, include_batch_norm=False):
    """Lists the multiplies of every counted layer call of one inference.

    See the module docstring for what is counted. The shapes come from a
    symbolic trace of `model` in inference mode on an input of shape
    `[1, *input_shape]`: no tensor is computed and no state is updated, so
    e.g. a `channels_first` model is counted on a CPU that cannot run it.

    Args:
        model: a built Keras model, plain or reparametrised.
        input_shape: the shape of one example, without the batch axis (a
            list of shapes for a model with several inputs). Needed when the
            model's input has unknown dimensions other than the batch (e.g.
            variable-length audio) or the model has no symbolic inputs
            (subclassed models); otherwise it defaults to the model's input
            shape.
        include_batch_norm: also count 1 multiply per output element of every
            `BatchNormalization` call.

    Returns:
        A list of `LayerMultiplies(name, class_name, output_shape,
        multiplies)` in call order.

    Example:

    ```python
    for record in layer_multiplies(model, input_shape=(40, 101, 1)):
        print(record.name, record.multiplies)
    ```
    """
    check_built(model)
    inputs = _symbolic_inputs(model, input_shape)
    layers = [
        layer
        for layer in _self_and_layers(model)
        if isinstance(layer, _COUNTED)
        or (include_batch_norm and isinstance(layer, keras.layers.BatchNormalization))
    ]
    records = []
    with _recording_calls(layers, records):
        _trace(model, inputs)
    return records


def count_multiplies(model, input_shape=None, include_batch_norm=False):
    """Counts the multiplies of one inference of `model` on one example.

    Args:
        model: a built Keras model, plain or reparametrised.
        input_shape: shape of one example without the batch axis; see
            `layer_multiplies`.
        include_batch_norm: also count 1 multiply per BN output element.

    Returns:
        The number of multiplies, a Python `int`.

    Example:

    ```python
    count_multiplies(model, input_shape=(40, 101, 1))
    ```
    """
    records = layer_multiplies(model, input_shape, include_batch_norm)
    return int(sum(record.multiplies for record in records))


def multiply_ratio(model, reference_model, input_shape=None, include_batch_norm=False):
    """#Mult. of `model` relative to `reference_model` (Table 1's #Mult.).

    A merged SWR model has the architecture of its backbone, hence 1.0.

    Args:
        model: the model to measure, e.g. a transferred model.
        reference_model: the backbone it is compared to.
        input_shape: shape of one example without the batch axis, used for
            both models; see `layer_multiplies`.
        include_batch_norm: also count BN multiplies, in both models.

    Returns:
        A Python `float`.
    """
    reference = count_multiplies(reference_model, input_shape, include_batch_norm)
    if reference == 0:
        raise ValueError(
            f"reference_model '{reference_model.name}' has no counted multiplies "
            "(no Conv/DepthwiseConv/Dense call), so no ratio can be formed. "
            "Received: reference multiplies=0. Pass the backbone model."
        )
    return count_multiplies(model, input_shape, include_batch_norm) / reference


def added_parameter_ratio(model, gates=None):
    """Share of reparametrisable kernel parameters a binary policy adds.

    `sum_l b_l N(w_l) / sum_l N(w_l)` over `reparam_layers(model)`, with
    `N(w_l)` the size of layer l's kernel: the "+Param. ratio" of Fig. 2a,
    which the target cost `c` controls.

    Args:
        model: a reparametrised model (see `swr_keras.reparametrize`).
        gates: one 0/1 gate per reparametrised layer, in
            `reparam_layers(model)` order. Defaults to the layers' stored
            `gate` values.

    Returns:
        A Python `float` in [0, 1].

    Example:

    ```python
    added_parameter_ratio(swr_model, gates=[1, 0, 0, 1])
    ```
    """
    layers = reparam_layers(model)
    if not layers:
        raise ValueError(
            f"Model '{model.name}' has no reparametrised layers. Received a "
            "model without Reparam* layers; pass the model returned by "
            "`swr_keras.reparametrize`."
        )
    values = resolve_gates(layers, gates).astype("float64")
    sizes = np.array([math.prod(layer.base_kernel.shape) for layer in layers], "float64")
    return float(np.sum(values * sizes) / np.sum(sizes))


def multi_task_parameter_ratio(backbone_parameters, task_parameters):
    """Table 1's #Param.: stored parameters for all tasks over one backbone.

    `(backbone_parameters + sum(task_parameters)) / backbone_parameters`.
    Fine-tuning everything stores a full copy per task, so 2 tasks give 3.0;
    SWR stores per task only the selected deltas (plus BN statistics and the
    classifier).

    Args:
        backbone_parameters: parameters of the shared pre-trained backbone,
            e.g. `count_parameters(backbone)`.
        task_parameters: a list with the parameters each task stores on top
            of the backbone.

    Returns:
        A Python `float` >= 1.

    Example:

    ```python
    multi_task_parameter_ratio(321_068, [321_068, 321_068])  # 3.0
    ```
    """
    backbone = _number(backbone_parameters)
    if backbone is None or not backbone > 0:
        raise ValueError(
            "backbone_parameters must be a positive number (the backbone's "
            f"parameter count). Received: backbone_parameters={backbone_parameters!r}. "
            "Pass the per-task counts as the list `task_parameters`."
        )
    if isinstance(task_parameters, (str, bytes)) or _number(task_parameters) is not None:
        raise ValueError(
            "task_parameters must be a list with one parameter count per task. "
            f"Received: task_parameters={task_parameters!r}. Wrap a single "
            "task's count in a list, e.g. [count]."
        )
    total = backbone
    for count in task_parameters:
        value = _number(count)
        if value is None or not value >= 0:
            raise ValueError(
                "task_parameters must hold non-negative numbers. Received "
                f"{count!r} in task_parameters={task_parameters!r}. Pass each "
                "task's stored parameter count."
            )
        total += value
    return float(total / backbone)


def _number(value):
    """Returns `value` as a finite float, or None if it is not a number."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _self_and_layers(model):
    return [model, *iter_layers(model)]


def _per_output_element(layer, input_shape):
    """Multiplies one output element of `layer` costs, for its input shape."""
    if isinstance(layer, _DENSE):
        return input_shape[-1]
    if isinstance(layer, _DEPTHWISE_CONVOLUTIONS):
        return math.prod(layer.kernel_size)
    if isinstance(layer, _CONVOLUTIONS):
        axis = -1 if layer.data_format == "channels_last" else 1
        return math.prod(layer.kernel_size) * input_shape[axis] // layer.groups
    return 1  # BatchNormalization: one scale per output element.


@contextlib.contextmanager
def _recording_calls(layers, records):
    """Appends a `LayerMultiplies` to `records` whenever one of `layers` runs.

    Keras has no call hooks, so each layer's `call` is shadowed by an instance
    attribute for the duration of the block and restored afterwards.
    """
    restore = []
    try:
        for layer in layers:
            # Quantised layers run `quantized_call` instead of `call`.
            attribute = "quantized_call" if getattr(layer, "quantization_mode", None) else "call"
            own = vars(layer).get(attribute)
            setattr(layer, attribute, _recorder(layer, getattr(layer, attribute), records))
            restore.append((layer, attribute, own))
        yield
    finally:
        for layer, attribute, own in reversed(restore):
            if own is None:
                delattr(layer, attribute)
            else:
                setattr(layer, attribute, own)


def _recorder(layer, call, records):
    def recording_call(*args, **kwargs):
        outputs = call(*args, **kwargs)
        inputs = args[0] if args else kwargs["inputs"]
        input_shape = tuple(inputs.shape)
        output_shape = tuple(outputs.shape)[1:]
        if None in input_shape or None in output_shape:
            raise ValueError(
                f"Layer '{layer.name}' has a dynamic shape even for a fixed "
                f"input: received input shape {input_shape} and output shape "
                f"(1, *{output_shape}), so its multiplies cannot be counted. "
                "Count a model whose layer shapes follow from its input shape."
            )
        multiplies = math.prod(output_shape) * _per_output_element(layer, input_shape)
        records.append(
            LayerMultiplies(layer.name, layer.__class__.__name__, output_shape, int(multiplies))
        )
        return outputs

    return recording_call


def _trace(model, inputs):
    """Runs `model` on `inputs` inside the backend's symbolic shape tracing.

    A layer without `compute_output_shape` gets its output spec by tracing
    its `call` on backend placeholders (TF: a scratch graph; JAX:
    `eval_shape`), so every inner layer's `call` runs on tensors with static
    shapes while nothing is computed and variable updates are discarded.
    """

    class _Trace(keras.layers.Layer):
        def call(self, inputs):
            return model(inputs, training=False)

    _Trace(name=f"{model.name}_cost_trace")(inputs)


def _symbolic_inputs(model, input_shape):
    """Builds the symbolic batch of one example the shapes are traced with."""
    symbolic = list(getattr(model, "inputs", None) or [])
    if input_shape is None:
        if not symbolic:
            raise ValueError(
                f"Model '{model.name}' has no symbolic inputs, so its layer "
                "output shapes are unknown. Received: input_shape=None. Pass "
                "input_shape, the shape of one example without the batch axis."
            )
        shapes = [tuple(tensor.shape[1:]) for tensor in symbolic]
        for tensor, shape in zip(symbolic, shapes):
            if any(dim is None for dim in shape):
                raise ValueError(
                    f"Model '{model.name}' has an input of shape "
                    f"{tuple(tensor.shape)} with unknown dimensions besides "
                    "the batch, so its layer output shapes (and multiplies) "
                    "are unknown. Received: input_shape=None. Pass the shape "
                    "of one example without the batch axis, e.g. "
                    f"input_shape={_example_shape(shape)} with each <size> "
                    "the size to count for."
                )
    else:
        shapes = _input_shapes(input_shape)
        if symbolic:
            _check_compatible(model, symbolic, shapes, input_shape)
    dtypes = [tensor.dtype for tensor in symbolic] or ["float32"] * len(shapes)
    tensors = [
        keras.Input(batch_shape=(1,) + shape, dtype=dtype) for shape, dtype in zip(shapes, dtypes)
    ]
    if len(tensors) == 1:
        return tensors[0]
    structure = getattr(model, "input", None) if symbolic else None
    return keras.tree.pack_sequence_as(structure, tensors) if structure is not None else tensors


def _example_shape(shape):
    """Writes `shape` with `<size>` for each unknown dimension, e.g. `(40, <size>, 1)`."""
    dims = ["<size>" if dim is None else str(dim) for dim in shape]
    return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"


def _input_shapes(input_shape):
    """Normalises `input_shape` to a list of tuples of positive ints."""
    items = list(input_shape) if isinstance(input_shape, (list, tuple)) else None
    if items and all(isinstance(item, (list, tuple)) for item in items):
        candidates = [tuple(item) for item in items]
    else:
        candidates = [tuple(items)] if items is not None else []
    valid = bool(candidates) and all(
        isinstance(dim, (int, np.integer)) and not isinstance(dim, bool) and dim > 0
        for shape in candidates
        for dim in shape
    )
    if not valid:
        raise ValueError(
            "input_shape must be the shape of one example without the batch "
            "axis, as a tuple of positive ints (a list of such tuples for a "
            f"model with several inputs). Received: input_shape={input_shape!r}. "
            "Pass e.g. input_shape=(40, 101, 1)."
        )
    return [tuple(int(dim) for dim in shape) for shape in candidates]


def _check_compatible(model, symbolic, shapes, input_shape):
    if len(shapes) != len(symbolic):
        raise ValueError(
            f"Model '{model.name}' has {len(symbolic)} inputs, but input_shape "
            f"gives {len(shapes)} shapes. Received: input_shape={input_shape!r}. "
            "Pass one shape (without the batch axis) per model input."
        )
    for tensor, shape in zip(symbolic, shapes):
        expected = tuple(tensor.shape[1:])
        if not shape_fits(expected, shape):
            raise ValueError(
                f"input_shape does not fit model '{model.name}', whose input "
                f"has shape {tuple(tensor.shape)}. Received: "
                f"input_shape={input_shape!r}. Pass a shape of rank "
                f"{len(expected)} (without the batch axis) that keeps the "
                "known dimensions."
            )
