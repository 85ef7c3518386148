"""The streaming model as a SavedModel whose state lives in its own variables.

`export_streaming_savedmodel` writes a SavedModel with two functions:
`step(log_mel)` (one hop of frames -> logits, updating the state variables)
and `reset()` (zeroes them). A server or a Python process keeps one loaded
copy per stream; for TFLite, where state is passed in and out explicitly,
see `swr_keras.streaming.tflite_stream`.
"""

import os
import shutil
import uuid

import numpy as np
import tensorflow as tf

from swr_keras.streaming.streaming_model import stream_state_variables
from swr_keras.validation import check_positive_int


def export_streaming_savedmodel(streaming_model, path, *, hop_frames=2):
    """Writes `streaming_model` (from `to_streaming`) as a stateful SavedModel.

    Args:
        streaming_model: a model returned by `to_streaming`.
        path: the SavedModel directory (must not exist); written under a
            temporary name and renamed when complete.
        hop_frames: frames per `step` call.

    Returns:
        `path`.
    """
    check_positive_int("hop_frames", hop_frames)
    if os.path.lexists(path):
        raise FileExistsError(f"{path} already exists; choose a new directory.")
    states = stream_state_variables(streaming_model)
    num_mel_bins = streaming_model.input_shape[1]
    module = tf.Module(name="streaming_keyword_spotter")
    module.variables_ = [v.value for v in streaming_model.weights]

    @tf.function(input_signature=[tf.TensorSpec((1, num_mel_bins, hop_frames, 1), tf.float32)])
    def step(log_mel):
        return streaming_model(log_mel, training=False)

    @tf.function(input_signature=[])
    def reset():
        for state in states:
            state.assign(np.zeros(state.shape, np.float32))
        return tf.constant(True)

    module.step, module.reset = step, reset
    temp = os.path.join(os.path.dirname(os.path.abspath(path)), f".tmp-{uuid.uuid4().hex}")
    try:
        tf.saved_model.save(module, temp, signatures={"step": step, "reset": reset})
        os.rename(temp, path)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return path
