"""The job settings every task shares: optimiser, label smoothing; KWS checkpoint keys kept."""

import dataclasses
import hashlib
import json

import keras
import pytest

from swr_keras import methods
from swr_keras.losses import SparseLabelSmoothingCrossentropy
from swr_keras.transfer_job import Settings


def _key_before_optimizer_settings(settings, **extra):
    """`Settings.key` as it was computed before the optimiser became a setting."""
    fields = dataclasses.asdict(settings)
    for name in (
        "options",
        "optimizer",
        "momentum",
        "weight_decay",
        "label_smoothing",
        "binarization",
        "cost_weighting",
        "supernet",
        "supernet_weight",
        "warm_start",
    ):
        fields.pop(name)
    fields.pop("reparam_epochs")
    fields.update(extra)
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def test_kws_settings_keep_their_checkpoint_keys():
    settings = Settings(method="finetune_all", seed=3)
    assert settings.key(identity=["gsc2"]) == _key_before_optimizer_settings(
        settings, identity=["gsc2"]
    )
    assert "optimizer" not in settings.recorded()
    image = dataclasses.replace(settings, optimizer="sgd", label_smoothing=0.3)
    assert image.key(identity=["gsc2"]) != settings.key(identity=["gsc2"])
    assert image.recorded()["optimizer"] == "sgd" and "weight_decay" not in image.recorded()


def test_the_optimizer_setting_builds_adam_or_sgd_with_cosine_decay():
    adam = Settings().make_optimizer(1e-3, 10)
    assert isinstance(adam, keras.optimizers.Adam) and adam.weight_decay is None
    sgd = Settings(optimizer="sgd", momentum=0.8, weight_decay=1e-4).make_optimizer(0.02, 10)
    assert isinstance(sgd, keras.optimizers.SGD)
    assert sgd.momentum == 0.8 and sgd.weight_decay == pytest.approx(1e-4)
    schedule = sgd.learning_rate if callable(sgd.learning_rate) else sgd._learning_rate
    assert float(schedule(0)) == pytest.approx(0.02) and float(schedule(10)) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="Received: optimizer='rmsprop'"):
        Settings(optimizer="rmsprop").make_optimizer(0.1, 10)


def test_label_smoothing_reaches_every_method_but_rep_nets_own():
    smoothed = Settings(label_smoothing=0.3)
    for name in ("swr", "finetune_all", "taps", "adapter"):
        method = methods.get(name)
        loss = method.loss(method.options(), smoothed)
        assert isinstance(loss, SparseLabelSmoothingCrossentropy) and loss.label_smoothing == 0.3
        plain = method.loss(method.options(), Settings())
        assert isinstance(plain, keras.losses.SparseCategoricalCrossentropy)
    repnet = methods.get("repnet")
    loss = repnet.loss(repnet.options({"repnet_label_smoothing": 0.7}), smoothed)
    assert loss.label_smoothing == 0.7
