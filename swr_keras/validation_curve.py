"""The validation split scored after every epoch, for the run's TensorBoard.

A schedule is long enough when the validation accuracy has flattened; the
job's stages log only training scalars, so this callback evaluates the
validation split at each epoch's end and adds `val_*` entries to the epoch's
logs. Keras' `TensorBoard` callback, placed after it, writes them under
`<logs>/<stage>/validation`, beside the training curve.
"""

import keras


class ValidationCurve(keras.callbacks.Callback):
    """Adds `val_<metric>` of `validation_data` to every epoch's logs.

    Args:
        validation_data: what `Model.evaluate` takes (e.g. a `tf.data.Dataset`
            of `(x, y)` batches); evaluated in inference mode, so no weight, BN
            statistic or random state of the training changes.

    Place it before the `TensorBoard` callback in the `fit` callbacks, which
    writes the epoch logs it completes.
    """

    def __init__(self, validation_data):
        super().__init__()
        self.validation_data = validation_data

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        results = self.model.evaluate(self.validation_data, verbose=0, return_dict=True)
        logs.update({f"val_{name}": float(value) for name, value in results.items()})
