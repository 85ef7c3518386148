"""The streaming model as TFLite, with its state as extra inputs and outputs.

TFLite files keep no state between invocations that a converter would
quantise sensibly, so the state of every `StreamingTimeBuffer` and
`StreamingTimeMean` becomes an input `state_NN` and an output
`new_state_NN` of one signature; the caller feeds each hop's `new_state_NN`
back as the next hop's `state_NN` (`TFLiteStreamingSpotter` does). The
function is `keras.Model.stateless_call` of the Keras streaming model, which
takes the non-trainable variables as values and returns their updates, so
the TFLite graph is the Keras one with the variables cut out.

The int8 file quantises every operation to int8 (calibrated on hops of
representative streams) and keeps float32 inputs and outputs, so the states
and the log-mel frames cross the boundary in float.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from swr_keras.kws.tflite_export import _write_atomically
from swr_keras.optional import require
from swr_keras.streaming.front_end import HostLogMel
from swr_keras.streaming.spotters import Spotter, softmax
from swr_keras.streaming.streaming_model import stream_state_variables
from swr_keras.validation import check_positive_int

SIGNATURE = "serving_default"
# Calibration hops for the int8 file, spread over the representative streams.
MAX_CALIBRATION_HOPS = 400


def stateless_step(streaming_model, hop_frames):
    """`tf.function(log_mel, *states) -> {"logits", "new_state_NN"...}`.

    Args:
        streaming_model: a model returned by `to_streaming`.
        hop_frames: frames per call (the input is `[1, num_mel_bins,
            hop_frames, 1]`).

    Returns:
        `(function, state_shapes)`; the function's weights are constants.
    """
    check_positive_int("hop_frames", hop_frames)
    states = stream_state_variables(streaming_model)
    state_ids = {id(variable) for variable in states}
    non_trainable = streaming_model.non_trainable_variables
    ordered = [variable for variable in non_trainable if id(variable) in state_ids]
    trainable = [
        tf.constant(keras.ops.convert_to_numpy(v)) for v in streaming_model.trainable_variables
    ]
    fixed = {
        id(v): tf.constant(keras.ops.convert_to_numpy(v))
        for v in non_trainable
        if id(v) not in state_ids
    }
    num_mel_bins = streaming_model.input_shape[1]
    specs = [tf.TensorSpec((1, num_mel_bins, hop_frames, 1), tf.float32, name="log_mel")] + [
        tf.TensorSpec(variable.shape, tf.float32, name=f"state_{index:02d}")
        for index, variable in enumerate(ordered)
    ]

    @tf.function(input_signature=specs)
    def step(log_mel, *state_values):
        by_id = dict(zip((id(v) for v in ordered), state_values))
        values = [by_id.get(id(v), fixed.get(id(v))) for v in non_trainable]
        logits, updated = streaming_model.stateless_call(trainable, values, log_mel, training=False)
        new_by_id = {id(v): value for v, value in zip(non_trainable, updated)}
        outputs = {"logits": logits}
        for index, variable in enumerate(ordered):
            outputs[f"new_state_{index:02d}"] = new_by_id[id(variable)]
        return outputs

    return step, [tuple(variable.shape) for variable in ordered]


def calibration_hops(streaming_model, log_mel_streams, hop_frames, max_hops=MAX_CALIBRATION_HOPS):
    """Inputs of `stateless_step` met while streaming `log_mel_streams`.

    Args:
        streaming_model: a model returned by `to_streaming`.
        log_mel_streams: float `[N, num_mel_bins, time, 1]`, each a stream
            started from zero state.
        hop_frames: frames per hop.
        max_hops: most hops returned, evenly spread.

    Returns:
        list of `[log_mel, *states]` NumPy lists.
    """
    step, shapes = stateless_step(streaming_model, hop_frames)
    hops = []
    for stream in np.asarray(log_mel_streams, np.float32):
        states = [np.zeros(shape, np.float32) for shape in shapes]
        for start in range(0, stream.shape[1] - hop_frames + 1, hop_frames):
            frames = stream[np.newaxis, :, start : start + hop_frames]
            hops.append([frames, *states])
            outputs = step(tf.constant(frames), *[tf.constant(s) for s in states])
            states = [outputs[f"new_state_{i:02d}"].numpy() for i in range(len(shapes))]
    if not hops:
        raise ValueError(
            f"log_mel_streams hold no hop of {hop_frames} frames. Received shape "
            f"{np.shape(log_mel_streams)}."
        )
    keep = np.linspace(0, len(hops) - 1, min(max_hops, len(hops))).round().astype(int)
    return [hops[index] for index in keep]


def export_streaming_tflite(
    streaming_model,
    output_dir,
    representative_log_mel,
    *,
    hop_frames=2,
    name="streaming",
    kinds=("float", "int8"),
):
    """Writes `<name>_float.tflite` and `<name>_int8.tflite` of a streaming model.

    Args:
        streaming_model: a model returned by `to_streaming`.
        output_dir: where the files go (created if missing).
        representative_log_mel: float `[N, num_mel_bins, time, 1]` log-mel
            streams (e.g. a few test clips) for the int8 calibration.
        hop_frames: frames per invocation.
        name: file name prefix.
        kinds: which files to write, `"float"` and/or `"int8"`.

    Returns:
        `{"float": path, "int8": path, "float_bytes": int, "int8_bytes": int}`.
    """
    unknown = set(kinds) - {"float", "int8"}
    if unknown or not kinds:
        raise ValueError(f"kinds must name 'float' and/or 'int8'. Received: kinds={kinds!r}")
    step, _ = stateless_step(streaming_model, hop_frames)
    hops = calibration_hops(streaming_model, representative_log_mel, hop_frames)
    function = step.get_concrete_function()
    module = tf.Module(name=name)
    module.step = step

    def representative_dataset():
        for hop in hops:
            yield {
                "log_mel": hop[0],
                **{f"state_{index:02d}": state for index, state in enumerate(hop[1:])},
            }

    result = {}
    os.makedirs(output_dir, exist_ok=True)
    for kind in kinds:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
        if kind == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative_dataset
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        content = converter.convert()
        path = os.path.join(output_dir, f"{name}_{kind}.tflite")
        _write_atomically(path, content)
        result[kind], result[f"{kind}_bytes"] = path, len(content)
    return result


class TFLiteStreamingSpotter(Spotter):
    """A streaming TFLite file hop by hop, its state kept in NumPy arrays.

    Args:
        path: a file written by `export_streaming_tflite`.
        log_mel: the `LogMel` the model was trained with (front end on the
            host, `HostLogMel`).
        num_threads: interpreter threads.
    """

    def __init__(self, path, log_mel=None, num_threads=1):
        litert = require("ai_edge_litert.interpreter", "kws", "Running TFLite files")
        self.interpreter = litert.Interpreter(model_path=os.fspath(path), num_threads=num_threads)
        self._runner = self.interpreter.get_signature_runner(SIGNATURE)
        details = self._runner.get_input_details()
        hop_frames = details["log_mel"]["shape"][2]
        self.front_end = HostLogMel(log_mel)
        super().__init__(int(hop_frames), self.front_end.hop_length)
        self._state_shapes = {
            key: tuple(value["shape"]) for key, value in details.items() if key.startswith("state_")
        }
        self.num_classes = int(self._runner.get_output_details()["logits"]["shape"][-1])
        self.reset()

    def reset(self):
        self.front_end.reset()
        self._states = {
            key: np.zeros(shape, np.float32) for key, shape in self._state_shapes.items()
        }

    def logits(self, log_mel):
        """One invocation on `[1, num_mel_bins, hop_frames, 1]` frames."""
        outputs = self._runner(log_mel=np.asarray(log_mel, np.float32), **self._states)
        self._states = {key: outputs[f"new_{key}"] for key in self._states}
        return outputs["logits"][0]

    def _hop(self, samples):
        frames = self.front_end(samples)[np.newaxis, :, :, np.newaxis]
        return softmax(self.logits(frames))
