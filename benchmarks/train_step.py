"""Training-step and inference cost of SWR next to plain fine-tuning, side by side.

On a backbone of the paper (BC-ResNet-8 by default), batch 100, 1 s log-mel
inputs, this prints samples/s of one training step for plain fine-tuning
(every weight trainable) and for the SWR stages `supernet`, `policy` and
`reparam`, each with its time relative to the plain step; then inference of
the merged SWR model against the original backbone, with the number of graph
ops of each; then the same training steps under the `mixed_bfloat16` policy.

    python benchmarks/train_step.py                      # BC-ResNet-8, batch 100
    python benchmarks/train_step.py --backbone=res15 --steps=5

With `--pytorch_python` (a Python that has `torch`) and `--bcresnet_dir` (a
checkout of the official code), it also runs `benchmarks/pytorch_step.py`
before and after its own training measurements and prints the Keras steps
against the official PyTorch step (against the faster of the two PyTorch
runs, so a slow-down of either cannot flatter Keras).

    python benchmarks/train_step.py --pytorch_python=/path/to/venv/bin/python \
        --bcresnet_dir=/path/to/bcresnet --nomixed_precision

Targets (issue 27, BC-ResNet-8, 2-core CPU): the plain step >= 3.0x the
official PyTorch step; every SWR stage <= 1.05x the plain step's time;
merged inference 1.00x with the same ops. Results and the machine they ran
on are recorded in benchmarks/README.md.
"""

import json
import os
import platform
import subprocess
import time

from absl import app, flags

# TensorFlow's pooling (BFC) allocator on the CPU: with the default one,
# every step maps and faults in its large activations afresh, which made a
# BC-ResNet-8 step up to twice as slow and its timing bimodal.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

FLAGS = flags.FLAGS
flags.DEFINE_enum("backbone", "bc_resnet", ["bc_resnet", "res15"], "Backbone to measure.")
flags.DEFINE_float("tau", 8, "BC-ResNet width (8 = BC-ResNet-8).")
flags.DEFINE_integer("frames", 101, "Log-mel frames per example (101 = 1 s).")
flags.DEFINE_integer("batch_size", 100, "Examples per step.")
flags.DEFINE_integer("steps", 5, "Timed steps per measurement (after 3 warm-up steps).")
flags.DEFINE_integer(
    "repeats", 5, "Measurements per configuration, taken in turn; the best is reported."
)
flags.DEFINE_float("target_cost", 0.5, "Share of layers gated in the reparam step.")
flags.DEFINE_bool("mixed_precision", True, "Also measure under mixed_bfloat16.")
flags.DEFINE_integer(
    "mixed_precision_steps", 3, "Timed steps per measurement under mixed_bfloat16."
)
flags.DEFINE_integer(
    "mixed_precision_repeats", 1, "Measurements per configuration under mixed_bfloat16."
)
flags.DEFINE_integer("seed", 0, "Seed of weights and data.")
flags.DEFINE_string(
    "pytorch_python", None, "A Python with torch: also time the official PyTorch step."
)
flags.DEFINE_string("bcresnet_dir", None, "Checkout of github.com/Qualcomm-AI-research/bcresnet.")
flags.DEFINE_integer("pytorch_threads", 2, "torch.set_num_threads of the PyTorch step.")

NUM_CLASSES = 12


def build_backbone():
    from swr_keras import models

    if FLAGS.backbone == "res15":
        return models.Res15(NUM_CLASSES)
    return models.BCResNet(FLAGS.tau, NUM_CLASSES)


def time_fit(model, data, steps):
    """Seconds of one `fit` over `steps` steps."""
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
    return time.perf_counter() - start


def measure_inference(models, batch):
    """Best samples/s of each model's compiled inference call, timed in turn, and its op count."""
    import tensorflow as tf

    functions = {
        name: tf.function(lambda x, m=model: m(x, training=False)) for name, model in models.items()
    }
    for function in functions.values():
        function(batch)
    best = {name: float("inf") for name in functions}
    for _ in range(FLAGS.repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            for _ in range(FLAGS.steps):
                function(batch).numpy()
            best[name] = min(best[name], time.perf_counter() - start)
    return {
        name: (
            FLAGS.steps * FLAGS.batch_size / best[name],
            len(function.get_concrete_function(batch).graph.get_operations()),
        )
        for name, function in functions.items()
    }


def measure_pytorch():
    """samples/s of the official PyTorch training step and inference (`pytorch_step.py`)."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pytorch_step.py")
    command = [
        FLAGS.pytorch_python,
        script,
        f"--bcresnet_dir={FLAGS.bcresnet_dir}",
        f"--tau={FLAGS.tau}",
        f"--frames={FLAGS.frames}",
        f"--batch_size={FLAGS.batch_size}",
        f"--steps={FLAGS.steps}",
        f"--repeats={FLAGS.repeats}",
        f"--threads={FLAGS.pytorch_threads}",
        f"--seed={FLAGS.seed}",
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def gate_share_of_layers(trainer, share):
    """Makes the (untrained) policy gate every k-th layer, `share` of them in all."""
    import numpy as np

    import swr_keras

    num_layers = len(swr_keras.reparam_layers(trainer.model))
    picks = (np.arange(num_layers) * share % 1.0 + share >= 1.0).astype("float32")
    logits = trainer.policy_network.logits
    logits.kernel.assign(np.zeros(logits.kernel.shape, "float32"))
    logits.bias.assign(np.stack([picks - 0.5, 0.5 - picks], -1).reshape(-1))
    return int(picks.sum()), num_layers


def training_configurations(backbone):
    """The plain model and one SWR trainer per stage, compiled and warmed up."""
    import keras

    import swr_keras

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    plain = keras.models.clone_model(backbone)
    plain.set_weights(backbone.get_weights())
    configurations = {"plain fine-tune": plain}
    gated = None
    for stage in ("supernet", "policy", "reparam"):
        trainer = swr_keras.SWRTrainer(swr_keras.reparametrize(backbone), seed=FLAGS.seed)
        if stage == "reparam":
            gated = gate_share_of_layers(trainer, FLAGS.target_cost)
            trainer.set_stage(stage, target_cost=FLAGS.target_cost)
        else:
            trainer.set_stage(stage)
        configurations[f"SWR {stage}"] = trainer
    for model in configurations.values():
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    return configurations, gated


def measure_training(configurations, data, steps, repeats):
    """Best samples/s of each configuration, timed in turn so drifts hit all alike.

    Shared 2-core machines slow whole steps down at random (the same step
    took 2.1 s or 3.4 s in back-to-back runs here); the best of several
    short measurements taken in turn is the most stable comparison.
    """
    for model in configurations.values():
        model.fit(data, epochs=1, steps_per_epoch=3, verbose=0)  # trace and warm up
    best = {name: float("inf") for name in configurations}
    for _ in range(repeats):
        for name, model in configurations.items():
            best[name] = min(best[name], time_fit(model, data, steps))
    return {name: steps * FLAGS.batch_size / seconds for name, seconds in best.items()}


def print_training(title, results):
    base = results["plain fine-tune"]
    print(f"\n{title:<22} {'samples/s':>10} {'time vs plain':>14}")
    for name, rate in results.items():
        print(f"{name:<22} {rate:>10.1f} {base / rate:>13.2f}x")


def print_pytorch(torch_runs, plain_rate):
    """The official PyTorch step before / after the Keras runs, and the Keras plain step's ratio."""
    best = max(run["train_samples_per_s"] for run in torch_runs)
    rates = " / ".join(f"{run['train_samples_per_s']:.1f}" for run in torch_runs)
    print(
        f"official PyTorch {torch_runs[0]['torch']} ({torch_runs[0]['threads']} threads, Adam): "
        f"{rates} samples/s (before / after); Keras plain step {plain_rate / best:.2f}x its best"
    )


def load_average():
    """The 1/5/15-minute load averages: a shared machine's timings need them beside."""
    return " ".join(f"{load:.1f}" for load in os.getloadavg())


def native_bfloat16():
    """Whether the CPU has bfloat16 arithmetic (else TensorFlow emulates it)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags_line = cpuinfo.read()
    except OSError:
        return False
    return "avx512_bf16" in flags_line or "amx_bf16" in flags_line


def main(argv):
    del argv
    if FLAGS.backbone != "bc_resnet" and FLAGS.pytorch_python:
        raise app.UsageError(
            "--pytorch_python compares BC-ResNet only; pass --backbone=bc_resnet", exitcode=2
        )
    if bool(FLAGS.pytorch_python) != bool(FLAGS.bcresnet_dir):
        raise app.UsageError(
            "--pytorch_python and --bcresnet_dir go together; pass both", exitcode=2
        )
    import keras
    import numpy as np
    import tensorflow as tf

    import swr_keras

    keras.utils.set_random_seed(FLAGS.seed)
    rng = np.random.default_rng(FLAGS.seed)
    x = rng.normal(size=(FLAGS.batch_size, 40, FLAGS.frames, 1)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, FLAGS.batch_size)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()

    backbone = build_backbone()
    input_shape = (40, FLAGS.frames, 1)
    print(
        f"{backbone.name}: {swr_keras.cost.count_parameters(backbone):,} parameters, "
        f"{swr_keras.cost.count_multiplies(backbone, input_shape=input_shape):,} multiplies "
        f"per example; batch {FLAGS.batch_size}, input {input_shape}"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"tensorflow {tf.__version__}, keras {keras.__version__}, "
        f"TF_CPU_ALLOCATOR_USE_BFC={os.environ['TF_CPU_ALLOCATOR_USE_BFC']}, "
        f"load average {load_average()}"
    )

    torch_runs = [measure_pytorch()] if FLAGS.pytorch_python else []
    configurations, (gated, num_layers) = training_configurations(backbone)
    results = measure_training(configurations, data, FLAGS.steps, FLAGS.repeats)
    if FLAGS.pytorch_python:
        torch_runs.append(measure_pytorch())
    print_training("training step (float32)", results)
    print(f"(reparam: {gated} of {num_layers} layers gated)")
    if torch_runs:
        print_pytorch(torch_runs, results["plain fine-tune"])
    print(f"load average after the training steps: {load_average()}")

    merged = swr_keras.merge(configurations["SWR reparam"].model)
    del configurations  # free their memory before the next measurements
    inference = measure_inference({"original": backbone, "merged": merged}, x)
    (original_rate, original_ops), (merged_rate, merged_ops) = inference.values()
    print(f"\n{'inference':<22} {'samples/s':>10} {'time vs orig':>14} {'graph ops':>10}")
    print(f"{'original':<22} {original_rate:>10.1f} {1.0:>13.2f}x {original_ops:>10}")
    print(
        f"{'merged SWR':<22} {merged_rate:>10.1f} "
        f"{original_rate / merged_rate:>13.2f}x {merged_ops:>10}"
    )
    if torch_runs:
        torch_inference = max(run["inference_samples_per_s"] for run in torch_runs)
        rates = " / ".join(f"{run['inference_samples_per_s']:.1f}" for run in torch_runs)
        print(
            f"{'official PyTorch':<22} {rates:>10} (before / after); merged SWR "
            f"{merged_rate / torch_inference:.2f}x its best samples/s"
        )

    if FLAGS.mixed_precision:
        keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
        keras.utils.set_random_seed(FLAGS.seed)
        bf16_backbone = build_backbone()
        bf16_backbone.set_weights(backbone.get_weights())
        bf16_configurations, _ = training_configurations(bf16_backbone)
        bf16_results = measure_training(
            bf16_configurations, data, FLAGS.mixed_precision_steps, FLAGS.mixed_precision_repeats
        )
        support = "native" if native_bfloat16() else "emulated: no avx512_bf16/amx_bf16 on this CPU"
        print_training(f"training step (mixed_bfloat16, {support})", bf16_results)
        print(
            f"mixed_bfloat16 vs float32 samples/s: plain "
            f"{bf16_results['plain fine-tune'] / results['plain fine-tune']:.2f}x, "
            f"SWR reparam {bf16_results['SWR reparam'] / results['SWR reparam']:.2f}x"
        )


if __name__ == "__main__":
    app.run(main)
