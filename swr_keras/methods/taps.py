"""Baseline TAPS (Wallingford et al., CVPR 2022): a learnt score per layer decides its delta.

Every Conv2D/DepthwiseConv2D of the feature extractor, stem included,
computes `w0 + [s >= 0.1] * delta` (score `s` from 0.15, straight-through
gradient); BN affine parameters and statistics train with the new
classifier; the loss adds `lambda * mean_l |s_l|` after the warm-up (the
first `--taps_warmup_fraction` of the steps: the official 3 epochs of 31);
SGD with momentum 0.9 and a cosine learning rate, as the official code
(`swr_keras.taps` explains why the optimiser matters). One stage of
`--reparam_epochs`, like the other single-stage baselines. A task stores the
deltas of the layers left on, the BN parameters and statistics and the
classifier; it deploys merged (#Mult. 1.00x). The added ratio TAPS lands on
is `lambda`'s doing: the row reports it.
"""

import dataclasses

from swr_keras import taps
from swr_keras.methods.base import Stage
from swr_keras.methods.registry import register
from swr_keras.methods.swr import ReparamMethod


@dataclasses.dataclass(frozen=True)
class TapsOptions:
    taps_lambda: float = dataclasses.field(
        default=taps.SPARSITY_WEIGHT,
        metadata={"help": "Weight of the score sparsity loss mean_l |s_l| (official default 1)."},
    )
    taps_warmup_fraction: float = dataclasses.field(
        default=taps.WARMUP_FRACTION,
        metadata={
            "help": "Share of the training steps before the sparsity loss starts (official: "
            "3 unregularised epochs of 31, 0.0968)."
        },
    )
    taps_learning_rate: float = dataclasses.field(
        default=taps.LEARNING_RATE,
        metadata={"help": "Initial SGD learning rate, cosine-annealed to 0 (official: 0.005)."},
    )
    taps_gradient_accumulation: int = dataclasses.field(
        default=1,
        metadata={
            "help": "Batches whose gradients are summed per SGD step (official: 8; 1: a step "
            "per batch)."
        },
    )


@register
class Taps(ReparamMethod):
    name = "taps"
    label = "TAPS"
    help = (
        "Baseline TAPS: per-layer deltas switched on by learnt scores >= 0.1, a sparsity "
        "loss on the scores, SGD; deploys merged."
    )
    Options = TapsOptions
    reference = (
        "MattWallingford/TAPS train_sequential.py, scripts/sequential_dn.sh: SGD (momentum "
        "0.9, no weight decay), lr 0.005, batch 32, cosine per epoch over 31 epochs, a step "
        "every 8 batches, lambda 0.5 or 1 times sum(abs(s)) / 52 after 3 unregularised epochs"
    )

    def check_options(self, options):
        if not options.taps_lambda >= 0:
            raise ValueError(
                f"--taps_lambda must be >= 0. Received: taps_lambda={options.taps_lambda}"
            )
        if not 0 <= options.taps_warmup_fraction < 1:
            raise ValueError(
                "--taps_warmup_fraction must be in [0, 1). Received: "
                f"taps_warmup_fraction={options.taps_warmup_fraction}"
            )
        if not options.taps_learning_rate > 0:
            raise ValueError(
                "--taps_learning_rate must be > 0. Received: "
                f"taps_learning_rate={options.taps_learning_rate}"
            )
        if options.taps_gradient_accumulation < 1:
            raise ValueError(
                "--taps_gradient_accumulation must be >= 1. Received: "
                f"taps_gradient_accumulation={options.taps_gradient_accumulation}"
            )

    def build(self, base_model, settings, options):
        return taps.TAPSTrainer(
            taps.taps_reparametrize(base_model),
            sparsity_weight=options.taps_lambda,
            warmup_fraction=options.taps_warmup_fraction,
        )

    def variant_stages(self, settings, options, variant):
        return [Stage(f"taps_e{settings.reparam_epochs}", settings.reparam_epochs)]

    def fit(self, model, stage, data, context):
        options = context.options
        accumulation = options.taps_gradient_accumulation
        model.compile(
            optimizer=taps.sgd(
                options.taps_learning_rate,
                stage.epochs * context.steps_per_epoch,
                gradient_accumulation_steps=accumulation if accumulation > 1 else None,
            ),
            loss=self.loss(options, context.settings),
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

    def training_conditions(self, settings):
        options = self.recorded_options(settings)
        deviations = [
            "the job's batch size, not 32, and the cosine per step, not per epoch",
            "the sparsity loss is lambda x mean(abs(s)) over our layers (the official divides "
            "the sum by 52, ResNet-50's layer count)",
        ]
        if options.taps_warmup_fraction == taps.WARMUP_FRACTION:
            deviations.append("the warm-up is the official 3 of 31 epochs as a share of the steps")
        else:
            deviations.append(
                f"a warm-up of {options.taps_warmup_fraction:.1%} of the steps, not the official "
                "3 of 31 epochs"
            )
        if options.taps_gradient_accumulation != 8:
            every = options.taps_gradient_accumulation
            every = "batch" if every == 1 else f"{every} batches"
            deviations.append(
                f"a step every {every}, not every 8 (--taps_gradient_accumulation=8): the "
                "official makes 8x fewer updates"
            )
        if options.taps_lambda not in (0.5, 1.0):
            deviations.append(
                f"lambda {options.taps_lambda:g}, chosen so that #Param. lands near the paper's "
                "2.06x on BC-ResNet-8 (official scripts: 0.5, 1)"
            )
        return {
            **super().training_conditions(settings),
            "optimizer": "SGD (momentum 0.9)",
            "learning_rate": options.taps_learning_rate,
            "schedule": (
                f"cosine to 0 per step; sparsity loss (lambda {options.taps_lambda:g}) after the "
                f"first {options.taps_warmup_fraction:.1%} of the steps"
            ),
            "deviations": tuple(deviations),
        }

    def result_columns(self, model, variant):
        return {
            **super().result_columns(model, variant),
            "scores": [float(s) for s in taps.scores(model.model)],
        }
