r"""Pre-trains a keyword-spotting backbone on the multi-lingual union (22 classes).

The backbone the SWR recipe (`recipes/kws.py`) transfers from: BC-ResNet
(any tau) or Res15, trained on the English (GSC2) and Mandarin (MC-KWS)
classes together, with the reference scheme by default: SGD (momentum 0.9,
weight decay 1e-3), linear warm-up then cosine per step, batch 100,
noise/shift/SpecAugment augmentation.

    python recipes/pretrain_kws.py --epochs=200 --warmup_epochs=5   # reference length
    python recipes/pretrain_kws.py --data_dir=/data/kws --output_dir=runs/bc8_real

Writes `model.keras` and `manifest.json` (command, seed, data, accuracies,
sha256) into --output_dir; checkpoints (resumable after a kill: run the same
command again) and TensorBoard logs into --work_dir. The model shipped in
saved_models/ came from the command in its manifest.
"""

import hashlib
import os
import shlex
import sys

if not __package__:  # run as `python recipes/pretrain_kws.py`: import `recipes` as a package
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from absl import flags

from recipes import recipe_cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FLAGS = flags.FLAGS
flags.DEFINE_enum("backbone", "bc_resnet", ["bc_resnet", "res15"], "Backbone architecture.")
flags.DEFINE_float("tau", 8.0, "BC-ResNet width multiplier tau (paper: 8, i.e. BC-ResNet-8).")
flags.DEFINE_bool(
    "causal",
    False,
    "BC-ResNet with causal time padding, which swr_keras.streaming runs hop by hop "
    "(default: the reference's symmetric padding).",
)
flags.DEFINE_string(
    "data_dir",
    "",
    "Folder with gsc2/ and mc_kws/; empty: the synthetic "
    "pre-training corpus, generated into $SWR_KERAS_CACHE or ~/.cache/swr_keras on "
    "first use.",
)
flags.DEFINE_integer("epochs", 8, "Training epochs (reference: 200).")
flags.DEFINE_integer("warmup_epochs", 1, "Linear warm-up epochs (reference: 5).")
flags.DEFINE_integer("batch_size", 100, "Batch size (reference: 100).")
flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adam"], "Optimizer (reference: sgd, momentum 0.9).")
flags.DEFINE_float("learning_rate", 0.1, "Peak learning rate after warm-up (reference: 0.1).")
flags.DEFINE_float("weight_decay", 1e-3, "Weight decay (reference: 1e-3).")
flags.DEFINE_bool(
    "augment", True, "Noise, time shift and SpecAugment on training batches (reference: on)."
)
flags.DEFINE_integer("seed", 0, "Seed of weights, data order and augmentation.")
flags.DEFINE_string(
    "output_dir", "runs/pretrain_kws/model", "Where model.keras and manifest.json go."
)
flags.DEFINE_string(
    "work_dir", "runs/pretrain_kws", "Checkpoints (for resuming) and TensorBoard logs."
)

recipe_cli.define_run_eagerly_flag()

PROGRAM = "pretrain_kws.py"

# What a checkpoint in --work_dir was trained with; resuming it under other
# values is refused.
TRAINING_FLAGS = (
    "backbone",
    "tau",
    "data_dir",
    "epochs",
    "warmup_epochs",
    "batch_size",
    "optimizer",
    "learning_rate",
    "weight_decay",
    "augment",
    "seed",
)

# The default corpus (`swr_keras.data.synthetic.DEFAULT_CORPORA`) without --data_dir.
SYNTHETIC_CORPUS = "pretraining"


def _data_description(source):
    """What the manifest records as the training data."""
    if not source.synthetic:
        return f"{source.gsc2_dir} + {source.mc_kws_dir}"
    synthetic = recipe_cli.quiet_import("swr_keras.data.synthetic")
    name, options, _ = synthetic.DEFAULT_CORPORA[SYNTHETIC_CORPUS]
    return f"synthetic corpus {name} (swr_keras.data.synthetic, seed {options.get('seed', 0)})"


def check_flags():
    validation = recipe_cli.quiet_import("swr_keras.validation")
    for name in ("epochs", "batch_size"):
        validation.check_positive_int(f"--{name}", getattr(FLAGS, name))
    if not 0 <= FLAGS.warmup_epochs < FLAGS.epochs:
        raise ValueError(
            f"--warmup_epochs must be in [0, --epochs). Received: {FLAGS.warmup_epochs}"
        )
    if not FLAGS.learning_rate > 0:
        raise ValueError(f"--learning_rate must be > 0. Received: {FLAGS.learning_rate}")
    if not FLAGS.weight_decay >= 0:
        raise ValueError(f"--weight_decay must be >= 0. Received: {FLAGS.weight_decay}")
    if FLAGS.causal and FLAGS.backbone != "bc_resnet":
        raise ValueError(
            f"--causal needs --backbone=bc_resnet. Received: --backbone={FLAGS.backbone}"
        )
    if FLAGS.backbone == "bc_resnet" and not int(8 * FLAGS.tau) >= 1:
        raise ValueError(f"--tau must be at least 0.125. Received: {FLAGS.tau}")
    for flag in ("output_dir", "work_dir"):
        recipe_cli.check_writable_dir(f"--{flag}", getattr(FLAGS, flag))


def main(argv):
    del argv
    try:
        check_flags()
        checkpoint_dir = os.path.join(FLAGS.work_dir, "checkpoint")
        run = {name: FLAGS[name].value for name in TRAINING_FLAGS}
        if FLAGS.causal:  # only then, so checkpoints written before the flag still resume
            run["causal"] = True
        recipe_cli.quiet_import("swr_keras.checkpointing").check_resumable(checkpoint_dir, run)
        tasks = recipe_cli.quiet_import("swr_keras.kws.tasks")
        print("== data", flush=True)
        source = tasks.resolve_data_dir(FLAGS.data_dir, synthetic_corpus=SYNTHETIC_CORPUS)
        corpus = tasks.list_task("multilingual", source, seed=FLAGS.seed)
    except (ValueError, FileNotFoundError) as error:
        recipe_cli.fail(PROGRAM, error)

    import keras

    from swr_keras import checkpointing
    from swr_keras.kws import backbones, pretraining

    keras.utils.set_random_seed(FLAGS.seed)
    counts = {
        split: sum(len(t) for t in corpus.splits[split]) for split in ("train", "valid", "test")
    }
    print(f"   {len(corpus.class_names)} classes, clips: {counts}", flush=True)
    model = backbones.build_backbone(
        FLAGS.backbone, len(corpus.class_names), FLAGS.tau, causal=FLAGS.causal
    )
    steps = tasks.num_batches(corpus, "train", FLAGS.batch_size, drop_remainder=True)
    model.compile(
        optimizer=pretraining.reference_optimizer(
            FLAGS.optimizer,
            FLAGS.learning_rate,
            FLAGS.epochs * steps,
            FLAGS.warmup_epochs * steps,
            FLAGS.weight_decay,
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    done = checkpointing.read_progress(checkpoint_dir)["epochs_done"]
    name = backbones.describe(FLAGS.backbone, FLAGS.tau)
    print(
        f"== training {name} ({model.count_params():,} parameters) for {FLAGS.epochs} epochs "
        f"of {steps} steps" + (f", resuming after epoch {done}" if done else ""),
        flush=True,
    )
    if done < FLAGS.epochs:
        train = tasks.epoch_datasets(
            corpus,
            batch_size=FLAGS.batch_size,
            seed=FLAGS.seed,
            first_epoch=done,
            epochs=FLAGS.epochs,
            augment=FLAGS.augment,
        )
        model.fit(
            train,
            epochs=FLAGS.epochs,
            initial_epoch=done,
            steps_per_epoch=steps,
            validation_data=tasks.evaluation_dataset(corpus, "valid"),
            callbacks=[
                checkpointing.EpochCheckpoint(checkpoint_dir, FLAGS.epochs, run=run),
                keras.callbacks.TensorBoard(os.path.join(FLAGS.work_dir, "logs")),
            ],
            verbose=recipe_cli.progress_verbosity(),
        )
    else:
        checkpointing.load_state(model, checkpoint_dir)
    print("== evaluating", flush=True)
    accuracy = {
        split: float(model.evaluate(tasks.evaluation_dataset(corpus, split), verbose=0)[1])
        for split in ("valid", "test")
    }
    # Shipped without the optimizer's state: a third of the size, and
    # transfer starts new optimizers anyway.
    shipped = backbones.build_backbone(
        FLAGS.backbone, len(corpus.class_names), FLAGS.tau, causal=FLAGS.causal
    )
    shipped.set_weights(model.get_weights())
    path = os.path.join(FLAGS.output_dir, "model.keras")
    recipe_cli.save_model_atomically(shipped, path)
    manifest = {
        "command": "python recipes/pretrain_kws.py " + shlex.join(sys.argv[1:]),
        "backbone": name,
        "tau": FLAGS.tau if FLAGS.backbone == "bc_resnet" else None,
        "causal": FLAGS.causal,
        "seed": FLAGS.seed,
        "data": _data_description(source),
        "task": "multilingual",
        "class_names": list(corpus.class_names),
        "clips": counts,
        "epochs": FLAGS.epochs,
        "validation_accuracy": accuracy["valid"],
        "test_accuracy": accuracy["test"],
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
    print(
        f"validation accuracy {100 * accuracy['valid']:.2f} %, test {100 * accuracy['test']:.2f} %"
    )
    print(f"model written to {path}")


if __name__ == "__main__":
    recipe_cli.run(main, PROGRAM)
