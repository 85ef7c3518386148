"""Training under `tf.distribute`: several replicas give what one device gives.

Every SWR stage of a tiny model trains, from the same start on the same
global batches, in four processes at once (`tests/distributed/stages.py`;
logical devices must be configured before TensorFlow starts): on one CPU
device; under `MirroredStrategy` over two logical CPU devices; and as two
workers of a `MultiWorkerMirroredStrategy` cluster on 127.0.0.1. The
strongest statement that holds is checked: after each stage every variable
and every logged metric equals the single-device run's within float
tolerance -- the stochastic policy stage included, because each example's
target cost and Gumbel noise are drawn for the global batch and do not
depend on the replica that trains it.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from swr_keras import checkpointing, distribute

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ("supernet", "policy", "reparam")
TOLERANCE = 1e-5
TIMEOUT = 240


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def start(out, *args, env=None):
    environ = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    environ.update(PYTHONPATH=ROOT, **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.distributed.stages", str(out), *args],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`{name: npz}` of the one-device, mirrored and two-worker runs, trained concurrently."""
    tmp = tmp_path_factory.mktemp("distributed")
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = {
        "one_device": start(tmp / "one_device.npz"),
        "mirrored": start(
            tmp / "mirrored.npz", "--devices=2", f"--checkpoint_dir={tmp / 'mirrored_ckpt'}"
        ),
    }
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        processes[f"worker{index}"] = start(
            tmp / "multi_worker.npz",
            "--multi_worker",
            f"--checkpoint_dir={tmp / 'multi_worker_ckpt'}",
            env={"TF_CONFIG": json.dumps(config)},
        )
    failures = []
    for name, process in processes.items():
        try:
            output, _ = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            for other in processes.values():
                other.kill()
            pytest.fail(f"{name} did not finish in {TIMEOUT} s")
        if process.returncode:
            failures.append(f"{name} exited {process.returncode}:\n{output[-3000:]}")
    assert not failures, "\n".join(failures)
    results = {
        name: dict(np.load(tmp / f"{name}.npz"))
        for name in ("one_device", "mirrored", "multi_worker")
    }
    results["multi_worker_checkpoints"] = sorted(os.listdir(tmp / "multi_worker_ckpt"))
    return results


def stage_values(run, stage):
    """`{index: array}` of the trainer's variables after `stage` and `{key: logs}`."""
    prefix = f"{stage}/var/"
    variables = {
        key[len(prefix) :].split("/", 1)[0]: value
        for key, value in run.items()
        if key.startswith(prefix)
    }
    logs = {key: value for key, value in run.items() if key.startswith(f"{stage}/log/")}
    return variables, logs


def assert_same_training(run, reference):
    for stage in STAGES:
        variables, logs = stage_values(run, stage)
        expected, expected_logs = stage_values(reference, stage)
        assert variables.keys() == expected.keys() and len(variables) > 50
        for index, value in expected.items():
            np.testing.assert_allclose(
                variables[index], value, rtol=0, atol=TOLERANCE, err_msg=f"{stage} var {index}"
            )
        assert logs.keys() == expected_logs.keys()
        for key, value in expected_logs.items():
            np.testing.assert_allclose(logs[key], value, rtol=0, atol=TOLERANCE, err_msg=key)


# The four processes (the `runs` fixture, shared by the five tests below) start
# TensorFlow and trace three stages each: about 50 s of CPU on 2 cores.
@pytest.mark.slow
def test_mirrored_over_two_devices_trains_every_stage_as_one_device(runs):
    assert int(runs["mirrored"]["replicas"]) == 2
    assert_same_training(runs["mirrored"], runs["one_device"])


@pytest.mark.slow
def test_two_workers_train_every_stage_as_one_device(runs):
    assert int(runs["multi_worker"]["replicas"]) == 2
    assert_same_training(runs["multi_worker"], runs["one_device"])


@pytest.mark.slow
def test_replicas_draw_their_own_rows_of_the_global_sample(runs):
    one = runs["one_device"]["sampled"]
    for name in ("mirrored", "multi_worker"):
        np.testing.assert_array_equal(runs[name]["sampled"], one)
    first, second = np.split(one, 2)
    assert not np.allclose(first, second)


@pytest.mark.slow
def test_a_killed_stage_resumes_under_both_strategies(runs):
    for name in ("mirrored", "multi_worker"):
        run = runs[name]
        assert int(run["resumed/epochs_done"]) == 1
        resumed = sorted(key for key in run if key.startswith("resumed/var/"))
        uninterrupted = sorted(key for key in run if key.startswith("supernet/var/"))
        assert len(resumed) == len(uninterrupted)
        for key, expected in zip(resumed, uninterrupted):
            np.testing.assert_array_equal(run[key], run[expected], err_msg=f"{name} {key}")
    # The chief wrote the checkpoints; a non-chief writer would leave temp files or a race.
    assert runs["multi_worker_checkpoints"] == [
        checkpointing.PREVIOUS_FILE,
        checkpointing.RECORD_FILE,
        checkpointing.STATE_FILE,
    ]


@pytest.mark.slow
def test_workers_that_see_different_checkpoints_are_refused(runs):
    assert int(runs["multi_worker"]["agreed"]) == 3
    message = str(runs["multi_worker"]["disagreement"])
    assert "epochs done from 0 to 1" in message and "storage every machine shares" in message
    assert str(runs["mirrored"]["disagreement"]) == ""  # one machine always agrees


# -- the flag and TF_CONFIG (in-process, no strategy started) -----------------------
@pytest.mark.parametrize(
    "value, message",
    [
        ("bogus", "must be one of"),
        ("multi_worker:/gpu:0", "takes no device list"),
        ("mirrored:", "needs device names"),
        ("mirrored:/gpu:9", "does not have"),
        ("mirrored:nonsense", "does not have"),
    ],
)
def test_a_bad_flag_value_is_one_line_naming_it(value, message):
    with pytest.raises(ValueError, match=message) as error:
        distribute.strategy_from_flag(value)
    assert "\n" not in str(error.value) and value in str(error.value)


def test_one_device_is_the_default_strategy():
    strategy = distribute.strategy_from_flag("one_device")
    assert strategy is tf.distribute.get_strategy()
    assert distribute.is_chief(strategy) and distribute.num_replicas(strategy) == 1


WORKERS = {"worker": ["127.0.0.1:1111", "127.0.0.1:2222"]}


@pytest.mark.parametrize(
    "config, message",
    [
        ("", "needs the TF_CONFIG"),
        ("{not json", "not JSON"),
        (json.dumps({"task": {"type": "worker", "index": 0}}), "no cluster with workers"),
        (json.dumps({"cluster": {"worker": ["nohost"]}}), "not host:port"),
        (json.dumps({"cluster": {"ps": ["a:1"], **WORKERS}}), "'chief' and 'worker'"),
        (json.dumps({"cluster": WORKERS}), "task must name"),
        (json.dumps({"cluster": WORKERS, "task": {"type": "worker", "index": 2}}), "task must"),
        (json.dumps({"cluster": WORKERS, "task": {"type": "chief", "index": 0}}), "task must"),
    ],
)
def test_a_bad_tf_config_is_one_line(config, message):
    with pytest.raises(ValueError, match=message) as error:
        distribute.strategy_from_flag("multi_worker", environ={"TF_CONFIG": config})
    assert "\n" not in str(error.value)


def test_a_good_tf_config_passes():
    config = {"cluster": {"chief": ["h:1"], **WORKERS}, "task": {"type": "worker", "index": 1}}
    assert distribute.check_tf_config(json.dumps(config)) == config


def test_the_batch_must_split_evenly_over_the_replicas():
    distribute.check_batch_size(50)  # one replica takes any batch

    class FourReplicas:
        num_replicas_in_sync = 4

    distribute.check_batch_size(48, FourReplicas())
    with pytest.raises(ValueError, match="--batch_size=50 does not split evenly over 4"):
        distribute.check_batch_size(50, FourReplicas())


def test_a_non_chief_checkpoint_reads_but_writes_nothing(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    checkpointing.save_state(model, str(tmp_path / "worker"), write=False, epochs_done=1)
    assert not (tmp_path / "worker").exists()
    checkpointing.save_state(model, str(tmp_path / "chief"), epochs_done=1)
    assert checkpointing.read_progress(str(tmp_path / "chief"))["epochs_done"] == 1
