"""Baseline TAPS (Wallingford et al., CVPR 2022): a learnt score per layer decides its delta.

Every Conv2D/DepthwiseConv2D of the feature extractor, stem included,
computes `w0 + [s >= 0.1] * delta` (score `s` from 0.15, straight-through
gradient); BN affine parameters and statistics train with the new
classifier; the loss adds `lambda * mean_l |s_l|` after the warm-up epochs;
SGD with momentum 0.9 and a cosine learning rate, as the official code
(`swr_keras.taps` explains why the optimiser matters). One stage of
`--reparam_epochs`, like the other single-stage baselines. A task stores the
deltas of the layers left on, the BN parameters and statistics and the
classifier; it deploys merged (#Mult. 1.00x). The added ratio TAPS lands on
is `lambda`'s doing: the row reports it.
"""

import dataclasses
import logging

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
    taps_warmup_epochs: int = dataclasses.field(
        default=taps.WARMUP_EPOCHS,
        metadata={"help": "Epochs before the sparsity loss starts (official: 2)."},
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

    def check_options(self, options):
        if not options.taps_lambda >= 0:
            raise ValueError(
                f"--taps_lambda must be >= 0. Received: taps_lambda={options.taps_lambda}"
            )
        if options.taps_warmup_epochs < 0:
            raise ValueError(
                "--taps_warmup_epochs must be >= 0. Received: "
                f"taps_warmup_epochs={options.taps_warmup_epochs}"
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
            warmup_epochs=options.taps_warmup_epochs,
        )

    def variant_stages(self, settings, options, variant):
        return [Stage(f"taps_e{settings.reparam_epochs}", settings.reparam_epochs)]

    def fit(self, model, stage, data, context):
        options = context.options
        if stage.epochs <= options.taps_warmup_epochs:
            logging.warning(
                "TAPS: --reparam_epochs=%d <= --taps_warmup_epochs=%d, so the score sparsity "
                "loss never applies and every layer keeps its delta. Raise --reparam_epochs "
                "or lower --taps_warmup_epochs.",
                stage.epochs,
                options.taps_warmup_epochs,
            )
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

    def result_columns(self, model, variant):
        return {
            **super().result_columns(model, variant),
            "scores": [float(s) for s in taps.scores(model.model)],
        }
