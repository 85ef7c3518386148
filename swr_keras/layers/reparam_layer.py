"""The shared machinery of the reparametrised layers: `w = w0 + gate * delta`."""

import contextlib

import keras
from keras import ops


class ReparamLayer(keras.layers.Layer):
    """Base class of the reparametrised twins of Conv2D, DepthwiseConv2D, Dense.

    A reparametrised layer holds the frozen pre-trained kernel `w0`
    (`base_kernel`), a trainable `kernel_delta` initialised to zeros, a
    non-trainable scalar `gate` in {0, 1}, and the frozen pre-trained bias if
    the source layer had one. Its effective kernel is
    `base_kernel + gate * kernel_delta`, so a freshly created layer computes
    exactly what its source layer computed.

    The gate has two modes:

    - fixed (the default): the stored `gate` variable. The effective kernel is
      formed once per call and applied with one convolution/matmul, so
      training costs what fine-tuning the plain layer costs.
    - per example: inside `example_gates(...)` every example of the batch has
      its own gate. By linearity,
      `op(x, w0 + b * d) = op(x, w0) + b * op(x, d)`, which needs two
      applications of the op but never a per-example copy of the kernel.

    Subclasses define `plain_layer_class`, `layer_arguments` (the
    constructor arguments they share with it, besides `activation` and
    `use_bias`), `kernel_shape(input_shape)`, `bias_size(input_shape)` and
    `apply_kernel(inputs, kernel)`.

    Args:
        activation: activation applied after the bias, as in the source layer.
        use_bias: whether the source layer had a bias.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).
    """

    def __init__(self, activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self._example_gates = None

    # -- to be defined by subclasses -----------------------------------------
    def kernel_shape(self, input_shape):
        raise NotImplementedError

    def bias_size(self, input_shape):
        raise NotImplementedError

    def apply_kernel(self, inputs, kernel):
        raise NotImplementedError

    def bias_shape_for(self, outputs):
        """Shape the bias is reshaped to before it is added to `outputs`."""
        return (-1,)

    plain_layer_class = None
    layer_arguments = ()

    # -- weights ---------------------------------------------------------------
    def build(self, input_shape):
        shape = self.kernel_shape(input_shape)
        self.base_kernel = self.add_weight(
            name="base_kernel", shape=shape, initializer="zeros", trainable=False
        )
        self.kernel_delta = self.add_weight(
            name="kernel_delta", shape=shape, initializer="zeros", trainable=True
        )
        self.gate = self.add_weight(name="gate", shape=(), initializer="ones", trainable=False)
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.bias_size(input_shape),),
                initializer="zeros",
                trainable=False,
            )
        else:
            self.bias = None

    def effective_gate(self):
        """The gate the forward pass applies when no per-example gates are set.

        The stored `gate` here; a subclass may derive it from other weights
        (TAPS: a thresholded score). `merge`, `extract_task_state` and the
        added-parameter ratio read the gate through this method, so they
        always agree with the forward pass.
        """
        return self.gate

    @property
    def kernel(self):
        """The effective kernel `base_kernel + effective_gate() * kernel_delta`."""
        return ops.add(self.base_kernel, ops.multiply(self.effective_gate(), self.kernel_delta))

    def merged_kernel(self, gate=None):
        """The effective kernel as a NumPy array, for a gate value (default: effective)."""
        if gate is None:
            gate = ops.convert_to_numpy(self.effective_gate())
        gate = float(gate)
        base = ops.convert_to_numpy(self.base_kernel)
        return base + gate * ops.convert_to_numpy(self.kernel_delta)

    def set_pretrained_weights(self, kernel, bias=None):
        """Loads the source layer's kernel (and bias) into the frozen weights."""
        self.base_kernel.assign(kernel)
        if self.use_bias:
            if bias is None:
                raise ValueError(
                    f"Layer '{self.name}' has use_bias=True but no bias was "
                    "given. Pass the source layer's bias."
                )
            self.bias.assign(bias)

    # -- forward -----------------------------------------------------------------
    def call(self, inputs):
        dtype = self.compute_dtype
        gates = self._example_gates
        if gates is None:
            outputs = self.apply_kernel(inputs, ops.cast(self.kernel, dtype))
        else:
            base = self.apply_kernel(inputs, ops.cast(self.base_kernel, dtype))
            delta = self.apply_kernel(inputs, ops.cast(self.kernel_delta, dtype))
            rank = len(base.shape)
            gates = ops.reshape(ops.cast(gates, dtype), (-1,) + (1,) * (rank - 1))
            outputs = ops.add(base, ops.multiply(gates, delta))
        if self.use_bias:
            bias = ops.reshape(ops.cast(self.bias, dtype), self.bias_shape_for(outputs))
            outputs = ops.add(outputs, bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return self.to_plain_layer().compute_output_shape(input_shape)

    # -- serialisation ---------------------------------------------------------------
    # Saved by name, never merged: w0, delta and the gate stay separate.
    def save_own_variables(self, store):
        store["base_kernel"] = self.base_kernel
        store["kernel_delta"] = self.kernel_delta
        store["gate"] = self.gate
        if self.use_bias:
            store["bias"] = self.bias

    def load_own_variables(self, store):
        self.base_kernel.assign(store["base_kernel"])
        self.kernel_delta.assign(store["kernel_delta"])
        self.gate.assign(store["gate"])
        if self.use_bias:
            self.bias.assign(store["bias"])

    def get_config(self):
        config = super().get_config()
        config.update(_shared_arguments(self, self.layer_arguments))
        return config

    # -- conversion ---------------------------------------------------------------
    @classmethod
    def from_plain_layer(cls, layer):
        """Creates the (unbuilt) reparametrised twin of a plain Keras layer."""
        return cls(
            **_shared_arguments(layer, cls.layer_arguments),
            name=layer.name,
            dtype=layer.dtype_policy,
        )

    def to_plain_layer(self):
        """Creates the (unbuilt) plain Keras layer this layer stands for."""
        return self.plain_layer_class(
            **_shared_arguments(self, self.layer_arguments),
            name=self.name,
            dtype=self.dtype_policy,
        )


def _shared_arguments(layer, names):
    """The constructor arguments a plain layer and its twin have in common."""
    arguments = {name: getattr(layer, name) for name in names}
    arguments["activation"] = keras.activations.serialize(layer.activation)
    arguments["use_bias"] = layer.use_bias
    return arguments


@contextlib.contextmanager
def example_gates(layers, gates):
    """Gives every example its own gate in each of `layers` within the block.

    Args:
        layers: the `ReparamLayer`s, in the order of the columns of `gates`.
        gates: tensor of shape `[batch, len(layers)]`; column `l` gates layer
            `l`. It may carry gradients (e.g. straight-through Gumbel samples).

    Example:

    ```python
    with example_gates(reparam_layers(model), gates):
        outputs = model(x, training=True)
    ```
    """
    if gates.shape[-1] is not None and gates.shape[-1] != len(layers):
        raise ValueError(
            f"gates must have one column per reparametrised layer "
            f"({len(layers)}). Received gates of shape {tuple(gates.shape)}."
        )
    for index, layer in enumerate(layers):
        layer._example_gates = gates[:, index]
    try:
        yield
    finally:
        for layer in layers:
            layer._example_gates = None
