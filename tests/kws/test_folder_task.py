"""`kws.py --task=folder`: your own keywords end to end; bad folders on the command line.

The listing rules and every bad folder are tested in tests/data/test_keyword_folder.py;
here what the task entry and the recipe add: the options, a full run, exit status 2 with one
line, and every registered method on a folder's corpus.
"""

import json
import os
import shutil

import pytest

from swr_keras import methods as methods_lib
from swr_keras.kws import backbones, tasks
from swr_keras.kws import job as job_lib
from tests.data.test_keyword_folder import make_folder

from .conftest import TINY_TAU
from .test_recipes import TINY_RUN, run_recipe

# Tiny models trained for a few steps: tracing graphs would dominate (tests/conftest.py).
RUN_FUNCTIONS_EAGERLY = True

SAMPLE_RATE = 8000  # not the model's 16 kHz: the job resamples in-graph
CLIP_SECONDS = 1.2  # not GSC's 1 s: the features and the model follow the folder


@pytest.fixture(scope="module")
def keyword_dir(tmp_path_factory):
    """alpha, bravo, charlie and an `_unknown_` word by 10 speakers, 8 kHz, 1.1 s."""
    root = tmp_path_factory.mktemp("my_words")
    return make_folder(
        root,
        words=("alpha", "bravo", "charlie"),
        sample_rate=SAMPLE_RATE,
        seconds=1.1,
    )


def test_the_folder_task_entry_lists_the_folder_with_its_options(keyword_dir):
    source = tasks.resolve_data_dir(keyword_dir, task="folder")
    assert source.folder_dir == keyword_dir and not source.gsc2_dir
    corpus = tasks.list_task(
        "folder", source, seed=3, clip_seconds=CLIP_SECONDS, unknown_words=("charlie",)
    )
    assert corpus.class_names == ("_silence_", "_unknown_", "alpha", "bravo")
    assert corpus.clip_samples == round(CLIP_SECONDS * 16000)
    # The training seed moves neither the folder's split nor its fixed test silence.
    again = tasks.list_task(
        "folder", source, seed=4, clip_seconds=CLIP_SECONDS, unknown_words=("charlie",)
    )
    for split in ("train", "valid", "test"):
        (first,), (second,) = corpus.splits[split], again.splits[split]
        assert first.paths == second.paths
        assert (first.noise_offsets == second.noise_offsets).all()
    with pytest.raises(ValueError, match="takes no option unknown_words"):
        tasks.list_task("gsc2", source, unknown_words=("alpha",))
    with pytest.raises(ValueError, match="--task=folder needs --data_dir=DIR"):
        tasks.resolve_data_dir("", task="folder")


# One full SWR run (three stages, evaluation, merge check); the exports' machinery is the
# gsc2 run's (tests/kws/test_recipes.py), so they are off here to keep this test short.
@pytest.mark.slow
def test_tiny_folder_run_transfers_with_the_folders_rate_and_clip_length(
    keyword_dir, tiny_pretrained, tmp_path
):
    out = tmp_path / "run"
    result = run_recipe(
        "kws.py",
        "--task=folder",
        f"--data_dir={keyword_dir}",
        f"--clip_seconds={CLIP_SECONDS}",
        f"--pretrained={tiny_pretrained}",
        *TINY_RUN,
        "--batch_size=16",  # after TINY_RUN's: 2 steps per epoch on the 40 training clips
        "--run_eagerly",
        "--target_cost=0.1",
        f"--output_dir={out}",
        "--noexport",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "classes: _silence_, _unknown_, alpha, bravo, charlie" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "folder"
    assert metrics["class_names"] == ["_silence_", "_unknown_", "alpha", "bravo", "charlie"]
    (row,) = metrics["results"]
    assert row["target_cost"] == 0.1 and row["deployed_max_abs_diff"] < 1e-4
    assert 0.0 <= row["test_accuracy"] <= 1.0 and row["num_layers"] == 43
    # 8 / 1 / 1 speakers x (3 keywords + 1 unknown word) + as many silence clips as a keyword.
    assert "clips {'train': 40, 'valid': 5, 'test': 5}" in result.stdout


def _one_keyword(root):
    shutil.rmtree(os.path.join(root, "bravo"))
    shutil.rmtree(os.path.join(root, "_unknown_"))


@pytest.mark.parametrize(
    "flags, damage, message",
    [
        ([], _one_keyword, "has only one keyword folder (alpha) and no _unknown_ clips"),
        (["--data_dir="], None, "--task=folder needs --data_dir=DIR"),
    ],
)
def test_bad_folders_exit_2_with_one_line_before_training(flags, damage, message, tmp_path):
    root = make_folder(tmp_path / "words", words=("alpha", "bravo"))
    if damage:
        damage(root)
    # No --pretrained: a folder needs none, the shipped backbone is loaded and the folder listed.
    result = run_recipe(
        "kws.py",
        "--task=folder",
        f"--data_dir={root}",
        f"--output_dir={tmp_path / 'out'}",
        *flags,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kws.py: error: "), result.stderr
    assert message in lines[0]
    assert "== stage" not in result.stdout


# Every other method of the registry (SWR runs through kws.py above), including ones registered
# later, on a folder's corpus: 1 s clips are not assumed anywhere between the listing and the
# deployed model. Slow: a training run per method (1-4 min each on 2 shared cores).
@pytest.mark.slow
@pytest.mark.parametrize("method", [m for m in methods_lib.names() if m != "swr"])
def test_every_registered_method_transfers_to_a_folder(
    method, keyword_dir, tiny_pretrained, tmp_path
):
    source = tasks.resolve_data_dir(keyword_dir, task="folder")
    corpus = tasks.list_task("folder", source, clip_seconds=CLIP_SECONDS)
    pretrained = backbones.load_pretrained(tiny_pretrained, "bc_resnet", 22, tau=TINY_TAU)
    settings = job_lib.Settings(
        method=method, supernet_epochs=1, policy_epochs=1, reparam_epochs=1, batch_size=16
    )
    job = job_lib.Job(corpus, pretrained, settings, str(tmp_path), identity=("folder",), verbose=0)
    inputs = next(iter(job.test))[0]
    assert inputs.shape[2] == 1 + round(CLIP_SECONDS * 16000) // 160  # log-mel frames
    rows = list(job.run([0.5]))
    assert rows
    for row, model in rows:
        assert 0.0 <= row["test_accuracy"] <= 1.0
        assert tuple(model(inputs).shape) == (inputs.shape[0], len(corpus.class_names))
