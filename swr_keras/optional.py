"""Imports of optional dependencies, with one line that names the extra to install.

The core library needs only TensorFlow, Keras, absl-py and NumPy. The
keyword-spotting tooling (corpus synthesis, TFDS loading, plots, TFLite,
the lambda search) lives behind the `kws` extra, the serving protos behind
`serving`; see pyproject.toml.
"""

import importlib


def require(module, extra, purpose):
    """Imports `module` or raises a one-line ImportError naming `pip install 'swr_keras[extra]'`.

    Args:
        module: the module to import, e.g. `"ai_edge_litert.interpreter"`.
        extra: the extra of swr_keras that installs it, e.g. `"kws"`.
        purpose: what needs it, for the message, e.g. `"Running TFLite files"`.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{purpose} needs the '{module.split('.')[0]}' package, which is not installed. "
            f"Install it with: pip install 'swr_keras[{extra}]'"
        ) from error
