"""Flags shared by the KWS transfer recipes (kws.py, tune_lambda.py), their checks and loading."""

import dataclasses
import math
import os

from absl import flags

from recipes import recipe_cli

TASKS = ("gsc2", "mc_kws", "folder")
BACKBONES = ("bc_resnet", "res15")
# The SWR family's of swr_keras.training.BINARIZATIONS (without importing TF); the controls
# without a policy are methods (--method=smallest_first, random_layers).
BINARIZATIONS = ("threshold", "budget")

FLAGS = flags.FLAGS


def define_method_flags(method_flag=True):
    """`--method` (help from the registry) and every registered method's own options.

    `method_flag=False` leaves `--method` to the recipe (e.g. a list of methods).

    Each field of a method's `Options` dataclass becomes a flag of its name
    (prefixed with the method's name by the registry's rule), its default and
    its help; the type comes from the default.
    """
    methods = recipe_cli.quiet_import("swr_keras.methods")
    if method_flag:
        flags.DEFINE_string(
            "method",
            "swr",
            "Transfer method, one of: "
            + "; ".join(f"{m.name} = {m.help.rstrip('.')}" for m in methods.methods())
            + ".",
        )
    for method in methods.methods():
        for field in dataclasses.fields(method.Options):
            define = _DEFINE_BY_TYPE.get(type(field.default))
            if define is None:
                raise TypeError(
                    f"Option {field.name} of method {method.name!r} has a default of type "
                    f"{type(field.default).__name__}; use bool, int, float or str."
                )
            define(field.name, field.default, f"[{method.name}] {field.metadata['help']}")


_DEFINE_BY_TYPE = {
    bool: flags.DEFINE_bool,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
}


def check_method():
    """A one-line ValueError for an unknown --method or a bad value of its options."""
    methods = recipe_cli.quiet_import("swr_keras.methods")
    if FLAGS.method not in methods.names():
        raise ValueError(
            f"--method={FLAGS.method} is unknown. Choose one of: {', '.join(methods.names())}."
        )
    methods.get(FLAGS.method).options(method_options(FLAGS.method))
    # Settings checks the ablation flags' values, check_ablations that the method takes them.
    from swr_keras.kws import job

    job.check_ablations(settings(FLAGS.method))


def method_options(method):
    """`{option: flag value}` of `method`'s own options."""
    from swr_keras import methods

    return {
        field.name: getattr(FLAGS, field.name)
        for field in dataclasses.fields(methods.get(method).Options)
    }


def define_training_flags():
    flags.DEFINE_string(
        "task",
        "gsc2",
        "Downstream task: gsc2 (12-way English) or mc_kws (12-way Mandarin) (paper: both), "
        "or folder: your own keywords in --data_dir, one folder of WAV files per keyword.",
    )
    flags.DEFINE_string(
        "backbone", "bc_resnet", "bc_resnet or res15 (paper: BC-ResNet-8 and Res15)."
    )
    flags.DEFINE_float("tau", 8.0, "BC-ResNet width tau (paper: 8).")
    flags.DEFINE_string(
        "data_dir",
        "",
        "Folder with gsc2/ and mc_kws/ (see BUILD.md); empty: the "
        "synthetic transfer corpus (speakers and an accent the shipped backbone never "
        "heard), generated into $SWR_KERAS_CACHE or ~/.cache/swr_keras on first use. "
        "With --task=folder: the folder of keyword folders (README, 'Your own keywords').",
    )
    flags.DEFINE_float(
        "clip_seconds",
        None,
        "Clip length in seconds; shorter clips are zero-padded. Default: the task's "
        "(gsc2 and folder 1 s, mc_kws 2.24 s). --task=folder rejects longer clips.",
    )
    flags.DEFINE_list(
        "unknown_words",
        [],
        "--task=folder: word folders whose clips form the _unknown_ class (with "
        "_unknown_/ if present) instead of being keywords.",
    )
    flags.DEFINE_string(
        "pretrained",
        "",
        "Multi-lingual pre-trained .keras file "
        "(recipes/pretrain_kws.py); empty: the shipped BC-ResNet-8 for the "
        "synthetic corpus.",
    )
    flags.DEFINE_integer("supernet_epochs", 2, "Epochs of stage 1a, the super-net (paper: 30).")
    flags.DEFINE_integer("policy_epochs", 3, "Epochs of stage 1b, the policy network (paper: 30).")
    flags.DEFINE_integer(
        "reparam_epochs",
        3,
        "Epochs of stage 2, reparametrisation per target "
        "cost, and of the fine-tune baselines (paper: 30).",
    )
    flags.DEFINE_float(
        "learning_rate",
        1e-3,
        "Adam learning rate, cosine-annealed to 0 per stage (paper: 1e-3 or 5e-4).",
    )
    flags.DEFINE_float(
        "policy_learning_rate",
        1e-2,
        "Adam learning rate of stage 1b, the policy "
        "network alone (paper: as --learning_rate, over 30 epochs; the short default "
        "schedule needs a faster rate to spread the policy over the costs).",
    )
    flags.DEFINE_float(
        "policy_loss_weight", 1.0, "lambda in L_target + lambda * L_policy (paper, KWS: 1)."
    )
    flags.DEFINE_float(
        "temperature_start", 2.0, "Gumbel-softmax temperature at the start (paper: 2)."
    )
    flags.DEFINE_float(
        "temperature_end", 0.5, "Gumbel-softmax temperature at the end (paper: 0.5)."
    )
    flags.DEFINE_bool(
        "bn_affine", False, "Also train BN gamma/beta (paper: off; ablation '+BN-affine')."
    )
    flags.DEFINE_string(
        "binarization",
        "threshold",
        "How stage 2 turns the policy into gates: threshold (the paper's softmax > 0.5) or "
        "budget (variant 'SWR + budget fill': the layers the policy prefers, in its order, "
        "while they fit in the target cost; BUILD.md, Controllability).",
    )
    flags.DEFINE_string(
        "cost_weighting",
        "parameters",
        "Per-layer cost weights r_l of the policy loss: parameters (the paper: each "
        "layer's share of the parameters) or equal (ablation 'equal r_l': 1/L each). "
        "swr and not_staged.",
    )
    flags.DEFINE_bool(
        "supernet",
        True,
        "Train the super-net (stage 1a) before the policy network; --nosupernet is the "
        "ablation 'w/o super-net' (the policy learns on the pre-trained model). swr only.",
    )
    flags.DEFINE_bool(
        "supernet_weight",
        False,
        "Start stage 2 from the super-net's deltas instead of zero (paper: off; "
        "ablation '+ Super-net weight'). swr only.",
    )
    flags.DEFINE_bool(
        "warm_start",
        False,
        "Start stage 2's classifier and BN statistics from the super-net's (variant 'SWR, warm "
        "classifier') instead of from the pre-trained statistics and the new classifier every "
        "baseline starts from. swr only.",
    )
    flags.DEFINE_integer(
        "batch_size",
        50,
        "Batch size (reference: 100; 50 keeps the main job under 4 GB "
        "and gives twice the steps on the small synthetic task).",
    )
    flags.DEFINE_bool("augment", True, "Noise, time shift and SpecAugment on training batches.")
    flags.DEFINE_integer(
        "seed", 0, "Seed of the classifier, policy network, data order and augmentation."
    )
    flags.DEFINE_bool(
        "validation_curve",
        False,
        "Score the validation split after every epoch into the stage's TensorBoard logs (the "
        "curve that shows where a schedule converges; one validation pass per epoch, no result "
        "changes).",
    )
    recipe_cli.define_run_eagerly_flag()


def parse_target_cost(text):
    """A float in [0, 1] from flag text; a one-line ValueError otherwise (nan included)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--target_cost must be numbers in [0, 1]. Received: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"--target_cost must be in [0, 1]. Received: {text}")
    return value


def check_training_flags():
    """Every check of the shared flags that needs no data; raises a one-line error."""
    validation = recipe_cli.quiet_import("swr_keras.validation")
    for flag, choices in (
        ("task", TASKS),
        ("backbone", BACKBONES),
        ("binarization", BINARIZATIONS),
    ):
        if getattr(FLAGS, flag) not in choices:
            raise ValueError(
                f"--{flag}={getattr(FLAGS, flag)} is unknown. Choose one of: {', '.join(choices)}."
            )
    for name in ("supernet_epochs", "policy_epochs", "reparam_epochs", "batch_size"):
        validation.check_positive_int(f"--{name}", getattr(FLAGS, name))
    for name in ("learning_rate", "policy_learning_rate", "temperature_start", "temperature_end"):
        if not (getattr(FLAGS, name) > 0 and math.isfinite(getattr(FLAGS, name))):
            raise ValueError(f"--{name} must be > 0. Received: {getattr(FLAGS, name)}")
    if not (FLAGS.policy_loss_weight >= 0 and math.isfinite(FLAGS.policy_loss_weight)):
        raise ValueError(f"--policy_loss_weight must be >= 0. Received: {FLAGS.policy_loss_weight}")
    if FLAGS.backbone == "bc_resnet" and not int(8 * FLAGS.tau) >= 1:
        raise ValueError(f"--tau must be at least 0.125. Received: {FLAGS.tau}")
    folder = FLAGS.task == "folder"
    if FLAGS.clip_seconds is not None and not (
        FLAGS.clip_seconds > 0 and math.isfinite(FLAGS.clip_seconds)
    ):
        raise ValueError(f"--clip_seconds must be > 0. Received: {FLAGS.clip_seconds}")
    if FLAGS.unknown_words and not folder:
        raise ValueError(
            f"--unknown_words is for --task=folder. Received: --task={FLAGS.task} "
            f"--unknown_words={','.join(FLAGS.unknown_words)}"
        )
    if folder and not FLAGS.data_dir:
        raise ValueError(
            "--task=folder needs --data_dir=DIR, a folder with one sub-folder of WAV "
            "files per keyword (README, 'Your own keywords')."
        )
    if FLAGS.data_dir and not os.path.isdir(FLAGS.data_dir):
        raise FileNotFoundError(
            f"--data_dir={FLAGS.data_dir} does not exist. "
            + (
                "Point it at your folder of keyword folders."
                if folder
                else "Point it at a folder with gsc2/ and mc_kws/, or leave it empty for "
                "the synthetic corpus."
            )
        )
    # The shipped backbone transfers to any folder of keywords; only the synthetic
    # transfer corpus of the other tasks is tied to it.
    data_needs_own_backbone = FLAGS.data_dir and not folder
    if not FLAGS.pretrained and (
        data_needs_own_backbone or FLAGS.backbone != "bc_resnet" or FLAGS.tau != 8
    ):
        raise ValueError(
            "--pretrained is required with --data_dir, --backbone or --tau: the shipped "
            "model is BC-ResNet-8 pre-trained on the synthetic corpus. Train one with "
            "recipes/pretrain_kws.py."
        )


def load_pretrained_and_corpus():
    """`(pretrained model, DataSource, KwsCorpus, pretrained path)`; errors as ValueError."""
    backbones = recipe_cli.quiet_import("swr_keras.kws.backbones")
    from swr_keras.kws import tasks

    path = FLAGS.pretrained or recipe_cli.SHIPPED_PRETRAINED
    pretrained = backbones.load_pretrained(
        path, FLAGS.backbone, len(tasks.multilingual_class_names()), FLAGS.tau
    )
    print("== data", flush=True)
    source = tasks.resolve_data_dir(FLAGS.data_dir, synthetic_corpus="transfer", task=FLAGS.task)
    corpus = tasks.list_task(FLAGS.task, source, seed=FLAGS.seed, **task_options())
    counts = {
        split: sum(len(t) for t in corpus.splits[split]) for split in ("train", "valid", "test")
    }
    print(f"   task {FLAGS.task}: {len(corpus.class_names)} classes, clips {counts}", flush=True)
    if FLAGS.task == "folder":
        print(f"   classes: {', '.join(corpus.class_names)}", flush=True)
    return pretrained, source, corpus, path


def task_options():
    """The `tasks.list_task` options the flags set (only those given)."""
    options = {}
    if FLAGS.clip_seconds is not None:
        options["clip_seconds"] = FLAGS.clip_seconds
    if FLAGS.unknown_words:
        options["unknown_words"] = tuple(FLAGS.unknown_words)
    return options


def settings(method, **overrides):
    """`swr_keras.kws.job.Settings` from the flags."""
    from swr_keras.kws import job

    values = dict(
        method=method,
        supernet_epochs=FLAGS.supernet_epochs,
        policy_epochs=FLAGS.policy_epochs,
        reparam_epochs=FLAGS.reparam_epochs,
        learning_rate=FLAGS.learning_rate,
        policy_learning_rate=FLAGS.policy_learning_rate,
        policy_loss_weight=FLAGS.policy_loss_weight,
        temperature=(FLAGS.temperature_start, FLAGS.temperature_end),
        bn_affine=FLAGS.bn_affine,
        cost_weighting=FLAGS.cost_weighting,
        supernet=FLAGS.supernet,
        supernet_weight=FLAGS.supernet_weight,
        warm_start=FLAGS.warm_start,
        binarization=FLAGS.binarization,
        batch_size=FLAGS.batch_size,
        augment=FLAGS.augment,
        seed=FLAGS.seed,
        options=method_options(method),
    )
    values.update(overrides)
    return job.Settings(**values)


def job_identity(source, pretrained_path):
    """What makes stage 1 of two runs different beyond the settings."""
    from swr_keras.kws import job

    return job.job_identity(
        FLAGS.task, FLAGS.backbone, FLAGS.tau, pretrained_path, source, task_options()
    )
