"""Small models and data shared by the core-library tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")  # as the recipes run
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One pytest-xdist worker per core: each worker's TensorFlow (and the
    # recipes it starts as subprocesses) keeps to one op thread, so that the
    # workers do not oversubscribe the cores between them.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@keras.saving.register_keras_serializable(package="swr_keras_tests")
class ConvNormBlock(keras.layers.Layer):
    """A custom layer holding a convolution and a BN, as backbones often do."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.norm = keras.layers.BatchNormalization(epsilon=1e-5)

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.norm.build(tuple(input_shape[:-1]) + (self.filters,))

    def call(self, inputs, training=None):
        return keras.ops.relu(self.norm(self.conv(inputs), training=training))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def build_conv_net(num_classes=5, input_shape=(12, 12, 3), seed=0):
    """A functional net with every supported layer type, a nested model and BN.

    Graph: strided conv -> BN -> nested Sequential (dilated conv, BN) ->
    depthwise (multiplier 2) -> grouped 1x1 conv -> custom block (conv+BN,
    not reparametrised: custom layer) -> pooling -> Dense(relu) -> classifier.
    """
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization(epsilon=1e-5)(x)
    x = keras.layers.ReLU()(x)
    nested = keras.Sequential(
        [
            keras.Input(x.shape[1:]),
            keras.layers.Conv2D(8, 3, padding="same", dilation_rate=2, activation="relu"),
            keras.layers.BatchNormalization(epsilon=1e-5),
        ],
        name="nested",
    )
    x = nested(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, use_bias=False)(x)
    x = keras.layers.Conv2D(12, 1, groups=4, use_bias=True)(x)
    x = ConvNormBlock(6)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(10, activation="relu")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="conv_net")


def randomize_batch_norm(model, rng):
    """Gives every BN non-trivial statistics and affine parameters."""
    from swr_keras.model_walk import batch_norm_layers

    for layer in batch_norm_layers(model):
        shape = layer.moving_mean.shape
        layer.moving_mean.assign(rng.normal(0, 0.3, shape))
        layer.moving_variance.assign(rng.uniform(0.5, 2.0, shape))
        layer.gamma.assign(rng.uniform(0.5, 1.5, shape))
        layer.beta.assign(rng.normal(0, 0.2, shape))


# Modules whose module-scoped fixtures train or export (10-50 s each): each runs
# on one pytest-xdist worker, which then pays for its fixtures once. Under the
# default `--dist load` their tests spread over both workers and both set the
# fixtures up. (`xdist_group` marks would say this per module, but
# `--dist loadgroup` renames node ids, which do not reach the scheduler under pytest 9.2.)
ONE_WORKER_MODULES = frozenset(
    {
        "tests/kws/test_ablations.py",
        "tests/kws/test_export.py",
        "tests/kws/test_job.py",
        "tests/test_distributed.py",
        "tests/test_methods.py",
    }
)


def pytest_xdist_make_scheduler(config, log):
    """Load scheduling, with each of `ONE_WORKER_MODULES` as one unit of work.

    xdist's scope scheduler sends units with more tests first (`--loadscope-reorder`,
    its default), so these modules start early and the single tests fill the end.
    """
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else nodeid

    return Scheduling(config, log)


@pytest.fixture(scope="module", autouse=True)
def functions_run_eagerly(request):
    """Runs a module's Keras steps eagerly if it sets `RUN_FUNCTIONS_EAGERLY = True`.

    Modules that train tiny models for a few steps to check what a stage
    changes spend most of their time tracing graphs (measured: the SpotTune
    contract tests, 43 s traced vs 11 s eager). Graph-mode behaviour keeps its
    own tests (tests/test_training.py and the recipe runs without
    `--run_eagerly`).
    """
    if not getattr(request.module, "RUN_FUNCTIONS_EAGERLY", False):
        yield
        return
    import tensorflow as tf

    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(False)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def conv_net(rng):
    model = build_conv_net()
    randomize_batch_norm(model, rng)
    return model


@pytest.fixture
def images(rng):
    return rng.normal(size=(6, 12, 12, 3)).astype("float32")
