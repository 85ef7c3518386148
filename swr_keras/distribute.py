"""Training on several devices or machines: a `tf.distribute` strategy from one flag value.

`--distribute` takes:

- `one_device` (the default): TensorFlow's default strategy, one device;
- `mirrored`: `MirroredStrategy` over every GPU of this machine (its CPU if
  it has none); `mirrored:/gpu:0,/gpu:1` over the devices named;
- `multi_worker`: `MultiWorkerMirroredStrategy` over the machines that
  `TF_CONFIG` lists (every machine runs the same command with its own
  `TF_CONFIG` task; BUILD.md has examples).

Under a strategy with several replicas, `fit` splits each global batch
between them and sums their gradients. Three things make that equal to one
device training on the global batch, which SWR's trainer relies on:

- each replica's loss is its batch mean divided by the number of replicas
  (Keras does it for compiled losses; `scale_loss` for the others);
- random draws per example (SWR's target costs and Gumbel noise) come from
  one draw for the global batch, of which each replica takes its own rows
  (`replica_uniform`): the replicas' examples get different samples, and
  the samples do not depend on how the batch was split;
- batch normalisation uses the statistics of the global batch
  (`training_scope` synchronises every BN layer while a stage trains).
"""

import contextlib
import json
import os

import keras
import tensorflow as tf

from swr_keras.model_walk import batch_norm_layers

ONE_DEVICE = "one_device"
MIRRORED = "mirrored"
MULTI_WORKER = "multi_worker"
KINDS = (ONE_DEVICE, MIRRORED, MULTI_WORKER)


def parse(value):
    """`(kind, devices)` of a `--distribute` value; a one-line ValueError if it is malformed."""
    text = str(value).strip()
    kind, colon, rest = text.partition(":")
    if kind not in KINDS:
        raise ValueError(
            f"--distribute must be one of {', '.join(KINDS)} (or mirrored:DEVICE,DEVICE). "
            f"Received: --distribute={value}"
        )
    devices = [device.strip() for device in rest.split(",") if device.strip()]
    if colon and kind != MIRRORED:
        raise ValueError(
            f"--distribute={kind} takes no device list; only mirrored:DEVICE,... does. "
            f"Received: --distribute={value}"
        )
    if kind == MIRRORED and colon and not devices:
        raise ValueError(
            "--distribute=mirrored: needs device names after the colon, e.g. "
            f"mirrored:/gpu:0,/gpu:1. Received: --distribute={value}"
        )
    return kind, devices


def check_tf_config(text):
    """The parsed `TF_CONFIG` of a multi-worker run; a one-line ValueError if it is unusable.

    It must name the cluster's workers (`"worker"`, and optionally one
    `"chief"`) as `host:port` strings and this process's task in it.
    """
    fix = (
        'Set TF_CONFIG on every machine, e.g. {"cluster": {"worker": ["host1:12345", '
        '"host2:12345"]}, "task": {"type": "worker", "index": 0}} (index 1 on host2).'
    )
    if not text:
        raise ValueError(
            f"--distribute=multi_worker needs the TF_CONFIG environment variable. {fix}"
        )
    try:
        config = json.loads(text)
    except ValueError:
        raise ValueError(f"TF_CONFIG is not JSON. {fix} Received: TF_CONFIG={text}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster.get("worker"):
        raise ValueError(f"TF_CONFIG has no cluster with workers. {fix} Received: TF_CONFIG={text}")
    for job, addresses in cluster.items():
        if job not in ("chief", "worker") or not isinstance(addresses, list):
            raise ValueError(
                f"TF_CONFIG's cluster may hold 'chief' and 'worker' lists only. {fix} "
                f"Received: TF_CONFIG={text}"
            )
        for address in addresses:
            host, _, port = str(address).rpartition(":")
            if not (isinstance(address, str) and host and port.isdigit()):
                raise ValueError(
                    f"TF_CONFIG's {job} address {address!r} is not host:port. {fix} "
                    f"Received: TF_CONFIG={text}"
                )
    if len(cluster.get("chief", [])) > 1:
        raise ValueError(f"TF_CONFIG may have one chief at most. Received: TF_CONFIG={text}")
    index = task.get("index") if isinstance(task, dict) else None
    if (
        not isinstance(task, dict)
        or task.get("type") not in cluster
        or isinstance(index, bool)
        or not isinstance(index, int)
        or not 0 <= index < len(cluster[task["type"]])
    ):
        raise ValueError(
            "TF_CONFIG's task must name this machine's place in the cluster, e.g. "
            '{"type": "worker", "index": 0}. '
            f"Received: TF_CONFIG={text}"
        )
    return config


def _check_devices(devices):
    available = {
        _canonical(device.name): device.name for device in tf.config.list_logical_devices()
    }
    for device in devices:
        try:
            name = _canonical(device)
        except ValueError:
            name = None
        if name not in available:
            listed = ", ".join(sorted(available)) or "none"
            raise ValueError(
                f"--distribute names device {device!r}, which this machine does not have. "
                f"Its devices: {listed}. Received: --distribute=mirrored:{','.join(devices)}"
            )
    return [available[_canonical(device)] for device in devices]


def _canonical(name):
    spec = tf.DeviceSpec.from_string(name)
    if not spec.device_type:
        raise ValueError(name)
    return f"/{spec.device_type.lower()}:{spec.device_index or 0}"


def strategy_from_flag(value, environ=None):
    """The `tf.distribute.Strategy` a `--distribute` value names.

    Create it before any model: `MultiWorkerMirroredStrategy` must exist
    before TensorFlow runs anything else in the process.

    Args:
        value: `one_device`, `mirrored`, `mirrored:DEVICE,DEVICE`, or
            `multi_worker`.
        environ: where `TF_CONFIG` is read (default `os.environ`).

    Raises:
        ValueError: one line naming the bad value (or `TF_CONFIG`) and the fix.
    """
    kind, devices = parse(value)
    if kind == ONE_DEVICE:
        return tf.distribute.get_strategy()
    if kind == MIRRORED:
        return tf.distribute.MirroredStrategy(_check_devices(devices) if devices else None)
    environ = os.environ if environ is None else environ
    check_tf_config(environ.get("TF_CONFIG", ""))
    _let_keras_fit_under_multi_worker()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _let_keras_fit_under_multi_worker():
    """Works around Keras 3's `fit` failing at once under `MultiWorkerMirroredStrategy`.

    Before training, Keras builds the model's metrics and optimizer from one
    batch that it averages over the replicas with `strategy.reduce`, which
    this strategy refuses for an `(x, y)` structure ("unsupported type
    PerReplica"; keras-team/keras#20585, still so in Keras 3.15). The build
    needs the batch's shapes and dtypes only: this hands it the local
    replica's batch instead. Then each step averages its scalar logs over
    the workers along an axis they do not have; they are averaged whole.
    Other strategies go through Keras unchanged.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer

    trainer_class = tf_trainer.TensorFlowTrainer
    if getattr(trainer_class, "_swr_keras_multi_worker_build", False):
        return
    original = trainer_class._maybe_symbolic_build

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self.distribute_strategy
        if iterator is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return original(self, iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:  # as Keras: the first batch of the epoch iterator
            data_batch = keras.tree.map_structure(
                lambda value: (
                    strategy.experimental_local_results(value)[0]
                    if isinstance(value, tf.distribute.DistributedValues)
                    else value
                ),
                next(batches),
            )
            break
        return original(self, data_batch=data_batch)

    original_reduce = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction="auto"):
        # Keras averages each step's logs over the workers along axis 0,
        # which fails for the scalar logs (metric results): average those whole.
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or reduction not in (
            "auto",
            "mean",
        ):
            return original_reduce(values, strategy, reduction)

        def mean(value):
            local = (
                strategy.experimental_local_results(value)[0]
                if isinstance(value, tf.distribute.DistributedValues)
                else value
            )
            axis = None if len(local.shape) == 0 else 0
            return strategy.reduce("MEAN", value, axis=axis)

        return keras.tree.map_structure(mean, values)

    trainer_class._maybe_symbolic_build = maybe_symbolic_build
    tf_trainer.reduce_per_replica = reduce_per_replica
    trainer_class._swr_keras_multi_worker_build = True


def num_replicas(strategy=None):
    return (strategy or tf.distribute.get_strategy()).num_replicas_in_sync


def is_chief(strategy=None):
    """True unless this process is a non-chief worker of a multi-worker run.

    The chief is the `"chief"` task, or worker 0 of a cluster without one;
    only it writes checkpoints and results.
    """
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    if resolver.task_type is None:  # a single-machine run of the strategy
        return True
    cluster = resolver.cluster_spec().as_dict()
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster


def check_batch_size(batch_size, strategy=None):
    """A one-line ValueError unless `batch_size` splits evenly over the replicas.

    Keras divides each replica's mean loss by the number of replicas, which
    is the global batch's mean only when every replica has as many examples.
    """
    replicas = num_replicas(strategy)
    if int(batch_size) % replicas:
        raise ValueError(
            f"--batch_size={batch_size} does not split evenly over {replicas} replicas. "
            f"Use a multiple of {replicas}."
        )


def agree_across_workers(value, strategy=None):
    """Raises ValueError unless every worker of `strategy` passes the same integer `value`.

    A multi-worker run must resume every worker from the same epoch (the
    checkpoints must be on storage all machines share); one device or one
    machine always agrees.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return int(value)
    local = strategy.experimental_distribute_values_from_function(
        lambda _: tf.constant([int(value)], tf.int64)
    )
    values = strategy.gather(local, axis=0).numpy()
    low, high = int(values.min()), int(values.max())
    if low != high:
        raise ValueError(
            f"The workers found different checkpoints (epochs done from {low} to {high}). Put "
            "--output_dir on storage every machine shares, or delete its checkpoints."
        )
    return int(value)


def scale_loss(loss):
    """`loss / replicas`: a replica's share of a loss that is a mean over its own examples.

    The gradients of the replicas are summed, so this gives the gradient of
    the global batch's mean, as Keras' compiled losses do (and a term that
    every replica computes alike, e.g. a penalty on weights, counts once).
    Called in a replica's step; one replica: `loss` unchanged.
    """
    replicas = num_replicas()
    return loss if replicas == 1 else loss * (1.0 / replicas)


def unscale_loss(loss):
    """The inverse of `scale_loss`: the replica's own mean, for metrics."""
    replicas = num_replicas()
    return loss if replicas == 1 else loss * float(replicas)


def replica_rows(local_batch):
    """`(first row, global batch)` of this replica's examples within the global batch.

    Outside a replica context, or with one replica: `(0, local_batch)`.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 0, local_batch
    sizes = context.all_gather(tf.reshape(tf.cast(local_batch, tf.int32), [1]), axis=0)
    first = tf.reduce_sum(sizes[: context.replica_id_in_sync_group])
    return first, tf.reduce_sum(sizes)


def replica_uniform(shape, seed):
    """`keras.random.uniform(shape, seed=seed)` drawn for the global batch; this replica's rows.

    `shape[0]` is the replica's batch. Every replica draws the same tensor
    for the whole global batch (their seed generators are mirrored) and
    keeps its own rows, so the replicas' examples get different samples and
    each example the one it gets on a single device.
    """
    first, total = replica_rows(shape[0])
    values = keras.random.uniform((total, *shape[1:]), seed=seed)
    return values[first : first + shape[0]]


@contextlib.contextmanager
def training_scope(model, strategy=None):
    """`strategy.scope()`, with every BN layer of `model` synchronised over the replicas.

    Create a stage's optimizer and call its `fit` inside. With several
    replicas, BN normalises with (and its moving statistics follow) the
    moments of the global batch, as on one device; the layers are restored
    afterwards, so saved or exported models do not carry the setting.
    """
    strategy = strategy or tf.distribute.get_strategy()
    layers = batch_norm_layers(model) if num_replicas(strategy) > 1 else []
    saved = [layer.synchronized for layer in layers]
    for layer in layers:
        layer.synchronized = True
    try:
        with strategy.scope():
            yield strategy
    finally:
        for layer, value in zip(layers, saved):
            layer.synchronized = value
