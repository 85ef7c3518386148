"""Export: the TF Serving contract, checked without a server binary, and TFLite.

No `tensorflow_model_server` runs here. The serving contract is checked the
ways that need none: `saved_model_cli` reads the signatures and runs
`serving_default` from the MetaGraph, the reloaded signatures equal the
Keras model, and a `PredictRequest` / `PredictResponse` pair of the serving
API is serialised, parsed and answered with the SavedModel.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from tensorflow_serving.apis import predict_pb2

import swr_keras
from swr_keras.data.features import LogMel
from swr_keras.kws.serving_export import LABELS_FILE, export_serving
from swr_keras.kws.tflite_export import export_tflite, tflite_accuracy, tflite_predict
from swr_keras.model_walk import batch_norm_layers
from swr_keras.models import BCResNet, classifier, feature_extractor

CLASS_NAMES = ("_silence_", "_unknown_", "yes")
CLIP_SAMPLES = 16000
NUM_CLIPS, NUM_CALIBRATION = 48, 32


def softmax(logits):
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def waveforms():
    """1 s clips: tones in noise at levels from -60 to -10 dB full scale."""
    rng = np.random.default_rng(0)
    time = np.arange(CLIP_SAMPLES) / 16000
    level = 10 ** rng.uniform(-3, -0.5, (NUM_CLIPS, 1))
    tone_share = rng.uniform(0, 1, (NUM_CLIPS, 1))
    tones = np.sin(2 * np.pi * rng.uniform(100, 4000, (NUM_CLIPS, 1)) * time)
    noise = rng.normal(0, 1, (NUM_CLIPS, CLIP_SAMPLES))
    return (level * (tone_share * tones + (1 - tone_share) * noise)).astype("float32")


@pytest.fixture(scope="module")
def log_mel(waveforms):
    return keras.ops.convert_to_numpy(LogMel()(waveforms))


@pytest.fixture(scope="module")
def model(log_mel):
    """BC-ResNet-1 whose predictions differ from clip to clip.

    A freshly initialised BC-ResNet shrinks its signal layer by layer and its
    pooled features hardly vary between clips, so every clip gets the same
    class. BN variances of 0.1-0.3 keep the signal alive, and a classifier
    scaled to the spread of the features turns it into varied logits.
    """
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    model = BCResNet(tau=1, num_classes=len(CLASS_NAMES))
    for layer in batch_norm_layers(model):
        shape = layer.moving_variance.shape
        layer.moving_variance.assign(rng.uniform(0.1, 0.3, shape))
        layer.gamma.assign(rng.uniform(0.8, 1.2, shape))
        layer.beta.assign(rng.normal(0, 0.05, shape))
    features = keras.ops.convert_to_numpy(feature_extractor(model)(log_mel, training=False))
    kernel = rng.normal(0, 1, (features.shape[1], len(CLASS_NAMES)))
    kernel /= features.std() * np.sqrt(features.shape[1])
    classifier(model).set_weights([kernel, -features.mean(axis=0) @ kernel])
    return model


@pytest.fixture(scope="module")
def keras_logits(model, log_mel):
    logits = keras.ops.convert_to_numpy(model(log_mel, training=False))
    assert len(set(np.argmax(logits, axis=-1))) > 1, "test model predicts one class only"
    return logits


@pytest.fixture(scope="module")
def version_dir(model, tmp_path_factory):
    base = tmp_path_factory.mktemp("saved_models") / "kws_test"
    return export_serving(model, CLASS_NAMES, str(base), clip_samples=CLIP_SAMPLES)


@pytest.fixture(scope="module")
def serving_model(version_dir):
    return tf.saved_model.load(version_dir)


@pytest.fixture(scope="module")
def tflite_files(model, log_mel, tmp_path_factory):
    return export_tflite(
        model, str(tmp_path_factory.mktemp("tflite")), log_mel[:NUM_CALIBRATION], name="kws_test"
    )


def tiny_model(frames=None):
    """Conv + pooling + classifier: a fast stand-in for the versioning tests."""
    return keras.Sequential(
        [
            keras.Input((40, frames, 1)),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(len(CLASS_NAMES)),
        ]
    )


def saved_model_cli(*args):
    result = subprocess.run(
        [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# -- The SavedModel ------------------------------------------------------------


def test_layout_and_labels_asset(version_dir):
    assert os.path.basename(version_dir) == "1"
    assert os.listdir(os.path.dirname(version_dir)) == ["1"]
    assert {"saved_model.pb", "variables", "assets"} <= set(os.listdir(version_dir))
    with open(os.path.join(version_dir, "assets", LABELS_FILE), encoding="utf-8") as file:
        assert file.read().splitlines() == list(CLASS_NAMES)


def test_saved_model_cli_shows_the_serving_contract(version_dir):
    shown = saved_model_cli("show", "--dir", version_dir, "--all")
    for name, input_name, input_shape in [
        ("serving_default", "waveform", f"(-1, {CLIP_SAMPLES})"),
        ("log_mel", "log_mel", "(-1, 40, 101, 1)"),
    ]:
        signature = shown.split(f"signature_def['{name}']:")[1]
        signature = signature.split("signature_def[")[0].split("The MetaGraph")[0]
        inputs, outputs = signature.split("contains the following output(s):")
        assert (
            f"inputs['{input_name}'] tensor_info:\n        dtype: DT_FLOAT\n"
            f"        shape: {input_shape}" in inputs
        )
        for output_name, dtype, shape in [
            ("class_id", "DT_INT64", "(-1)"),
            ("label", "DT_STRING", "(-1)"),
            ("probabilities", "DT_FLOAT", "(-1, 3)"),
        ]:
            assert (
                f"outputs['{output_name}'] tensor_info:\n        dtype: {dtype}\n"
                f"        shape: {shape}\n" in outputs
            )
        assert "Method name is: tensorflow/serving/predict" in outputs


def test_saved_model_cli_runs_serving_default(version_dir, waveforms, keras_logits, tmp_path):
    # --input_exprs accepts Python literals only in TF 2.21, so the clips go
    # in as an .npy file.
    np.save(tmp_path / "waveform.npy", waveforms[:2])
    printed = saved_model_cli(
        "run",
        "--dir",
        version_dir,
        "--tag_set",
        "serve",
        "--signature_def",
        "serving_default",
        "--inputs",
        f"waveform={tmp_path / 'waveform.npy'}",
        "--outdir",
        str(tmp_path / "outputs"),
    )
    for name in ("probabilities", "class_id", "label"):
        assert f"Result for output key {name}:" in printed
    probabilities = np.load(tmp_path / "outputs" / "probabilities.npy")
    np.testing.assert_allclose(probabilities, softmax(keras_logits[:2]), atol=1e-5)
    labels = np.load(tmp_path / "outputs" / "label.npy", allow_pickle=True)
    assert [label.decode() for label in labels] == [
        CLASS_NAMES[i] for i in np.argmax(keras_logits[:2], axis=-1)
    ]


def test_signatures_equal_the_keras_model(serving_model, waveforms, log_mel, keras_logits):
    expected_ids = np.argmax(keras_logits, axis=-1)
    for outputs in (
        serving_model.signatures["serving_default"](waveform=tf.constant(waveforms)),
        serving_model.signatures["log_mel"](log_mel=tf.constant(log_mel)),
    ):
        np.testing.assert_allclose(outputs["probabilities"], softmax(keras_logits), atol=1e-5)
        assert outputs["class_id"].dtype == tf.int64
        np.testing.assert_array_equal(outputs["class_id"], expected_ids)
        assert [label.decode() for label in outputs["label"].numpy()] == [
            CLASS_NAMES[i] for i in expected_ids
        ]


def test_predict_request_and_response_round_trip(serving_model, waveforms, keras_logits):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "kws_test"
    request.model_spec.signature_name = "serving_default"
    request.inputs["waveform"].CopyFrom(tf.make_tensor_proto(waveforms[:3]))
    received = predict_pb2.PredictRequest()
    received.ParseFromString(request.SerializeToString())

    signature = serving_model.signatures[received.model_spec.signature_name]
    outputs = signature(waveform=tf.constant(tf.make_ndarray(received.inputs["waveform"])))
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(received.model_spec)
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
    answer = predict_pb2.PredictResponse()
    answer.ParseFromString(response.SerializeToString())

    assert answer.model_spec.name == "kws_test"
    np.testing.assert_allclose(
        tf.make_ndarray(answer.outputs["probabilities"]), softmax(keras_logits[:3]), atol=1e-5
    )
    np.testing.assert_array_equal(
        tf.make_ndarray(answer.outputs["class_id"]), np.argmax(keras_logits[:3], axis=-1)
    )
    assert tf.make_ndarray(answer.outputs["label"]).dtype == object


# -- Versions ------------------------------------------------------------------


def test_versions_count_up_and_are_never_overwritten(tmp_path):
    merged = swr_keras.merge(swr_keras.reparametrize(tiny_model()))
    base = str(tmp_path / "kws_tiny")
    os.makedirs(os.path.join(base, "notes"))  # not a number: not a version
    assert export_serving(merged, CLASS_NAMES, base) == os.path.join(base, "1")
    assert export_serving(merged, CLASS_NAMES, base) == os.path.join(base, "2")
    pb = os.path.join(base, "2", "saved_model.pb")
    before = (os.path.getmtime(pb), sorted(os.listdir(os.path.join(base, "2"))))

    with pytest.raises(FileExistsError, match="kws_tiny/2"):
        export_serving(merged, CLASS_NAMES, base, version=2)
    assert (os.path.getmtime(pb), sorted(os.listdir(os.path.join(base, "2")))) == before
    assert sorted(os.listdir(base)) == ["1", "2", "notes"]


def test_failed_export_leaves_no_version_and_no_temporary(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", fail)
    base = str(tmp_path / "kws_tiny")
    with pytest.raises(RuntimeError, match="disk full"):
        export_serving(tiny_model(), CLASS_NAMES, base, version=7)
    assert os.listdir(base) == []


def test_reparametrised_model_is_refused(tmp_path):
    swr_model = swr_keras.reparametrize(tiny_model())
    with pytest.raises(ValueError, match=r"swr_keras\.merge"):
        export_serving(swr_model, CLASS_NAMES, str(tmp_path / "serving"))
    with pytest.raises(ValueError, match=r"swr_keras\.merge"):
        export_tflite(swr_model, str(tmp_path / "tflite"), np.zeros((2, 40, 101, 1)))
    assert not os.path.exists(tmp_path / "serving") and not os.path.exists(tmp_path / "tflite")


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="class_names must hold 3"):
        export_serving(tiny_model(), CLASS_NAMES[:2], str(tmp_path / "a"))
    with pytest.raises(ValueError, match=r"takes inputs \(40, 98, 1\)"):
        export_serving(tiny_model(frames=98), CLASS_NAMES, str(tmp_path / "b"))
    with pytest.raises(ValueError, match="version must be a positive integer"):
        export_serving(tiny_model(), CLASS_NAMES, str(tmp_path / "c"), version=0)


# -- TFLite --------------------------------------------------------------------


def test_tflite_files(tflite_files):
    for kind in ("float", "int8"):
        with open(tflite_files[kind], "rb") as file:
            assert file.read(8)[4:] == b"TFL3"  # a TFLite flatbuffer, not a stub
    assert sorted(os.listdir(os.path.dirname(tflite_files["float"]))) == [
        "kws_test_float.tflite",
        "kws_test_int8.tflite",
    ]


def test_tflite_float_equals_keras(tflite_files, log_mel, keras_logits):
    np.testing.assert_allclose(
        tflite_predict(tflite_files["float"], log_mel), keras_logits, atol=1e-4
    )
    assert tflite_accuracy(tflite_files["float"], log_mel, np.argmax(keras_logits, axis=-1)) == 1.0


def test_tflite_files_keep_the_serving_signature(tflite_files, log_mel, keras_logits):
    # LiteRT's signature runners (and Android's `runSignature`) call a file by its SignatureDef.
    for kind in ("float", "int8"):
        assert Interpreter(model_path=tflite_files[kind]).get_signature_list() == {
            "serving_default": {"inputs": ["log_mel"], "outputs": ["output_0"]}
        }
    runner = Interpreter(model_path=tflite_files["float"]).get_signature_runner("serving_default")
    np.testing.assert_allclose(runner(log_mel=log_mel[:1])["output_0"], keras_logits[:1], atol=1e-4)


def test_tflite_int8_is_full_integer_and_agrees_with_float(tflite_files, log_mel, keras_logits):
    # No size check: at tau=1 the int8 file came out larger than the float
    # one (111,624 vs 84,996 bytes for 12 classes; BC-ResNet-8: 522,976 vs
    # 1,268,724). What int8 must give is integer-only arithmetic.
    interpreter = Interpreter(model_path=tflite_files["int8"])
    (input_details,) = interpreter.get_input_details()
    (output_details,) = interpreter.get_output_details()
    assert list(input_details["shape"]) == [1, 40, 101, 1]
    assert input_details["dtype"] == output_details["dtype"] == np.int8
    assert input_details["quantization"][0] > 0 and output_details["quantization"][0] > 0
    assert {details["dtype"] for details in interpreter.get_tensor_details()} <= {np.int8, np.int32}

    scores = tflite_predict(tflite_files["int8"], log_mel)
    # Calibrated on the first NUM_CALIBRATION clips; scored on all of them.
    agreement = np.mean(np.argmax(scores, -1) == np.argmax(keras_logits, -1))
    assert agreement >= 0.9
    centred = [values - values.mean(axis=0) for values in (scores, keras_logits)]
    assert np.corrcoef(centred[0].ravel(), centred[1].ravel())[0, 1] > 0.9
