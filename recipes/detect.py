"""Wake-word detection on a long WAV or a live raw-PCM stream.

Prints one line per event, `start_seconds<TAB>keyword<TAB>score` (or JSON
lines with `--json`), as each event closes:

    python recipes/detect.py --wav=long.wav
    arecord -q -f S16_LE -r 16000 -c 1 -t raw | python recipes/detect.py --stdin

`--model` is a `.keras` file (class names from `--labels` or a
`manifest.json` next to it; default the shipped backbone) or a SavedModel
version directory that `recipes/kws.py` exports. A causal model streams (each
hop computes only its new frames); any other runs in a sliding window (the
whole model on the last `--window_seconds` every hop; for a SavedModel, the
clip length it was exported for). With `--truth` (the JSON that
`recipes/make_long_audio.py` writes) it also prints the miss rate and the
false accepts per hour.
"""

import json
import os
import sys

if not __package__:
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import numpy as np
from absl import flags

from recipes import recipe_cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "model", recipe_cli.SHIPPED_PRETRAINED, "A .keras file or a SavedModel version directory."
)
flags.DEFINE_list("labels", None, "Class names, if the model does not carry them.")
flags.DEFINE_string("wav", None, "A 16 kHz mono 16-bit WAV file.")
flags.DEFINE_bool("stdin", False, "Read raw 16 kHz mono signed 16-bit little-endian PCM.")
flags.DEFINE_bool("json", False, "JSON lines instead of tab-separated lines.")
flags.DEFINE_integer("hop_ms", 20, "Hop between posteriors, a multiple of 10 ms.")
flags.DEFINE_float("window_seconds", 2.24, "Sliding window (or streaming pool) length.")
flags.DEFINE_list(
    "threshold", ["0.5"], "One threshold for every keyword, or keyword=threshold pairs."
)
flags.DEFINE_integer("smoothing_ms", 300, "Posterior smoothing window.")
flags.DEFINE_float(
    "refractory_seconds", None, "No event within this long of one; default the window length."
)
flags.DEFINE_string("truth", None, "Ground truth JSON: also print miss rate and false accepts.")


def _thresholds(values):
    if len(values) == 1 and "=" not in values[0]:
        return float(values[0])
    pairs = [value.split("=", 1) for value in values]
    if not all(len(pair) == 2 for pair in pairs):
        raise ValueError(
            f"--threshold must be one number or keyword=number pairs. Received: {values}"
        )
    return {keyword: float(number) for keyword, number in pairs}


def _print(event):
    if FLAGS.json:
        print(
            json.dumps(
                {
                    "start": event.start,
                    "end": event.end,
                    "keyword": event.keyword,
                    "score": round(event.score, 4),
                },
                ensure_ascii=False,
            ),
            flush=True,
        )
    else:
        print(f"{event.start:.2f}\t{event.keyword}\t{event.score:.3f}", flush=True)


def main(argv):
    del argv
    program = "detect.py"
    recipe_cli.quiet_import("swr_keras")
    from swr_keras.data.audio import read_wav
    from swr_keras.streaming.det import match_events
    from swr_keras.streaming.detector import Detector
    from swr_keras.streaming.loading import load_keyword_model
    from swr_keras.streaming.long_audio import Occurrence
    from swr_keras.streaming.spotters import sliding_window_posteriors

    try:
        if bool(FLAGS.wav) == FLAGS.stdin:
            raise ValueError("Pass exactly one of --wav=FILE and --stdin.")
        if FLAGS.hop_ms <= 0 or FLAGS.hop_ms % 10:
            raise ValueError(
                f"--hop_ms must be a positive multiple of 10. Received: {FLAGS.hop_ms}"
            )
        model = load_keyword_model(FLAGS.model, FLAGS.labels)
        hop_frames = FLAGS.hop_ms // 10
        window_frames = model.frames or int(round(FLAGS.window_seconds * 100)) + 1
        window_seconds = window_frames / 100
        refractory = FLAGS.refractory_seconds
        detector = Detector(
            model.class_names,
            hop_frames / 100,
            thresholds=_thresholds(FLAGS.threshold),
            smoothing_seconds=FLAGS.smoothing_ms / 1000,
            refractory_seconds=window_seconds if refractory is None else refractory,
        )
        truth = None
        if FLAGS.truth:
            with open(FLAGS.truth, encoding="utf-8") as file:
                truth = json.load(file)
        audio = read_wav(FLAGS.wav, sample_rate=16000) if FLAGS.wav else None
    except (ValueError, OSError, KeyError) as error:
        recipe_cli.fail(program, error)

    hop_samples = hop_frames * 160
    events = []
    if audio is not None and not model.causal:
        # The sliding window in batches: the rows a hop-by-hop run gives, faster.
        posteriors = sliding_window_posteriors(
            model.predict,
            audio,
            window_frames,
            hop_frames,
            outputs_probabilities=model.outputs_probabilities,
        )
        events = detector.update(posteriors)
        for event in events:
            _print(event)
        seconds = len(posteriors) * hop_samples / 16000
    else:
        spotter = model.spotter(hop_frames, window_frames)
        chunks = (
            (
                audio[i : i + hop_samples]
                for i in range(0, audio.size - hop_samples + 1, hop_samples)
            )
            if audio is not None
            else _stdin_hops(hop_samples)
        )
        hops = 0
        for chunk in chunks:
            hops += 1
            for event in detector.update(spotter.process(chunk)):
                events.append(event)
                _print(event)
        seconds = hops * hop_samples / 16000
    for event in detector.flush():
        events.append(event)
        _print(event)

    if truth is not None:
        keywords = [k for k in truth["keywords"] if k in model.class_names]
        occurrences = [Occurrence(o["word"], o["start"], o["end"]) for o in truth["occurrences"]]
        counts = match_events(events, occurrences, window_seconds)
        total = sum(o.word in keywords for o in occurrences)
        hits = sum(counts.get(k, (0, 0))[0] for k in keywords)
        false_accepts = sum(c[1] for c in counts.values())
        miss_rate = 1 - hits / max(total, 1)
        print(
            f"{hits}/{total} keywords detected: miss rate {100 * miss_rate:.1f} %, "
            f"{false_accepts} false accepts in {seconds / 60:.1f} min = "
            f"{false_accepts / (seconds / 3600):.1f} per hour",
            file=sys.stderr,
        )


def _stdin_hops(hop_samples):
    """Hops of float samples from raw 16-bit PCM on stdin, until it closes."""
    stream = sys.stdin.buffer
    while True:
        data = stream.read(hop_samples * 2)
        if len(data) < hop_samples * 2:
            return
        yield np.frombuffer(data, "<i2").astype(np.float32) / 32768.0


if __name__ == "__main__":
    recipe_cli.run(main, "detect.py")
