"""SpotTune (Guo et al., 2019): per example, a frozen or a fine-tuned copy of each block.

As in gyhui14/spottune (`spottune_models.py`, `agent_net.py`, `main.py`):
every residual block exists twice, the pre-trained original with frozen
convolutions and a copy that is fine-tuned; a small ResNet, the agent, reads
the same input and emits two logits per block; a hard Gumbel-softmax
(temperature 5) turns them into a per-example choice, and the block's output
is `frozen(x) * (1 - a) + tuned(x) * a`, so both copies run and the choice
trains through the straight-through gradient. The first convolution (the
stem) is fine-tuned, every batch normalisation trains (the official code
freezes convolution weights only), and the classifier is new.

Two things differ from the official code, both stated in BUILD.md:

- at inference the choice is the arg-max of the agent's logits (the
  official code samples Gumbel noise at test time too), so the deployed
  model is deterministic and equals the trained one;
- the agent is the official `agent_net.resnet` (a seed 3x3 conv + BN, one
  basic block per stage with stride 2 and the zero-padded average-pool
  shortcut, BN + ReLU, pooling, a linear layer) with narrower widths, since
  the official 32-256 channels would make the agent 3.6 times BC-ResNet-8.

Which layers form a block is `blocks.block_layout`'s: BC-ResNet's 12
BC-ResBlocks, Res15's 6 pairs of dilated convolutions with their residual
addition. Layers outside the blocks (stem, BC-ResNet's head, Res15's conv13)
are shared: the stem convolution is fine-tuned, the others stay frozen.
"""

import keras
from keras import ops

from swr_keras import distribute
from swr_keras.gumbel import gumbel_softmax
from swr_keras.model_walk import iter_layers
from swr_keras.models import task_model as task_model_lib
from swr_keras.models.batch_norm import FusedBatchNormalization
from swr_keras.module_methods import blocks as blocks_lib

TEMPERATURE = 5.0
# The official agent's widths (32; 64, 128, 256) times 3/8.
AGENT_WIDTHS = (12, 24, 48, 96)


@keras.saving.register_keras_serializable(package="swr_keras")
class BlockPolicy(keras.layers.Layer):
    """Turns the agent's `[batch, 2 * num_blocks]` logits into 0/1 choices.

    In training: a hard Gumbel-softmax sample over each block's two logits
    (straight-through gradient), as the official `gumbel_softmax`; at
    inference: the arg-max of each pair, without noise. `1` selects the
    fine-tuned copy.

    Args:
        num_blocks: number of blocks the agent decides for.
        temperature: temperature of the Gumbel-softmax (5 in the official code).
        seed: seed of the Gumbel noise.

    Input shape: `[batch, 2 * num_blocks]`. Output shape: `[batch, num_blocks]`.
    """

    def __init__(self, num_blocks, temperature=TEMPERATURE, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not temperature > 0:
            raise ValueError(f"temperature must be positive. Received: temperature={temperature!r}")
        self.num_blocks = int(num_blocks)
        self.temperature = float(temperature)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, logits, training=None):
        pairs = ops.reshape(logits, (-1, self.num_blocks, 2))
        if training:
            # Noise drawn for the global batch, each replica keeping its rows
            # (swr_keras.distribute); on one device as keras.random.uniform.
            uniform = distribute.replica_uniform(ops.shape(pairs), self.seed_generator)
            return gumbel_softmax(pairs, self.temperature, uniform=uniform)[..., 1]
        return ops.cast(pairs[..., 1] > pairs[..., 0], logits.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_blocks)

    def get_config(self):
        return {
            **super().get_config(),
            "num_blocks": self.num_blocks,
            "temperature": self.temperature,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="swr_keras")
class BlockChoice(keras.layers.Layer):
    """`frozen * (1 - a) + tuned * a` with `a = policy[:, index]` per example.

    Args:
        index: the block's column of the policy.

    Input: `[frozen_output, tuned_output, policy]`. Output: the shape of
    `frozen_output`.
    """

    def __init__(self, index, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, inputs):
        frozen, tuned, policy = inputs
        choice = ops.reshape(policy[:, self.index], (-1, 1, 1, 1))
        return frozen * (1.0 - choice) + tuned * choice

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "index": self.index}


def spottune_agent(input_shape, num_blocks, widths=AGENT_WIDTHS, name="agent"):
    """The official agent network (`agent_net.resnet`) at `widths`.

    Seed 3x3 conv + BN, then one basic block per remaining width (3x3 conv
    with stride 2, BN, ReLU, 3x3 conv, BN; shortcut: 2x2 average pool and
    zero channels), BN + ReLU, global average pooling and a linear layer
    with two logits per block. Strided convolutions pad explicitly and the
    shortcut pools with `"same"`, so odd sizes (101 frames) line up.

    Args:
        input_shape: shape of one example, e.g. `(40, None, 1)`.
        num_blocks: blocks the agent decides for.
        widths: the seed's width, then one width per basic block.
        name: the model's name.

    Returns:
        A Functional model `[batch, *input_shape] -> [batch, 2 * num_blocks]`.
    """
    inputs = keras.Input(input_shape, name=f"{name}_input")
    x = keras.layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name=f"{name}_seed_conv")(
        inputs
    )
    x = FusedBatchNormalization(name=f"{name}_seed_bn")(x)
    for index, width in enumerate(widths[1:]):
        prefix = f"{name}_block{index}"
        y = keras.layers.ZeroPadding2D(1, name=f"{prefix}_pad")(x)
        y = keras.layers.Conv2D(width, 3, strides=2, use_bias=False, name=f"{prefix}_conv1")(y)
        y = FusedBatchNormalization(name=f"{prefix}_bn1")(y)
        y = keras.layers.ReLU(name=f"{prefix}_relu1")(y)
        y = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{prefix}_conv2")(y)
        y = FusedBatchNormalization(name=f"{prefix}_bn2")(y)
        shortcut = keras.layers.AveragePooling2D(2, padding="same", name=f"{prefix}_pool")(x)
        shortcut = _zero_channels(shortcut, width - x.shape[-1], f"{prefix}_zeros")
        x = keras.layers.Add(name=f"{prefix}_add")([shortcut, y])
        x = keras.layers.ReLU(name=f"{prefix}_relu")(x)
    x = FusedBatchNormalization(name=f"{name}_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
    logits = keras.layers.Dense(2 * num_blocks, name=f"{name}_logits")(x)
    return keras.Model(inputs, logits, name=name)


@keras.saving.register_keras_serializable(package="swr_keras")
class ZeroChannels(keras.layers.Layer):
    """Appends `extra` all-zero channels (the official `DownsampleB` shortcut)."""

    def __init__(self, extra, **kwargs):
        super().__init__(**kwargs)
        self.extra = int(extra)

    def call(self, inputs):
        return ops.concatenate([inputs, ops.zeros_like(inputs)[..., : self.extra]], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + self.extra)

    def get_config(self):
        return {**super().get_config(), "extra": self.extra}


def _zero_channels(x, extra, name):
    if extra < 0 or extra > x.shape[-1]:
        raise ValueError(
            f"Each agent width must be between one and two times the previous one. "
            f"Received a block from {x.shape[-1]} to {x.shape[-1] + extra} channels."
        )
    return ZeroChannels(extra, name=name)(x) if extra else x


def build_spottune(model, *, agent_widths=AGENT_WIDTHS, temperature=TEMPERATURE, seed=None):
    """Returns the SpotTune twin of a task model.

    The feature extractor becomes: shared stem -> for each residual block a
    frozen and a fine-tuned copy (both start as the pre-trained block) and
    a `BlockChoice` driven by the agent's `BlockPolicy` -> shared head. The
    weights are copied; `model` is not changed. With either choice for every
    block the new model computes exactly what `model` computes until it
    trains.

    Args:
        model: a task model of `swr_keras.models` with a residual feature
            extractor (BCResNet, Res15), e.g. after `with_new_classifier`.
        agent_widths: widths of the agent network; see `spottune_agent`.
        temperature: Gumbel-softmax temperature.
        seed: seed of the Gumbel noise.

    Returns:
        A new Functional task model.
    """
    source = task_model_lib.feature_extractor(model)
    layout = blocks_lib.block_layout(source)
    inputs = keras.Input(source.inputs[0].shape[1:], name=source.inputs[0].name)
    stem = blocks_lib.clone_with_weights(
        keras.Model(source.inputs[0], layout.boundaries[0]), "stem"
    )
    x = stem(inputs)
    agent = spottune_agent(source.inputs[0].shape[1:], layout.num_blocks, agent_widths)
    policy = BlockPolicy(layout.num_blocks, temperature, seed, name="policy")(agent(inputs))
    for index in range(layout.num_blocks):
        block = layout.block_model(index, f"block{index}")
        frozen = blocks_lib.clone_with_weights(block, f"block{index}_frozen")
        blocks_lib.set_convolutions_trainable(frozen, False)
        tuned = blocks_lib.clone_with_weights(block, f"block{index}_tuned")
        x = BlockChoice(index, name=f"block{index}_choice")([frozen(x), tuned(x), policy])
    head = blocks_lib.clone_with_weights(
        keras.Model(layout.boundaries[-1], source.outputs[0]), "head"
    )
    blocks_lib.set_convolutions_trainable(head, False)
    features = keras.Model(inputs, head(x), name=task_model_lib.FEATURE_EXTRACTOR)
    return _with_classifier_of(model, features, f"{model.name}_spottune")


def _with_classifier_of(model, features, name):
    source = task_model_lib.classifier(model)
    task = task_model_lib.build_task_model(
        features, source.units, classifier_activation=source.activation, name=name
    )
    task_model_lib.classifier(task).set_weights(source.get_weights())
    return task


def block_copies(model):
    """`[(frozen, tuned), ...]`: the two copies of each block of a SpotTune model."""
    features = task_model_lib.feature_extractor(model)
    by_name = {layer.name: layer for layer in features.layers}
    count = sum(1 for layer in features.layers if isinstance(layer, BlockChoice))
    return [(by_name[f"block{k}_frozen"], by_name[f"block{k}_tuned"]) for k in range(count)]


def policy_model(model):
    """A model mapping the input to the `[batch, num_blocks]` choices of `model`."""
    features = task_model_lib.feature_extractor(model)
    policy = next(layer for layer in iter_layers(features) if isinstance(layer, BlockPolicy))
    return keras.Model(features.input, policy.output)
