"""SWR end to end on a tiny synthetic transfer task (about a minute on 2 CPU cores).

What it does: pre-trains a small conv net on one synthetic pattern task,
transfers it to another with SWR (super-net -> policy network ->
reparametrisation for each target cost), merges `w0 + b * delta` into a plain
model, checks that the merged model computes what the reparametrised one
does, and prints accuracy and cost per target cost next to fine-tuning all
weights and fine-tuning the classifier only, trained as long as one SWR stage.

A demonstration of the library on a small conv net, not a paper experiment;
the main job is the keyword-spotting recipe, `recipes/kws.py`.

    python recipes/demo.py --target_cost=0.1,0.5 --seed=0
"""

import json
import os
import sys

if not __package__:  # run as `python recipes/demo.py`: import `recipes` as a package
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from absl import app, flags

from recipes import recipe_cli

# TensorFlow's C++ logging would bury the summary table.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "target_cost", ["0.1", "0.5"], "Target cost(s) c in [0, 1]; one policy network serves them all."
)
flags.DEFINE_integer("seed", 0, "Seed of data, weights and sampling.")
flags.DEFINE_integer("epochs", 8, "Epochs of each SWR stage (pre-training uses twice as many).")
flags.DEFINE_float(
    "learning_rate", 1e-3, "Adam learning rate, cosine-annealed per stage (paper: 1e-3 or 5e-4)."
)
flags.DEFINE_float(
    "policy_loss_weight", 1.0, "lambda of L_target + lambda * L_policy (paper, KWS: 1)."
)
flags.DEFINE_string("output_dir", "runs/demo", "Where metrics.json is written.")


def main(argv):
    del argv
    swr_keras = recipe_cli.quiet_import("swr_keras")
    try:
        costs = []
        for text in FLAGS.target_cost:
            try:
                costs.append(float(text))
            except ValueError:
                raise ValueError(
                    f"--target_cost must be numbers in [0, 1]. Received: {text!r}"
                ) from None
        for cost in costs:
            swr_keras.validation.check_target_cost(cost)
        if FLAGS.epochs <= 0:
            raise ValueError(
                f"--epochs must be a positive integer. Received: --epochs={FLAGS.epochs}"
            )
        os.makedirs(FLAGS.output_dir, exist_ok=True)
        if not os.access(FLAGS.output_dir, os.W_OK):
            raise ValueError(
                f"--output_dir={FLAGS.output_dir} is not writable. Choose another directory."
            )
    except ValueError as error:
        recipe_cli.fail("demo.py", error)

    import keras
    import numpy as np
    import tensorflow as tf

    from swr_keras.data.patterns import make_pattern_task

    keras.utils.set_random_seed(FLAGS.seed)

    ## Data: a source task to pre-train on and a different target task.
    def batches(images, labels, shuffle):
        data = tf.data.Dataset.from_tensor_slices((images, labels))
        if shuffle:
            data = data.shuffle(len(labels), seed=FLAGS.seed)
        return data.batch(32).prefetch(tf.data.AUTOTUNE)

    source = make_pattern_task(10, 60, seed=FLAGS.seed)
    target_train = make_pattern_task(6, 30, seed=FLAGS.seed + 1000)
    target_test = make_pattern_task(6, 40, seed=FLAGS.seed + 1000, split=1)

    ## Pre-training on the source task.
    print("== pre-training the backbone on the source task", flush=True)
    backbone = build_backbone(num_classes=10)
    backbone.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    backbone.fit(batches(*source, True), epochs=2 * FLAGS.epochs, verbose=2)

    ## Transfer: a new classifier g on the pre-trained feature extractor f.
    features = backbone.get_layer("features").output
    classifier = keras.layers.Dense(6, activation="softmax", name="classifier")(features)
    transfer_model = keras.Model(backbone.input, classifier, name="transfer")
    swr_model = swr_keras.reparametrize(transfer_model)
    layers = swr_keras.reparam_layers(swr_model)
    print(f"== {len(layers)} reparametrised layers", flush=True)

    trainer = swr_keras.SWRTrainer(
        swr_model, policy_loss_weight=FLAGS.policy_loss_weight, seed=FLAGS.seed
    )
    train = batches(*target_train, True)
    common = dict(epochs=FLAGS.epochs, learning_rate=FLAGS.learning_rate, verbose=2)
    print("== stage 1a: super-net", flush=True)
    swr_keras.fit_stage(trainer, "supernet", train, **common)
    print("== stage 1b: policy network", flush=True)
    swr_keras.fit_stage(trainer, "policy", train, **common)

    backbone_parameters = swr_keras.cost.count_parameters(transfer_model)
    test_images = target_test[0]
    rows = []
    for cost in costs:
        print(f"== stage 2: reparametrisation for c={cost}", flush=True)
        swr_keras.fit_stage(trainer, "reparam", train, target_cost=cost, **common)
        _, accuracy = trainer.evaluate(batches(*target_test, False), verbose=0)
        merged = swr_keras.merge(trainer.model)
        gap = float(np.max(np.abs(merged(test_images) - trainer.model(test_images))))
        task = swr_keras.extract_task_state(trainer.model)
        rows.append(
            {
                "target_cost": cost,
                "accuracy": float(accuracy),
                "added_parameter_ratio": swr_keras.cost.added_parameter_ratio(trainer.model),
                "reparametrised_layers": int(task.gates.sum()),
                "task_parameters": task.num_parameters,
                "param_ratio_two_tasks": swr_keras.cost.multi_task_parameter_ratio(
                    backbone_parameters, [task.num_parameters] * 2
                ),
                "mult_ratio": swr_keras.cost.multiply_ratio(merged, transfer_model),
                "merged_max_abs_diff": gap,
            }
        )

    ## Baselines, trained as long as one SWR stage, for context.
    baselines = []
    for name, classifier_only in (("fine-tune all", False), ("fine-tune classifier", True)):
        print(f"== baseline: {name}", flush=True)
        model = keras.models.clone_model(transfer_model)
        model.set_weights(transfer_model.get_weights())
        for layer in model.layers:
            layer.trainable = layer.name == "classifier" or not classifier_only
        model.compile(
            optimizer=swr_keras.training.cosine_adam(
                FLAGS.learning_rate, FLAGS.epochs * len(train)
            ),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        model.fit(train, epochs=FLAGS.epochs, verbose=2)
        _, accuracy = model.evaluate(batches(*target_test, False), verbose=0)
        task_parameters = swr_keras.cost.count_parameters(
            model.get_layer("classifier") if classifier_only else model
        )
        baselines.append(
            {
                "method": name,
                "accuracy": float(accuracy),
                "task_parameters": task_parameters,
                "param_ratio_two_tasks": swr_keras.cost.multi_task_parameter_ratio(
                    backbone_parameters, [task_parameters] * 2
                ),
            }
        )

    ## Summary.
    print()
    print(
        f"{'method':<22} {'acc':>6} {'+param':>7} {'layers':>7} {'#Param(2 tasks)':>16} "
        f"{'#Mult':>6} {'|merged-swr|':>13}"
    )
    for row in rows:
        print(
            f"{'SWR c=' + format(row['target_cost'], '.2f'):<22} {100 * row['accuracy']:>6.1f} "
            f"{row['added_parameter_ratio']:>7.3f} "
            f"{row['reparametrised_layers']:>4}/{len(layers):<2} "
            f"{row['param_ratio_two_tasks']:>15.2f}x "
            f"{row['mult_ratio']:>5.2f}x {row['merged_max_abs_diff']:>13.1e}"
        )
    for row in baselines:
        print(
            f"{row['method']:<22} {100 * row['accuracy']:>6.1f} {'':>7} {'':>7} "
            f"{row['param_ratio_two_tasks']:>15.2f}x {1.0:>5.2f}x"
        )
    path = os.path.join(FLAGS.output_dir, "metrics.json")
    with open(path + ".tmp", "w") as file:
        json.dump(
            {"backbone_parameters": backbone_parameters, "results": rows, "baselines": baselines},
            file,
            indent=2,
        )
    os.replace(path + ".tmp", path)
    print(f"metrics written to {path}")


def build_backbone(num_classes):
    """A small conv net: strided stem, depthwise-separable blocks, classifier."""
    import keras

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    for filters in (24, 32, 48):
        x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Conv2D(filters, 1, use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D(name="features")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="backbone")


if __name__ == "__main__":
    app.run(main)
