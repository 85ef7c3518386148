"""Your own keywords: one folder of WAV recordings per keyword.

Layout (GSC2's, with everything but the keyword folders optional):

    <root>/<keyword>/*.wav              one folder per keyword
    <root>/_unknown_/**/*.wav           the `_unknown_` class (files or word folders)
    <root>/_background_noise_/*.wav     silence class and noise augmentation
    <root>/validation_list.txt          `<folder>/<file>.wav` per line, as GSC2
    <root>/testing_list.txt

Classes: `_silence_`, `_unknown_`, then the keywords in sorted order. Folders
named in `unknown_words` join `_unknown_` (other words the model must learn
not to mistake for a keyword). Labels 0 and 1 stay silence and unknown even
when a folder is absent (the class then has no clips), the order the
augmentation and every other task use. One keyword is enough when there is
something to tell it apart from (`_unknown_` clips); a lone keyword folder
without them is an error.

Audio: mono WAV, 16-bit PCM or IEEE float, at any sample rate, mixed rates
allowed: each (rate, format) group of a split is one `ClipTable`, resampled
to 16 kHz in-graph like MC-KWS. Clips are zero-padded to `clip_seconds`.
A longer clip is an error naming it and the `clip_seconds` that fits it:
clips are never cropped, since a crop of a user's recording can cut the
keyword off and the model would learn from what is left.

Splits, by precedence:

1. `validation_list.txt` / `testing_list.txt` (either or both): listed files
   go there, all others to training. A speaker (`<speaker>_nohash_<n>.wav`)
   with files in two splits is an error.
2. Every file named `<speaker>_nohash_<n>.wav`, from at least 3 speakers:
   by speaker. Speakers are ranked by the SHA-1 of their id; the first
   `testing_percentage` (at least one) are the test split, the next
   `validation_percentage` (at least one) validation.
3. Otherwise by file: within each class folder, files ranked by the SHA-1 of
   their name, split the same way; every keyword needs 3 clips.

The split depends on the file names only, never on a seed, so runs with
different training seeds are evaluated on the same clips.

Silence, as GSC2: with `_background_noise_/` (any rate; resampled once at
listing), each split gets as many silence clips as its largest keyword;
training and validation silence is zeros that augmentation fills with fresh
noise, test silence a fixed seeded segment. Without it there is no silence
clip and no noise mixing (time shift and SpecAugment still apply).
"""

import collections
import hashlib
import logging
import math
import os

import numpy as np

from swr_keras.data import audio, augment, pipeline
from swr_keras.data import resample as resample_lib

_LOG = logging.getLogger(__name__)

SILENCE = "_silence_"
UNKNOWN = "_unknown_"
NOISE_DIR = "_background_noise_"
SAMPLE_RATE = 16000
LIST_FILES = {"valid": "validation_list.txt", "test": "testing_list.txt"}
SPEAKER_MARK = "_nohash_"


def _is_wav(name):
    return name.lower().endswith(".wav") and not name.startswith(".")


def _wav_files(folder, recursive=False):
    """Sorted paths of the WAV files in `folder` (and below, if `recursive`)."""
    if not recursive:
        return [
            os.path.join(folder, n)
            for n in sorted(os.listdir(folder))
            if _is_wav(n) and os.path.isfile(os.path.join(folder, n))
        ]
    found = []
    for directory, subdirs, names in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        found += [os.path.join(directory, n) for n in sorted(names) if _is_wav(n)]
    return found


def speaker_of(path):
    """`<speaker>` of `<speaker>_nohash_<n>.wav`, else `None`."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem.split(SPEAKER_MARK)[0] if SPEAKER_MARK in stem else None


def _sha1(text):
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def hash_split(names, validation_percentage, testing_percentage):
    """Dict name -> split: names ranked by SHA-1, test first, then validation.

    At least one name goes to each of test and validation; the rest (at least
    one) to training. Needs 3 names.
    """
    ranked = sorted(set(names), key=lambda n: (_sha1(n), n))
    num_test = max(1, round(len(ranked) * testing_percentage / 100.0))
    num_valid = max(1, round(len(ranked) * validation_percentage / 100.0))
    if len(ranked) - num_test - num_valid < 1:
        num_test = num_valid = 1
    split = {n: "test" for n in ranked[:num_test]}
    split.update({n: "valid" for n in ranked[num_test : num_test + num_valid]})
    split.update({n: "train" for n in ranked[num_test + num_valid :]})
    return split


def _inspect(path):
    """`audio.validate_wav` (16-bit or float), with OS errors named as one line."""
    try:
        return audio.validate_wav(path, allow_float=True)
    except OSError as error:
        raise ValueError(
            f"{path} cannot be read ({error.strerror or error}). Fix its permissions or delete it."
        ) from None


def _read_lists(root, relpaths):
    """Dict `<folder>/<file>.wav` -> split from the split lists under `root`."""
    split_of, where = {}, {}
    for split, name in LIST_FILES.items():
        path = os.path.join(root, name)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                entry = line.strip().replace("\\", "/")
                if not entry:
                    continue
                if not os.path.isfile(os.path.join(root, entry)):
                    raise ValueError(
                        f"{path}, line {number}: {os.path.join(root, entry)} does not exist. "
                        "Remove the line or restore the file."
                    )
                if entry in split_of and split_of[entry] != split:
                    raise ValueError(
                        f"{entry} is listed in both {where[entry]} and {path}; "
                        "remove it from one of them."
                    )
                split_of[entry], where[entry] = split, path
    # Listed files outside the class folders (e.g. noise) are not clips.
    return {r: split_of.get(r, "train") for r in relpaths}


def _check_speakers_disjoint(rows, split_of):
    splits_of_speaker = collections.defaultdict(dict)
    for row in rows:
        speaker = speaker_of(row.path)
        if speaker is not None:
            splits_of_speaker[speaker].setdefault(split_of[row.relpath], row.relpath)
    for speaker, files in sorted(splits_of_speaker.items()):
        if len(files) > 1:
            (first, a), (second, b) = sorted(files.items())[:2]
            raise ValueError(
                f"Speaker {speaker} has clips in two splits ({a} in {first}, {b} in "
                f"{second}); a speaker's clips must all be in one split. Fix "
                f"{LIST_FILES['valid']} / {LIST_FILES['test']}."
            )


_Row = collections.namedtuple("_Row", "path relpath label info")


def _noise_bank(root, clip_samples):
    """`(NoiseBank, True)` from `_background_noise_/`, else a silent one and False."""
    folder = os.path.join(root, NOISE_DIR)
    if not os.path.isdir(folder):
        _LOG.warning(
            "%s has no %s folder: no silence clips and no noise mixing. Add a few "
            "recordings of the places the keywords will be spoken in.",
            root,
            NOISE_DIR,
        )
        # Zeros: augmentation's noise mixing adds nothing, its time shift still runs.
        return augment.NoiseBank([np.zeros([clip_samples], np.float32)], ["(none)"]), False
    waveforms, names = [], []
    for path in _wav_files(folder):
        info = _inspect(path)
        try:
            waveform = audio.read_wav(path, allow_float=True)
        except OSError as error:
            raise ValueError(f"{path} cannot be read ({error.strerror or error}).") from None
        waveform = resample_lib.resample(waveform, info.sample_rate, SAMPLE_RATE).numpy()
        if len(waveform) < clip_samples:
            _LOG.warning(
                "Skipping noise file %s: %.2f s, shorter than one %.2f s clip.",
                path,
                len(waveform) / SAMPLE_RATE,
                clip_samples / SAMPLE_RATE,
            )
            continue
        waveforms.append(waveform)
        names.append(os.path.basename(path))
    if not waveforms:
        raise ValueError(
            f"{folder} holds no WAV recording of at least {clip_samples / SAMPLE_RATE:g} s "
            "(the clip length); add longer noise recordings or remove the folder."
        )
    return augment.NoiseBank(waveforms, names), True


def list_keyword_folder(
    root,
    clip_seconds=1.0,
    unknown_words=(),
    validation_percentage=10.0,
    testing_percentage=10.0,
    seed=0,
):
    """Lists a folder of keyword folders into a `KwsCorpus` (validating every WAV).

    Args:
        root: str, the folder with one sub-folder of WAV files per keyword.
        clip_seconds: float, the clip length; shorter clips are zero-padded,
            a longer one is an error.
        unknown_words: folder names whose clips form `_unknown_` instead of
            being keywords.
        validation_percentage: float, share of the speakers (or files) in
            the validation split when no split list is given.
        testing_percentage: float, the same for the test split.
        seed: int, seeds the fixed test silence segments only.

    Returns:
        A `pipeline.KwsCorpus` with class names
        `("_silence_", "_unknown_", *sorted keywords)`.

    Raises:
        FileNotFoundError: `root` does not exist.
        ValueError: a bad folder, as a one-line message naming what and the
            fix: no keyword folder, one keyword and nothing else, an empty
            keyword folder, a file that is unreadable or longer than the clip,
            a split list naming a missing file, a speaker in two splits, a
            keyword without a training clip, or an empty split.

    Example:

    >>> corpus = list_keyword_folder("my_words", clip_seconds=1.5)
    >>> train = pipeline.make_dataset(corpus, "train", batch_size=50)
    """
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"Keyword folder not found: {root}. Pass a folder with one sub-folder of "
            "WAV files per keyword."
        )
    if not (isinstance(clip_seconds, (int, float)) and math.isfinite(clip_seconds)):
        raise ValueError(f"clip_seconds must be a positive number. Received: {clip_seconds!r}")
    if clip_seconds <= 0:
        raise ValueError(f"clip_seconds must be a positive number. Received: {clip_seconds!r}")
    for name, value in (("validation", validation_percentage), ("testing", testing_percentage)):
        if not 0 <= value < 100:
            raise ValueError(f"{name}_percentage must be in [0, 100). Received: {value}")
    clip_samples = int(round(clip_seconds * SAMPLE_RATE))
    folders = sorted(
        n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)) and n[0] != "."
    )
    if SILENCE in folders:
        raise ValueError(
            f"{os.path.join(root, SILENCE)}: {SILENCE} is made from {NOISE_DIR}/, not "
            f"recorded; move those files into {NOISE_DIR}/."
        )
    unknown_words = [w.strip() for w in unknown_words if w.strip()]
    for word in unknown_words:
        if word not in folders:
            raise ValueError(
                f"unknown_words names {word!r}, which is not a folder under {root}. "
                f"Folders: {', '.join(folders)}."
            )
    keywords = [f for f in folders if f not in (NOISE_DIR, UNKNOWN, *unknown_words)]
    class_names = (SILENCE, UNKNOWN, *keywords)

    rows = []
    for label, keyword in enumerate(keywords, start=2):
        paths = _wav_files(os.path.join(root, keyword))
        if not paths:
            raise ValueError(
                f"Keyword folder {os.path.join(root, keyword)} holds no .wav file; add "
                "recordings or remove the folder."
            )
        rows += [_Row(p, os.path.relpath(p, root).replace(os.sep, "/"), label, None) for p in paths]
    unknown_sources = [w for w in (UNKNOWN, *unknown_words) if w in folders]
    for word in unknown_sources:
        paths = _wav_files(os.path.join(root, word), recursive=word == UNKNOWN)
        rows += [_Row(p, os.path.relpath(p, root).replace(os.sep, "/"), 1, None) for p in paths]
    num_unknown = sum(r.label == 1 for r in rows)
    if not keywords:
        raise ValueError(
            f"{root} has no keyword folder; put each keyword's WAV files in a folder "
            "named after it."
        )
    if len(keywords) == 1 and not num_unknown:
        raise ValueError(
            f"{root} has only one keyword folder ({keywords[0]}) and no {UNKNOWN} clips, so "
            f"there is nothing to tell it apart from. Add another keyword folder, or "
            f"recordings of other words in {UNKNOWN}/."
        )

    rows = [r._replace(info=_inspect(r.path)) for r in rows]
    too_long = [
        r for r in rows if -(-r.info.num_frames * SAMPLE_RATE // r.info.sample_rate) > clip_samples
    ]
    if too_long:
        longest = max(too_long, key=lambda r: r.info.seconds)
        raise ValueError(
            f"{len(too_long)} clip(s) are longer than clip_seconds={clip_seconds:g}, the "
            f"longest {longest.path} ({longest.info.seconds:.3f} s); set clip_seconds "
            f"(--clip_seconds) to {math.ceil(longest.info.seconds * 10) / 10:g} or trim "
            "them (clips are never cropped: a crop could cut the keyword off)."
        )

    split_of, how = _assign_splits(root, rows, keywords, validation_percentage, testing_percentage)
    _check_splits(rows, split_of, class_names)
    noise_bank, has_noise = _noise_bank(root, clip_samples)

    splits = {}
    for index, split in enumerate(pipeline.SPLITS):
        rng = np.random.default_rng([seed, index])
        files = [r for r in rows if split_of[r.relpath] == split]
        counts = np.bincount([r.label for r in files], minlength=len(class_names))
        num_silence = int(counts[2:].max()) if has_noise else 0
        groups = collections.defaultdict(list)
        for r in files:
            groups[(r.info.sample_rate, r.info.sample_format)].append(
                (r.path, r.label, speaker_of(r.path) or "")
            )
        tables = []
        for number, ((rate, sample_format), group) in enumerate(sorted(groups.items())):
            tables.append(
                pipeline.split_table(
                    group,
                    rate,
                    num_silence if number == 0 else 0,
                    noise_bank,
                    clip_samples,
                    rng,
                    fixed_noise=split == "test",
                    sample_format=sample_format,
                )
            )
        splits[split] = tuple(tables)
    rates = sorted({r.info.sample_rate for r in rows})
    _LOG.info(
        "%s: %d keywords, %d unknown clips, split %s, sample rates %s Hz.",
        root,
        len(keywords),
        num_unknown,
        how,
        rates,
    )
    return pipeline.KwsCorpus(
        class_names=class_names,
        splits=splits,
        noise_bank=noise_bank,
        clip_samples=clip_samples,
        sample_rate=SAMPLE_RATE,
    )


def _assign_splits(root, rows, keywords, validation_percentage, testing_percentage):
    """`(dict relpath -> split, how)`; see the module docstring for the rules."""
    relpaths = [r.relpath for r in rows]
    if any(os.path.isfile(os.path.join(root, name)) for name in LIST_FILES.values()):
        split_of = _read_lists(root, relpaths)
        _check_speakers_disjoint(rows, split_of)
        return split_of, "by the split lists"
    speakers = [speaker_of(r.path) for r in rows]
    if all(speakers) and len(set(speakers)) >= 3:
        by_speaker = hash_split(speakers, validation_percentage, testing_percentage)
        return {r.relpath: by_speaker[s] for r, s in zip(rows, speakers)}, "by speaker"
    if all(speakers):
        _LOG.warning(
            "Only %d speaker(s) in %s: splitting by file, so a speaker's clips are in "
            "several splits and the test accuracy is not on unseen speakers.",
            len(set(speakers)),
            root,
        )
    split_of = {}
    folders = collections.defaultdict(list)
    for r in rows:
        folders[r.relpath.split("/")[0]].append(r.relpath)
    for folder, names in folders.items():
        if folder in keywords and len(names) < 3:
            raise ValueError(
                f"Keyword folder {os.path.join(root, folder)} has {len(names)} clip(s); "
                "splitting by file needs at least 3 (training, validation, test). Add "
                "recordings or give validation_list.txt / testing_list.txt."
            )
        if len(names) >= 3:
            split_of.update(hash_split(names, validation_percentage, testing_percentage))
        else:  # Fewer than 3 unknown clips: all for training.
            split_of.update({n: "train" for n in names})
    return split_of, "by file"


def _check_splits(rows, split_of, class_names):
    """Every keyword has a training clip; no split is without keywords."""
    present = collections.defaultdict(set)
    for r in rows:
        present[split_of[r.relpath]].add(r.label)
    for label, keyword in enumerate(class_names[2:], start=2):
        if label not in present["train"]:
            raise ValueError(
                f"Keyword {keyword!r} has no clip in the training split: the split lists put "
                "all of them in validation or test. Move some to training."
            )
    for split in ("valid", "test"):
        if not present[split] - {1}:
            raise ValueError(
                f"The {split} split has no keyword clip. Name some files in "
                f"{LIST_FILES[split]} (or remove the split lists for an automatic split)."
            )
