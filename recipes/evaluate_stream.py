"""DET evaluation of a keyword model on a long synthetic stream.

Builds a stream of `--stream_seconds` (default one hour) from the test split
of a GSC2-layout corpus: the model's keywords and other words as
distractors, at random times over background noise and babble
(`swr_keras.streaming.long_audio`). Runs the model on it hop by hop (a
causal model streams; any other runs in the sliding window, computed in
batches with the same result) and writes, per keyword, the DET curve (false
accepts per hour vs miss rate over a sweep of thresholds) as `det.png` and
`det.json`, with the miss rate at two operating points.

    python recipes/evaluate_stream.py --output_dir=runs/det   # the shipped backbone, 1 h

Without `--data_dir`, the synthetic pre-training corpus is generated into
the cache first (its test speakers are not in the backbone's training set).
"""

import os
import sys
import time

if not __package__:
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from absl import flags

from recipes import recipe_cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "model", recipe_cli.SHIPPED_PRETRAINED, "A .keras file or a SavedModel version directory."
)
flags.DEFINE_list("labels", None, "Class names, if the model does not carry them.")
flags.DEFINE_string("data_dir", None, "A GSC2-layout corpus; default the synthetic one.")
flags.DEFINE_float("stream_seconds", 3600.0, "Length of the generated stream.")
flags.DEFINE_integer("hop_ms", 100, "Hop between posteriors, a multiple of 10 ms.")
flags.DEFINE_float("window_seconds", 2.24, "Sliding window (and streaming pool) length.")
flags.DEFINE_integer("smoothing_ms", 300, "Posterior smoothing window.")
flags.DEFINE_float(
    "refractory_seconds", None, "No event within this long of one; default the window length."
)
flags.DEFINE_float(
    "tolerance_seconds",
    None,
    "An event counts for a word up to this long after the word ends; default the window length.",
)
flags.DEFINE_list("operating_points", ["1", "10"], "False accepts per hour to report.")
flags.DEFINE_integer("seed", 0, "Seed of the stream.")
flags.DEFINE_string("output_dir", "runs/det", "Where det.png, det.json, posteriors.npz go.")


def main(argv):
    del argv
    program = "evaluate_stream.py"
    recipe_cli.quiet_import("swr_keras")
    import numpy as np

    from swr_keras.kws.tasks import default_cache_dir
    from swr_keras.streaming import det, long_audio
    from swr_keras.streaming.detector import NON_KEYWORDS
    from swr_keras.streaming.loading import load_keyword_model
    from swr_keras.streaming.spotters import sliding_window_posteriors

    try:
        if FLAGS.hop_ms <= 0 or FLAGS.hop_ms % 10:
            raise ValueError(
                f"--hop_ms must be a positive multiple of 10. Received: {FLAGS.hop_ms}"
            )
        recipe_cli.check_writable_dir("--output_dir", FLAGS.output_dir)
        model = load_keyword_model(FLAGS.model, FLAGS.labels)
        if FLAGS.data_dir:
            root = FLAGS.data_dir
        else:
            from swr_keras.data import synthetic

            root = synthetic.ensure_default_corpus(default_cache_dir(), corpus="pretraining").gsc2
        words = sorted(
            name
            for name in os.listdir(root)
            if os.path.isdir(os.path.join(root, name)) and not name.startswith("_")
        )
        keywords = [w for w in words if w in model.class_names and w not in NON_KEYWORDS]
        if not keywords:
            raise ValueError(f"None of the model's classes is a word of {root}.")
        distractors = [w for w in words if w not in model.class_names]
        clips = long_audio.gsc2_test_clips(root, keywords + distractors)
        audio, truth = long_audio.make_long_audio(
            {w: clips[w] for w in keywords},
            long_audio.background_tracks(root),
            FLAGS.stream_seconds,
            distractor_clips={w: clips[w] for w in distractors},
            seed=FLAGS.seed,
        )
    except (ValueError, OSError) as error:
        recipe_cli.fail(program, error)

    hop_frames = FLAGS.hop_ms // 10
    window_frames = int(round(FLAGS.window_seconds * 100)) + 1
    hop_seconds = hop_frames / 100
    start = time.time()
    if model.causal:
        posteriors = model.spotter(hop_frames, window_frames).process(
            audio[: audio.size - audio.size % (hop_frames * 160)]
        )
        mode = "streaming"
    else:
        posteriors = sliding_window_posteriors(
            model.predict,
            audio,
            model.frames or window_frames,
            hop_frames,
            outputs_probabilities=model.outputs_probabilities,
        )
        mode = f"sliding window of {model.frames or window_frames} frames"
    seconds = time.time() - start
    print(
        f"{FLAGS.stream_seconds / 3600:.2f} h stream, {len(truth)} words "
        f"({sum(o.word in keywords for o in truth)} keywords); {mode}, hop {FLAGS.hop_ms} ms: "
        f"{seconds:.0f} s (real-time factor {seconds / FLAGS.stream_seconds:.3f})"
    )

    with open(os.path.join(FLAGS.output_dir, "posteriors.npz.tmp"), "wb") as file:
        np.savez(file, posteriors=posteriors, hop_seconds=hop_seconds)
    os.replace(
        os.path.join(FLAGS.output_dir, "posteriors.npz.tmp"),
        os.path.join(FLAGS.output_dir, "posteriors.npz"),
    )
    window = (model.frames or window_frames) / 100
    tolerance = FLAGS.tolerance_seconds if FLAGS.tolerance_seconds is not None else window
    refractory = FLAGS.refractory_seconds if FLAGS.refractory_seconds is not None else window
    curves = det.det_curves(
        posteriors,
        model.class_names,
        hop_seconds,
        truth,
        keywords,
        smoothing_seconds=FLAGS.smoothing_ms / 1000,
        refractory_seconds=refractory,
        tolerance_seconds=tolerance,
    )
    limits = [float(x) for x in FLAGS.operating_points]
    summary = {}
    for keyword, curve in curves.items():
        summary[keyword] = {}
        for limit in limits:
            point = det.operating_point(curve, limit)
            summary[keyword][f"fa_per_hour<={limit:g}"] = (
                None
                if point is None
                else {"threshold": point[0], "miss_rate": point[1], "fa_per_hour": point[2]}
            )
    for limit in limits:
        key = f"fa_per_hour<={limit:g}"
        misses = [s[key]["miss_rate"] for s in summary.values() if s[key] is not None]
        print(
            f"at <= {limit:g} false accepts per hour: mean miss rate "
            f"{100 * np.mean(misses):.1f} % over {len(misses)} keywords; "
            + ", ".join(
                f"{k} {100 * s[key]['miss_rate']:.0f} %" if s[key] else f"{k} -"
                for k, s in summary.items()
            )
        )
    output = FLAGS.output_dir
    det.plot_det(
        curves, os.path.join(output, "det.png"), title=f"{os.path.basename(FLAGS.model)}, {mode}"
    )
    recipe_cli.write_json_atomically(
        os.path.join(output, "det.json"),
        {
            "command": " ".join(sys.argv),
            "model": FLAGS.model,
            "mode": mode,
            "stream_seconds": FLAGS.stream_seconds,
            "hop_ms": FLAGS.hop_ms,
            "smoothing_ms": FLAGS.smoothing_ms,
            "refractory_seconds": refractory,
            "tolerance_seconds": tolerance,
            "seconds_to_score": seconds,
            "occurrences": {k: sum(o.word == k for o in truth) for k in keywords},
            "distractors": sum(o.word in distractors for o in truth),
            "operating_points": summary,
            "curves": {k: [list(p) for p in v] for k, v in curves.items()},
        },
    )
    print(f"wrote {output}/det.png and det.json")


if __name__ == "__main__":
    recipe_cli.run(main, "evaluate_stream.py")
