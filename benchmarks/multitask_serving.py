r"""The multi-task SavedModel against separate per-task exports: bytes on disk and time per request.

    python benchmarks/multitask_serving.py --bank=banks/kws --num_tasks=2,10

For each T in --num_tasks it builds a bank of T tasks on the source bank's
backbone: the source bank's tasks, and beyond them copies of those tasks
whose stored values are perturbed (same gates and shapes, distinct content,
so nothing is shared by accident). It exports the multi-task SavedModel with
`kernels=delta` and `kernels=merged` and each task's merged model, and prints
bytes on disk. For the largest T it times, side by side in one run and in
interleaved rounds, one request (raw waveform in) at each --batch_sizes:

- `merged`: the task's own merged SavedModel (`serving_default`), what kws.py exports;
- `multi delta`: the task's signature of the multi-task model, kernels w0 + delta per request;
- `multi merged`: the same with merged kernels stored;
- `mixed 1 task`: the `mixed` signature, every example for one task;
- `mixed T tasks`: the `mixed` signature, the examples spread over all T tasks.

It reports the median time per request and the ratio to `merged`.
"""

import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import flags  # noqa: E402

from recipes import recipe_cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("bank", "", "The source bank (e.g. the bar's two tasks).")
flags.DEFINE_list("num_tasks", ["2", "10"], "Bank sizes to export and measure.")
flags.DEFINE_list("batch_sizes", ["1", "32"], "Request batch sizes to time.")
flags.DEFINE_integer("rounds", 7, "Interleaved timing rounds.")
flags.DEFINE_integer("calls", 10, "Requests per configuration and round.")
flags.DEFINE_string("work_dir", "", "Where the banks and exports go (default: a temporary one).")


def directory_bytes(path):
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


def perturbed(stored, seed):
    """A copy of a `StoredTask` with every float tensor nudged (gates and counts kept)."""
    import numpy as np

    from swr_keras.methods import StoredTask

    rng = np.random.default_rng(seed)
    copy = StoredTask()
    for group in ("learnable", "statistics", "other"):
        for name, value in getattr(stored, group).items():
            if value.dtype.kind == "f":
                noise = rng.normal(0, 1e-3, value.shape) * (np.abs(value) + 1e-3)
                value = (value + noise).astype(value.dtype)
                if group == "statistics" and name.endswith("/1"):  # a variance stays positive
                    value = np.abs(value)
            getattr(copy, group)[name] = value
    return copy


def build_bank(source, root, num_tasks, clip_samples=None):
    """T tasks: the source's (those of `clip_samples` if given), then perturbed copies."""
    from swr_keras import bank as bank_lib

    names = [
        n
        for n in source.names()
        if clip_samples is None or source.entry(n).clip_samples == clip_samples
    ]
    bank = bank_lib.TaskBank(root)
    backbone = source.load_backbone()
    for t in range(num_tasks):
        entry = source.entry(names[t % len(names)])
        stored = source.stored_task(entry.name)
        name = entry.name if t < len(names) else f"{entry.name}_copy{t}"
        bank.add(
            name,
            stored if t < len(names) else perturbed(stored, t),
            method=entry.method,
            class_names=entry.class_names,
            backbone_path=source.backbone_path,
            backbone_model=backbone,
            target_cost=entry.target_cost,
            clip_samples=entry.clip_samples,
            sample_rate=entry.sample_rate,
        )
    return bank


def time_requests(functions, rounds, calls):
    """Median seconds per call of each `name -> () -> None`, in interleaved rounds."""
    samples = {name: [] for name in functions}
    for function in functions.values():
        function()  # warm up
    for _ in range(rounds):
        for name, function in functions.items():
            start = time.perf_counter()
            for _ in range(calls):
                function()
            samples[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(values) for name, values in samples.items()}


def main(argv):
    del argv
    bank_lib = recipe_cli.quiet_import("swr_keras.bank")
    import numpy as np
    import tensorflow as tf

    if not FLAGS.bank:
        recipe_cli.fail("multitask_serving.py", "--bank=DIR is required: a bank with a task.")
    source = bank_lib.TaskBank(FLAGS.bank)
    source.verify()
    work = FLAGS.work_dir or tempfile.mkdtemp(prefix="multitask_bench_")
    sizes = sorted(int(t) for t in FLAGS.num_tasks)
    backbone_file = source.backbone_info()["files"]["model.keras"]["bytes"]
    print(f"backbone file {backbone_file:,} bytes; work dir {work}")
    print(
        f"{'T':>3} {'multi delta':>12} {'multi merged':>13} {'T separate':>12} "
        f"{'saved':>12} {'(T-1) x bb':>12} {'bank':>10} {'backbone vars':>14} {'task vars':>10}"
    )
    for num_tasks in sizes:
        root = os.path.join(work, f"T{num_tasks}")
        shutil.rmtree(root, ignore_errors=True)
        bank = build_bank(source, os.path.join(root, "bank"), num_tasks)
        delta = bank_lib.export_multitask(bank, os.path.join(root, "multitask"), kernels="delta")
        merged = bank_lib.export_multitask(
            bank, os.path.join(root, "multitask_merged"), kernels="merged"
        )
        backbone = bank.load_backbone()
        separate = {
            name: bank_lib.export_task_serving(
                bank, name, os.path.join(root, "separate", name), backbone=backbone
            )
            for name in bank.names()
        }
        separate_bytes = sum(directory_bytes(path) for path in separate.values())
        delta_bytes = directory_bytes(delta["path"])
        one_separate = directory_bytes(next(iter(separate.values())))
        print(
            f"{num_tasks:>3} {delta_bytes:>12,} {directory_bytes(merged['path']):>13,} "
            f"{separate_bytes:>12,} {separate_bytes - delta_bytes:>12,} "
            f"{(num_tasks - 1) * one_separate:>12,} {bank.total_bytes():>10,} "
            f"{delta['backbone_bytes']:>14,} {sum(delta['task_bytes'].values()):>10,}"
        )
    print(
        "(bytes on disk; 'saved' = T separate - multi delta; '(T-1) x bb' = T-1 separate exports)"
    )

    # Time per request on the largest bank; `mixed` needs tasks of one clip length, so
    # if the source's tasks differ, on a bank of the first task's clip length.
    if "mixed" not in delta["signatures"]:
        clip = source.entry(source.names()[0]).clip_samples
        root = os.path.join(work, f"T{num_tasks}_clip{clip}")
        shutil.rmtree(root, ignore_errors=True)
        bank = build_bank(source, os.path.join(root, "bank"), num_tasks, clip)
        delta = bank_lib.export_multitask(bank, os.path.join(root, "multitask"), kernels="delta")
        merged = bank_lib.export_multitask(
            bank, os.path.join(root, "multitask_merged"), kernels="merged"
        )
        first = bank.names()[0]
        separate = {
            first: bank_lib.export_task_serving(bank, first, os.path.join(root, "separate", first))
        }
    name = bank.names()[0]
    entry = bank.entry(name)
    models = {
        "merged": tf.saved_model.load(separate[name]).signatures["serving_default"],
        "multi delta": tf.saved_model.load(delta["path"]).signatures[name],
        "multi merged": tf.saved_model.load(merged["path"]).signatures[name],
    }
    mixed = tf.saved_model.load(delta["path"]).signatures["mixed"]
    task_index = delta["tasks"].index(name)
    rng = np.random.default_rng(0)
    print(f"\ntime per request, task {name}, T = {num_tasks}, median of {FLAGS.rounds} rounds:")
    print(f"{'batch':>5} {'configuration':<16} {'ms/request':>10} {'vs merged':>9}")
    for batch in (int(b) for b in FLAGS.batch_sizes):
        waveform = tf.constant(rng.normal(0, 0.1, (batch, entry.clip_samples)).astype("float32"))
        one_task = tf.constant(np.full(batch, task_index, "int32"))
        spread = tf.constant((np.arange(batch) % num_tasks).astype("int32"))
        functions = {k: (lambda f=f, w=waveform: f(waveform=w)) for k, f in models.items()}
        functions["mixed 1 task"] = lambda w=waveform, t=one_task: mixed(waveform=w, task_id=t)
        functions[f"mixed {num_tasks} tasks"] = lambda w=waveform, t=spread: mixed(
            waveform=w, task_id=t
        )
        want = models["merged"](waveform=waveform)["probabilities"].numpy()
        got = models["multi delta"](waveform=waveform)["probabilities"].numpy()
        timings = time_requests(functions, FLAGS.rounds, FLAGS.calls)
        for key, seconds in timings.items():
            print(
                f"{batch:>5} {key:<16} {1000 * seconds:>10.2f} {seconds / timings['merged']:>8.2f}x"
            )
        print(f"      max |multi delta - merged| = {np.abs(got - want).max():.2e}")
    if not FLAGS.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    recipe_cli.run(main, "multitask_serving.py")
