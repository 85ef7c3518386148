"""Google Speech Commands v2, 12-way, from the official directory layout.

Layout: `<root>/<word>/<speaker>_nohash_<n>.wav` (16 kHz mono 16-bit, at most
1 s), `<root>/validation_list.txt`, `<root>/testing_list.txt` (one
`<word>/<file>.wav` per line) and `<root>/_background_noise_/*.wav`.

Classes (the BC-ResNet reference's order): `_silence_`, `_unknown_`, then
down go left no off on right stop up yes. A file goes to the split its
list names (else train). `_unknown_` is every other word, a seeded random
subset of at most `unknown_caps[split]` clips per split (3077 / 371 / 408 by
default, the reference's v2 numbers). `_silence_` gets
`min(silence_caps[split], largest keyword count of the split)` clips: the
reference's caps on the full corpus, and still balanced on a scaled-down one.
Training and validation silence clips are zeros that augmentation fills with
background noise (as the reference); test silence clips hold a fixed,
seeded `_background_noise_` segment at amplitude U(0, 1), like the official
test archive's silence files, since the test split is not augmented.
"""

import logging
import os

import numpy as np

from swr_keras.data import audio, augment, pipeline

_LOG = logging.getLogger(__name__)

KEYWORDS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes")
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
CLASS_NAMES = (SILENCE, UNKNOWN) + KEYWORDS
SAMPLE_RATE = 16000
DEFAULT_CAPS = (3077, 371, 408)
NOISE_DIR = "_background_noise_"
_LIST_FILES = {"valid": "validation_list.txt", "test": "testing_list.txt"}


def speaker_of(filename):
    """Speaker id of a GSC file name (`<speaker>_nohash_<n>.wav`)."""
    stem = os.path.splitext(filename)[0]
    return stem.split("_nohash_")[0] if "_nohash_" in stem else stem.rsplit("_", 1)[0]


def _read_list(root, split):
    path = os.path.join(root, _LIST_FILES[split])
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Split list not found: {path}. A Speech Commands v0.02 "
            "directory has validation_list.txt and testing_list.txt next to "
            "the word folders; re-extract the official archive there."
        )
    entries = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            entry = line.strip().replace("\\", "/")
            if not entry:
                continue
            if not os.path.isfile(os.path.join(root, entry)):
                raise FileNotFoundError(
                    f"{path}, line {number}: {os.path.join(root, entry)} does "
                    "not exist. The list and the audio come from different "
                    "corpus versions; re-extract both from one archive."
                )
            entries[entry] = number
    return path, entries


def _word_dirs(root):
    words = sorted(
        name
        for name in os.listdir(root)
        if os.path.isdir(os.path.join(root, name))
        and name != NOISE_DIR
        and not name.startswith(".")
    )
    missing = [k for k in KEYWORDS if k not in words]
    if missing:
        raise FileNotFoundError(
            f"Keyword folder(s) {missing} missing under {root}. Point `root` "
            "at the extracted speech_commands_v0.02 directory."
        )
    return words


def list_gsc2(
    root,
    seed=0,
    unknown_caps=DEFAULT_CAPS,
    silence_caps=DEFAULT_CAPS,
    noise_dir=None,
    clip_seconds=1.0,
):
    """Lists GSC2 into a 12-class `KwsCorpus` (validating every WAV).

    Args:
        root: str, the extracted `speech_commands_v0.02` directory.
        seed: int; the unknown subsets and test silence segments follow it.
        unknown_caps: 3 ints, most `_unknown_` clips in train/valid/test.
        silence_caps: 3 ints, most `_silence_` clips in train/valid/test.
        noise_dir: optional background-noise folder; default
            `<root>/_background_noise_`.
        clip_seconds: float, clip length; clips are zero-padded to it and
            a longer file is an error (GSC2 clips are at most 1 s).

    Returns:
        A `pipeline.KwsCorpus` with one `ClipTable` per split.

    Raises:
        FileNotFoundError: `root`, a list file, a listed file, a keyword
            folder or the noise folder is missing.
        ValueError: a keyword or `_unknown_` has no clips, a file is in both
            lists, or a WAV file is invalid or longer than `clip_seconds`
            (the message names it).

    Example:

    >>> corpus = list_gsc2("/data/speech_commands_v0.02")
    >>> train = pipeline.make_dataset(corpus, "train", batch_size=100)
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"GSC2 directory not found: {root}. Extract "
            "speech_commands_v0.02.tar.gz there or pass its path."
        )
    for caps in (unknown_caps, silence_caps):
        if len(caps) != 3 or min(caps) < 0:
            raise ValueError(
                f"Caps must be 3 non-negative ints (train, valid, test). Received: {caps}"
            )
    words = _word_dirs(root)
    split_of = {}
    lists = {s: _read_list(root, s) for s in ("valid", "test")}
    for split, (_, entries) in lists.items():
        for entry in entries:
            if entry in split_of:
                raise ValueError(
                    f"{entry} is listed in both {lists['valid'][0]} and "
                    f"{lists['test'][0]}; remove it from one of them."
                )
            split_of[entry] = split
    clip_samples = int(round(clip_seconds * SAMPLE_RATE))
    noise_bank = augment.NoiseBank.from_directory(
        noise_dir or os.path.join(root, NOISE_DIR), SAMPLE_RATE, clip_samples
    )

    rows = {s: {"keyword": [], "unknown": []} for s in pipeline.SPLITS}
    for word in words:
        folder = os.path.join(root, word)
        names = sorted(n for n in os.listdir(folder) if n.endswith(".wav"))
        if not names:
            if word in KEYWORDS:
                raise ValueError(
                    f"Keyword folder {folder} holds no .wav file; restore it from the archive."
                )
            _LOG.warning("Skipping %s: no .wav files.", folder)
            continue
        label = CLASS_NAMES.index(word) if word in KEYWORDS else 1
        kind = "keyword" if word in KEYWORDS else "unknown"
        for name in names:
            path = os.path.join(folder, name)
            audio.validate_wav(path, SAMPLE_RATE, max_frames=clip_samples)
            split = split_of.get(f"{word}/{name}", "train")
            rows[split][kind].append((path, label, speaker_of(name)))

    if not any(rows[s]["unknown"] for s in pipeline.SPLITS):
        raise ValueError(
            f"No clips for _unknown_ under {root}: besides the 10 keywords "
            "there must be other word folders (GSC2 has 25)."
        )
    splits = {}
    for index, split in enumerate(pipeline.SPLITS):
        rng = np.random.default_rng([seed, index])
        keyword_rows = rows[split]["keyword"]
        unknown_rows = rows[split]["unknown"]
        chosen = rng.permutation(len(unknown_rows))[: unknown_caps[index]]
        unknown_rows = [unknown_rows[i] for i in sorted(chosen)]
        counts = np.bincount([r[1] for r in keyword_rows], minlength=len(CLASS_NAMES))
        num_silence = int(min(silence_caps[index], counts.max()))
        files = keyword_rows + unknown_rows
        splits[split] = (
            pipeline.split_table(
                files,
                SAMPLE_RATE,
                num_silence,
                noise_bank,
                clip_samples,
                rng,
                fixed_noise=split == "test",
            ),
        )
    return pipeline.KwsCorpus(
        class_names=CLASS_NAMES,
        splits=splits,
        noise_bank=noise_bank,
        clip_samples=clip_samples,
        sample_rate=SAMPLE_RATE,
    )
