"""Real-time factor of streaming keyword spotting, every mode side by side.

On BC-ResNet-8 with the shipped backbone's weights, 20 ms hops, one stream,
this measures processing time / audio time (the real-time factor, RTF) of:

- the streaming Keras model (`BCResNet(causal=True)` carrying the shipped
  weights, made streaming by `swr_keras.streaming.to_streaming`; front end
  `StreamingLogMel`, one compiled `tf.function` call per hop);
- its TFLite files, float and int8 (`export_streaming_tflite`; front end
  `HostLogMel` in NumPy; one interpreter thread);
- the sliding-window mode on the shipped symmetric model (the whole model on
  the last `--window_seconds` every hop), the only way to run a model trained
  with symmetric padding on a stream;

with the multiplies per second of audio of each mode, counted on the graph
(`swr_keras.cost.count_multiplies` of one hop's call times hops per second).
The causal model here is the shipped weights under causal padding, not a
model trained causal: good for timing, not for accuracy. The int8 file is
calibrated on noise and a tone sweep (timing does not depend on it); its
largest logit difference from the float Keras model is printed for scale.

    python benchmarks/streaming_rtf.py          # about 3 minutes on 2 cores

Target: streaming int8 TFLite RTF below 0.05 on the project's 2-core CPU.
"""

import os
import platform
import tempfile
import time

from absl import app, flags

os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "model",
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        "saved_models",
        "bc_resnet8_multilingual",
        "model.keras",
    ),
    "The symmetric BC-ResNet-8 whose weights every mode uses.",
)
flags.DEFINE_float("seconds", 10.0, "Audio timed per streaming mode (after a 1 s warm-up).")
flags.DEFINE_float("sliding_seconds", 2.0, "Audio timed in the sliding-window mode.")
flags.DEFINE_integer("hop_ms", 20, "Hop, a multiple of 10 ms.")
flags.DEFINE_float("window_seconds", 1.0, "Streaming pool and sliding window length.")
flags.DEFINE_integer("threads", 1, "TensorFlow intra-op and TFLite threads.")


def main(argv):
    del argv
    import keras
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)

    import swr_keras
    from swr_keras.cost import count_multiplies
    from swr_keras.models import BCResNet
    from swr_keras.streaming.front_end import HostLogMel
    from swr_keras.streaming.spotters import SlidingWindowSpotter, StreamingSpotter, keras_predict
    from swr_keras.streaming.tflite_stream import TFLiteStreamingSpotter, export_streaming_tflite

    symmetric = keras.saving.load_model(FLAGS.model, compile=False)
    num_classes = symmetric.output_shape[-1]
    causal = BCResNet(tau=8, num_classes=num_classes, causal=True)
    causal.set_weights(symmetric.get_weights())
    hop_frames = FLAGS.hop_ms // 10
    window_frames = int(round(FLAGS.window_seconds * 100)) + 1
    hops_per_second = 100 / hop_frames
    rng = np.random.default_rng(0)

    def audio(seconds):
        return (0.05 * rng.normal(size=int(seconds * 16000))).astype(np.float32)

    def rtf(spotter, seconds):
        spotter.process(audio(1.0))  # warm-up: tracing, allocation
        samples = audio(seconds)
        start = time.perf_counter()
        spotter.process(samples)
        return (time.perf_counter() - start) / seconds

    streaming_spotter = StreamingSpotter(causal, hop_frames, window_frames)
    streaming = streaming_spotter.streaming_model
    per_hop = count_multiplies(streaming, (40, hop_frames, 1))
    window = count_multiplies(symmetric, (40, window_frames, 1))

    # Calibration streams: noise at three levels and a tone sweep, 2 s each.
    front_end = HostLogMel()
    time_axis = np.arange(32000) / 16000
    calibration = [0.3 * np.sin(2 * np.pi * (200 + 1900 * time_axis) * time_axis)]
    calibration += [level * rng.normal(size=32000) for level in (0.003, 0.03, 0.3)]
    log_mel = []
    for waveform in calibration:
        front_end.reset()
        log_mel.append(front_end(waveform.astype(np.float32))[:, :, np.newaxis])
    directory = tempfile.mkdtemp(prefix="streaming_rtf_")
    start = time.perf_counter()
    files = export_streaming_tflite(streaming, directory, np.stack(log_mel), hop_frames=hop_frames)
    export_seconds = time.perf_counter() - start

    check = audio(2.0)
    keras_rows = StreamingSpotter(causal, hop_frames, window_frames).process(check)
    int8_rows = TFLiteStreamingSpotter(files["int8"]).process(check)
    float_rows = TFLiteStreamingSpotter(files["float"]).process(check)

    rows = [
        ("streaming Keras", rtf(streaming_spotter, FLAGS.seconds), per_hop),
        (
            "streaming TFLite float",
            rtf(TFLiteStreamingSpotter(files["float"], num_threads=FLAGS.threads), FLAGS.seconds),
            per_hop,
        ),
        (
            "streaming TFLite int8",
            rtf(TFLiteStreamingSpotter(files["int8"], num_threads=FLAGS.threads), FLAGS.seconds),
            per_hop,
        ),
        (
            f"sliding window {FLAGS.window_seconds:g} s Keras",
            rtf(
                SlidingWindowSpotter(
                    keras_predict(symmetric), num_classes, window_frames, hop_frames
                ),
                FLAGS.sliding_seconds,
            ),
            window,
        ),
    ]
    print(
        f"BC-ResNet-8 ({FLAGS.model}), {num_classes} classes; hop {FLAGS.hop_ms} ms, "
        f"window {window_frames} frames; {FLAGS.threads} thread(s); {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; tensorflow "
        f"{tf.__version__}, keras {keras.__version__}, swr_keras {swr_keras.__version__}"
    )
    print(
        f"TFLite export {export_seconds:.0f} s: float {files['float_bytes']:,} B, "
        f"int8 {files['int8_bytes']:,} B; max |posterior difference| vs Keras streaming: "
        f"float {np.abs(float_rows - keras_rows).max():.1e}, "
        f"int8 {np.abs(int8_rows - keras_rows).max():.1e}"
    )
    print(f"{'mode':32s} {'RTF':>7s} {'ms/hop':>7s} {'multiplies/s of audio':>22s}")
    for name, factor, multiplies in rows:
        print(
            f"{name:32s} {factor:7.4f} {factor * FLAGS.hop_ms:7.2f} "
            f"{multiplies * hops_per_second:22,.0f}"
        )


if __name__ == "__main__":
    app.run(main)
