"""The multi-task SavedModel: every signature equals its task's merged model, on disk the
backbone once, the serving API's request and response round-trip.

As tests/kws/test_export.py, without a `tensorflow_model_server` binary:
`tf.saved_model.load`, `saved_model_cli run`, and a `PredictRequest` /
`PredictResponse` pair serialised, parsed and answered with the SavedModel.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from swr_keras import bank as bank_lib
from swr_keras.data.features import LogMel
from tests.bank.conftest import CLIP_SAMPLES

TASKS = ("english", "mandarin")


def directory_bytes(path):
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


@pytest.fixture(scope="module")
def waveforms():
    rng = np.random.default_rng(5)
    level = 10 ** rng.uniform(-3, -0.5, (6, 1))
    return (level * rng.normal(0, 1, (6, CLIP_SAMPLES))).astype("float32")


@pytest.fixture(scope="module")
def expected(swr_tasks, waveforms):
    """Each task's merged model (what the job deploys) on the clips: softmax probabilities."""
    features = LogMel()(waveforms)
    return {
        name: tf.nn.softmax(deployed(features, training=False)).numpy()
        for name, (_, _, deployed) in swr_tasks.items()
    }


@pytest.fixture(scope="module", params=["delta", "merged"])
def exported(request, bank_template, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"multitask_{request.param}") / "multitask"
    result = bank_lib.export_multitask(bank_template, str(base), kernels=request.param)
    return result, tf.saved_model.load(result["path"])


def test_every_signature_equals_its_merged_model(exported, expected, swr_tasks, waveforms):
    result, loaded = exported
    assert result["tasks"] == list(TASKS)
    assert set(loaded.signatures) == {"english", "english_log_mel", "mandarin",
                                      "mandarin_log_mel", "mixed"}  # fmt: skip
    features = LogMel()(waveforms)
    for name in TASKS:
        classes = np.array(swr_tasks[name][0], dtype=object)
        for signature, inputs in ((name, {"waveform": waveforms}),
                                  (f"{name}_log_mel", {"log_mel": features})):  # fmt: skip
            out = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
            np.testing.assert_allclose(out["probabilities"], expected[name], atol=1e-5)
            np.testing.assert_array_equal(out["class_id"], expected[name].argmax(-1))
            np.testing.assert_array_equal(out["label"].numpy().astype(str),
                                          classes[expected[name].argmax(-1)])  # fmt: skip


def test_mixed_answers_each_example_with_its_task(exported, expected, waveforms):
    _, loaded = exported
    task_id = np.array([0, 1, 1, 0, 1, 0], "int32")
    out = loaded.signatures["mixed"](waveform=tf.constant(waveforms), task_id=tf.constant(task_id))
    probabilities = out["probabilities"].numpy()
    assert probabilities.shape == (6, 4)  # padded to the larger task's 4 classes
    for row, t in enumerate(task_id):
        want = expected[TASKS[t]][row]
        np.testing.assert_allclose(probabilities[row, : len(want)], want, atol=1e-5)
        assert not probabilities[row, len(want) :].any()
        assert out["class_id"].numpy()[row] == want.argmax()
    # One task only: the other's part of the batch is empty and skipped.
    only = loaded.signatures["mixed"](
        waveform=tf.constant(waveforms[:2]), task_id=tf.constant([1, 1], tf.int32)
    )
    np.testing.assert_allclose(only["probabilities"][:, :3], expected[TASKS[1]][:2], atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="task_id"):
        loaded.signatures["mixed"](waveform=tf.constant(waveforms[:1]), task_id=tf.constant([2]))


def test_the_backbone_is_stored_once(exported, bank_template, tmp_path):
    """Below the separate exports by at least (T - 1) x the backbone minus the tasks' tensors."""
    result, _ = exported
    separate = sum(
        directory_bytes(bank_lib.export_task_serving(bank_template, n, str(tmp_path / n)))
        for n in TASKS
    )
    backbone = result["backbone_bytes"]
    deltas = sum(result["task_bytes"].values())
    assert backbone > 0 and all(result["task_bytes"][n] > 0 for n in TASKS)
    assert separate - directory_bytes(result["path"]) >= (len(TASKS) - 1) * backbone - deltas
    # Each task holds fewer bytes of its own than the backbone (half the layers gated).
    assert max(result["task_bytes"].values()) < backbone


def test_predict_request_round_trips_per_signature(exported, expected, waveforms):
    _, loaded = exported
    features = LogMel()(waveforms).numpy()
    for signature, name, inputs in [
        ("english", "english", {"waveform": waveforms[:2]}),
        ("mandarin_log_mel", "mandarin", {"log_mel": features[:2]}),
        ("mixed", None, {"waveform": waveforms[:2], "task_id": np.array([1, 0], "int32")}),
    ]:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "multitask"
        request.model_spec.signature_name = signature
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        parsed = predict_pb2.PredictRequest.FromString(request.SerializeToString())
        function = loaded.signatures[parsed.model_spec.signature_name]
        outputs = function(**{k: tf.constant(tf.make_ndarray(v)) for k, v in parsed.inputs.items()})
        response = predict_pb2.PredictResponse()
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
        answer = predict_pb2.PredictResponse.FromString(response.SerializeToString())
        probabilities = tf.make_ndarray(answer.outputs["probabilities"])
        if name is None:  # mixed: example 0 asks mandarin (3 classes), example 1 english
            np.testing.assert_allclose(probabilities[0, :3], expected["mandarin"][0], atol=1e-5)
            np.testing.assert_allclose(probabilities[1], expected["english"][1], atol=1e-5)
        else:
            np.testing.assert_allclose(probabilities, expected[name][:2], atol=1e-5)
        assert set(answer.outputs) == {"probabilities", "class_id", "label"}


@pytest.mark.slow  # saved_model_cli imports TensorFlow in a subprocess: about 14 s on 2 cores
def test_saved_model_cli_runs_a_task_signature(exported, expected, waveforms, tmp_path):
    result, _ = exported
    if result["path"].find("merged") >= 0:
        pytest.skip("once is enough: the delta export")
    np.save(tmp_path / "clips.npy", waveforms)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    process = subprocess.run(
        [
            cli,
            "run",
            "--dir",
            result["path"],
            "--tag_set",
            "serve",
            "--signature_def",
            "mandarin",
            "--inputs",
            f"waveform={tmp_path / 'clips.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-2000:]
    probabilities = np.load(tmp_path / "out" / "probabilities.npy")
    np.testing.assert_allclose(probabilities, expected["mandarin"], atol=1e-5)


def test_bad_arguments(bank_template, tmp_path):
    with pytest.raises(ValueError, match="kernels must be one of"):
        bank_lib.export_multitask(bank_template, str(tmp_path / "m"), kernels="sum")
    with pytest.raises(ValueError, match="no task 'nope'"):
        bank_lib.export_multitask(bank_template, str(tmp_path / "m"), names=["nope"])
    assert not os.path.exists(tmp_path / "m") or not os.listdir(tmp_path / "m")
