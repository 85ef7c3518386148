"""The multi-lingual union of GSC2 and MC-KWS used to pre-train the backbone.

Classes: `_silence_`, `_unknown_`, the 10 English GSC2 keywords, then the
known MC-KWS keywords (10 Mandarin) - 22 classes. `_silence_` and
`_unknown_` pool both corpora; each corpus keeps its own split rule (GSC2
list files, MC-KWS speakers), caps and silence counts.

Clip length: every clip is padded to the MC-KWS clip length (2.24 s by
default, from the mapping file). Cropping everything to GSC2's 1 s would cut
most Mandarin keywords (1.3-6.2 s utterances), whereas zero-padding a 1 s
English clip loses nothing; BC-ResNet and Res15 pool over time, so the same
backbone then runs on 1 s GSC2 and 2.24 s MC-KWS inputs downstream. English
clips are padded at the end, as the reference pads short GSC2 clips, and
background noise covers the whole 2.24 s in augmentation.
"""

import dataclasses
import os

import numpy as np

from swr_keras.data import gsc2, mc_kws, pipeline


def list_multilingual(
    gsc2_root,
    mc_kws_root,
    mapping_path=mc_kws.DEFAULT_MAPPING,
    seed=0,
    clip_seconds=None,
    mc_kws_sample_rate=48000,
    gsc2_options=None,
    mc_kws_options=None,
):
    """Lists the 22-class union of GSC2 and MC-KWS.

    Args:
        gsc2_root: str, the Speech Commands v0.02 directory (its
            `_background_noise_` also serves MC-KWS).
        mc_kws_root: str, the MC-KWS directory.
        mapping_path: str, the MC-KWS class-mapping JSON file.
        seed: int, passed to both loaders.
        clip_seconds: float; default the mapping's `clip_seconds` (2.24).
        mc_kws_sample_rate: int, rate of the MC-KWS files.
        gsc2_options: optional dict of extra `gsc2.list_gsc2` arguments
            (e.g. caps).
        mc_kws_options: optional dict of extra `mc_kws.list_mc_kws`
            arguments.

    Returns:
        A `pipeline.KwsCorpus`; `class_names` lists the 22 classes and each
        split holds two `ClipTable`s (GSC2 at 16 kHz, MC-KWS at its rate).

    Raises:
        ValueError: an MC-KWS keyword has the name of a GSC2 class, or any
            error of the two loaders.
    """
    mapping = mc_kws.load_mapping(mapping_path)
    clip_seconds = mapping["clip_seconds"] if clip_seconds is None else clip_seconds
    clash = set(mapping["known"]) & set(gsc2.CLASS_NAMES)
    if clash:
        raise ValueError(
            f"MC-KWS keyword(s) {sorted(clash)} in {mapping_path} clash with "
            "GSC2 class names; rename them in the mapping."
        )
    english = gsc2.list_gsc2(
        gsc2_root, seed=seed, clip_seconds=clip_seconds, **(gsc2_options or {})
    )
    mandarin = mc_kws.list_mc_kws(
        mc_kws_root,
        os.path.join(os.fspath(gsc2_root), gsc2.NOISE_DIR),
        mapping_path=mapping_path,
        seed=seed,
        sample_rate=mc_kws_sample_rate,
        clip_seconds=clip_seconds,
        **(mc_kws_options or {}),
    )
    # Both banks are read from the same folder, so fixed silence offsets of
    # either corpus point at the same samples.
    offset = len(gsc2.KEYWORDS)
    splits = {}
    for split in pipeline.SPLITS:
        (table,) = mandarin.splits[split]
        labels = np.where(table.labels >= 2, table.labels + offset, table.labels)
        splits[split] = english.splits[split] + (
            dataclasses.replace(table, labels=labels.astype(np.int32)),
        )
    return pipeline.KwsCorpus(
        class_names=gsc2.CLASS_NAMES + mandarin.class_names[2:],
        splits=splits,
        noise_bank=english.noise_bank,
        clip_samples=english.clip_samples,
        sample_rate=english.sample_rate,
    )
