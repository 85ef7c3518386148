"""Turning a causal keyword model into a streaming one, and what it equals.

`to_streaming` clones a plain (merged) causal model, e.g.
`swr_keras.merge(...)` of a `BCResNet(causal=True)` transfer, with every
`CausalTimePadding` replaced by a `StreamingTimeBuffer` and the global
average pool by a `StreamingTimeMean`. The clone takes log-mel frames as
they arrive, `[1, num_mel_bins, new_frames, 1]`, and returns the logits of
the last `window_frames` frames of the stream.

What the streaming model equals (the tests check it to 1e-5 at every hop):
let `h[t]` be the per-frame features of the causal model run on the whole
stream at once (its output before the global pool, averaged over frequency;
the stream's frames before frame 0 are zero, like the causal padding), and
`h[t] = 0` for `t < 0`. After a call whose last frame is `t`, the streaming
model returns `classifier(sum(h[t - window_frames + 1 .. t]) / window_frames)`.
`windowed_reference` computes exactly that without streaming. From frame
`window_frames - 1` on, this is the non-streaming model's pool over the last
`window_frames` frames, with each frame's receptive field reaching into the
real past where the clip model saw zero padding.
"""

import keras
import numpy as np

from swr_keras.kws.serving_export import check_plain_model
from swr_keras.model_walk import clone_replacing, iter_layers
from swr_keras.models.causal_padding import CausalTimePadding
from swr_keras.streaming.layers import StreamingTimeBuffer, StreamingTimeMean
from swr_keras.validation import check_positive_int

# 1 s at a 10 ms hop: the clip length the backbone's pool saw in training.
DEFAULT_WINDOW_FRAMES = 101
_TIME_AXIS = 1  # of a (frequency, time) kernel, stride or padding pair


def to_streaming(model, window_frames=DEFAULT_WINDOW_FRAMES):
    """Returns the streaming twin of a plain causal keyword model.

    Args:
        model: a built plain model, log-mel `[batch, num_mel_bins, time, 1]`
            -> `[batch, num_classes]`, whose time padding is all
            `CausalTimePadding` and that ends in one `GlobalAveragePooling2D`
            (e.g. `swr_keras.merge` of a reparametrised
            `BCResNet(causal=True)`).
        window_frames: frames the streaming pool averages.

    Returns:
        A new Keras model with the source's weights, for one stream (batch
        1), any number of new frames per call; its state lives in
        non-trainable variables (`stream_state_variables`).

    Raises:
        ValueError: the model is reparametrised, not causal (use
            `swr_keras.streaming.SlidingWindowSpotter` for a symmetric one),
            strides in time, or has no single global average pool.
    """
    check_plain_model(model)
    check_positive_int("window_frames", window_frames)
    check_causal(model)
    streaming, _ = clone_replacing(
        model,
        lambda layer: (
            StreamingTimeBuffer(layer.frames, name=layer.name)
            if isinstance(layer, CausalTimePadding)
            else StreamingTimeMean(window_frames, name=layer.name)
            if isinstance(layer, keras.layers.GlobalAveragePooling2D)
            else None
        ),
    )
    return streaming


def check_causal(model):
    """Raises `ValueError` unless every time convolution of `model` is causal."""
    layers = list(iter_layers(model))
    pools = [layer for layer in layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    if len(pools) != 1 or pools[0].keepdims or pools[0].data_format != "channels_last":
        raise ValueError(
            f"Model '{model.name}' must end in one channels-last GlobalAveragePooling2D "
            f"(keepdims=False) to stream; it has {len(pools)}."
        )
    for layer in layers:
        problem = _non_causal_reason(layer)
        if problem:
            raise ValueError(
                f"Layer '{layer.name}' of model '{model.name}' {problem}, so the model is "
                "not causal. Build it with causal=True (e.g. BCResNet(causal=True)), or "
                "run a symmetric model with swr_keras.streaming.SlidingWindowSpotter."
            )
    if not any(isinstance(layer, CausalTimePadding) for layer in layers):
        raise ValueError(
            f"Model '{model.name}' has no CausalTimePadding layer; build it with causal=True."
        )


def _non_causal_reason(layer):
    if isinstance(layer, keras.layers.ZeroPadding2D):
        if any(layer.padding[_TIME_AXIS]):
            return f"pads time by {layer.padding[_TIME_AXIS]}"
        return None
    kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
    if kernel is None or not isinstance(layer, keras.layers.Layer) or len(kernel) != 2:
        return None
    strides = getattr(layer, "strides", (1, 1)) or (1, 1)
    if strides[_TIME_AXIS] != 1:
        return f"strides time by {strides[_TIME_AXIS]}"
    dilation = getattr(layer, "dilation_rate", (1, 1))
    extent = (kernel[_TIME_AXIS] - 1) * dilation[_TIME_AXIS]
    if extent and getattr(layer, "padding", "valid") == "same":
        return "pads time on both sides (padding='same')"
    return None


def stream_state_variables(streaming_model):
    """The state variables of a model returned by `to_streaming`, graph order."""
    return [
        layer.state
        for layer in iter_layers(streaming_model)
        if isinstance(layer, (StreamingTimeBuffer, StreamingTimeMean))
    ]


def reset_states(streaming_model):
    """Zeroes every state variable: the next call starts a new stream."""
    for variable in stream_state_variables(streaming_model):
        variable.assign(np.zeros(variable.shape, variable.dtype))


def windowed_reference(model, log_mel, hop_frames, window_frames=DEFAULT_WINDOW_FRAMES):
    """What the streaming model returns after each hop, computed in one pass.

    Args:
        model: the plain causal model given to `to_streaming`.
        log_mel: `[1, num_mel_bins, time, 1]`, the whole stream's frames.
        hop_frames: frames per streaming call; `time` must be a multiple.
        window_frames: as in `to_streaming`.

    Returns:
        float array `[time // hop_frames, num_classes]`: row `i` is the output
        after the call that received frames `i * hop_frames .. (i + 1) *
        hop_frames - 1`.
    """
    check_causal(model)
    layers = list(iter_layers(model))
    (pool,) = [layer for layer in layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)]
    owner = next(
        layer
        for layer in [model, *layers]
        if isinstance(layer, keras.Model) and pool in layer.layers
    )
    before_pool = keras.Model(owner.inputs[0], pool.input)
    features = keras.ops.convert_to_numpy(before_pool(log_mel, training=False)).mean(axis=1)[0]
    time = features.shape[0]
    if time % hop_frames:
        raise ValueError(
            f"The stream's {time} frames are not a whole number of hops of {hop_frames}."
        )
    padded = np.concatenate([np.zeros((window_frames - 1, features.shape[1])), features])
    sums = np.cumsum(np.concatenate([np.zeros((1, features.shape[1])), padded]), axis=0)
    ends = np.arange(hop_frames, time + 1, hop_frames) + window_frames - 1
    pooled = (sums[ends] - sums[ends - window_frames]) / window_frames
    head = _layers_after(model, owner)
    outputs = pooled.astype(np.float32)
    for layer in head:
        outputs = keras.ops.convert_to_numpy(layer(outputs))
    return outputs


def _layers_after(model, feature_model):
    """The layers applied to the pooled features: the task model's classifier."""
    if feature_model is model:
        return []
    return model.layers[model.layers.index(feature_model) + 1 :]
