"""Trains every SWR stage of a tiny model under one strategy; run as a subprocess.

`python -m tests.distributed.stages OUT.npz --devices=N` splits the CPU
into `N` logical devices (which must happen before TensorFlow starts, hence
a process of its own) and trains under `MirroredStrategy` over them
(`N = 1`: one device); `--multi_worker` trains under
`MultiWorkerMirroredStrategy` from `TF_CONFIG` instead. Every variable of
the trainer after each stage and each stage's logs go into `OUT.npz` (the
chief's only). `--checkpoint_dir=DIR` also trains the super-net stage in
two `fit`s, killed after the first epoch's checkpoint and resumed by a
newly built trainer, and stores that result too.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

STAGES = (("supernet", None), ("policy", None), ("reparam", 0.5))
EPOCHS = 2
BATCH = 8


def parse_args(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--multi_worker", action="store_true")
    parser.add_argument("--checkpoint_dir", default="")
    return parser.parse_args(argv)


def data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4 * BATCH, 12, 12, 3)).astype("float32")
    y = rng.integers(0, 5, 4 * BATCH)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)


def build_trainer(strategy):
    import swr_keras
    from tests.conftest import build_conv_net, randomize_batch_norm

    with strategy.scope():
        net = build_conv_net()
        randomize_batch_norm(net, np.random.default_rng(0))
        return swr_keras.SWRTrainer(swr_keras.reparametrize(net), seed=0)


def fit(trainer, strategy, stage, target_cost=None, **kwargs):
    import swr_keras
    from swr_keras import distribute

    with distribute.training_scope(trainer, strategy):
        history = swr_keras.fit_stage(
            trainer,
            stage,
            data(),
            epochs=EPOCHS,
            learning_rate=1e-2,
            target_cost=target_cost,
            verbose=0,
            **kwargs,
        )
    return history.history


class Killed(Exception):
    pass


def resumed_supernet(strategy, directory):
    """The super-net stage killed after epoch 1's checkpoint, resumed by a new trainer."""
    import keras

    from swr_keras import checkpointing, distribute

    chief = distribute.is_chief(strategy)

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise Killed()

    trainer = build_trainer(strategy)
    try:
        fit(
            trainer,
            strategy,
            "supernet",
            callbacks=[checkpointing.EpochCheckpoint(directory, EPOCHS, write=chief), Kill()],
        )
    except Killed:
        pass
    resumed = build_trainer(strategy)
    done = checkpointing.read_progress(directory)["epochs_done"]
    fit(
        resumed,
        strategy,
        "supernet",
        callbacks=[checkpointing.EpochCheckpoint(directory, EPOCHS, write=chief)],
        initial_epoch=done,
    )
    return resumed, done


def sampled(strategy):
    """`replica_uniform` of each replica's half of a global batch, in replica order."""
    import keras

    from swr_keras import distribute

    with strategy.scope():
        seed = keras.random.SeedGenerator(5)

    @tf.function
    def draw():
        local = BATCH // strategy.num_replicas_in_sync
        return strategy.run(lambda: distribute.replica_uniform((local, 3), seed))

    values = strategy.gather(draw(), axis=0)
    return np.asarray(values)


def main(argv):
    args = parse_args(argv)
    cpus = tf.config.list_physical_devices("CPU")
    if args.devices > 1:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * args.devices
        )
    from swr_keras import distribute

    if args.multi_worker:
        strategy = distribute.strategy_from_flag("multi_worker")
    elif args.devices > 1:
        names = ",".join(f"/cpu:{i}" for i in range(args.devices))
        strategy = distribute.strategy_from_flag(f"mirrored:{names}")
    else:
        strategy = distribute.strategy_from_flag("one_device")

    out = {"replicas": np.array(strategy.num_replicas_in_sync), "sampled": sampled(strategy)}
    trainer = build_trainer(strategy)
    for stage, target_cost in STAGES:
        logs = fit(trainer, strategy, stage, target_cost)
        for key, values in logs.items():
            out[f"{stage}/log/{key}"] = np.array(values)
        for index, variable in enumerate(trainer.variables):
            out[f"{stage}/var/{index:03d}/{variable.path}"] = np.asarray(variable.numpy())
    if args.checkpoint_dir:
        resumed, done = resumed_supernet(strategy, args.checkpoint_dir)
        out["resumed/epochs_done"] = np.array(done)
        for index, variable in enumerate(resumed.variables):
            out[f"resumed/var/{index:03d}/{variable.path}"] = np.asarray(variable.numpy())
    out["agreed"] = np.array(distribute.agree_across_workers(3, strategy))
    try:  # each worker passes its own index: only one worker can agree with itself
        index = strategy.cluster_resolver.task_id if args.multi_worker else 0
        distribute.agree_across_workers(index, strategy)
        out["disagreement"] = np.array("")
    except ValueError as error:
        out["disagreement"] = np.array(str(error))
    if distribute.is_chief(strategy):
        np.savez(args.out, **out)


if __name__ == "__main__":
    main(sys.argv[1:])
