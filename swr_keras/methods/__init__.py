"""Transfer methods behind one interface (`Method`) and their registry.

Importing this package registers every built-in method:

```python
from swr_keras import methods

methods.names()                 # ("swr", "not_staged", "finetune_all", ...)
method = methods.get("swr")     # a `Method`; BUILD.md, "How to add a method"
```
"""

from swr_keras.methods.base import FitContext, Method, NoOptions, Stage
from swr_keras.methods.registry import get, methods, names, register
from swr_keras.methods.stored_task import StoredTask

# Built-in methods register themselves on import; the order is the order of
# `names()` (and of --help).
from swr_keras.methods import swr  # noqa: E402,F401  isort: skip
from swr_keras.methods import not_staged  # noqa: E402,F401  isort: skip
from swr_keras.methods import finetune_all  # noqa: E402,F401  isort: skip
from swr_keras.methods import finetune_classifier  # noqa: E402,F401  isort: skip
from swr_keras.methods import taps  # noqa: E402,F401  isort: skip
from swr_keras.methods import lora  # noqa: E402,F401  isort: skip
from swr_keras.methods import adapter  # noqa: E402,F401  isort: skip
from swr_keras.methods import spottune  # noqa: E402,F401  isort: skip
from swr_keras.methods import repnet  # noqa: E402,F401  isort: skip
from swr_keras.methods import variants  # noqa: E402,F401  isort: skip
from swr_keras.methods import no_policy  # noqa: E402,F401  isort: skip

__all__ = [
    "FitContext",
    "Method",
    "NoOptions",
    "Stage",
    "StoredTask",
    "get",
    "methods",
    "names",
    "register",
]
