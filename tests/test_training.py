"""The SWR training stages: what each one may change, and the policy's budget."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import swr_keras
from swr_keras.layers import example_gates
from swr_keras.losses import layer_cost_weights
from swr_keras.model_walk import batch_norm_layers, iter_layers
from swr_keras.training import TemperatureSchedule


def dataset(rng, size=24, batch=8, shape=(12, 12, 3), classes=5):
    x = rng.normal(size=(size,) + shape).astype("float32")
    y = rng.integers(0, classes, size)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def snapshot(trainer):
    """Named groups of variable values, to see what a stage changed."""
    model = trainer.model
    layers = swr_keras.reparam_layers(model)
    norms = batch_norm_layers(model)
    block = [l for l in iter_layers(model) if type(l).__name__ == "ConvNormBlock"][0]
    groups = {
        "base": [l.base_kernel for l in layers],
        "gates": [l.gate for l in layers],
        "bn_affine": [v for n in norms for v in (n.gamma, n.beta)],
        "bn_statistics": [v for n in norms for v in (n.moving_mean, n.moving_variance)],
        "classifier": model.get_layer("classifier").weights,
        "frozen_conv": block.conv.weights,
        "policy": trainer.policy_network.weights,
    }
    values = {name: [v.numpy().copy() for v in group] for name, group in groups.items()}
    values["deltas"] = [l.kernel_delta.numpy().copy() for l in layers]
    return values


def changed(before, after):
    return {
        name: [not np.array_equal(b, a) for b, a in zip(before[name], after[name])]
        for name in before
    }


def mixed_policy(trainer):
    """Sets the policy network so that it always picks layers 0, 2 and 4."""
    policy = trainer.policy_network
    picks = np.array([1, 0, 1, 0, 1], "float32")
    bias = np.stack([picks - 0.5, 0.5 - picks], axis=-1).reshape(-1)
    policy.logits.kernel.assign(np.zeros(policy.logits.kernel.shape))
    policy.logits.bias.assign(bias)
    return picks


@pytest.fixture
def trainer(conv_net):
    # The threshold rule deploys exactly the layers `mixed_policy` picks, at
    # every cost; budget gates have their own tests below.
    return swr_keras.SWRTrainer(swr_keras.reparametrize(conv_net), binarization="threshold", seed=0)


def run_stage(trainer, stage, rng, **kwargs):
    before = snapshot(trainer)
    swr_keras.fit_stage(
        trainer, stage, dataset(rng), epochs=1, learning_rate=1e-2, verbose=0, **kwargs
    )
    return changed(before, snapshot(trainer))


def test_supernet_stage_changes_deltas_classifier_and_statistics_only(trainer, rng):
    diff = run_stage(trainer, "supernet", rng)
    assert all(diff["deltas"]) and all(diff["classifier"]) and all(diff["bn_statistics"])
    for frozen in ("base", "gates", "bn_affine", "frozen_conv", "policy"):
        assert not any(diff[frozen]), frozen


def test_policy_stage_changes_only_the_policy_network(trainer, rng):
    run_stage(trainer, "supernet", rng)
    diff = run_stage(trainer, "policy", rng)
    assert all(diff["policy"])
    for frozen in (
        "base",
        "gates",
        "bn_affine",
        "bn_statistics",
        "classifier",
        "deltas",
        "frozen_conv",
    ):
        assert not any(diff[frozen]), frozen


def test_reparam_stage_trains_only_gated_deltas_from_zero(trainer, rng):
    run_stage(trainer, "supernet", rng)
    picks = mixed_policy(trainer)
    diff = run_stage(trainer, "reparam", rng, target_cost=0.3)
    layers = swr_keras.reparam_layers(trainer.model)
    np.testing.assert_array_equal([l.gate.numpy() for l in layers], picks)
    for layer, pick in zip(layers, picks):
        delta = layer.kernel_delta.numpy()
        assert np.any(delta) if pick else not np.any(delta), layer.name
    assert all(diff["classifier"]) and all(diff["bn_statistics"])
    for frozen in ("base", "bn_affine", "policy", "frozen_conv"):
        assert not any(diff[frozen]), frozen


def test_reparam_restarts_from_the_same_supernet_state_for_every_cost(trainer, rng):
    run_stage(trainer, "supernet", rng)
    mixed_policy(trainer)
    trainer.set_stage("reparam", target_cost=0.3)
    first = snapshot(trainer)
    run_stage(trainer, "reparam", rng, target_cost=0.3)
    trainer.set_stage("reparam", target_cost=0.7)
    again = snapshot(trainer)
    assert not any(v for group in changed(first, again).values() for v in group)


def test_joint_stage_trains_policy_and_all_deltas(trainer, rng):
    diff = run_stage(trainer, "joint", rng)
    assert all(diff["policy"]) and all(diff["deltas"]) and all(diff["classifier"])
    assert not any(diff["base"]) and not any(diff["bn_affine"])


def test_bn_affine_trains_gamma_and_beta(conv_net, rng):
    trainer = swr_keras.SWRTrainer(
        swr_keras.reparametrize(conv_net, bn_affine=True), bn_affine=True
    )
    diff = run_stage(trainer, "supernet", rng)
    assert all(diff["bn_affine"])


def test_bn_affine_task_state_stores_and_restores_gamma_and_beta(conv_net, images, rng):
    trainer = swr_keras.SWRTrainer(
        swr_keras.reparametrize(conv_net, bn_affine=True), bn_affine=True, seed=0
    )
    run_stage(trainer, "supernet", rng)
    mixed_policy(trainer)
    diff = run_stage(trainer, "reparam", rng, target_cost=0.3)
    assert all(diff["bn_affine"])  # stage 2 trains them too
    state = swr_keras.extract_task_state(trainer.model)
    norms = batch_norm_layers(trainer.model)
    assert len(state.batch_norm) == len(norms)
    for arrays, norm in zip(state.batch_norm.values(), norms):
        for array, variable in zip(
            arrays, (norm.gamma, norm.beta, norm.moving_mean, norm.moving_variance)
        ):
            np.testing.assert_array_equal(array, variable.numpy())
    expected = trainer.model(images, training=False)
    np.testing.assert_allclose(
        swr_keras.apply_task_state(conv_net, state)(images), expected, atol=1e-5
    )
    without_affine = swr_keras.extract_task_state(trainer.model, include_bn_affine=False)
    assert all(len(arrays) == 2 for arrays in without_affine.batch_norm.values())
    assert (
        np.abs(swr_keras.apply_task_state(conv_net, without_affine)(images) - expected).max() > 1e-4
    )


def test_reinitialize_deltas_false_starts_stage_two_from_the_supernet_deltas(trainer, rng):
    run_stage(trainer, "supernet", rng)
    supernet = snapshot(trainer)["deltas"]
    assert all(np.any(delta) for delta in supernet)
    mixed_policy(trainer)
    for cost in (0.3, 0.7):  # every entry, not only the first
        trainer.set_stage("reparam", target_cost=cost, reinitialize_deltas=False)
        for got, want in zip(snapshot(trainer)["deltas"], supernet):
            np.testing.assert_array_equal(got, want)
        run_stage(trainer, "reparam", rng, target_cost=cost, reinitialize_deltas=False)
    trainer.set_stage("reparam", target_cost=0.3)
    assert not any(np.any(delta) for delta in snapshot(trainer)["deltas"])


def test_equal_cost_weighting_reaches_the_policy_loss_only(trainer, conv_net, rng, monkeypatch):
    from swr_keras import training

    seen = {}
    real = {name: getattr(training, name) for name in ("policy_loss", "gated_cost")}
    for name in real:

        def record(*args, name=name):
            seen[name] = np.asarray(args[-2] if name == "policy_loss" else args[-1])
            return real[name](*args)

        monkeypatch.setattr(training, name, record)
    equal = swr_keras.SWRTrainer(swr_keras.reparametrize(conv_net), cost_weighting="equal")
    swr_keras.fit_stage(equal, "policy", dataset(rng), epochs=1, learning_rate=1e-3, verbose=0)
    layers = swr_keras.reparam_layers(equal.model)
    np.testing.assert_allclose(seen["policy_loss"], np.full(len(layers), 1 / len(layers)))
    # The reported ratio stays the share of parameters, whatever the loss weights.
    parameters = layer_cost_weights(layers, "parameters")
    assert not np.allclose(parameters, 1 / len(layers))
    np.testing.assert_allclose(seen["gated_cost"], parameters)
    swr_keras.fit_stage(trainer, "policy", dataset(rng), epochs=1, learning_rate=1e-3, verbose=0)
    np.testing.assert_allclose(seen["policy_loss"], parameters)


def test_per_example_gates_in_a_model_match_examples_run_alone(conv_net, images, rng):
    swr_model = swr_keras.reparametrize(conv_net)
    layers = swr_keras.reparam_layers(swr_model)
    for layer in layers:
        layer.kernel_delta.assign(rng.normal(0, 0.3, layer.kernel_delta.shape))
    gates = rng.integers(0, 2, (len(images), len(layers))).astype("float32")
    with example_gates(layers, gates):
        batched = swr_model(images).numpy()
    for index, example_gates_row in enumerate(gates):
        for layer, gate in zip(layers, example_gates_row):
            layer.gate.assign(gate)
        np.testing.assert_allclose(
            batched[index], swr_model(images[index : index + 1])[0], atol=1e-5
        )


def test_trainer_keras_round_trip(trainer, images, rng, tmp_path):
    run_stage(trainer, "supernet", rng)
    mixed_policy(trainer)
    trainer.set_stage("reparam", target_cost=0.3)
    path = tmp_path / "trainer.keras"
    trainer.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.stage == "reparam"
    np.testing.assert_allclose(loaded(images), trainer(images), atol=1e-6)
    np.testing.assert_allclose(
        loaded.policy_network(np.array([[0.3]])),
        trainer.policy_network(np.array([[0.3]])),
        atol=1e-6,
    )


@pytest.mark.parametrize("warm_start", [False, True], ids=["cold", "warm"])
def test_a_reloaded_trainer_restarts_reparam_from_its_start_state(
    conv_net, rng, tmp_path, warm_start
):
    # Stage 2 at one cost, saved to .keras, reloaded, stage 2 at another cost:
    # the reloaded trainer must start from the same BN statistics and
    # classifier as the trainer that never left memory does: those it was
    # built with (cold), or the super-net's (warm).
    trainer = swr_keras.SWRTrainer(
        swr_keras.reparametrize(conv_net), binarization="threshold", seed=0, warm_start=warm_start
    )
    built = snapshot(trainer)
    run_stage(trainer, "supernet", rng)
    mixed_policy(trainer)
    supernet = snapshot(trainer)
    start_state = supernet if warm_start else built
    diff = run_stage(trainer, "reparam", rng, target_cost=0.3)
    assert all(diff["classifier"]) and all(diff["bn_statistics"])  # it moved away
    path = tmp_path / "trainer.keras"
    trainer.save(path)
    loaded = keras.saving.load_model(path)
    data = dataset(np.random.default_rng(5))
    for each in (trainer, loaded):
        each.set_stage("reparam", target_cost=0.7)
        start = snapshot(each)
        for group in ("classifier", "bn_statistics"):
            for got, want in zip(start[group], start_state[group]):
                np.testing.assert_array_equal(got, want)
        swr_keras.fit_stage(
            each, "reparam", data, epochs=1, learning_rate=1e-2, target_cost=0.7, verbose=0
        )
    for name, values in snapshot(trainer).items():
        for got, want in zip(snapshot(loaded)[name], values):
            np.testing.assert_array_equal(got, want, err_msg=name)


def test_a_cold_stage_two_does_not_depend_on_the_supernet(conv_net, rng):
    """Cold (the default): stage 2 after a super-net trains exactly what a
    trainer that never trained one does with the same gates, so stage 1 only
    chooses the gates and every method's final model starts from one state."""
    data = dataset(np.random.default_rng(7))
    trained = swr_keras.SWRTrainer(
        swr_keras.reparametrize(conv_net), binarization="threshold", seed=0
    )
    fresh = swr_keras.SWRTrainer(
        swr_keras.reparametrize(conv_net), binarization="threshold", seed=0
    )
    run_stage(trained, "supernet", rng)
    for each in (trained, fresh):
        mixed_policy(each)
        swr_keras.fit_stage(
            each, "reparam", data, epochs=1, learning_rate=1e-2, target_cost=0.3, verbose=0
        )
    for name, values in snapshot(fresh).items():
        for got, want in zip(snapshot(trained)[name], values):
            np.testing.assert_array_equal(got, want, err_msg=name)


def test_temperature_is_cosine_annealed_per_batch_and_resumes(trainer, rng):
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(self.model.temperature.numpy()))

    data = dataset(rng, size=32, batch=8)
    swr_keras.fit_stage(
        trainer, "policy", data, epochs=3, learning_rate=1e-3, verbose=0, callbacks=[Record()]
    )
    assert seen[0] == pytest.approx(2.0) and seen[-1] == pytest.approx(0.5)
    assert all(a > b for a, b in zip(seen, seen[1:]))
    full = list(seen)
    seen.clear()
    swr_keras.fit_stage(
        trainer,
        "policy",
        data,
        epochs=3,
        learning_rate=1e-3,
        verbose=0,
        callbacks=[Record()],
        initial_epoch=2,
    )
    np.testing.assert_allclose(seen, full[8:], rtol=1e-6)


def test_bad_stage_arguments(trainer, rng):
    with pytest.raises(ValueError, match="needs a target cost"):
        trainer.set_stage("reparam")
    with pytest.raises(ValueError, match="stage must be one of"):
        trainer.set_stage("finetune")
    with pytest.raises(ValueError, match=r"target_cost must be in \[0, 1\]"):
        trainer.set_stage("reparam", target_cost=float("nan"))
    with pytest.raises(ValueError, match="steps_per_epoch"):
        swr_keras.fit_stage(
            trainer, "supernet", dataset(rng).repeat(), epochs=1, learning_rate=1e-3
        )
    with pytest.raises(ValueError, match="PolicyNetwork\\(num_layers=5\\)"):
        swr_keras.SWRTrainer(trainer.model, swr_keras.PolicyNetwork(4))
    with pytest.raises(ValueError, match="TemperatureSchedule|Temperatures must be > 0"):
        TemperatureSchedule(0.0, 0.5)


def graded_net(seed):
    """Sixteen 1x1 convolutions of graded sizes: no layer dominates the budget."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 2))
    x = inputs
    for index in range(16):
        x = keras.layers.Conv2D(10 + index // 2, 1, use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))


def test_budget_fill_lands_on_its_budget_and_grows_with_it():
    """A toy cost table: budget gates' ratio within 0.03 of c, non-decreasing."""
    seed = 0
    swr_model = swr_keras.reparametrize(graded_net(seed))
    rng = np.random.default_rng(seed)
    data = dataset(rng, size=128, batch=16, shape=(8, 8, 2), classes=4)
    trainer = swr_keras.SWRTrainer(swr_model, seed=seed, binarization="budget")
    swr_keras.fit_stage(trainer, "supernet", data, epochs=3, learning_rate=1e-2, verbose=0)
    swr_keras.fit_stage(trainer, "policy", data, epochs=10, learning_rate=1e-2, verbose=0)
    weights = layer_cost_weights(swr_keras.reparam_layers(swr_model))
    costs = np.round(np.arange(0.1, 1.0, 0.1), 1)
    actual = np.array([float(trainer.deployment_policy(c) @ weights) for c in costs])
    assert abs(actual[0] - 0.1) <= 0.03 and abs(actual[-1] - 0.9) <= 0.03, actual
    assert np.all(np.diff(actual) >= 0), actual
    # Stage 2 deploys exactly these gates.
    trainer.set_stage("reparam", target_cost=0.1)
    gates = [float(layer.gate.numpy()) for layer in swr_keras.reparam_layers(swr_model)]
    np.testing.assert_array_equal(gates, trainer.deployment_policy(0.1))
    # The paper's rule is the default and is the plain threshold.
    threshold = swr_keras.SWRTrainer(swr_model, trainer.policy_network)
    np.testing.assert_array_equal(
        threshold.deployment_policy(0.1), trainer.policy_network.binary_policy(0.1)
    )
    with pytest.raises(ValueError, match="Received: binarization='round'"):
        swr_keras.SWRTrainer(swr_model, trainer.policy_network, binarization="round")


def test_fit_stage_works_with_keras_callbacks_and_tensorboard(trainer, rng, tmp_path):
    history = swr_keras.fit_stage(
        trainer,
        "policy",
        dataset(rng),
        epochs=2,
        learning_rate=1e-3,
        verbose=0,
        validation_data=dataset(rng, size=8),
        callbacks=[keras.callbacks.TensorBoard(log_dir=str(tmp_path / "logs"))],
    )
    assert {"loss", "policy_loss", "added_ratio", "accuracy", "val_accuracy"} <= set(
        history.history
    )
    assert all(np.isfinite(history.history["policy_loss"]))
    events = list((tmp_path / "logs").rglob("events.out.tfevents.*"))
    assert {path.parent.name for path in events} >= {"train", "validation"}


def test_every_stage_runs_under_mixed_precision(rng):
    from tests.conftest import build_conv_net

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        trainer = swr_keras.SWRTrainer(swr_keras.reparametrize(build_conv_net()), seed=0)
        assert swr_keras.reparam_layers(trainer.model)[0].compute_dtype == "bfloat16"
        for stage, target in (
            ("supernet", None),
            ("policy", None),
            ("reparam", 0.5),
            ("joint", None),
        ):
            history = swr_keras.fit_stage(
                trainer,
                stage,
                dataset(rng, size=16),
                epochs=1,
                learning_rate=1e-3,
                target_cost=target,
                verbose=0,
            )
            assert np.isfinite(history.history["loss"][-1]), stage
    finally:
        keras.mixed_precision.set_global_policy("float32")
