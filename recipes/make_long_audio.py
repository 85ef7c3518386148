"""Writes a long synthetic stream (WAV) with its ground truth (JSON) for detection.

Keywords and other words from the test split of a GSC2-layout corpus, at
random times over background noise and babble
(`swr_keras.streaming.long_audio`):

    python recipes/make_long_audio.py --seconds=600 --output=runs/long.wav
    python recipes/detect.py --wav=runs/long.wav --truth=runs/long.json --hop_ms=100

Without `--data_dir`, the synthetic pre-training corpus is generated into
the cache first; its test speakers are not in the shipped backbone's
training set.
"""

import os
import sys

if not __package__:
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from absl import flags

from recipes import recipe_cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FLAGS = flags.FLAGS
flags.DEFINE_float("seconds", 600.0, "Length of the stream.")
flags.DEFINE_string("output", "runs/long.wav", "The WAV; the truth goes next to it as .json.")
flags.DEFINE_list(
    "keywords",
    ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"],
    "Keywords (folders of the corpus); the corpus's other words are distractors.",
)
flags.DEFINE_string("data_dir", None, "A GSC2-layout corpus; default the synthetic one.")
flags.DEFINE_integer("seed", 0, "Seed of the stream.")


def main(argv):
    del argv
    program = "make_long_audio.py"
    recipe_cli.quiet_import("swr_keras")
    from swr_keras.data.synthetic.layout import write_wav
    from swr_keras.kws.tasks import default_cache_dir
    from swr_keras.streaming import long_audio

    try:
        if FLAGS.data_dir:
            root = FLAGS.data_dir
        else:
            from swr_keras.data import synthetic

            root = synthetic.ensure_default_corpus(default_cache_dir(), corpus="pretraining").gsc2
        words = sorted(
            n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)) and n[0] != "_"
        )
        missing = [k for k in FLAGS.keywords if k not in words]
        if missing:
            raise ValueError(f"--keywords {missing} are not folders of {root}. Words: {words}")
        distractors = [w for w in words if w not in FLAGS.keywords]
        clips = long_audio.gsc2_test_clips(root, list(FLAGS.keywords) + distractors)
        audio, truth = long_audio.make_long_audio(
            {k: clips[k] for k in FLAGS.keywords},
            long_audio.background_tracks(root),
            FLAGS.seconds,
            distractor_clips={w: clips[w] for w in distractors},
            seed=FLAGS.seed,
        )
        directory = os.path.dirname(os.path.abspath(FLAGS.output))
        recipe_cli.check_writable_dir("--output", directory)
    except (ValueError, OSError) as error:
        recipe_cli.fail(program, error)
    temp = f"{FLAGS.output}.tmp-{os.getpid()}"
    write_wav(temp, audio, long_audio.SAMPLE_RATE)
    os.replace(temp, FLAGS.output)
    truth_path = os.path.splitext(FLAGS.output)[0] + ".json"
    recipe_cli.write_json_atomically(
        truth_path,
        {
            "seconds": FLAGS.seconds,
            "keywords": list(FLAGS.keywords),
            "occurrences": [{"word": o.word, "start": o.start, "end": o.end} for o in truth],
        },
    )
    count = sum(o.word in FLAGS.keywords for o in truth)
    print(
        f"wrote {FLAGS.output} ({FLAGS.seconds:g} s, {count} keywords, "
        f"{len(truth) - count} distractors) and {truth_path}"
    )


if __name__ == "__main__":
    recipe_cli.run(main, "make_long_audio.py")
