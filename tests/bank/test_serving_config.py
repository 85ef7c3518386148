"""`models.config`: parsed back with TF Serving's own protos, naming existing versions only."""

import os

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from swr_keras import bank as bank_lib


@pytest.fixture
def exports(tmp_path):
    for name, versions in (("multitask", (1, 2)), ("english", (1,))):
        for version in versions:
            os.makedirs(tmp_path / name / str(version))
    os.makedirs(tmp_path / "english" / ".tmp-2-abc")  # a half-written version: not a version
    return tmp_path


def parse(path):
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(open(path).read(), config)
    return config


def test_the_config_parses_and_names_existing_versions(exports):
    path = str(exports / "models.config")
    bank_lib.write_models_config(
        path,
        [
            bank_lib.ServedModel(
                "multitask", str(exports / "multitask"), {"stable": 1, "canary": 2}
            ),
            bank_lib.ServedModel("english", str(exports / "english"), {"stable": 1}),
        ],
    )
    config = parse(path)
    models = {m.name: m for m in config.model_config_list.config}
    assert sorted(models) == ["english", "multitask"]
    for model in models.values():
        assert model.model_platform == "tensorflow"
        assert os.path.isabs(model.base_path)
        versions = list(model.model_version_policy.specific.versions)
        for version in versions:  # every version served exists as a directory
            assert os.path.isdir(os.path.join(model.base_path, str(version)))
        assert set(model.version_labels.values()) == set(versions)
    assert dict(models["multitask"].version_labels) == {"stable": 1, "canary": 2}

    # Roll back: stable -> 1 stays, canary dropped by pointing it at stable's version.
    models = bank_lib.read_models_config(path)
    models = bank_lib.relabel(models, "multitask", "canary", 1)
    bank_lib.write_models_config(path, models, serving_root="/models")
    config = parse(path)
    multitask = config.model_config_list.config[0]
    assert list(multitask.model_version_policy.specific.versions) == [1]
    assert multitask.base_path == "/models/multitask"
    assert [m.name for m in bank_lib.read_models_config(path, export_dir=str(exports))] == [
        "multitask",
        "english",
    ]


def test_a_label_on_a_missing_version_is_refused(exports):
    path = str(exports / "models.config")
    for labels in ({"stable": 2}, {"canary": 3}):  # english has only version 1 (2 is half-written)
        with pytest.raises(ValueError, match=r"version\(s\) \[\d\] do not exist"):
            bank_lib.write_models_config(
                path, [bank_lib.ServedModel("english", str(exports / "english"), labels)]
            )
    assert not os.path.exists(path)
    with pytest.raises(ValueError, match="no version label"):
        bank_lib.write_models_config(
            path, [bank_lib.ServedModel("english", str(exports / "english"))]
        )
    with pytest.raises(ValueError, match="No model 'german'"):
        bank_lib.relabel([], "german", "stable", 1)
