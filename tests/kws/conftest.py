"""A tiny KWS data directory and a tiny pre-trained backbone for the recipe tests."""

import dataclasses
import os

import keras
import numpy as np
import pytest

from swr_keras import models
from swr_keras.data import synthetic
from swr_keras.kws import reproduce, tasks

TINY_TAU = 1.0


def make_tiny_gsc2(root, *, num_speakers, held_out_percentage, noise_seconds):
    """`<root>/gsc2`: every GSC2 keyword and one unknown word, one clip per speaker and word;
    `held_out_percentage` of the speakers each in validation and in test."""
    synthetic.make_gsc_corpus(
        str(root / "gsc2"),
        words=synthetic.GSC_KEYWORDS + ("bed",),
        num_speakers=num_speakers,
        clips_per_word=1,
        validation_percentage=held_out_percentage,
        testing_percentage=held_out_percentage,
        background_noise_seconds=noise_seconds,
        num_workers=1,
    )


@pytest.fixture(scope="session")
def kws_data_dir(tmp_path_factory):
    """`<dir>/gsc2`: every GSC2 keyword and one unknown word by 10 synthetic speakers."""
    root = tmp_path_factory.mktemp("kws_data")
    make_tiny_gsc2(root, num_speakers=10, held_out_percentage=20.0, noise_seconds=2.0)
    return str(root)


@pytest.fixture(scope="session")
def union_data_dir(tmp_path_factory):
    """A tiny GSC2 and MC-KWS: the 22-class multi-lingual union, and Mandarin clips of 2.24 s
    (the GSC2 noise lasts 3 s, longer than an MC-KWS clip)."""
    root = tmp_path_factory.mktemp("union")
    make_tiny_gsc2(root, num_speakers=4, held_out_percentage=25.0, noise_seconds=3.0)
    synthetic.make_mc_kws_corpus(
        str(root / "mc_kws"), num_speakers=6, clips_per_word=1, num_workers=1, seed=3
    )
    return str(root)


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory):
    """A BC-ResNet-1 for the 22 multi-lingual classes with non-trivial BN statistics."""
    keras.utils.set_random_seed(7)
    model = models.BCResNet(tau=TINY_TAU, num_classes=len(tasks.multilingual_class_names()))
    batch = np.random.default_rng(7).normal(size=(8, 40, 101, 1)).astype("float32")
    for _ in range(3):  # moving statistics away from 0/1, as after pre-training
        model(batch, training=True)
    path = str(tmp_path_factory.mktemp("pretrained") / "model.keras")
    model.save(path)
    return path


def recipe_path(name):
    return os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "recipes", name
    )


def identified(record, corpus="corpus digest", pretrained="pretrained sha256"):
    """`record` with an identity hash of its own material (coordinates, cell version, inputs).

    What a report given no `reproduce.CellIdentity` checks: the hash matches
    the material, the cell version is the code's, and the records of a task
    and seed agree on their inputs.
    """
    material = {
        "cell": record["cell"],
        "cell_version": reproduce.CELL_VERSION,
        "inputs": {"corpus": corpus, "pretrained": pretrained},
    }
    return {**record, "identity": {"hash": reproduce.identity_hash(material), "material": material}}


def write_result_record(
    directory,
    task,
    row,
    cost,
    seed,
    accuracy,
    param_ratio=3.0,
    mult_ratio=1.0,
    backbone="bc_resnet8",
):
    """A finished table cell's record as `kws.reproduce` writes it (report tests train nothing)."""
    cell = reproduce.Cell(backbone, task, row, cost, seed)
    reproduce.write_cell(
        os.path.join(directory, "cells", cell.file_name()),
        identified(
            {
                "cell": dataclasses.asdict(cell),
                "result": {
                    "test_accuracy": accuracy,
                    "validation_accuracy": accuracy,
                    "param_ratio_two_tasks": param_ratio,
                    "mult_ratio": mult_ratio,
                },
                "seconds": 5.0,
                "shared_seconds": 0.0,
                "versions": {"keras": "3"},
                "command": "run",
            }
        ),
    )
