"""What every recipe's command line shares: quiet heavy imports, one-line errors."""

import importlib
import os
import sys

# Recipes run as scripts from a checkout: make the package importable even
# where it was not pip-installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# TensorFlow's pooling (BFC) allocator on the CPU: with the default one, each
# training step maps and faults in its large activations afresh (a BC-ResNet-8
# step ran up to twice as slow). Must be set before TensorFlow starts.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")


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
        return importlib.import_module(module_name)
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)


def fail(program, message):
    """Prints `program: error: message` as one line on stderr and exits with 2."""
    print(f"{program}: error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(2)
