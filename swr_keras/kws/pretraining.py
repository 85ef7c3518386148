"""The reference training scheme of the KWS backbones: SGD, warm-up, cosine.

BC-ResNet's reference trains with SGD (momentum 0.9, weight decay 1e-3), a
learning rate warmed up linearly from 0 to 0.1 over 5 epochs and then
cosine-annealed to 0 per iteration, batch 100, with noise/shift/SpecAugment
augmentation. Keras applies weight decay decoupled from the gradient
(`w -= lr * wd * w`); PyTorch adds `wd * w` to the gradient before momentum.
"""

import keras


def warmup_cosine(peak_learning_rate, total_steps, warmup_steps):
    """0 -> `peak` linearly over `warmup_steps`, then cosine to 0 at `total_steps`."""
    warmup_steps = min(int(warmup_steps), max(int(total_steps) - 1, 0))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else peak_learning_rate,
        decay_steps=max(int(total_steps) - warmup_steps, 1),
        warmup_target=peak_learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def reference_optimizer(
    optimizer, peak_learning_rate, total_steps, warmup_steps, weight_decay=1e-3, momentum=0.9
):
    """`"sgd"` (the reference) or `"adam"`, with the warm-up + cosine schedule."""
    schedule = warmup_cosine(peak_learning_rate, total_steps, warmup_steps)
    if optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=momentum, weight_decay=weight_decay or None)
    if optimizer == "adam":
        return keras.optimizers.Adam(schedule, weight_decay=weight_decay or None)
    raise ValueError(f"Unknown optimizer {optimizer!r}. Choose 'sgd' or 'adam'.")
