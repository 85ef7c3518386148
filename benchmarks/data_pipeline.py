"""Throughput of the keyword-spotting training pipeline vs. a training step.

What it measures, on a corpus it generates (noisy tones written as WAVs):

1. GSC2 pipeline (16 kHz, 1 s) and MC-KWS pipeline (48 kHz, 1.3-3 s clips,
   resampled in-graph to 16 kHz, cropped/padded to 2.24 s): clips/s of the
   full training pipeline - decode, resample, pad/crop, noise + shift
   augmentation, LogMel, SpecAugment - for the first epoch (which also fills
   the cache) and for later epochs (served from the cache).
2. The training consumption rate it has to keep up with: either measured here
   from a stand-in conv net (NOT BC-ResNet-8: a stem conv plus depthwise-
   separable blocks with a similar multiply count, ~90 M per 1 s clip), or
   given with `--train_samples_per_second` (a figure measured elsewhere,
   e.g. the real BC-ResNet-8 `fit`).
3. Optionally (`--end_to_end`) one `fit` epoch of the stand-in fed by the
   pipeline vs. fed from in-memory features: the pipeline's cost when both
   share the same cores.

Rates are given per wall-clock second and per CPU second of this process
(`time.process_time`, all threads): when other jobs share the cores the wall
figures swing by 2-3x, while the CPU-time ratio (how many training steps'
worth of CPU one pipeline step costs) stays put.

Run (the project's 2-core machine; about 2-3 minutes):

    .venv/bin/python benchmarks/data_pipeline.py --threads 2 --end_to_end

The pipeline should deliver at least 5x the training consumption.
"""

import argparse
import json
import os
import tempfile
import time
import wave

import numpy as np

KEYWORDS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes")
MC_KNOWN = tuple(f"kw{i}" for i in range(10))


def _write_wav(path, samples, sample_rate):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = np.round(np.clip(samples, -1, 32767 / 32768) * 32768).astype("<i2")
    with wave.open(path, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(data.tobytes())


def _clip(rng, seconds, sample_rate):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 3000) * t)
    return tone + 0.02 * rng.standard_normal(len(t))


def make_corpora(root, num_clips, seed=0):
    """Writes a GSC2-layout and an MC-KWS (plain layout) corpus."""
    rng = np.random.default_rng(seed)
    gsc = os.path.join(root, "gsc2")
    words = KEYWORDS + ("bed", "cat")
    valid, test = [], []
    for i in range(num_clips):
        word = words[i % len(words)]
        name = f"{i // len(words):08x}_nohash_0.wav"
        _write_wav(os.path.join(gsc, word, name), _clip(rng, 1.0, 16000), 16000)
        bucket = (i // len(words)) % 10
        (valid if bucket == 8 else test if bucket == 9 else []).append(f"{word}/{name}")
    for n in range(3):
        _write_wav(
            os.path.join(gsc, "_background_noise_", f"noise{n}.wav"),
            0.5 * rng.standard_normal(60 * 16000),
            16000,
        )
    with open(os.path.join(gsc, "validation_list.txt"), "w") as f:
        f.write("\n".join(valid) + "\n")
    with open(os.path.join(gsc, "testing_list.txt"), "w") as f:
        f.write("\n".join(test) + "\n")
    mc = os.path.join(root, "mc_kws")
    mc_words = MC_KNOWN + ("unk0", "unk1")
    for i in range(num_clips):
        word = mc_words[i % len(mc_words)]
        speaker = f"S{(i // len(mc_words)) % 37:02d}"
        _write_wav(
            os.path.join(mc, word, f"{speaker}_{i}.wav"),
            _clip(rng, rng.uniform(1.3, 3.0), 48000),
            48000,
        )
    mapping = os.path.join(root, "mapping.json")
    with open(mapping, "w") as f:
        json.dump(
            {
                "known": list(MC_KNOWN),
                "unknown": ["unk0", "unk1"],
                "excluded": [],
                "clip_seconds": 2.24,
            },
            f,
        )
    return gsc, mc, mapping


def pipeline_rate(corpus, batch_size, epochs):
    """Per epoch: (clips per wall second, clips per CPU second)."""
    from swr_keras.data import pipeline

    dataset = pipeline.make_dataset(corpus, "train", batch_size=batch_size)
    rates = []
    for _ in range(epochs):
        wall, cpu, count = time.perf_counter(), time.process_time(), 0
        for features, _ in dataset:
            count += int(features.shape[0])
        rates.append((count / (time.perf_counter() - wall), count / (time.process_time() - cpu)))
    return rates


def stand_in_model(num_frames, num_classes=12):
    """A small conv net with about BC-ResNet-8's multiply count (not it)."""
    import keras
    from keras import layers

    inputs = keras.Input((40, num_frames, 1))
    x = layers.Conv2D(128, 5, strides=(2, 1), padding="same", use_bias=False)(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for channels, stride in (
        (64, 1),
        (64, 1),
        (96, 2),
        (96, 1),
        (128, 2),
        (128, 1),
        (160, 1),
        (160, 1),
    ):
        if stride > 1:  # TF's depthwise conv needs equal strides
            x = layers.MaxPooling2D((stride, 1))(x)
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = layers.Conv2D(channels, 1, use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(num_classes)(x))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def multiplies(model):
    """Multiplies of one forward pass (convs and dense only)."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            # Depthwise kernels are [kh, kw, channels, 1]: the same formula.
            total += int(np.prod(layer.output.shape[1:3])) * int(np.prod(layer.kernel.shape))
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return total


def training_rate(model, batch_size, steps):
    x = np.random.default_rng(0).normal(size=(batch_size * steps, *model.input_shape[1:]))
    y = np.arange(batch_size * steps) % 12
    model.fit(x[: batch_size * 2], y[: batch_size * 2], batch_size=batch_size, verbose=0)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(x, y, batch_size=batch_size, verbose=0)
    return (
        batch_size * steps / (time.perf_counter() - wall),
        batch_size * steps / (time.process_time() - cpu),
    )


def end_to_end(corpus, batch_size):
    """Seconds of one fit epoch fed by the pipeline vs. from memory."""
    from swr_keras.data import pipeline

    dataset = pipeline.make_dataset(corpus, "train", batch_size=batch_size)
    features, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    features, labels = np.concatenate(features), np.concatenate(labels)
    model = stand_in_model(features.shape[2])
    model.fit(features[:batch_size], labels[:batch_size], verbose=0)
    start = time.perf_counter()
    model.fit(features, labels, batch_size=batch_size, verbose=0)
    from_memory = time.perf_counter() - start
    start = time.perf_counter()
    model.fit(dataset, verbose=0, shuffle=False)
    from_pipeline = time.perf_counter() - start
    return from_memory, from_pipeline, len(labels)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_clips", type=int, default=2000, help="clips per generated corpus")
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=2, help="TF intra/inter-op threads (0 = TF default)"
    )
    parser.add_argument(
        "--train_samples_per_second",
        type=float,
        default=None,
        help="training consumption measured elsewhere (e.g. "
        "BC-ResNet-8 fit); skips the stand-in measurement",
    )
    parser.add_argument("--train_steps", type=int, default=10)
    parser.add_argument("--end_to_end", action="store_true")
    args = parser.parse_args()

    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from swr_keras.data import gsc2, mc_kws

    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        gsc_root, mc_root, mapping = make_corpora(root, args.num_clips)
        print(f"generated 2 x {args.num_clips} clips in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        corpora = {
            "GSC2 (16 kHz, 1 s)": gsc2.list_gsc2(gsc_root),
            "MC-KWS (48 kHz -> 16 kHz, 2.24 s)": mc_kws.list_mc_kws(
                mc_root, os.path.join(gsc_root, "_background_noise_"), mapping
            ),
        }
        print(f"listed + validated both in {time.perf_counter() - start:.1f} s")
        for name, corpus in corpora.items():
            frames = 1 + corpus.clip_samples // 160
            rates = pipeline_rate(corpus, args.batch_size, args.epochs)
            if args.train_samples_per_second:
                train = (args.train_samples_per_second, None)
                source = "given by --train_samples_per_second"
            else:
                model = stand_in_model(frames)
                train = training_rate(model, args.batch_size, args.train_steps)
                source = f"measured, stand-in conv net {multiplies(model) / 1e6:.0f} M mults/clip"
            cached = tuple(np.mean([r[i] for r in rates[1:] or rates[:1]]) for i in range(2))
            print(f"{name}: train split {len(corpus.splits['train'][0])} clips")
            print(
                f"  training consumption: {train[0]:.0f} samples/s wall"
                + (f", {train[1]:.0f} per CPU-second" if train[1] else "")
                + f" ({source})"
            )
            for label, (wall, cpu) in (
                ("epoch 1 (decode+resample+augment+log-mel)", rates[0]),
                ("later epochs (cached waveforms)          ", cached),
            ):
                line = (
                    f"  pipeline {label}: {wall:6.0f} clips/s wall (ratio {wall / train[0]:5.1f}x)"
                )
                if train[1]:
                    # CPU-time ratio: robust when other jobs share the cores.
                    line += f", {cpu:6.0f} per CPU-s (ratio {cpu / train[1]:5.1f}x)"
                print(line)
            if args.end_to_end:
                memory, piped, count = end_to_end(corpus, args.batch_size)
                print(
                    f"  stand-in fit epoch of {count}: {memory:.1f} s from memory, "
                    f"{piped:.1f} s fed by the pipeline (first epoch, cache cold)"
                )


if __name__ == "__main__":
    main()
