"""Residual blocks and stages of a feature extractor, found from its graph.

SpotTune duplicates residual blocks and Rep-Net attaches side modules to the
first block of each stage, so both need to know where a block starts and ends
in a Functional feature extractor. `block_layout` reads that from the graph
(by layer type, never by name):

- a residual block ends at each `Add` layer, or at the activation right after
  it when the `Add` feeds only that activation (BC-ResNet's `relu(... + x)`);
  block `k` starts where block `k - 1` ended;
- the first block starts at the output of the first activation layer in graph
  order (the stem's ReLU in BC-ResNet, `relu0` in Res15);
- a new stage starts at a block whose output width or frequency resolution
  differs from its input's (BC-ResNet's transition blocks). A backbone without
  such a block (Res15: 45 maps, full resolution throughout) is split into two
  stages of equal depth, so that Rep-Net still gets more than one side module.

For BC-ResNet this gives the 12 BC-ResBlocks in 4 stages (2, 2, 4, 4); for
Res15 the 6 pairs of dilated convolutions that each end in a residual
addition (conv1-2, ..., conv11-12), in 2 stages of 3; conv13 and its BN stay
outside the blocks, with the head.
"""

import dataclasses

import keras

from swr_keras.model_walk import iter_layers

_ACTIVATIONS = (keras.layers.ReLU, keras.layers.Activation)


@dataclasses.dataclass
class BlockLayout:
    """Where the residual blocks of a Functional feature extractor lie.

    Attributes:
        boundaries: `num_blocks + 1` symbolic tensors of the source graph:
            block `k` maps `boundaries[k]` to `boundaries[k + 1]`.
        stage_starts: indices of the blocks that begin a stage, ascending,
            starting with 0.
    """

    boundaries: list
    stage_starts: tuple

    @property
    def num_blocks(self):
        return len(self.boundaries) - 1

    def block_model(self, index, name):
        """The block `index` as a Functional model sharing the source's layers."""
        return keras.Model(self.boundaries[index], self.boundaries[index + 1], name=name)


def block_layout(feature_extractor):
    """Finds the residual blocks and stages of `feature_extractor`.

    Args:
        feature_extractor: a Functional model with one input and one output
            built from `Add` residual connections, e.g. the `f` of
            `swr_keras.models.BCResNet` or `Res15`.

    Returns:
        A `BlockLayout`.
    """
    layers = feature_extractor.layers
    adds = [layer for layer in layers if isinstance(layer, keras.layers.Add)]
    activations = [layer for layer in layers if isinstance(layer, _ACTIVATIONS)]
    if not adds or not activations:
        raise ValueError(
            f"Model '{feature_extractor.name}' has no residual block (an Add layer after an "
            f"activation). Received layers {[type(layer).__name__ for layer in layers[:8]]}...; "
            "SpotTune and Rep-Net need a residual backbone such as BCResNet or Res15."
        )
    consumers = _consumers(feature_extractor)
    boundaries = [activations[0].output]
    for add in adds:
        after = consumers.get(id(add), [])
        end = after[0] if len(after) == 1 and isinstance(after[0], _ACTIVATIONS) else add
        boundaries.append(end.output)
    starts = [
        k
        for k in range(len(boundaries) - 1)
        if k > 0 and _shape_changes(boundaries[k], boundaries[k + 1])
    ]
    if not starts:
        starts = [(len(boundaries) - 1) // 2] if len(boundaries) > 2 else []
    return BlockLayout(boundaries=boundaries, stage_starts=(0, *starts))


def _shape_changes(start, end):
    """Whether a block changes the width or the frequency resolution."""
    return start.shape[-1] != end.shape[-1] or start.shape[1] != end.shape[1]


def _consumers(model):
    """`id(layer) -> [layers that take its output]`; each layer is called once."""
    producer_of = {id(layer.output): layer for layer in model.layers}
    consumers = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for tensor in keras.tree.flatten(layer.input):
            producer = producer_of.get(id(tensor))
            if producer is not None:
                consumers.setdefault(id(producer), []).append(layer)
    return consumers


def clone_with_weights(model, name):
    """A copy of a Functional `model`, named `name`, with its own layers and the same weights."""
    copy = keras.models.clone_model(model, recursive=True)
    copy.set_weights(model.get_weights())
    return keras.Model(copy.input, copy.output, name=name)


def set_convolutions_trainable(model, trainable):
    """Freezes (or unfreezes) every convolution inside `model`."""
    for layer in iter_layers(model):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            layer.trainable = trainable
