"""BC-ResNet with causal time padding: causality, equal weights, SWR on it."""

import keras
import numpy as np
import pytest

from swr_keras.models import BCResNet, CausalTimePadding
from swr_keras.streaming import check_causal
from tests.models.backbone_checks import assert_keras_round_trip, assert_merge_equals_reparametrized
from tests.streaming.conftest import random_causal_model


def _per_frame_features(model, x):
    extractor = model.get_layer("feature_extractor")
    pool = extractor.get_layer("pool")
    return keras.ops.convert_to_numpy(keras.Model(extractor.inputs, pool.input)(x))


def test_no_frame_depends_on_a_later_frame():
    model = random_causal_model()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 40, 30, 1)).astype("float32")
    changed = x.copy()
    changed[:, :, 20:] = rng.normal(size=(1, 40, 10, 1))
    before, after = _per_frame_features(model, x), _per_frame_features(model, changed)
    np.testing.assert_array_equal(before[:, :, :20], after[:, :, :20])
    assert not np.array_equal(before[:, :, 20:], after[:, :, 20:])


def test_symmetric_model_sees_the_future_and_is_refused():
    symmetric = random_causal_model(causal=False)
    with pytest.raises(ValueError, match="not causal"):
        check_causal(symmetric)


def test_causal_model_has_the_symmetric_weights_and_output_shape():
    causal, symmetric = BCResNet(tau=1, causal=True), BCResNet(tau=1)
    assert [w.shape for w in causal.weights] == [w.shape for w in symmetric.weights]
    paddings = [
        layer.frames
        for layer in causal.get_layer("feature_extractor").layers
        if isinstance(layer, CausalTimePadding)
    ]
    # Stem and head 5-frame kernels, then 2 * dilation per temporal conv of the 12 blocks.
    assert paddings == [4] + [2] * 2 + [4] * 2 + [8] * 4 + [16] * 4 + [4]
    x = np.random.default_rng(0).normal(size=(2, 40, 101, 1)).astype("float32")
    assert causal(x).shape == (2, 12)


@pytest.mark.slow  # reparametrize + merge + .keras round trip: about 15 s on 2 cores
def test_transfer_works_unchanged_on_the_causal_model(tmp_path):
    backbone = random_causal_model()
    x = np.random.default_rng(2).normal(size=(2, 40, 40, 1)).astype("float32")
    assert_merge_equals_reparametrized(backbone, x)
    assert_keras_round_trip(backbone, x, str(tmp_path / "causal.keras"))
    with pytest.raises(ValueError, match="causal must be True or False"):
        BCResNet(tau=1, causal="yes")


def test_pretraining_builds_the_causal_backbone_and_refuses_it_for_res15(tmp_path):
    import subprocess
    import sys

    from swr_keras.kws.backbones import build_backbone

    model = build_backbone("bc_resnet", 5, tau=1, causal=True)
    check_causal(model)
    with pytest.raises(ValueError, match="Only bc_resnet has a causal variant"):
        build_backbone("res15", 5, causal=True)
    recipe = __file__.replace("tests/streaming/test_causal_bc_resnet.py", "recipes/pretrain_kws.py")
    result = subprocess.run(
        [
            sys.executable,
            recipe,
            "--backbone=res15",
            "--causal",
            f"--output_dir={tmp_path}/m",
            f"--work_dir={tmp_path}/w",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "pretrain_kws.py: error: --causal needs --backbone=bc_resnet. Received: --backbone=res15"
    )
