"""`recipes/recipe_cli.py`: `--run_eagerly` reaches TensorFlow before a recipe's `main` runs."""

import sys

import pytest
import tensorflow as tf
from absl import flags

from recipes import recipe_cli


@pytest.fixture
def fresh_flags(monkeypatch):
    """The process's absl flags, with `--run_eagerly` defined and parsing undone afterwards."""
    if "run_eagerly" not in flags.FLAGS:
        recipe_cli.define_run_eagerly_flag()
    yield flags.FLAGS
    flags.FLAGS.unparse_flags()
    tf.config.run_functions_eagerly(False)


@pytest.mark.parametrize("argv, eager", [([], False), (["--run_eagerly"], True)])
def test_run_eagerly_is_applied_before_main(argv, eager, fresh_flags, monkeypatch):
    seen = []

    @tf.function
    def traced():
        return tf.executing_eagerly()

    def main(unused_argv):
        seen.append((tf.config.functions_run_eagerly(), bool(traced())))

    monkeypatch.setattr(sys, "argv", ["recipe.py", *argv])
    with pytest.raises(SystemExit) as stop:
        recipe_cli.run(main, "recipe.py")
    assert stop.value.code in (None, 0)
    # Inside a tf.function, eager execution shows only when functions run eagerly.
    assert seen == [(eager, eager)]
