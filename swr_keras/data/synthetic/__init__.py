"""Synthetic multi-lingual keyword-spotting corpora spoken by eSpeak NG.

Stand-ins for Google Speech Commands v2 and MC-KWS in exactly their on-disk
formats, and the project's default data; see `corpus` for the layouts and
`DEFAULT_CORPORA`. Needs the `kws` extra (`espeakng-loader`).
"""

from swr_keras.data.synthetic.corpus import (
    DEFAULT_CORPORA,
    GSC_KEYWORDS,
    GSC_UNKNOWN_WORDS,
    MC_KWS_ENGLISH_KEYWORDS,
    MC_KWS_KEYWORD_PAIRS,
    MC_KWS_KEYWORDS,
    MC_KWS_MAPPING_PATH,
    MC_KWS_UNPAIRED_KEYWORDS,
    CorpusPaths,
    DefaultCorpus,
    SplitPlan,
    ensure_default_corpus,
    load_mc_kws_mapping,
    make_gsc_corpus,
    make_mc_kws_corpus,
    split_plan,
)

__all__ = [
    "DEFAULT_CORPORA",
    "GSC_KEYWORDS",
    "GSC_UNKNOWN_WORDS",
    "MC_KWS_ENGLISH_KEYWORDS",
    "MC_KWS_KEYWORD_PAIRS",
    "MC_KWS_KEYWORDS",
    "MC_KWS_MAPPING_PATH",
    "MC_KWS_UNPAIRED_KEYWORDS",
    "CorpusPaths",
    "DefaultCorpus",
    "SplitPlan",
    "ensure_default_corpus",
    "load_mc_kws_mapping",
    "make_gsc_corpus",
    "make_mc_kws_corpus",
    "split_plan",
]
