r"""Image transfer (the paper's ImageNet-to-Sketch, Table 3) with SWR and the baselines.

By default it transfers the shipped small ResNet, pre-trained on the
photo-like source domain of the synthetic image corpus
(saved_models/small_resnet_synthetic_photos), to the same ten classes drawn
as line sketches, and trains SWR next to fine-tuning everything and the
classifier alone, with the same epochs:

    python recipes/sketch.py --target_cost=0.1
    python recipes/sketch.py --dataset=synthetic_painting --method=swr,taps
    python recipes/sketch.py --dataset=flowers --data_dir=/data/sketch \
        --backbone=resnet50 --pretrained=resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5
    python recipes/sketch.py --distribute=mirrored   # every GPU of this machine
    python recipes/sketch.py --helpfull          # every method and its options

The paper's image setting is the default: SGD with momentum 0.9 and a cosine
schedule, label smoothing 0.3, lambda = 3; `--learning_rate` and
`--weight_decay` take the paper's grids (5e-3,1e-2,2e-2 and 1e-4,0) and
train every combination. Epochs default to 50 per stage on the real sets
and to a short schedule on the synthetic ones. Outputs as `recipes/kws.py`:
a table, metrics.json, TensorBoard logs, policy map and controllability plot
(SWR), task files, and per model a TF Serving SavedModel taking encoded
JPEG/PNG bytes and float and int8 TFLite files. A killed run resumes when
started again with the same flags. Bad flags or data exit with status 2 and
one line.
"""

import itertools
import math
import os
import sys
import tempfile
import time

if not __package__:  # run as `python recipes/sketch.py`: import `recipes` as a package
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from absl import flags

from recipes import kws_flags, recipe_cli

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PROGRAM = "sketch.py"
DATASETS = (
    "synthetic_sketch",
    "synthetic_painting",
    "synthetic_texture",
    "flowers",
    "wikiart",
    "sketch",
    "cars",
    "cub",
)
# The short schedule of the synthetic default (epochs of stage 1a, 1b and 2):
# it fits the 15 minutes the example has on a 2-core machine.
SYNTHETIC_EPOCHS = (20, 10, 20)
PAPER_EPOCHS = 50
# Synthetic objects fill a third to two thirds of the image; crops of the
# reference's 8 % would often hold no object at all.
SYNTHETIC_AREA_RANGE = (0.35, 1.0)

FLAGS = flags.FLAGS
flags.DEFINE_enum(
    "dataset",
    "synthetic_sketch",
    DATASETS,
    "Target task: a synthetic domain (generated on first use), or one of the five "
    "ImageNet-to-Sketch sets in --data_dir (README, 'Image transfer').",
)
flags.DEFINE_string("data_dir", "", "Folder of the real sets; unused by the synthetic domains.")
flags.DEFINE_list(
    "method",
    ["swr", "finetune_all", "finetune_classifier"],
    "Methods to train, comma-separated; each of the registry's: "
    + ", ".join(recipe_cli.quiet_import("swr_keras.methods").names())
    + " (see --helpfull for their options).",
)
flags.DEFINE_list(
    "target_cost", ["0.1"], "Target cost(s) c in [0, 1] of SWR (paper: 0.1, 0.3, 0.5)."
)
flags.DEFINE_enum(
    "backbone",
    "shipped",
    ["shipped", "task_model", "resnet50"],
    "shipped: the small ResNet of the synthetic example; task_model: a .keras task model "
    "in --pretrained (recipes/pretrain_sketch.py); resnet50: ResNet-50 with the ImageNet "
    "weights file in --pretrained (paper).",
)
flags.DEFINE_string("pretrained", "", "The .keras task model or ResNet-50 weights file.")
flags.DEFINE_enum(
    "resnet50_variant",
    "v1",
    ["v1", "v1.5"],
    "v1: keras.applications' layout and weights; v1.5: torchvision's (stride on the 3x3 "
    "convolutions), weights converted from torchvision (TAPS and the paper used v1.5).",
)
flags.DEFINE_integer("image_size", None, "Input size; default the backbone's (ResNet-50: 224).")
flags.DEFINE_integer("supernet_epochs", None, "Epochs of stage 1a (default: 50; synthetic 20).")
flags.DEFINE_integer("policy_epochs", None, "Epochs of stage 1b (default: 50; synthetic 10).")
flags.DEFINE_integer(
    "reparam_epochs",
    None,
    "Epochs of stage 2 and of the single-stage baselines (default: 50; synthetic 20).",
)
flags.DEFINE_list("learning_rate", ["2e-2"], "SGD learning rate(s) (paper grid: 5e-3,1e-2,2e-2).")
flags.DEFINE_list("weight_decay", ["1e-4"], "Weight decay value(s) (paper grid: 1e-4,0).")
flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adam"], "Optimizer of every stage (paper: sgd).")
flags.DEFINE_float("momentum", 0.9, "SGD momentum (paper: 0.9).")
flags.DEFINE_float("label_smoothing", 0.3, "Label smoothing of the task loss (paper: 0.3).")
flags.DEFINE_float(
    "policy_learning_rate", None, "Learning rate of stage 1b; default --learning_rate."
)
flags.DEFINE_float("policy_loss_weight", 3.0, "lambda (paper, images: 3).")
flags.DEFINE_float("temperature_start", 2.0, "Gumbel-softmax temperature at the start (paper: 2).")
flags.DEFINE_float("temperature_end", 0.5, "Gumbel-softmax temperature at the end (paper: 0.5).")
flags.DEFINE_bool("bn_affine", False, "Also train BN gamma/beta (paper: off).")
flags.DEFINE_integer("batch_size", 32, "Batch size (reference: 32).")
flags.DEFINE_bool("augment", True, "Random-resized crops and flips on training batches.")
flags.DEFINE_integer("seed", 0, "Seed of the classifier, policy network, data order, augmentation.")
flags.DEFINE_string("output_dir", "runs/sketch", "metrics.json, plots, logs, checkpoints, TFLite.")
flags.DEFINE_string("export_dir", "saved_models", "TF Serving exports: <export_dir>/<name>/<v>/.")
flags.DEFINE_bool("export", True, "Export SavedModels and TFLite files.")
recipe_cli.define_distribute_flag()
recipe_cli.define_run_eagerly_flag()
kws_flags.define_method_flags(method_flag=False)


def _floats(flag, values, low=0.0, strict=True):
    parsed = []
    for text in values:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"--{flag} must be numbers. Received: {text!r}") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            raise ValueError(f"--{flag} must be {'>' if strict else '>='} {low}. Received: {text}")
        parsed.append(value)
    if not parsed:
        raise ValueError(f"--{flag} needs at least one value.")
    return sorted(set(parsed), key=parsed.index)


def check_flags():
    """Every check that needs no data; returns (costs, learning rates, weight decays)."""
    methods = recipe_cli.quiet_import("swr_keras.methods")
    if not FLAGS.method:
        raise ValueError("--method needs at least one method, e.g. --method=swr")
    for method in FLAGS.method:
        if method not in methods.names():
            raise ValueError(
                f"--method={method} is unknown. Choose from: {', '.join(methods.names())}."
            )
        methods.get(method).options(kws_flags.method_options(method))
    costs = [kws_flags.parse_target_cost(text) for text in FLAGS.target_cost]
    if not costs:
        raise ValueError("--target_cost needs at least one value in [0, 1], e.g. 0.1")
    validation = recipe_cli.quiet_import("swr_keras.validation")
    for name in ("supernet_epochs", "policy_epochs", "reparam_epochs", "image_size"):
        if getattr(FLAGS, name) is not None:
            validation.check_positive_int(f"--{name}", getattr(FLAGS, name))
    validation.check_positive_int("--batch_size", FLAGS.batch_size)
    for name in ("policy_learning_rate", "temperature_start", "temperature_end"):
        value = getattr(FLAGS, name)
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise ValueError(f"--{name} must be > 0. Received: {value}")
    if not 0 <= FLAGS.label_smoothing < 1:
        raise ValueError(f"--label_smoothing must be in [0, 1). Received: {FLAGS.label_smoothing}")
    if not (FLAGS.policy_loss_weight >= 0 and math.isfinite(FLAGS.policy_loss_weight)):
        raise ValueError(f"--policy_loss_weight must be >= 0. Received: {FLAGS.policy_loss_weight}")
    synthetic = FLAGS.dataset.startswith("synthetic_")
    if FLAGS.backbone == "shipped" and not synthetic:
        raise ValueError(
            f"--dataset={FLAGS.dataset} needs an ImageNet backbone: the shipped one only knows "
            "the synthetic corpus. Pass --backbone=resnet50 --pretrained=<weights .h5>."
        )
    if FLAGS.backbone != "shipped" and not FLAGS.pretrained:
        raise ValueError(f"--backbone={FLAGS.backbone} needs --pretrained=<file>.")
    if not synthetic and not FLAGS.data_dir:
        raise ValueError(f"--dataset={FLAGS.dataset} needs --data_dir (README, 'Image transfer').")
    if FLAGS.data_dir and not os.path.isdir(FLAGS.data_dir):
        raise FileNotFoundError(f"--data_dir={FLAGS.data_dir} does not exist.")
    recipe_cli.check_writable_dir("--output_dir", FLAGS.output_dir)
    if FLAGS.export:
        recipe_cli.check_writable_dir("--export_dir", FLAGS.export_dir)
    return (
        sorted(set(costs), key=costs.index),
        _floats("learning_rate", FLAGS.learning_rate),
        _floats("weight_decay", FLAGS.weight_decay, strict=False),
    )


def load_backbone():
    from swr_keras.image import backbones

    if FLAGS.backbone == "resnet50":
        return backbones.load_resnet50(
            FLAGS.pretrained, FLAGS.resnet50_variant, image_size=FLAGS.image_size
        )
    path = backbones.SHIPPED if FLAGS.backbone == "shipped" else FLAGS.pretrained
    return backbones.load_task_model(path, FLAGS.image_size)


def settings(method, learning_rate, weight_decay):
    from swr_keras import transfer_job

    synthetic = FLAGS.dataset.startswith("synthetic_")
    defaults = SYNTHETIC_EPOCHS if synthetic else (PAPER_EPOCHS,) * 3
    epochs = [
        value if value is not None else default
        for value, default in zip(
            (FLAGS.supernet_epochs, FLAGS.policy_epochs, FLAGS.reparam_epochs), defaults
        )
    ]
    return transfer_job.Settings(
        method=method,
        supernet_epochs=epochs[0],
        policy_epochs=epochs[1],
        reparam_epochs=epochs[2],
        learning_rate=learning_rate,
        policy_learning_rate=FLAGS.policy_learning_rate or learning_rate,
        policy_loss_weight=FLAGS.policy_loss_weight,
        temperature=(FLAGS.temperature_start, FLAGS.temperature_end),
        bn_affine=FLAGS.bn_affine,
        batch_size=FLAGS.batch_size,
        augment=FLAGS.augment,
        seed=FLAGS.seed,
        options=kws_flags.method_options(method),
        optimizer=FLAGS.optimizer,
        momentum=FLAGS.momentum,
        weight_decay=weight_decay,
        label_smoothing=FLAGS.label_smoothing,
    )


def main(argv):
    del argv
    start = time.time()
    try:
        costs, learning_rates, weight_decays = check_flags()
        # Before any model: a multi-worker strategy must exist before TensorFlow runs anything.
        strategy = recipe_cli.strategy_from_flag()
        datasets = recipe_cli.quiet_import("swr_keras.image.datasets")
        print("== data", flush=True)
        task = datasets.load_task(FLAGS.dataset, FLAGS.data_dir)
        counts = {split: task.splits[split].count for split in ("train", "test")}
        print(f"   {task.name}: {len(task.class_names)} classes, images {counts}", flush=True)
        pretrained = load_backbone()
        print(
            f"   backbone {pretrained.description}, {pretrained.image_size} x "
            f"{pretrained.image_size} inputs, {pretrained.normalization} normalisation",
            flush=True,
        )
        from swr_keras import transfer_job
        from swr_keras.data import image_preprocessing
        from swr_keras.image import data as data_lib
        from swr_keras.image import run_report

        data = data_lib.ImageData(
            task,
            pretrained.image_size,
            pretrained.normalization,
            area_range=SYNTHETIC_AREA_RANGE
            if task.name.startswith("synthetic_")
            else image_preprocessing.AREA_RANGE,
        )
        identity = (
            task.name,
            task.description,
            pretrained.description,
            os.path.abspath(FLAGS.pretrained) if FLAGS.pretrained else "shipped",
            pretrained.image_size,
            pretrained.normalization,
        )
        jobs = []
        grid = list(itertools.product(learning_rates, weight_decays))
        for method, (learning_rate, weight_decay) in itertools.product(FLAGS.method, grid):
            # One work directory per grid point: task files and logs are named by method.
            work_dir = FLAGS.output_dir
            if len(grid) > 1:
                work_dir = os.path.join(work_dir, f"lr{learning_rate:g}_wd{weight_decay:g}")
            job = transfer_job.TransferJob(
                data,
                pretrained.model,
                settings(method, learning_rate, weight_decay),
                work_dir,
                identity,
                verbose=recipe_cli.progress_verbosity(),
                strategy=strategy,
            )
            job.check_resumable(costs)
            jobs.append(job)
    except (ValueError, FileNotFoundError) as error:
        recipe_cli.fail(PROGRAM, error)

    chief = jobs[0].chief
    # Under several workers only the chief writes results; the others report to scratch.
    output_dir = FLAGS.output_dir if chief else tempfile.mkdtemp(prefix="sketch_worker_")
    report = run_report.RunReport(
        output_dir,
        FLAGS.export_dir if FLAGS.export and chief else None,
        jobs[0],
        task=task.name,
        flags_text=" ".join(sys.argv[1:]),
        program=PROGRAM,
        export_prefix="image",
        data={"dataset": FLAGS.dataset, "data_dir": FLAGS.data_dir},
    )
    for job in jobs:
        s = job.settings
        suffix = f" lr={s.learning_rate:g} wd={s.weight_decay:g}" if len(grid) > 1 else ""
        print(f"==== {job.method.label}{suffix}", flush=True)
        report.job = job
        job.train_shared()
        report.add_policy(costs)
        for row, model in job.run(costs):
            row = dict(row, settings=s.recorded())
            report.add_result(row, model, label_suffix=suffix)
    report.finish(seconds=time.time() - start)


if __name__ == "__main__":
    recipe_cli.run(main, PROGRAM)
