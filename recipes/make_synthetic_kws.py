r"""Writes the synthetic keyword-spotting corpora (GSC2 and MC-KWS formats).

eSpeak NG speaks every word for many synthetic speakers; clips get noise
(white, pink, brown, babble), random gain and time offsets. The result is
byte-identical for a given --seed.

Run:

    .venv/bin/python recipes/make_synthetic_kws.py --output_dir=/tmp/kws

Expected: /tmp/kws/gsc2 (4,000 one-second 16 kHz clips, about 130 MB) and
/tmp/kws/mc_kws (2,960 clips of 1.3-6.2 s at 48 kHz, about 580 MB) in
about 25-45 s on 2 CPU cores (TensorFlow import included).

Your own keywords, in any eSpeak NG language, in the GSC2 layout:

    .venv/bin/python recipes/make_synthetic_kws.py --output_dir=/tmp/kws_de \
        --corpora=gsc2 --gsc_language=de --gsc_words=ja,nein,licht,musik

Invalid settings print one line on stderr and exit with status 2.
"""

import os
import sys

if not __package__:  # run as `python recipes/make_synthetic_kws.py`: import `recipes` as a package
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from absl import app, flags

from recipes import recipe_cli

synthetic = recipe_cli.quiet_import("swr_keras.data.synthetic")

## Flags

_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir",
    ".cache/synthetic_kws",
    "Root to write into; gets gsc2/ and/or mc_kws/, which must not exist yet or be empty.",
)
_CORPORA = flags.DEFINE_multi_enum(
    "corpora",
    ["gsc2", "mc_kws"],
    ["gsc2", "mc_kws"],
    "Which corpora to write; repeat the flag to name both.",
)
_SEED = flags.DEFINE_integer(
    "seed", 0, "Seed of everything random; the same seed gives identical files."
)
_MIN_SNR_DB = flags.DEFINE_float(
    "min_snr_db", 5.0, "Lowest speech-to-noise ratio in dB (harder when lower)."
)
_MAX_SNR_DB = flags.DEFINE_float("max_snr_db", 30.0, "Highest speech-to-noise ratio in dB.")
_NUM_WORKERS = flags.DEFINE_integer(
    "num_workers", 2, "Parallel eSpeak NG processes; does not change the output."
)
_HELDOUT_VOICES = flags.DEFINE_boolean(
    "heldout_voices",
    False,
    "Validation and test speakers use eSpeak voice variants that no training speaker uses "
    "(MC-KWS needs --mc_speaker_split).",
)

_GSC_WORDS = flags.DEFINE_list(
    "gsc_words",
    list(synthetic.GSC_KEYWORDS + synthetic.GSC_UNKNOWN_WORDS),
    "Comma-separated words of the GSC2-format corpus (folder names).",
)
_GSC_LANGUAGE = flags.DEFINE_string(
    "gsc_language", "en", "eSpeak NG language of --gsc_words, e.g. en, de, fr."
)
_GSC_NUM_SPEAKERS = flags.DEFINE_integer(
    "gsc_num_speakers", 100, "Synthetic speakers in the GSC2-format corpus."
)
_GSC_CLIPS_PER_WORD = flags.DEFINE_integer(
    "gsc_clips_per_word", 2, "Utterances of each word by each GSC2 speaker."
)
_GSC_SAMPLE_RATE = flags.DEFINE_integer(
    "gsc_sample_rate", 16000, "Sample rate of the GSC2-format corpus in Hz."
)
_VALIDATION_PERCENTAGE = flags.DEFINE_float(
    "validation_percentage", 10.0, "Share of GSC2 speakers in validation_list.txt."
)
_TESTING_PERCENTAGE = flags.DEFINE_float(
    "testing_percentage", 10.0, "Share of GSC2 speakers in testing_list.txt."
)
_BACKGROUND_NOISE_SECONDS = flags.DEFINE_float(
    "background_noise_seconds", 30.0, "Length of each _background_noise_ file."
)

_MC_KEYWORDS = flags.DEFINE_list(
    "mc_keywords",
    list(synthetic.MC_KWS_KEYWORDS),
    "Comma-separated keywords of the MC-KWS-format corpus.",
)
_MC_LANGUAGE = flags.DEFINE_string("mc_language", "cmn", "eSpeak NG language of --mc_keywords.")
_MC_NUM_SPEAKERS = flags.DEFINE_integer(
    "mc_num_speakers", 37, "Synthetic speakers in the MC-KWS-format corpus."
)
_MC_SPEAKER_SPLIT = flags.DEFINE_list(
    "mc_speaker_split",
    [],
    "Fixed MC-KWS speakers per split, train,valid,test (written to SPLITINFO.txt; "
    "--mc_num_speakers defaults to their sum); empty: the loader splits by seed.",
)
_MC_CLIPS_PER_WORD = flags.DEFINE_integer(
    "mc_clips_per_word", 4, "Utterances of each keyword by each MC-KWS speaker."
)
_MC_SAMPLE_RATE = flags.DEFINE_integer(
    "mc_sample_rate", 48000, "Sample rate of the MC-KWS-format corpus in Hz."
)


for _flag in (
    _GSC_NUM_SPEAKERS,
    _GSC_CLIPS_PER_WORD,
    _GSC_SAMPLE_RATE,
    _MC_NUM_SPEAKERS,
    _MC_CLIPS_PER_WORD,
    _MC_SAMPLE_RATE,
):
    # Checked at parse time so that a bad value fails before any corpus is written.
    flags.register_validator(
        _flag.name,
        lambda value: value > 0,
        message=(
            f"--{_flag.name} must be a positive integer; pass e.g. --{_flag.name}={_flag.default}."
        ),
    )


def _fail(message):
    recipe_cli.fail("make_synthetic_kws.py", message)


def _parse_flags(argv):
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        _fail(str(error).replace("\n", " "))


## Generation


def _speaker_split():
    if not _MC_SPEAKER_SPLIT.value:
        return None
    try:
        return tuple(int(n) for n in _MC_SPEAKER_SPLIT.value)
    except ValueError:
        _fail(
            f"--mc_speaker_split must be 3 integers train,valid,test, e.g. 25,42,42. "
            f"Received: {','.join(_MC_SPEAKER_SPLIT.value)}"
        )


def main(argv):
    if len(argv) > 1:
        _fail(f"unexpected arguments {argv[1:]}; all settings are --flags.")
    snr_db_range = (_MIN_SNR_DB.value, _MAX_SNR_DB.value)
    speaker_split = _speaker_split()
    num_speakers = _MC_NUM_SPEAKERS.value
    if speaker_split and not flags.FLAGS["mc_num_speakers"].present:
        num_speakers = sum(speaker_split)
    try:
        if "mc_kws" in _CORPORA.value:
            # Before any corpus is written: a bad split must not leave gsc2/ behind.
            synthetic.checks.check_speaker_split(speaker_split, num_speakers, _HELDOUT_VOICES.value)
        if "gsc2" in _CORPORA.value:
            path = synthetic.make_gsc_corpus(
                os.path.join(_OUTPUT_DIR.value, "gsc2"),
                words=_GSC_WORDS.value,
                language=_GSC_LANGUAGE.value,
                num_speakers=_GSC_NUM_SPEAKERS.value,
                clips_per_word=_GSC_CLIPS_PER_WORD.value,
                validation_percentage=_VALIDATION_PERCENTAGE.value,
                testing_percentage=_TESTING_PERCENTAGE.value,
                snr_db_range=snr_db_range,
                sample_rate=_GSC_SAMPLE_RATE.value,
                background_noise_seconds=_BACKGROUND_NOISE_SECONDS.value,
                seed=_SEED.value,
                num_workers=_NUM_WORKERS.value,
                heldout_voices=_HELDOUT_VOICES.value,
            )
            print(f"GSC2-format corpus: {path}")
        if "mc_kws" in _CORPORA.value:
            path = synthetic.make_mc_kws_corpus(
                os.path.join(_OUTPUT_DIR.value, "mc_kws"),
                keywords=_MC_KEYWORDS.value,
                language=_MC_LANGUAGE.value,
                num_speakers=num_speakers,
                speaker_split=speaker_split,
                heldout_voices=_HELDOUT_VOICES.value,
                clips_per_word=_MC_CLIPS_PER_WORD.value,
                snr_db_range=snr_db_range,
                sample_rate=_MC_SAMPLE_RATE.value,
                seed=_SEED.value,
                num_workers=_NUM_WORKERS.value,
            )
            print(f"MC-KWS-format corpus: {path}")
    except ValueError as error:
        _fail(str(error).replace("\n", " "))


if __name__ == "__main__":
    # Not app.run: TensorFlow registers an absl post-init hook that probes for
    # GPUs and logs to stderr, which would break the one-line error contract.
    app.define_help_flags()
    main(_parse_flags(sys.argv))
