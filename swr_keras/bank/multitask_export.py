"""One TF Serving SavedModel for every task of a bank, the backbone stored once.

TF Serving cannot share weights between separately loaded models, so the
sharing lives inside one SavedModel. Its variables are content-addressed:
the backbone's feature-extractor weights are stored once, and each task adds
only the tensors that differ from everything stored before it -- for SWR the
deltas of its gated layers, its BN statistics and its classifier. Each task's
signature computes the task's model with `Model.stateless_call`, feeding
every variable from that store; with `kernels="delta"` a gated layer's kernel
is `w0 + delta` computed in the graph (as the paper's reparametrisation; the
sum is the one `merge` folds, so the outputs equal the merged model's), with
`kernels="merged"` the task stores the merged kernel instead (same bytes, no
additions per request). A method whose stored task is no `TaskState`
(fine-tuning, adapters) simply stores what differs from the backbone. The
graph is shared too: the tasks of one architecture (method and class count)
call one traced function with their own variable values, so the SavedModel
holds one copy of the model's graph, not one per task.

Signatures, for every task `<name>`: `<name>` takes `waveform` float32
`[batch, clip_samples]`; `<name>_log_mel` takes `log_mel`; both return
`probabilities`, `class_id` and `label`, like `serving_export.export_serving`.
When every task takes the same clip, `mixed` takes `waveform` and `task_id`
int32 `[batch]` (an index into `assets/tasks.txt`): each example is answered
by its own task (as PEFT's `adapter_names`), `probabilities` zero-padded to
the largest task's classes.
"""

import hashlib
import os
import shutil
import tempfile
import uuid

import numpy as np
import tensorflow as tf

from swr_keras import methods as methods_lib
from swr_keras.data.features import LogMel
from swr_keras.kws.serving_export import existing_versions
from swr_keras.methods.stored_task import to_task_state
from swr_keras.model_walk import weighted_leaf_layers
from swr_keras.models import task_model as task_model_lib
from swr_keras.validation import check_positive_int

KERNELS = ("delta", "merged")
TASKS_FILE = "tasks.txt"
MIXED = "mixed"


class _TensorStore:
    """Content-addressed `tf.Variable`s: equal tensors are stored once."""

    def __init__(self):
        self.by_digest = {}
        self.groups = {}  # owner -> [tf.Variable], tracked by the module

    def get(self, value, owner):
        value = np.ascontiguousarray(value)
        digest = hashlib.sha256(f"{value.dtype.str}{value.shape}".encode() + value.tobytes())
        key = digest.hexdigest()
        if key not in self.by_digest:
            variable = tf.Variable(value, trainable=False, name=f"{owner}_{len(self.by_digest)}")
            self.by_digest[key] = variable
            self.groups.setdefault(owner, []).append(variable)
        return self.by_digest[key]


def _has_task_state(stored):
    return "gates" in stored.other and "num_weighted_layers" in stored.other


def _task_sources(name, method, stored, base, model, store, kernels):
    """For every variable of `model` (trainable, then non-trainable): how the graph computes it.

    A source is `(variable,)`, `(w0, delta)` (w0 + delta) or `(w0, a, b)`
    (w0 + a @ b, LoRA's factors).
    """
    special = {}
    if kernels == "delta" and _has_task_state(stored):
        state = to_task_state(stored)
        base_leaves, leaves = weighted_leaf_layers(base), weighted_leaf_layers(model)
        for position, delta in state.deltas.items():
            w0 = store.get(np.asarray(base_leaves[position].kernel), "backbone")
            special[id(leaves[position].kernel)] = (w0, store.get(delta, name))
        for position, (a, b) in state.low_rank.items():
            w0 = store.get(np.asarray(base_leaves[position].kernel), "backbone")
            special[id(leaves[position].kernel)] = (w0, store.get(a, name), store.get(b, name))
    del method
    return [
        special.get(id(v)) or (store.get(np.asarray(v), name),)
        for v in [*model.trainable_variables, *model.non_trainable_variables]
    ]


def _value(source):
    if len(source) == 1:
        return source[0].read_value()
    if len(source) == 2:
        return source[0].read_value() + source[1].read_value()
    w0, a, b = source
    return w0.read_value() + tf.tensordot(a.read_value(), b.read_value(), axes=1)


def export_multitask(bank, export_base, *, names=None, version=None, kernels="delta", mixed=True):
    """Writes the bank's tasks as one SavedModel `export_base/<version>/` (module docstring).

    Written into a hidden sibling directory and renamed into place, like
    `serving_export.export_serving`, so a polling server never sees half a
    version.

    Args:
        bank: a `TaskBank`.
        export_base: the model's base path, e.g. `serving/multitask`.
        names: the tasks to include, in `task_id` order; default all, sorted.
        version: the version number; default one more than the largest.
        kernels: `"delta"` (w0 + delta in the graph) or `"merged"`.
        mixed: add the `mixed` signature (when the tasks take one clip length).

    Returns:
        `{"path": version directory, "signatures": [names], "tasks": [names],
        "backbone_bytes": bytes of the shared variables, "task_bytes":
        {name: bytes of its own variables}}`.
    """
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {KERNELS}. Received: kernels={kernels!r}")
    names = list(names) if names is not None else bank.names()
    if not names:
        raise ValueError(f"The bank {bank.root} has no task to export. Add one first.")
    entries = [bank.entry(name) for name in names]
    signature_names = [n for name in names for n in (name, f"{name}_log_mel")]
    clash = sorted(
        {n for n in signature_names if signature_names.count(n) > 1} | {MIXED} & set(names)
    )
    if clash:
        raise ValueError(
            f"Task names {clash} clash with signature names (<task>, <task>_log_mel, {MIXED}). "
            "Rename the tasks."
        )
    backbone = bank.load_backbone()
    store = _TensorStore()
    for variable in task_model_lib.feature_extractor(backbone).weights:
        store.get(np.asarray(variable), "backbone")

    front_ends, tasks = {}, []
    for entry in entries:
        stored = bank.stored_task(entry.name)
        method = methods_lib.get(entry.method)
        base = task_model_lib.with_new_classifier(backbone, len(entry.class_names))
        model = method.restore(base, stored)
        sources = _task_sources(entry.name, method, stored, base, model, store, kernels)
        key = (entry.clip_samples, entry.sample_rate)
        if key not in front_ends:
            front_ends[key] = _FrontEnd(*key)
        tasks.append((entry, model, sources, front_ends[key]))

    functions, logit_functions, forwards = {}, [], {}
    for entry, model, sources, front_end in tasks:
        features_shape = tuple(front_end.compute_output_shape((None, entry.clip_samples))[1:])
        variables = [*model.trainable_variables, *model.non_trainable_variables]
        architecture = (
            entry.method,
            tuple(model.input_shape),  # BC-ResNet's time axis is None: all clip lengths
            len(model.trainable_variables),
            tuple((tuple(v.shape), str(v.dtype)) for v in variables),
        )
        if architecture not in forwards:
            forwards[architecture] = _shared_forward(model)
        logits = _logits_function(forwards[architecture], sources, features_shape)
        logit_functions.append(logits)
        functions[entry.name], functions[f"{entry.name}_log_mel"] = _task_signatures(
            entry, logits, front_end, features_shape
        )
    if mixed and len(front_ends) == 1:
        functions[MIXED] = _mixed_signature(tasks, logit_functions)

    module = tf.Module(name="task_bank")
    module.backbone_variables = store.groups.get("backbone", [])
    module.task_variables = {n: store.groups.get(n, []) for n in names}

    os.makedirs(export_base, exist_ok=True)
    if version is None:
        version = 1 + max(existing_versions(export_base), default=0)
    check_positive_int("version", version)
    final = os.path.join(export_base, str(version))
    if os.path.lexists(final):
        raise FileExistsError(f"Version {version} already exists: {final}")
    temporary = os.path.join(export_base, f".tmp-{version}-{uuid.uuid4().hex}")
    os.mkdir(temporary)
    try:
        with tempfile.TemporaryDirectory() as assets:
            tasks_path = os.path.join(assets, TASKS_FILE)
            with open(tasks_path, "w", encoding="utf-8") as file:
                file.write("\n".join(names) + "\n")
            module.tasks_file = tf.saved_model.Asset(tasks_path)
            for function_name, function in functions.items():
                setattr(module, function_name, function)
            tf.saved_model.save(module, temporary, signatures=functions)
        os.rename(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return {
        "path": final,
        "signatures": list(functions),
        "tasks": names,
        "backbone_bytes": _bytes(module.backbone_variables),
        "task_bytes": {n: _bytes(v) for n, v in module.task_variables.items()},
    }


class _FrontEnd:
    """`LogMel` as one `tf.function` per clip length, shared by every task's signatures."""

    def __init__(self, clip_samples, sample_rate):
        self.layer = LogMel(sample_rate=sample_rate)
        self.function = tf.function(
            self.layer, input_signature=[tf.TensorSpec([None, clip_samples], tf.float32)]
        )

    def __call__(self, waveform):
        return self.function(waveform)

    def compute_output_shape(self, shape):
        return self.layer.compute_output_shape(shape)


def _bytes(variables):
    return int(sum(v.shape.num_elements() * v.dtype.size for v in variables))


def _shared_forward(model):
    """`(log_mel, values) -> float32 logits` of `model`'s architecture, every variable a value.

    One `tf.function` for all the tasks of one architecture (method, class
    count, input shape: every clip length when the time axis is `None`): the
    SavedModel stores its graph once, in its function library, and each
    task's signatures call it with that task's values.
    """
    variables = [*model.trainable_variables, *model.non_trainable_variables]
    num_trainable = len(model.trainable_variables)

    def forward(log_mel, values):
        outputs, _ = model.stateless_call(
            list(values[:num_trainable]), list(values[num_trainable:]), log_mel, training=False
        )
        return tf.cast(outputs, tf.float32)

    return tf.function(
        forward,
        input_signature=[
            tf.TensorSpec(model.input_shape, tf.float32),
            [tf.TensorSpec(v.shape, v.dtype) for v in variables],
        ],
    )


def _logits_function(forward, sources, features_shape):
    """`log_mel -> logits` of one task: its values computed from `sources`, then `forward`.

    A `tf.function` of its own, so that the task's signatures share its reads
    and sums instead of each holding a copy.
    """

    def logits(log_mel):
        return forward(log_mel, [_value(source) for source in sources])

    return tf.function(
        logits, input_signature=[tf.TensorSpec((None,) + features_shape, tf.float32)]
    )


def _predictions(logits, labels):
    class_id = tf.argmax(logits, axis=-1)
    return {
        "probabilities": tf.nn.softmax(logits, axis=-1),
        "class_id": class_id,
        "label": tf.gather(labels, class_id),
    }


def _task_signatures(entry, logits, front_end, features_shape):
    labels = tf.constant(entry.class_names)

    def from_waveform(waveform):
        return _predictions(logits(front_end(waveform)), labels)

    def from_log_mel(log_mel):
        return _predictions(logits(log_mel), labels)

    return (
        tf.function(
            from_waveform,
            input_signature=[tf.TensorSpec([None, entry.clip_samples], tf.float32, "waveform")],
        ),
        tf.function(
            from_log_mel,
            input_signature=[tf.TensorSpec((None,) + features_shape, tf.float32, "log_mel")],
        ),
    )


def _mixed_signature(tasks, logit_functions):
    """`waveform`, `task_id` -> each example answered by its task (one front end for all)."""
    front_end = tasks[0][3]
    clip_samples = tasks[0][0].clip_samples
    width = max(len(entry.class_names) for entry, *_ in tasks)
    label_tables = [tf.constant(entry.class_names) for entry, *_ in tasks]
    num_tasks = len(tasks)

    def mixed(waveform, task_id):
        check = tf.debugging.assert_less(
            task_id, num_tasks, message=f"task_id must be in [0, {num_tasks}) (assets/tasks.txt)"
        )
        with tf.control_dependencies([check, tf.debugging.assert_non_negative(task_id)]):
            task_id = tf.identity(task_id)  # every use below waits for the checks
        features = front_end(waveform)
        rows = tf.range(tf.shape(waveform)[0])
        parts = tf.dynamic_partition(features, task_id, num_tasks)
        positions = tf.dynamic_partition(rows, task_id, num_tasks)
        probabilities, class_ids, labels = [], [], []
        for t in range(num_tasks):

            def run(t=t):
                answer = _predictions(logit_functions[t](parts[t]), label_tables[t])
                classes = len(tasks[t][0].class_names)
                padding = [[0, 0], [0, width - classes]]
                return tf.pad(answer["probabilities"], padding), answer["class_id"], answer["label"]

            def nothing():
                return tf.zeros([0, width]), tf.zeros([0], tf.int64), tf.zeros([0], tf.string)

            # A task absent from the batch is skipped: no work, and oneDNN's convolution fails
            # on an empty batch in BC-ResNet ("input depth must be evenly divisible by filter
            # depth").
            answer = tf.cond(tf.shape(parts[t])[0] > 0, run, nothing)
            probabilities.append(answer[0])
            class_ids.append(answer[1])
            labels.append(answer[2])
        return {
            "probabilities": tf.dynamic_stitch(positions, probabilities),
            "class_id": tf.dynamic_stitch(positions, class_ids),
            "label": tf.dynamic_stitch(positions, labels),
        }

    return tf.function(
        mixed,
        input_signature=[
            tf.TensorSpec([None, clip_samples], tf.float32, "waveform"),
            tf.TensorSpec([None], tf.int32, "task_id"),
        ],
    )
