"""What the two fine-tune baselines share: one stage, the job's optimiser, cosine decay."""

import keras

from swr_keras.methods.base import Method, Stage
from swr_keras.methods.stored_task import StoredTask


class FineTune(Method):
    """One stage of `reparam_epochs` epochs training `model.trainable_weights`."""

    def variant_stages(self, settings, options, variant):
        return [Stage(f"{self.name}_e{settings.reparam_epochs}", settings.reparam_epochs)]

    def fit(self, model, stage, data, context):
        model.compile(
            optimizer=context.settings.make_optimizer(
                context.settings.learning_rate, stage.epochs * context.steps_per_epoch
            ),
            loss=self.loss(context.options, context.settings),
            metrics=["accuracy"],
        )
        model.fit(
            data,
            epochs=stage.epochs,
            initial_epoch=context.initial_epoch,
            steps_per_epoch=context.steps_per_epoch,
            callbacks=context.callbacks,
            verbose=context.verbose,
        )

    def deploy(self, model):
        return model  # plain layers already


def stored_weights(layer):
    """`StoredTask` of every weight of `layer`, BN moving statistics apart.

    Names are `<index>:<path>` in `layer.weights` order, so `assign_stored`
    restores them into a clone by position.
    """
    statistics = {
        id(v)
        for sub in [layer, *layer._flatten_layers()]
        if isinstance(sub, keras.layers.BatchNormalization)
        for v in (sub.moving_mean, sub.moving_variance)
    }
    stored = StoredTask()
    for index, variable in enumerate(layer.weights):
        group = stored.statistics if id(variable) in statistics else stored.learnable
        group[f"{index}:{variable.path}"] = keras.ops.convert_to_numpy(variable)
    return stored


def assign_stored(layer, stored):
    """Assigns the arrays of `stored_weights` to the same positions of `layer.weights`."""
    variables = layer.weights
    for name, value in {**stored.learnable, **stored.statistics}.items():
        variable = variables[int(name.split(":", 1)[0])]
        if tuple(variable.shape) != tuple(value.shape):
            raise ValueError(
                f"Stored tensor {name!r} has shape {tuple(value.shape)} but "
                f"{variable.path} has {tuple(variable.shape)}. Restore into the "
                "backbone (and classifier) the task was trained with."
            )
        variable.assign(value)


def clone(backbone):
    """A copy of `backbone` with its weights (restoring never modifies the backbone)."""
    copy = keras.models.clone_model(backbone, recursive=True)
    copy.set_weights(backbone.get_weights())
    return copy
