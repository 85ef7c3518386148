r"""Pre-trains the small ResNet of the image example on the synthetic source domain.

The backbone `recipes/sketch.py` transfers by default: `SmallResNet`
(`swr_keras.models.small_resnet`) trained on the photo-like domain of the
synthetic image corpus (`swr_keras.data.synthetic_images`), the stand-in
for ImageNet; SGD with momentum 0.9 and weight decay, linear warm-up then
cosine per step, random-resized crops and flips.

    python recipes/pretrain_sketch.py
    python recipes/pretrain_sketch.py --epochs=40 --output_dir=runs/small_resnet

Writes `model.keras` and `manifest.json` (command, data, input size and
normalisation, accuracies, sha256) into --output_dir; checkpoints (a killed
run resumes when started again with the same flags) and TensorBoard logs
into --work_dir. The model shipped in saved_models/ came from the command
in its manifest.
"""

import hashlib
import os
import shlex
import sys

if not __package__:  # run as `python recipes/pretrain_sketch.py`: import `recipes` as a package
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from absl import flags

from recipes import recipe_cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

recipe_cli.define_run_eagerly_flag()

PROGRAM = "pretrain_sketch.py"
SOURCE = "synthetic_photo"
# Synthetic objects fill a third to two thirds of the image: crops of the
# reference's 8 % would often hold no object at all.
AREA_RANGE = (0.35, 1.0)

FLAGS = flags.FLAGS
flags.DEFINE_integer("image_size", 40, "Input height and width (the corpus has 64 x 64 images).")
flags.DEFINE_integer("epochs", 30, "Training epochs.")
flags.DEFINE_integer("warmup_epochs", 1, "Linear warm-up epochs.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_float("learning_rate", 0.1, "Peak SGD learning rate after warm-up.")
flags.DEFINE_float("weight_decay", 5e-4, "Weight decay.")
flags.DEFINE_integer("seed", 0, "Seed of weights, data order and augmentation.")
flags.DEFINE_string(
    "output_dir", "runs/pretrain_sketch/model", "Where model.keras and manifest.json go."
)
flags.DEFINE_string(
    "work_dir", "runs/pretrain_sketch", "Checkpoints (for resuming) and TensorBoard logs."
)

# What a checkpoint in --work_dir was trained with; resuming it under other values is refused.
TRAINING_FLAGS = (
    "image_size",
    "epochs",
    "warmup_epochs",
    "batch_size",
    "learning_rate",
    "weight_decay",
    "seed",
)


def check_flags():
    validation = recipe_cli.quiet_import("swr_keras.validation")
    for name in ("image_size", "epochs", "batch_size"):
        validation.check_positive_int(f"--{name}", getattr(FLAGS, name))
    if not 0 <= FLAGS.warmup_epochs < FLAGS.epochs:
        raise ValueError(
            f"--warmup_epochs must be in [0, --epochs). Received: {FLAGS.warmup_epochs}"
        )
    if not FLAGS.learning_rate > 0:
        raise ValueError(f"--learning_rate must be > 0. Received: {FLAGS.learning_rate}")
    if not FLAGS.weight_decay >= 0:
        raise ValueError(f"--weight_decay must be >= 0. Received: {FLAGS.weight_decay}")
    for flag in ("output_dir", "work_dir"):
        recipe_cli.check_writable_dir(f"--{flag}", getattr(FLAGS, flag))


def main(argv):
    del argv
    try:
        check_flags()
        checkpoint_dir = os.path.join(FLAGS.work_dir, "checkpoint")
        run = {name: FLAGS[name].value for name in TRAINING_FLAGS}
        recipe_cli.quiet_import("swr_keras.checkpointing").check_resumable(checkpoint_dir, run)
        datasets = recipe_cli.quiet_import("swr_keras.image.datasets")
        print("== data", flush=True)
        task = datasets.load_task(SOURCE)
    except (ValueError, FileNotFoundError) as error:
        recipe_cli.fail(PROGRAM, error)

    import keras

    from swr_keras import checkpointing, models
    from swr_keras.image import data as data_lib
    from swr_keras.kws import pretraining

    keras.utils.set_random_seed(FLAGS.seed)
    data = data_lib.ImageData(task, FLAGS.image_size, area_range=AREA_RANGE)
    counts = {split: task.splits[split].count for split in ("train", "test")}
    print(f"   {len(task.class_names)} classes, images: {counts}", flush=True)
    input_shape = (FLAGS.image_size, FLAGS.image_size, 3)
    model = models.SmallResNet(len(task.class_names), input_shape=input_shape)
    steps = data.num_train_batches(FLAGS.batch_size)
    model.compile(
        optimizer=pretraining.reference_optimizer(
            "sgd",
            FLAGS.learning_rate,
            FLAGS.epochs * steps,
            FLAGS.warmup_epochs * steps,
            FLAGS.weight_decay,
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    done = checkpointing.read_progress(checkpoint_dir)["epochs_done"]
    print(
        f"== training SmallResNet ({model.count_params():,} parameters) for {FLAGS.epochs} "
        f"epochs of {steps} steps" + (f", resuming after epoch {done}" if done else ""),
        flush=True,
    )
    test = data.evaluation_batches("test", batch_size=100)
    if done < FLAGS.epochs:
        model.fit(
            data.training_batches(
                batch_size=FLAGS.batch_size,
                seed=FLAGS.seed,
                first_epoch=done,
                epochs=FLAGS.epochs,
                augment=True,
            ),
            epochs=FLAGS.epochs,
            initial_epoch=done,
            steps_per_epoch=steps,
            validation_data=test,
            callbacks=[
                checkpointing.EpochCheckpoint(checkpoint_dir, FLAGS.epochs, run=run),
                keras.callbacks.TensorBoard(os.path.join(FLAGS.work_dir, "logs")),
            ],
            verbose=recipe_cli.progress_verbosity(),
        )
    else:
        checkpointing.load_state(model, checkpoint_dir)
    accuracy = float(model.evaluate(test, verbose=0)[1])
    # Shipped without the optimizer's state: transfer starts new optimizers anyway.
    shipped = models.SmallResNet(len(task.class_names), input_shape=input_shape)
    shipped.set_weights(model.get_weights())
    path = os.path.join(FLAGS.output_dir, "model.keras")
    recipe_cli.save_model_atomically(shipped, path)
    manifest = {
        "command": "python recipes/pretrain_sketch.py " + shlex.join(sys.argv[1:]),
        "backbone": "SmallResNet",
        "image_size": FLAGS.image_size,
        "normalization": data.normalization,
        "seed": FLAGS.seed,
        "data": task.description,
        "class_names": list(task.class_names),
        "images": counts,
        "epochs": FLAGS.epochs,
        "test_accuracy": accuracy,
        "parameters": model.count_params(),
        "last_epoch_logs": checkpointing.read_progress(checkpoint_dir).get("logs"),
        "versions": {
            "tensorflow": recipe_cli.quiet_import("tensorflow").__version__,
            "keras": keras.__version__,
        },
        "file": "model.keras",
        "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
    }
    recipe_cli.write_json_atomically(os.path.join(FLAGS.output_dir, "manifest.json"), manifest)
    print(f"test accuracy on the source domain {100 * accuracy:.2f} %")
    print(f"model written to {path}")


if __name__ == "__main__":
    recipe_cli.run(main, PROGRAM)
