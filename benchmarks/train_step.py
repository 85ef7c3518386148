"""Training-step cost of SWR next to plain fine-tuning, measured side by side.

Prints samples/s of one training step for: plain fine-tuning (every weight
trainable), and the SWR stages `supernet`, `policy` and `reparam`, with their
ratios to the plain step; then inference of the merged SWR model against the
original backbone, with the number of graph ops of each.

    python benchmarks/train_step.py --batch_size=100 --steps=20

The model is a convolutional net with strided, depthwise and 1x1 layers
(`--width` scales its channels); backbones of the paper plug in here once
they exist.
"""

import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", 100, "Examples per step.")
flags.DEFINE_integer("steps", 20, "Timed steps per measurement (after 3 warm-up steps).")
flags.DEFINE_integer("repeats", 3, "Measurements per configuration; the best is reported.")
flags.DEFINE_integer("width", 64, "Channels of the first block of the benchmark net.")
flags.DEFINE_integer("seed", 0, "Seed of weights and data.")


def build_net(width, num_classes=12):
    import keras

    inputs = keras.Input((40, 101, 1))
    x = keras.layers.Conv2D(width, 5, strides=(2, 1), padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    for multiplier, stride in ((1, 1), (1.5, 2), (2, 2), (2.5, 1)):
        filters = int(width * multiplier)
        x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Conv2D(filters, 1, use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("swish")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def time_fit(model, data, steps, repeats):
    """Best samples/s of `fit` over `steps` steps, after a warm-up."""
    model.fit(data, epochs=1, steps_per_epoch=3, verbose=0)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
        best = min(best, time.perf_counter() - start)
    return steps * FLAGS.batch_size / best


def time_predict(model, batch, steps, repeats):
    import tensorflow as tf

    function = tf.function(lambda x: model(x, training=False))
    function(batch)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            function(batch).numpy()
        best = min(best, time.perf_counter() - start)
    ops = len(function.get_concrete_function(batch).graph.get_operations())
    return steps * FLAGS.batch_size / best, ops


def main(argv):
    del argv
    import keras
    import numpy as np
    import tensorflow as tf

    import swr_keras

    keras.utils.set_random_seed(FLAGS.seed)
    rng = np.random.default_rng(FLAGS.seed)
    x = rng.normal(size=(FLAGS.batch_size, 40, 101, 1)).astype("float32")
    y = rng.integers(0, 12, FLAGS.batch_size)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()

    backbone = build_net(FLAGS.width)
    print(f"benchmark net: {swr_keras.cost.count_parameters(backbone):,} parameters, "
          f"{swr_keras.cost.count_multiplies(backbone):,} multiplies; batch {FLAGS.batch_size}")

    plain = keras.models.clone_model(backbone)
    plain.set_weights(backbone.get_weights())
    plain.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    results = {"plain fine-tune": time_fit(plain, data, FLAGS.steps, FLAGS.repeats)}

    trainer = swr_keras.SWRTrainer(swr_keras.reparametrize(backbone), seed=FLAGS.seed)
    layers = swr_keras.reparam_layers(trainer.model)
    for stage in ("supernet", "policy", "reparam"):
        if stage == "reparam":
            # Half the layers gated, whatever the untrained policy says.
            trainer.policy_network.logits.kernel.assign(
                np.zeros(trainer.policy_network.logits.kernel.shape))
            picks = np.arange(len(layers)) % 2
            trainer.policy_network.logits.bias.assign(
                np.stack([picks - 0.5, 0.5 - picks], -1).reshape(-1))
            trainer.set_stage(stage, target_cost=0.5)
        else:
            trainer.set_stage(stage)
        trainer.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        results[f"SWR {stage}"] = time_fit(trainer, data, FLAGS.steps, FLAGS.repeats)

    base = results["plain fine-tune"]
    print(f"\n{'training step':<18} {'samples/s':>10} {'time vs plain':>14}")
    for name, rate in results.items():
        print(f"{name:<18} {rate:>10.1f} {base / rate:>13.2f}x")

    merged = swr_keras.merge(trainer.model)
    original_rate, original_ops = time_predict(backbone, x, FLAGS.steps, FLAGS.repeats)
    merged_rate, merged_ops = time_predict(merged, x, FLAGS.steps, FLAGS.repeats)
    print(f"\n{'inference':<18} {'samples/s':>10} {'time vs orig':>14} {'graph ops':>10}")
    print(f"{'original':<18} {original_rate:>10.1f} {1.0:>13.2f}x {original_ops:>10}")
    print(f"{'merged SWR':<18} {merged_rate:>10.1f} {original_rate / merged_rate:>13.2f}x {merged_ops:>10}")


if __name__ == "__main__":
    app.run(main)
