"""What every recipe's command line shares: quiet heavy imports, one-line errors."""

import importlib
import os
import sys
import warnings

# TensorFlow's pooling (BFC) allocator on the CPU: with the default one, each
# training step maps and faults in its large activations afresh (a BC-ResNet-8
# step ran up to twice as slow). Must be set before TensorFlow starts.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

# Keras warns on the first validation pass of every fit that a finite
# dataset "ran out of data" and that shuffle=True is ignored for datasets;
# both are expected here and would bury the progress lines.
warnings.filterwarnings("ignore", message="Your input ran out of data")
warnings.filterwarnings("ignore", message="`shuffle=True` was passed")

# The BC-ResNet-8 shipped with the project (recipes/pretrain_kws.py made it):
# the default backbone of every KWS recipe.
SHIPPED_PRETRAINED = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "saved_models",
    "bc_resnet8_multilingual",
    "model.keras",
)

HELP_FLAGS = {"--help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml"}


def quiet_import(module_name):
    """Imports `module_name` with the process's stderr silenced meanwhile.

    Importing swr_keras imports TensorFlow, whose C++ runtime logs its CUDA
    probing on stderr before any Python code can turn logging off; without
    this, a one-line error would come buried under those lines. Python
    exceptions still surface once stderr is restored.
    """
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        module = importlib.import_module(module_name)
        if "tensorflow" in sys.modules:
            # TensorFlow probes CUDA (and logs its failure on a CPU machine)
            # when devices are first listed, which an absl init callback it
            # queues does as soon as `app.run` starts: list them now, silenced.
            sys.modules["tensorflow"].config.list_physical_devices()
        return module
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)


def define_distribute_flag():
    """`--distribute`: the devices every training stage runs on (`swr_keras.distribute`)."""
    from absl import flags

    flags.DEFINE_string(
        "distribute",
        "one_device",
        "Devices that train: one_device; mirrored (every GPU of this machine) or "
        "mirrored:/gpu:0,/gpu:1 (the devices named); multi_worker (the machines of the "
        "TF_CONFIG environment variable, each running the same command; BUILD.md, "
        "'Distributed training').",
    )


def define_run_eagerly_flag():
    """`--run_eagerly`: Keras steps run as Python, without tracing a graph (`run` applies it)."""
    from absl import flags

    flags.DEFINE_bool(
        "run_eagerly",
        False,
        "Run every training and evaluation step eagerly instead of as a traced graph, as "
        "Keras' compile(run_eagerly=True) does: for debugging, and for runs of a few steps, "
        "where tracing costs more than it saves. Slower on real data; exports still trace.",
    )


def strategy_from_flag():
    """The strategy `--distribute` names, created before any model; prints where it trains.

    Raises a one-line ValueError for a bad value or `TF_CONFIG`.
    """
    from absl import flags

    distribute = quiet_import("swr_keras.distribute")
    strategy = distribute.strategy_from_flag(flags.FLAGS.distribute)
    if flags.FLAGS.distribute != "one_device":
        role = "chief" if distribute.is_chief(strategy) else "worker"
        print(
            f"== {type(strategy).__name__}: {strategy.num_replicas_in_sync} replicas "
            f"({role}: {', '.join(strategy.extended.worker_devices)})",
            flush=True,
        )
    return strategy


def run(main, program):
    """`absl.app.run(main)`, with a flag that does not parse reported as one line (exit 2).

    TensorFlow's own INFO logs (SavedModel writing, TFLite conversion) go
    through absl logging; they are hidden so the progress lines stay readable.
    """
    from absl import app, flags, logging

    def parse(argv):
        try:
            return flags.FLAGS(argv)
        except flags.Error as error:
            fail(program, error)
        except SystemExit as stop:
            # absl prints --help and then exits with 1; asking for help is no error.
            if stop.code == 1 and set(argv[1:]) & HELP_FLAGS:
                sys.exit(0)
            raise

    def main_without_info_logs(argv):
        logging.set_verbosity(logging.WARNING)
        if "run_eagerly" in flags.FLAGS and flags.FLAGS.run_eagerly:
            # Process-wide, so that every method's compile and fit is covered
            # without a setting threaded through each of them.
            quiet_import("tensorflow").config.run_functions_eagerly(True)
        return main(argv)

    app.run(main_without_info_logs, flags_parser=parse)


def fail(program, message):
    """Prints `program: error: message` as one line on stderr and exits with 2."""
    print(f"{program}: error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(2)


def check_writable_dir(flag, path):
    """Creates `path` if needed; raises a one-line ValueError if it cannot be written."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"{flag}={path} cannot be created ({error.strerror}). Choose a writable directory."
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{flag}={path} is not writable. Choose a writable directory.")


def progress_verbosity():
    """Keras progress bars on a terminal, one line per epoch in logs and pipes."""
    return 1 if sys.stdout.isatty() else 2


def write_json_atomically(path, data):
    """Writes `data` as JSON to `path` through a temporary file and a rename."""
    import json

    temp = f"{path}.tmp-{os.getpid()}"
    with open(temp, "w") as file:
        json.dump(data, file, indent=2)
    os.replace(temp, path)


def save_model_atomically(model, path):
    """`model.save(path)` through a temporary `.keras` file and a rename."""
    temp = f"{path}.tmp-{os.getpid()}.keras"
    try:
        model.save(temp)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
