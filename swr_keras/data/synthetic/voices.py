"""Synthetic speakers: voice and prosody sampling, ids and GSC-style splits.

A speaker is an eSpeak NG voice variant with its own base pitch, intonation
range, speaking rate and loudness; each utterance jitters rate and pitch
around the speaker's values. GSC assigns a speaker's split from the SHA-1 of
its id, so the GSC-format ids are drawn until the split sizes match the
requested percentages.
"""

import dataclasses
import hashlib

import numpy as np

from swr_keras.data.synthetic import espeak

# Variants that sound like people; robot, whisper and croak variants are left
# out because no real corpus speaker sounds like them.
_HUMAN_VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "Alicia",
    "Andrea",
    "Andy",
    "Annie",
    "Denis",
    "Gene",
    "Jacky",
    "Lee",
    "Michael",
    "adam",
    "anika",
    "aunty",
    "belinda",
    "benjamin",
    "boris",
    "caleb",
    "david",
    "ed",
    "edward",
    "grandma",
    "grandpa",
    "ian",
    "iven",
    "john",
    "linda",
    "max",
    "michel",
    "norbert",
    "paul",
    "pedro",
    "quincy",
    "rob",
    "robert",
    "steph",
    "travis",
    "victor",
    "zac",
)


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an eSpeak NG variant and its prosody.

    Args:
        speaker_id: id used in file names.
        variant: eSpeak NG voice variant, e.g. `"f3"`.
        gender: `"M"`, `"F"` or `""` (variants that declare none).
        age: age written to `SPKINFO.txt`; drawn at random, not a property of
            the voice.
        pitch: base pitch in [0, 99].
        pitch_range: intonation range in [0, 99].
        rate: speaking rate in words per minute.
        amplitude: eSpeak volume in [0, 200].
    """

    speaker_id: str
    variant: str
    gender: str
    age: int
    pitch: int
    pitch_range: int
    rate: int
    amplitude: int


def split_of(speaker_id, validation_percentage, testing_percentage):
    """GSC-style split: hash of the speaker id into a percentage bucket."""
    digest = int(hashlib.sha1(speaker_id.encode("utf-8")).hexdigest(), 16)
    percentage = (digest % 2**27) * (100.0 / 2**27)
    if percentage < validation_percentage:
        return "validation"
    if percentage < validation_percentage + testing_percentage:
        return "testing"
    return "training"


def gsc_split_quota(num_speakers, validation_percentage, testing_percentage):
    """Speakers per GSC split name: the percentages of `num_speakers`, rounded."""
    quota = {
        "validation": round(num_speakers * validation_percentage / 100.0),
        "testing": round(num_speakers * testing_percentage / 100.0),
    }
    quota["training"] = num_speakers - quota["validation"] - quota["testing"]
    return quota


def gsc_speaker_ids(rng, num_speakers, validation_percentage, testing_percentage):
    """Draws hex ids whose hash splits match the requested percentages."""
    quota = gsc_split_quota(num_speakers, validation_percentage, testing_percentage)
    ids, seen = [], set()
    while len(ids) < num_speakers:
        speaker_id = f"{int(rng.integers(0, 2**32)):08x}"
        split = split_of(speaker_id, validation_percentage, testing_percentage)
        if speaker_id in seen or quota[split] == 0:
            continue
        seen.add(speaker_id)
        quota[split] -= 1
        ids.append(speaker_id)
    return ids


def variant_pools():
    """The human variants split into a training pool and a held-out pool.

    Within each declared gender (male, female, none) the variants alternate
    between the pools in `_HUMAN_VARIANTS` order, so both pools hold both
    genders. A corpus with held-out voices gives its validation and test
    speakers only held-out variants, so no voice they speak with is heard in
    its training split.

    Returns:
        `(training, heldout)`, two disjoint tuples of variant names.
    """
    available = set(espeak.available_variants())
    pools = ([], [])
    seen = {}
    for name in _HUMAN_VARIANTS:
        if name not in available:
            continue
        gender = espeak.variant_gender(name)
        pools[seen.get(gender, 0) % 2].append(name)
        seen[gender] = seen.get(gender, 0) + 1
    return tuple(pools[0]), tuple(pools[1])


def make_speakers(rng, speaker_ids, heldout=None):
    """One `Speaker` per id, with a random human variant and prosody.

    Args:
        rng: a `np.random.Generator`.
        speaker_ids: the ids.
        heldout: `None` to draw every variant from all human variants, or one
            bool per id: `True` draws it from the held-out pool of
            `variant_pools()`, `False` from the training pool.
    """
    every = [name for name in _HUMAN_VARIANTS if name in espeak.available_variants()]
    pools = variant_pools()
    speakers = []
    for index, speaker_id in enumerate(speaker_ids):
        variants = every if heldout is None else pools[int(bool(heldout[index]))]
        variant = variants[int(rng.integers(len(variants)))]
        speakers.append(
            Speaker(
                speaker_id=speaker_id,
                variant=variant,
                gender=espeak.variant_gender(variant),
                age=int(rng.integers(18, 66)),
                pitch=int(rng.integers(15, 86)),
                pitch_range=int(rng.integers(25, 91)),
                rate=int(rng.integers(135, 206)),
                amplitude=int(rng.integers(70, 131)),
            )
        )
    return speakers


def utterance_request(rng, speaker, text, language):
    """eSpeak arguments for one utterance, jittered around the speaker."""
    rate = speaker.rate * rng.uniform(0.9, 1.1)
    return dict(
        text=text,
        voice=f"{language}+{speaker.variant}",
        rate=int(np.clip(rate, *espeak.RATE_RANGE)),
        pitch=int(np.clip(speaker.pitch + rng.integers(-5, 6), 0, 99)),
        pitch_range=int(np.clip(speaker.pitch_range + rng.integers(-8, 9), 0, 99)),
        amplitude=speaker.amplitude,
        seed=int(rng.integers(0, 2**31 - 1)),
    )
