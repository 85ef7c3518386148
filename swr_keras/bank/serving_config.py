"""TF Serving's `models.config`: which models and versions a server loads, and their labels.

One `config` per model (the multi-task SavedModel, each task's merged
export): its base path, `model_version_policy { specific { ... } }` listing
exactly the versions some label points to, and `version_labels` (e.g.
`stable`, `canary`). Clients ask for `model_spec.version_label: "stable"`;
rolling a task forward or back is rewriting a label, which the server picks
up when it polls the file (`--model_config_file_poll_wait_seconds`). The file
is written and read with the `tensorflow_serving.config` protos of
`tensorflow-serving-api` (the `serving` extra), and only names version
directories that exist.
"""

import dataclasses
import os
import uuid

from swr_keras.kws.serving_export import existing_versions
from swr_keras.optional import require

CONFIG_FILE = "models.config"


@dataclasses.dataclass
class ServedModel:
    """One model of the config.

    Attributes:
        name: the model's name in requests (`model_spec.name`).
        base_path: the directory of its numbered versions, as this machine
            sees it.
        labels: label -> version, e.g. `{"stable": 1, "canary": 2}`.
    """

    name: str
    base_path: str
    labels: dict = dataclasses.field(default_factory=dict)

    @property
    def versions(self):
        return sorted(set(self.labels.values()))


def _protos():
    return require("tensorflow_serving.config.model_server_config_pb2", "serving", "models.config")


def write_models_config(path, models, *, serving_root=None):
    """Writes `models` as a `ModelServerConfig` text proto at `path`, atomically.

    Args:
        path: the config file, e.g. `serving/models.config`.
        models: `ServedModel`s; every label's version directory must exist.
        serving_root: the directory that holds the base paths as the server
            sees it (e.g. `/models` in a container); default: the base paths'
            absolute local paths.

    Raises:
        ValueError: a model without labels, or a label naming a version
            directory that does not exist.
    """
    from google.protobuf import text_format

    config = _protos().ModelServerConfig()
    for model in models:
        if not model.labels:
            raise ValueError(f"Model {model.name!r} has no version label; give it one (stable).")
        present = set(existing_versions(model.base_path))
        missing = sorted(set(model.versions) - present)
        if missing:
            raise ValueError(
                f"Model {model.name!r}: version(s) {missing} do not exist in {model.base_path} "
                f"(it has {sorted(present) or 'none'}). Label an exported version."
            )
        entry = config.model_config_list.config.add()
        entry.name = model.name
        entry.base_path = (
            os.path.abspath(model.base_path)
            if serving_root is None
            else f"{serving_root.rstrip('/')}/{os.path.basename(os.path.normpath(model.base_path))}"
        )
        entry.model_platform = "tensorflow"
        entry.model_version_policy.specific.versions.extend(model.versions)
        for label, version in sorted(model.labels.items()):
            entry.version_labels[label] = int(version)
    text = text_format.MessageToString(config)
    temporary = os.path.join(
        os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex}"
    )
    try:
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def read_models_config(path, export_dir=None):
    """The `ServedModel`s of a config file, parsed with the serving protos.

    `export_dir`: where the base paths' last components are found on this
    machine (for a file written with `serving_root`); default: the base
    paths as written.
    """
    from google.protobuf import text_format

    config = _protos().ModelServerConfig()
    with open(path, encoding="utf-8") as file:
        try:
            text_format.Parse(file.read(), config)
        except text_format.ParseError as error:
            raise ValueError(f"{path} is not a TF Serving model config ({error}).") from None
    models = []
    for entry in config.model_config_list.config:
        base_path = entry.base_path
        if export_dir is not None:
            base_path = os.path.join(export_dir, os.path.basename(os.path.normpath(base_path)))
        models.append(ServedModel(entry.name, base_path, dict(entry.version_labels)))
    return models


def relabel(models, name, label, version):
    """Points `label` of model `name` at `version` (a new `ServedModel` list)."""
    names = [m.name for m in models]
    if name not in names:
        raise ValueError(f"No model {name!r} in the config. Its models: {', '.join(names)}.")
    return [
        dataclasses.replace(m, labels={**m.labels, label: int(version)}) if m.name == name else m
        for m in models
    ]
