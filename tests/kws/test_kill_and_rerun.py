"""`kws.py` killed with SIGKILL mid-run, then run again with the same command.

The process is killed in the second of two target costs, in the middle of
writing a checkpoint (a hook stalls that write half-way, the way a kill or a
full disk would leave it). The rerun must end with the uninterrupted run's
accuracy and ratio and train only the epoch the killed run did not finish.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from swr_keras import checkpointing

from .conftest import recipe_path

# Checkpoint writes of this run: 1a, 1b, c=0.3 epochs 1-2, c=0.5 epochs 1-2.
RUN = [
    "--tau=1",
    "--supernet_epochs=1",
    "--policy_epochs=1",
    "--reparam_epochs=2",
    "--batch_size=24",
    "--target_cost=0.3,0.5",
    "--export=false",
    "--run_eagerly",
]
SECOND_COST_LAST_WRITE = 6

# Imported at start-up through PYTHONPATH: stalls the Nth checkpoint write
# with half of its bytes on disk, then waits to be killed.
STALL_HOOK = """
import os, time

_replace = os.replace
_writes = [0]


def _stalling_replace(source, target, *args, **kwargs):
    if "state.npz.tmp-" in str(source):
        _writes[0] += 1
        if _writes[0] == int(os.environ["STALL_AT_WRITE"]):
            with open(source, "r+b") as file:
                file.truncate(os.path.getsize(source) // 2)
            open(os.environ["STALL_MARKER"], "w").close()
            time.sleep(600)
    return _replace(source, target, *args, **kwargs)


os.replace = _stalling_replace
"""


def command(kws_data_dir, tiny_pretrained, output_dir):
    return [
        sys.executable,
        recipe_path("kws.py"),
        f"--data_dir={kws_data_dir}",
        f"--pretrained={tiny_pretrained}",
        *RUN,
        f"--output_dir={output_dir}",
    ]


def run(args):
    result = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def trained_epochs(stdout):
    """Epochs trained: Keras (verbose 2) prints one `steps/steps - time - metrics` line each."""
    return len(re.findall(r"^\d+/\d+ - \d", stdout, flags=re.MULTILINE))


def results(output_dir):
    rows = json.loads((output_dir / "metrics.json").read_text())["results"]
    return [(r["target_cost"], r["test_accuracy"], r["added_ratio"], r["gates"]) for r in rows]


@pytest.mark.slow  # three tiny kws.py runs, about 20 s each on an idle 2-core machine
def test_kill_during_a_checkpoint_write_in_the_second_cost_then_rerun(
    kws_data_dir, tiny_pretrained, tmp_path
):
    reference = tmp_path / "uninterrupted"
    full = run(command(kws_data_dir, tiny_pretrained, reference))
    assert trained_epochs(full) == 6

    output_dir = tmp_path / "killed"
    marker = tmp_path / "stalled"
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(STALL_HOOK)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(tmp_path / "hook"), os.environ.get("PYTHONPATH", "")]),
        STALL_AT_WRITE=str(SECOND_COST_LAST_WRITE),
        STALL_MARKER=str(marker),
    )
    process = subprocess.Popen(
        command(kws_data_dir, tiny_pretrained, output_dir),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        while not marker.exists():
            assert process.poll() is None, "kws.py ended before the stalled write"
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    stage = output_dir / "checkpoints"
    (second_cost,) = stage.glob("swr-*/stage2_reparam_c0.50_e2")
    assert [p for p in os.listdir(second_cost) if ".tmp-" in p], "no half-written checkpoint"
    assert checkpointing.read_progress(str(second_cost))["epochs_done"] == 1

    rerun = run(command(kws_data_dir, tiny_pretrained, output_dir))
    # Only the second epoch of the second cost is trained again.
    assert trained_epochs(rerun) == 1 and "Epoch 2/2" in rerun
    assert "stage2_reparam_c0.50_e2: 2 epochs" in rerun and "resuming after epoch 1" in rerun
    for name in ("stage1a_supernet", "stage1b_policy", "stage2_reparam_c0.30_e2"):
        assert f"{name}: finished earlier" in rerun
    assert results(output_dir) == results(reference)
    assert not [p for p in os.listdir(second_cost) if ".tmp-" in p]
