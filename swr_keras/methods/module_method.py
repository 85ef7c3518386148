"""What the methods that deploy extra modules share (Residual Adapter, SpotTune, Rep-Net).

Each builds its model once from the pre-trained task model (the backbone's
weights are copied in, the extra modules start at zero or as copies), trains
it in one stage like the fine-tune baselines (cosine Adam, `fit`), and
deploys that model as it is, modules included. A task stores the method
model's trainable tensors (its #Param.), the BN statistics that update in
training, and the method's options (they shape the modules); `restore`
rebuilds the model from the plain backbone and assigns them.
"""

import dataclasses
import json

import numpy as np

from swr_keras.methods import finetune
from swr_keras.methods.stored_task import StoredTask
from swr_keras.module_methods import module_state

OPTIONS = "options"


class ModuleMethod(finetune.FineTune):
    """A `FineTune`-style method whose model is `transform(base_model, settings, options)`."""

    deploys_merged = False

    def transform(self, base_model, settings, options):
        """Returns the method's model built from the task model `base_model` (not modified)."""
        raise NotImplementedError

    def build(self, base_model, settings, options):
        # The registry holds one instance per method; the job builds, trains
        # and stores one model at a time, so the options of the model being
        # stored are the last ones built.
        self._options = options
        return self.transform(base_model, settings, options)

    def deploy(self, model):
        return model  # the modules are part of the deployed model

    def task_state(self, model):
        learnable, statistics = module_state.stored_tensors(model)
        options = json.dumps(dataclasses.asdict(getattr(self, "_options", self.options())))
        return StoredTask(
            learnable=learnable,
            statistics=statistics,
            other={OPTIONS: np.frombuffer(options.encode(), dtype="uint8")},
        )

    def restore(self, backbone, stored):
        values = (
            json.loads(bytes(stored.other[OPTIONS]).decode()) if OPTIONS in stored.other else {}
        )
        model = self.transform(backbone, None, self.options(values))
        return module_state.assign_stored_tensors(model, stored.learnable, stored.statistics)
